//! A YAML document as a tree of nodes that remember where they are in the
//! source, and a serde `Deserializer` over that tree.
//!
//! serde-saphyr parses the text once into [`Node`]s (so a syntax error is
//! the only thing that stops everything); the surface types are then
//! deserialized from the tree, which is what lets the workflow language
//! report every schema problem with a position instead of the first:
//!
//! - [`Sp<T>`] is a value with the [`Span`] of the node it came from;
//! - [`Lenient<T>`] is a value that failed to deserialize without failing
//!   its parent: the error goes to a list, and what the node's `id` key
//!   says is kept so that references to it still resolve;
//! - [`Pairs<K, V>`] is a mapping that keeps its keys in source order.
//!
//! Errors raised by serde's derived code (unknown or missing field, wrong
//! type) get the span of the innermost node being deserialized.

use super::Span;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::value::SeqDeserializer;
use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, IntoDeserializer, Visitor};
use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;

/// One YAML node and where it is.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub span: Span,
    pub value: Value,
}

/// What a YAML node holds, after the YAML 1.2 core schema resolved its scalars.
#[derive(Clone, Debug)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

/// Parses `source` into a tree of nodes.
///
/// Scalars follow the YAML 1.2 core schema: `yes`, `no`, `on`, `off` and
/// `y` are strings, not booleans, and so is a number with leading zeros.
pub(crate) fn parse(source: &str) -> Result<Node, serde_saphyr::Error> {
    let options = serde_saphyr::options! {
        strict_booleans: true,
        leading_zero_numbers_as_strings: true,
    };
    serde_saphyr::from_str_with_options::<Node>(source, options)
}

fn span_from(location: &serde_saphyr::Location) -> Span {
    let span = location.span();
    Span {
        offset: usize::try_from(span.byte_offset().unwrap_or(0)).unwrap_or(usize::MAX),
        len: usize::try_from(span.byte_len().unwrap_or(0)).unwrap_or(0),
        line: usize::try_from(location.line()).unwrap_or(usize::MAX),
        column: usize::try_from(location.column()).unwrap_or(usize::MAX),
    }
}

/// The span of a serde-saphyr error in `source`, when it knows one. Error
/// locations carry no byte offsets, so they are computed from the line and
/// column.
pub(crate) fn error_span(source: &str, err: &serde_saphyr::Error) -> Option<Span> {
    let location = err.location().filter(|location| location.line() > 0)?;
    let line = usize::try_from(location.line()).ok()?;
    let column = usize::try_from(location.column()).ok()?;
    let line_start: usize = source
        .split_inclusive('\n')
        .take(line - 1)
        .map(str::len)
        .sum();
    let rest = source.get(line_start..).unwrap_or_default();
    let offset = line_start
        + rest
            .char_indices()
            .nth(column - 1)
            .map_or(rest.len(), |(i, _)| i);
    let chars = usize::try_from(location.span().len()).unwrap_or(0);
    let tail = source.get(offset..).unwrap_or_default();
    let len = tail
        .char_indices()
        .nth(chars)
        .map_or(tail.len(), |(i, _)| i);
    Some(Span {
        offset,
        len,
        line,
        column,
    })
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Node, D::Error> {
        let spanned = serde_saphyr::Spanned::<Value>::deserialize(deserializer)?;
        Ok(Node {
            span: span_from(&spanned.referenced),
            value: spanned.value,
        })
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::UInt(v), Value::Int))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        i64::try_from(v)
            .map(Value::Int)
            .map_err(|_| E::custom(format_args!("the integer `{v}` is too large")))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        u64::try_from(v)
            .map(|v| i64::try_from(v).map_or(Value::UInt(v), Value::Int))
            .map_err(|_| E::custom(format_args!("the integer `{v}` is too large")))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Value::deserialize(deserializer)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Value::Seq(items))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some((key, value)) = map.next_entry::<Node, Node>()? {
            entries.push((key, value));
        }
        Ok(Value::Map(entries))
    }
}

/// A deserialization error, with the span of the node it is about.
#[derive(Debug)]
pub(crate) struct DeError {
    pub message: String,
    pub span: Option<Span>,
}

impl DeError {
    /// The error, placed at `span` unless a more precise place is known.
    fn at(mut self, span: Span) -> DeError {
        self.span.get_or_insert(span);
        self
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> DeError {
        DeError {
            message: msg.to_string(),
            span: None,
        }
    }
}

/// Where errors absorbed by [`Lenient`] values go.
pub(crate) type Sink = RefCell<Vec<DeError>>;

/// Deserializes a `T` from `node`: `Ok` with the errors that [`Lenient`]
/// values absorbed, or the error that stopped it.
///
/// `source` is the text `node` was parsed from: a plain scalar read into a
/// string field (`id: 123`, `signal: 2026`) is taken as written.
pub(crate) fn from_node<T: for<'de> Deserialize<'de>>(
    source: &str,
    node: &Node,
    sink: &Sink,
) -> Result<T, DeError> {
    T::deserialize(NodeDe { node, sink, source })
}

const SPANNED: &str = "$docket::Sp";
const LENIENT: &str = "$docket::Lenient";

#[derive(Clone, Copy)]
struct NodeDe<'a> {
    node: &'a Node,
    sink: &'a Sink,
    source: &'a str,
}

