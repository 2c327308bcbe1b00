//! RFC 8785 (JSON Canonicalization Scheme) encoding of a `serde_json::Value`
//! ([`write_value`]) or of any `Serialize` value ([`write_serialize`]),
//! written straight into a byte buffer.
//!
//! Every ledger entry hashes one or two canonical encodings, on the thread
//! that commits, so this is on the engine's hot path. A generic serde
//! formatter (what `serde_json_canonicalizer` does) buffers every object
//! member separately and re-parses each key to sort it. Walking a `Value`
//! directly needs no allocation beyond the output; serializing an event
//! directly writes each object's members into the output as they come and
//! reorders them there, without first copying the event into a `Value`.
//!
//! The bytes are those of `serde_json_canonicalizer` (a test compares the
//! two), so hashes made before and after this module agree; those of
//! [`write_serialize`] are those of [`write_value`] on `to_value` (tested
//! too).

use serde::{Serialize, ser};
use serde_json::{Map, Number, Value};
use std::borrow::Cow;
use std::cmp::Ordering;
use std::ops::Range;

/// Appends the canonical encoding of `value` to `out`.
pub(crate) fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (idx, item) in items.iter().enumerate() {
                if idx > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => write_object(out, map),
    }
}

fn write_object(out: &mut Vec<u8>, map: &Map<String, Value>) {
    out.push(b'{');
    // serde_json's map iterates in UTF-8 byte order (or insertion order
    // with its `preserve_order` feature); RFC 8785 sorts by UTF-16 code
    // units. The two agree unless keys mix characters at or above U+E000
    // with characters beyond the BMP, so sort only when the order is off.
    let sorted = map
        .keys()
        .zip(map.keys().skip(1))
        .all(|(a, b)| key_order(a, b) == Ordering::Less);
    if sorted {
        for (idx, (key, value)) in map.iter().enumerate() {
            write_member(out, idx, key, value);
        }
    } else {
        let mut members: Vec<(&String, &Value)> = map.iter().collect();
        members.sort_by(|a, b| key_order(a.0, b.0));
        for (idx, (key, value)) in members.into_iter().enumerate() {
            write_member(out, idx, key, value);
        }
    }
    out.push(b'}');
}

fn write_member(out: &mut Vec<u8>, idx: usize, key: &str, value: &Value) {
    if idx > 0 {
        out.push(b',');
    }
    write_str(out, key);
    out.push(b':');
    write_value(out, value);
}

/// RFC 8785's property order: by UTF-16 code units.
fn key_order(a: &str, b: &str) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        a.cmp(b)
    } else {
        a.encode_utf16().cmp(b.encode_utf16())
    }
}

/// A number as ECMAScript prints the double it denotes, which is what
/// RFC 8785 asks for (an integer beyond 2^53 loses digits, as in any JCS
/// implementation).
fn write_number(out: &mut Vec<u8>, n: &Number) {
    // Without serde_json's `arbitrary_precision`, every number has an f64
    // reading; a `Value` never holds a non-finite one.
    let n = n.as_f64().unwrap_or_default();
    write_f64(out, n);
}

/// An unsigned integer, as [`write_number`] would print it.
pub(crate) fn write_u64(out: &mut Vec<u8>, n: u64) {
    #[allow(
        clippy::cast_precision_loss,
        reason = "RFC 8785 prints every number as the double it denotes"
    )]
    write_f64(out, n as f64);
}

/// A signed integer, as [`write_number`] would print it.
pub(crate) fn write_i64(out: &mut Vec<u8>, n: i64) {
    #[allow(
        clippy::cast_precision_loss,
        reason = "RFC 8785 prints every number as the double it denotes"
    )]
    write_f64(out, n as f64);
}