impl<'a> NodeDe<'a> {
    fn of(&self, node: &'a Node) -> NodeDe<'a> {
        NodeDe { node, ..*self }
    }

    /// The text of a plain scalar that YAML resolved to a number or a boolean.
    fn scalar_text(&self) -> Option<String> {
        let text = match &self.node.value {
            Value::Bool(v) => v.to_string(),
            Value::Int(v) => v.to_string(),
            Value::UInt(v) => v.to_string(),
            Value::Float(v) => v.to_string(),
            _ => return None,
        };
        let span = self.node.span;
        let written = self
            .source
            .get(span.offset..span.offset + span.len)
            .filter(|w| !w.is_empty() && !w.contains(['\n', '#', ':', '[', '{', ',']));
        Some(written.map_or(text, |w| w.trim().to_owned()))
    }
}

impl<'de> Deserializer<'de> for NodeDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let res = match &self.node.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(v) => visitor.visit_bool(*v),
            Value::Int(v) => visitor.visit_i64(*v),
            Value::UInt(v) => visitor.visit_u64(*v),
            Value::Float(v) => visitor.visit_f64(*v),
            Value::Str(v) => visitor.visit_str(v),
            Value::Seq(items) => visitor.visit_seq(SeqAcc {
                items: items.iter(),
                de: self,
            }),
            Value::Map(entries) => visitor.visit_map(MapAcc {
                entries: entries.iter(),
                value: None,
                de: self,
            }),
        };
        res.map_err(|err| err.at(self.node.span))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.node.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
        .map_err(|err| err.at(self.node.span))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match name {
            SPANNED => visitor.visit_seq(SpannedAcc { de: self, state: 0 }),
            LENIENT => visitor.visit_seq(LenientAcc { de: self, state: 0 }),
            _ => visitor.visit_newtype_struct(self),
        }
        .map_err(|err| err.at(self.node.span))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.node.value {
            Value::Str(variant) => visitor.visit_enum(
                IntoDeserializer::<DeError>::into_deserializer(variant.as_str()),
            ),
            Value::Map(entries) if entries.len() == 1 => visitor.visit_enum(EnumAcc {
                key: &entries[0].0,
                value: &entries[0].1,
                de: self,
            }),
            _ => Err(de::Error::invalid_type(unexpected(self.node), &visitor)),
        }
        .map_err(|err| err.at(self.node.span))
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.scalar_text() {
            Some(text) => visitor
                .visit_str::<DeError>(&text)
                .map_err(|err| err.at(self.node.span)),
            None => self.deserialize_any(visitor),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

fn unexpected(node: &Node) -> de::Unexpected<'_> {
    match &node.value {
        Value::Null => de::Unexpected::Unit,
        Value::Bool(v) => de::Unexpected::Bool(*v),
        Value::Int(v) => de::Unexpected::Signed(*v),
        Value::UInt(v) => de::Unexpected::Unsigned(*v),
        Value::Float(v) => de::Unexpected::Float(*v),
        Value::Str(v) => de::Unexpected::Str(v),
        Value::Seq(_) => de::Unexpected::Seq,
        Value::Map(_) => de::Unexpected::Map,
    }
}

struct SeqAcc<'a> {
    items: std::slice::Iter<'a, Node>,
    de: NodeDe<'a>,
}

impl<'de> de::SeqAccess<'de> for SeqAcc<'_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.items.next() {
            Some(item) => seed.deserialize(self.de.of(item)).map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct MapAcc<'a> {
    entries: std::slice::Iter<'a, (Node, Node)>,
    value: Option<&'a Node>,
    de: NodeDe<'a>,
}

impl<'de> de::MapAccess<'de> for MapAcc<'_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        match self.entries.next() {
            Some((key, value)) => {
                self.value = Some(value);
                seed.deserialize(self.de.of(key)).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let value = self
            .value
            .take()
            .ok_or_else(|| <DeError as de::Error>::custom("a value without a key"))?;
        seed.deserialize(self.de.of(value))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

struct EnumAcc<'a> {
    key: &'a Node,
    value: &'a Node,
    de: NodeDe<'a>,
}

impl<'de, 'a> de::EnumAccess<'de> for EnumAcc<'a> {
    type Error = DeError;
    type Variant = NodeDe<'a>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, NodeDe<'a>), DeError> {
        let variant = seed.deserialize(self.de.of(self.key))?;
        Ok((variant, self.de.of(self.value)))
    }
}