fn write_f64(out: &mut Vec<u8>, n: f64) {
    // ECMAScript prints an integral double below 10^21 as its digits, so
    // one exact in an i64 (every one within 2^53) prints as that integer,
    // without ryu's search for the shortest digits (-0 prints as `0`).
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if n.fract() == 0.0 && n.abs() <= EXACT {
        #[allow(
            clippy::cast_possible_truncation,
            reason = "an integral value within 2^53 is exact in an i64"
        )]
        let int = n as i64;
        out.extend_from_slice(itoa::Buffer::new().format(int).as_bytes());
        return;
    }
    let mut buffer = ryu_js::Buffer::new();
    out.extend_from_slice(buffer.format_finite(n).as_bytes());
}

/// A string with RFC 8785's escapes: `"`, `\` and the control characters,
/// the common ones in their short form, the others as `\u00xx`; nothing
/// else (not `/`, not non-ASCII).
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (idx, &byte) in bytes.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\x08' => b"\\b",
            b'\x0c' => b"\\f",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => &[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(byte >> 4) as usize],
                HEX[(byte & 0xf) as usize],
            ],
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..idx]);
        out.extend_from_slice(escape);
        start = idx + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Appends the canonical encoding of `value`, as [`write_value`] would
/// write `serde_json::to_value(value)`, without building that value: an
/// event's data is encoded where it lies instead of being copied into a
/// tree first.
///
/// # Errors
///
/// What `serde_json::to_value` refuses: a map key that is not a string,
/// integer, bool or char, or a number beyond 64 bits, or an error of
/// `value`'s own `Serialize`. Also a float map key, which `to_value` would
/// print in its own number format, and a `RawValue`.
pub(crate) fn write_serialize<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    value: &T,
) -> Result<(), serde_json::Error> {
    value.serialize(Canonical { out })
}

/// The struct name serde_json gives a `RawValue` when serializing it.
const RAW_VALUE: &str = "$serde_json::private::RawValue";

struct Canonical<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> Canonical<'a> {
    fn float(self, n: f64) -> Result<(), serde_json::Error> {
        // `to_value` makes a non-finite number null.
        if n.is_finite() {
            write_f64(self.out, n);
        } else {
            self.out.extend_from_slice(b"null");
        }
        Ok(())
    }

    /// Opens `{"variant":`, closed by one more `}` after the value.
    fn variant(self, variant: &str) -> Canonical<'a> {
        self.out.push(b'{');
        write_str(self.out, variant);
        self.out.push(b':');
        self
    }
}

impl<'a> ser::Serializer for Canonical<'a> {
    type Ok = ();
    type Error = serde_json::Error;
    type SerializeSeq = Array<'a>;
    type SerializeTuple = Array<'a>;
    type SerializeTupleStruct = Array<'a>;
    type SerializeTupleVariant = Array<'a>;
    type SerializeMap = Object<'a>;
    type SerializeStruct = Object<'a>;
    type SerializeStructVariant = Object<'a>;

    fn serialize_bool(self, v: bool) -> Result<(), serde_json::Error> {
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }

    fn serialize_i8(self, v: i8) -> Result<(), serde_json::Error> {
        self.serialize_i64(i64::from(v))
    }

    fn serialize_i16(self, v: i16) -> Result<(), serde_json::Error> {
        self.serialize_i64(i64::from(v))
    }

    fn serialize_i32(self, v: i32) -> Result<(), serde_json::Error> {
        self.serialize_i64(i64::from(v))
    }

    fn serialize_i64(self, v: i64) -> Result<(), serde_json::Error> {
        write_i64(self.out, v);
        Ok(())
    }

    fn serialize_i128(self, v: i128) -> Result<(), serde_json::Error> {
        // `to_value` takes what fits in 64 bits.
        match (i64::try_from(v), u64::try_from(v)) {
            (Ok(v), _) => self.serialize_i64(v),
            (_, Ok(v)) => self.serialize_u64(v),
            _ => Err(ser::Error::custom("number out of range")),
        }
    }

    fn serialize_u128(self, v: u128) -> Result<(), serde_json::Error> {
        match u64::try_from(v) {
            Ok(v) => self.serialize_u64(v),
            Err(_) => Err(ser::Error::custom("number out of range")),
        }
    }

    fn serialize_u8(self, v: u8) -> Result<(), serde_json::Error> {
        self.serialize_u64(u64::from(v))
    }

    fn serialize_u16(self, v: u16) -> Result<(), serde_json::Error> {
        self.serialize_u64(u64::from(v))
    }

    fn serialize_u32(self, v: u32) -> Result<(), serde_json::Error> {
        self.serialize_u64(u64::from(v))
    }

    fn serialize_u64(self, v: u64) -> Result<(), serde_json::Error> {
        write_u64(self.out, v);
        Ok(())
    }

    fn serialize_f32(self, v: f32) -> Result<(), serde_json::Error> {
        self.float(f64::from(v))
    }

    fn serialize_f64(self, v: f64) -> Result<(), serde_json::Error> {
        self.float(v)
    }

    fn serialize_char(self, v: char) -> Result<(), serde_json::Error> {
        write_str(self.out, v.encode_utf8(&mut [0; 4]));
        Ok(())
    }

    fn serialize_str(self, v: &str) -> Result<(), serde_json::Error> {
        write_str(self.out, v);
        Ok(())
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<(), serde_json::Error> {
        let mut array = self.serialize_seq(Some(v.len()))?;
        for byte in v {
            ser::SerializeSeq::serialize_element(&mut array, byte)?;
        }
        ser::SerializeSeq::end(array)
    }

    fn serialize_none(self) -> Result<(), serde_json::Error> {
        self.serialize_unit()
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), serde_json::Error> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), serde_json::Error> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), serde_json::Error> {
        self.serialize_unit()
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), serde_json::Error> {
        self.serialize_str(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), serde_json::Error> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), serde_json::Error> {
        let inner = self.variant(variant);
        let out = &mut *inner.out;
        value.serialize(Canonical { out: &mut *out })?;
        out.push(b'}');
        Ok(())
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Array<'a>, serde_json::Error> {
        self.out.push(b'[');
        Ok(Array {
            out: self.out,
            empty: true,
            variant: false,
        })
    }

    fn serialize_tuple(self, len: usize) -> Result<Array<'a>, serde_json::Error> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Array<'a>, serde_json::Error> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Array<'a>, serde_json::Error> {
        let mut array = self.variant(variant).serialize_seq(Some(len))?;
        array.variant = true;
        Ok(array)
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Object<'a>, serde_json::Error> {
        Ok(Object {
            start: self.out.len(),
            out: self.out,
            members: Vec::with_capacity(len.unwrap_or_default()),
            key: None,
            variant: false,
        })
    }

    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Object<'a>, serde_json::Error> {
        // serde_json's `RawValue` is JSON text that only serde_json's own
        // serializers know to splice in.
        if name == RAW_VALUE {
            return Err(ser::Error::custom(
                "a RawValue has no canonical form without parsing it",
            ));
        }
        self.serialize_map(Some(len))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Object<'a>, serde_json::Error> {
        let mut object = self.variant(variant).serialize_map(Some(len))?;
        object.variant = true;
        Ok(object)
    }
}

/// An array being written: its elements go straight to the output.
struct Array<'a> {
    out: &'a mut Vec<u8>,
    empty: bool,
    /// Inside `{"variant":`, which `end` closes too.
    variant: bool,
}

impl Array<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), serde_json::Error> {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        value.serialize(Canonical { out: self.out })
    }

    fn close(self) -> Result<(), serde_json::Error> {
        self.out.push(b']');
        if self.variant {
            self.out.push(b'}');
        }
        Ok(())
    }
}