impl<'de> de::VariantAccess<'de> for NodeDe<'_> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        match self.node.value {
            Value::Null => Ok(()),
            _ => Err(
                <DeError as de::Error>::invalid_type(unexpected(self.node), &"nothing")
                    .at(self.node.span),
            ),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_any(visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_any(visitor)
    }
}

/// Hands a [`Sp`] visitor the span, then the value.
struct SpannedAcc<'a> {
    de: NodeDe<'a>,
    state: u8,
}

impl<'de> de::SeqAccess<'de> for SpannedAcc<'_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        self.state += 1;
        match self.state {
            1 => {
                let span = self.de.node.span;
                let parts = [span.offset, span.len, span.line, span.column];
                let parts = SeqDeserializer::<_, DeError>::new(parts.into_iter());
                seed.deserialize(parts).map(Some)
            }
            2 => seed.deserialize(self.de).map(Some),
            _ => Ok(None),
        }
    }
}

/// Hands a [`Lenient`] visitor the value, or `None` and then the node's
/// skeleton; the error goes to the sink.
struct LenientAcc<'a> {
    de: NodeDe<'a>,
    state: u8,
}

impl<'de> de::SeqAccess<'de> for LenientAcc<'_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        self.state += 1;
        match self.state {
            1 => match seed.deserialize(self.de) {
                Ok(value) => Ok(Some(value)),
                Err(err) => {
                    self.de.sink.borrow_mut().push(err.at(self.de.node.span));
                    Ok(None)
                }
            },
            2 => seed.deserialize(self.de).map(Some),
            _ => Ok(None),
        }
    }
}

/// A value and the span of the node it came from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Sp<T> {
    /// Where the value is in the source.
    pub span: Span,
    /// The value.
    pub value: T,
}

impl<T> std::ops::Deref for Sp<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Sp<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Sp<T>, D::Error> {
        struct SpVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for SpVisitor<T> {
            type Value = Sp<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value with a position")
            }

            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Sp<T>, A::Error> {
                let missing = || <A::Error as de::Error>::custom("a spanned value without a span");
                let [offset, len, line, column] =
                    seq.next_element::<[usize; 4]>()?.ok_or_else(missing)?;
                let value = seq.next_element::<T>()?.ok_or_else(missing)?;
                Ok(Sp {
                    span: Span {
                        offset,
                        len,
                        line,
                        column,
                    },
                    value,
                })
            }
        }

        deserializer.deserialize_newtype_struct(SPANNED, SpVisitor(PhantomData))
    }
}

impl<T: JsonSchema> JsonSchema for Sp<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }

    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

/// A value that may have failed to deserialize; the error went to the
/// sink, and the node's `id`, if it has one, is kept.
#[derive(Clone, Debug)]
pub enum Lenient<T> {
    /// The value.
    Ok(T),
    /// It did not deserialize; this is the `id` its node gave.
    Failed(Option<Sp<String>>),
}

/// What is left of a node that failed to deserialize.
#[derive(serde::Deserialize)]
struct Skeleton {
    id: Option<Sp<String>>,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Lenient<T>, D::Error> {
        struct LenientVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for LenientVisitor<T> {
            type Value = Lenient<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value")
            }

            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Lenient<T>, A::Error> {
                if let Some(value) = seq.next_element::<T>()? {
                    return Ok(Lenient::Ok(value));
                }
                // The skeleton is best effort: a node that is not a mapping,
                // or whose `id` is not a string, has none.
                let skeleton = seq.next_element::<Skeleton>().ok().flatten();
                Ok(Lenient::Failed(skeleton.and_then(|s| s.id)))
            }
        }

        deserializer.deserialize_newtype_struct(LENIENT, LenientVisitor(PhantomData))
    }
}

impl<T: JsonSchema> JsonSchema for Lenient<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }

    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

/// A YAML mapping whose keys keep their order.
#[derive(Clone, Debug)]
pub struct Pairs<K, V>(pub Vec<(K, V)>);

impl<K, V> Default for Pairs<K, V> {
    fn default() -> Self {
        Pairs(Vec::new())
    }
}

impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Deserialize<'de> for Pairs<K, V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Pairs<K, V>, D::Error> {
        struct PairsVisitor<K, V>(PhantomData<(K, V)>);

        impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Visitor<'de> for PairsVisitor<K, V> {
            type Value = Pairs<K, V>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping")
            }

            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Pairs<K, V>, A::Error> {
                let mut pairs = Vec::new();
                while let Some(pair) = map.next_entry::<K, V>()? {
                    pairs.push(pair);
                }
                Ok(Pairs(pairs))
            }
        }

        deserializer.deserialize_map(PairsVisitor(PhantomData))
    }
}

impl<K, V: JsonSchema> JsonSchema for Pairs<K, V> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        format!("Map_of_{}", V::schema_name()).into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let values = generator.subschema_for::<V>();
        json_schema!({
            "type": "object",
            "additionalProperties": values,
        })
    }
}