/// Implements serde's array-like traits (`$method` writes one element)
/// by [`Array::element`] and [`Array::close`].
macro_rules! array_like {
    ($($serde_trait:ident :: $method:ident),*) => {$(
        impl ser::$serde_trait for Array<'_> {
            type Ok = ();
            type Error = serde_json::Error;

            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), serde_json::Error> {
                self.element(value)
            }

            fn end(self) -> Result<(), serde_json::Error> {
                self.close()
            }
        }
    )*};
}

array_like!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

/// An object being written. Member values are encoded at the end of the
/// output as they come; `end` puts them in key order behind their keys.
struct Object<'a> {
    out: &'a mut Vec<u8>,
    /// Where the object begins in `out`.
    start: usize,
    /// Each member's key and where its value's encoding lies in `out`.
    members: Vec<(Cow<'static, str>, Range<usize>)>,
    /// The key of the map entry whose value comes next.
    key: Option<String>,
    /// Inside `{"variant":`, which `end` closes too.
    variant: bool,
}

impl Object<'_> {
    fn member<T: Serialize + ?Sized>(
        &mut self,
        key: Cow<'static, str>,
        value: &T,
    ) -> Result<(), serde_json::Error> {
        let from = self.out.len();
        value.serialize(Canonical { out: self.out })?;
        self.members.push((key, from..self.out.len()));
        Ok(())
    }

    fn close(mut self) -> Result<(), serde_json::Error> {
        let values = self.out.split_off(self.start);
        // Like a map, a later member replaces an earlier one of the same key.
        self.members.reverse();
        self.members.sort_by(|a, b| key_order(&a.0, &b.0));
        self.members.dedup_by(|later, earlier| later.0 == earlier.0);
        self.out.push(b'{');
        for (idx, (key, range)) in self.members.iter().enumerate() {
            if idx > 0 {
                self.out.push(b',');
            }
            write_str(self.out, key);
            self.out.push(b':');
            self.out
                .extend_from_slice(&values[range.start - self.start..range.end - self.start]);
        }
        self.out.push(b'}');
        if self.variant {
            self.out.push(b'}');
        }
        Ok(())
    }
}

impl ser::SerializeMap for Object<'_> {
    type Ok = ();
    type Error = serde_json::Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), serde_json::Error> {
        self.key = Some(map_key(key)?);
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(
        &mut self,
        value: &T,
    ) -> Result<(), serde_json::Error> {
        let key = self.key.take().ok_or_else(|| {
            <serde_json::Error as ser::Error>::custom("a map value without a key")
        })?;
        self.member(Cow::Owned(key), value)
    }

    fn end(self) -> Result<(), serde_json::Error> {
        self.close()
    }
}

/// Implements serde's struct traits by [`Object::member`] and
/// [`Object::close`].
macro_rules! struct_like {
    ($($serde_trait:ident),*) => {$(
        impl ser::$serde_trait for Object<'_> {
            type Ok = ();
            type Error = serde_json::Error;

            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), serde_json::Error> {
                self.member(Cow::Borrowed(key), value)
            }

            fn end(self) -> Result<(), serde_json::Error> {
                self.close()
            }
        }
    )*};
}

struct_like!(SerializeStruct, SerializeStructVariant);

/// A map key as `to_value` takes it: a string, or an integer, bool or char
/// as its text. A float is refused: `to_value` would print it in its own
/// number format.
fn map_key<T: Serialize + ?Sized>(key: &T) -> Result<String, serde_json::Error> {
    let refuse = |what: &str| {
        <serde_json::Error as ser::Error>::custom(format!("a map key must be a string, not {what}"))
    };
    match serde_json::to_value(key)? {
        Value::String(key) => Ok(key),
        Value::Bool(key) => Ok(key.to_string()),
        Value::Number(key) if key.is_f64() => Err(refuse("a float")),
        Value::Number(key) => Ok(key.to_string()),
        Value::Null => Err(refuse("null")),
        Value::Array(_) => Err(refuse("an array")),
        Value::Object(_) => Err(refuse("an object")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{RngExt as _, SeedableRng as _};
    use serde_json::json;

    #[track_caller]
    fn check(value: &Value) {
        let mut ours = Vec::new();
        write_value(&mut ours, value);
        let theirs = serde_json_canonicalizer::to_vec(value).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&theirs),
            "{value:?}"
        );
    }

    #[test]
    fn matches_the_reference_implementation_on_edge_cases() {
        let values = [
            json!(null),
            json!([true, false, null, [], {}]),
            json!({"b": 1, "a": [1.5, -0.0, 0.1, 1e21, 1e-7, 123456789012345678u64]}),
            json!({"big": u64::MAX, "small": i64::MIN, "float": 100.0, "exp": 1.5e300}),
            json!([
                9_007_199_254_740_991u64,
                9_007_199_254_740_992u64,
                9_007_199_254_740_993u64,
                -9_007_199_254_740_992i64,
                9_007_199_254_740_992.0,
                9_007_199_254_740_994.0,
                -0.0,
                0,
                -1,
                1e15,
                1e20,
                123_456.0,
                -5e-324,
            ]),
            json!(
                "quote \" backslash \\ slash / controls \u{0}\u{8}\u{9}\u{a}\u{b}\u{c}\u{d}\u{1f}\u{7f}"
            ),
            json!({"\u{e000}": 1, "\u{10000}": 2, "a": 3, "\u{ffff}": 4, "é": 5, "\u{1f600}": 6}),
            json!({"nested": {"z": {"y": [{"b": "\u{1}", "a": "ü"}]}, "": "empty key"}}),
            json!({"key\n\"escaped\"": "v", "key": "w"}),
        ];
        for value in &values {
            check(value);
        }
    }

    fn random_string(rng: &mut StdRng) -> String {
        const POOL: [char; 14] = [
            'a',
            'B',
            'z',
            '0',
            '"',
            '\\',
            '/',
            '\n',
            '\u{1}',
            'é',
            '\u{d7ff}',
            '\u{e000}',
            '\u{fffd}',
            '\u{1f600}',
        ];
        let n = rng.random_range(0..6);
        (0..n)
            .map(|_| POOL[rng.random_range(0..POOL.len())])
            .collect()
    }

    fn random_value(rng: &mut StdRng, depth: u32) -> Value {
        match rng.random_range(0..if depth > 3 { 5 } else { 7 }) {
            0 => Value::Null,
            1 => Value::Bool(rng.random()),
            2 => json!(rng.random::<i64>() >> rng.random_range(0..64)),
            3 => {
                let f = f64::from_bits(rng.random::<u64>());
                if f.is_finite() {
                    json!(f)
                } else {
                    json!(rng.random::<f64>() * 1e6)
                }
            }
            4 => Value::String(random_string(rng)),
            5 => Value::Array(
                (0..rng.random_range(0..4))
                    .map(|_| random_value(rng, depth + 1))
                    .collect(),
            ),
            _ => Value::Object(
                (0..rng.random_range(0..5))
                    .map(|_| (random_string(rng), random_value(rng, depth + 1)))
                    .collect(),
            ),
        }
    }

    #[test]
    fn matches_the_reference_implementation_on_random_values() {
        let mut rng = StdRng::seed_from_u64(8785);
        for _ in 0..5_000 {
            check(&random_value(&mut rng, 0));
        }
    }

    /// `write_serialize(value)` against `write_value(to_value(value))`.
    #[track_caller]
    fn check_serialize<T: Serialize + std::fmt::Debug>(value: &T) {
        let mut direct = Vec::new();
        write_serialize(&mut direct, value).unwrap();
        let mut through_value = Vec::new();
        write_value(&mut through_value, &serde_json::to_value(value).unwrap());
        assert_eq!(
            String::from_utf8_lossy(&direct),
            String::from_utf8_lossy(&through_value),
            "{value:?}"
        );
    }

    #[test]
    fn serializing_directly_matches_going_through_a_value() {
        let mut rng = StdRng::seed_from_u64(8786);
        for _ in 0..5_000 {
            check_serialize(&random_value(&mut rng, 0));
        }
    }

    #[derive(Debug, Serialize)]
    #[serde(tag = "type", rename_all = "snake_case")]
    enum Tagged {
        Unit,
        Fields {
            zeta: u8,
            alpha: Option<f32>,
            #[serde(skip_serializing_if = "Option::is_none")]
            skipped: Option<u8>,
            nested: Vec<Plain>,
        },
        Wrapped(Plain),
    }

    #[derive(Debug, Serialize)]
    enum External {
        Unit,
        Newtype(i16),
        Tuple(u8, char),
        Struct { b: bool, a: () },
    }

    #[derive(Debug, Serialize)]
    struct Plain {
        z: &'static str,
        #[serde(with = "serde_bytes_as_seq")]
        bytes: Vec<u8>,
        map: std::collections::HashMap<u32, f64>,
        external: Vec<External>,
        #[serde(flatten)]
        flattened: std::collections::BTreeMap<String, Value>,
        a: (u8, Option<String>),
    }

    mod serde_bytes_as_seq {
        pub fn serialize<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(bytes)
        }
    }

    fn plain() -> Plain {
        Plain {
            z: "z\u{1}",
            bytes: vec![0, 7, 255],
            map: [(10, 1.5), (2, f64::NAN), (1, -0.0)].into_iter().collect(),
            external: vec![
                External::Unit,
                External::Newtype(-3),
                External::Tuple(1, '\u{1f600}'),
                External::Struct { b: true, a: () },
            ],
            flattened: [
                ("\u{e000}".to_owned(), json!(1)),
                ("\u{10000}".to_owned(), json!({"y": 2, "x": [1e21]})),
                ("b".to_owned(), Value::Null),
            ]
            .into_iter()
            .collect(),
            a: (9, None),
        }
    }

    #[test]
    fn serializing_structs_and_enums_directly_matches_going_through_a_value() {
        check_serialize(&plain());
        check_serialize(&Tagged::Unit);
        check_serialize(&Tagged::Fields {
            zeta: 1,
            alpha: Some(0.1),
            skipped: None,
            nested: vec![plain(), plain()],
        });
        check_serialize(&Tagged::Fields {
            zeta: 1,
            alpha: Some(f32::INFINITY),
            skipped: Some(3),
            nested: Vec::new(),
        });
        check_serialize(&Tagged::Wrapped(plain()));
        check_serialize(&vec![External::Unit, External::Newtype(0)]);
    }

    #[test]
    fn wide_integers_are_taken_where_they_fit_in_64_bits() {
        check_serialize(&(i128::from(i64::MIN), u128::from(u64::MAX), -1_i128, 7_u128));
        let mut out = Vec::new();
        assert!(write_serialize(&mut out, &(i128::from(u64::MAX) + 1)).is_err());
        assert!(write_serialize(&mut out, &(u128::from(u64::MAX) + 1)).is_err());
    }

    #[test]
    fn a_raw_value_is_refused_not_written_as_a_struct() {
        let raw = serde_json::value::RawValue::from_string("{\"b\":1,\"a\":2}".to_owned()).unwrap();
        let mut out = Vec::new();
        let err = write_serialize(&mut out, &raw).unwrap_err();
        assert!(err.to_string().contains("RawValue"), "{err}");
    }

    #[test]
    fn a_map_key_that_is_not_a_string_is_refused() {
        let map: std::collections::BTreeMap<Vec<u8>, u8> = [(vec![1], 1)].into_iter().collect();
        let mut out = Vec::new();
        let err = write_serialize(&mut out, &map).unwrap_err();
        assert!(
            err.to_string().contains("map key must be a string"),
            "{err}"
        );
        assert!(serde_json::to_value(&map).is_err());
    }
}
