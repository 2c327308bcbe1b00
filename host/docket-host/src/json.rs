//! `Json`: JSON text that is known to parse, the form case data, configs and
//! outcomes take everywhere in docket.
//!
//! Case data crosses the plugin boundary as text, so the host keeps it as
//! text and checks it once, instead of parsing it into a tree at every hop.

use std::fmt;
use std::str::FromStr;

/// How deep a case's data may nest (arrays and objects). serde_json reads
/// at most 128 levels back, and a journal event holds the data a few levels
/// down (in the event, under a branch): deeper data would be written into
/// a journal that could not be read again.
pub const MAX_DEPTH: usize = 100;

/// Whether `value` nests arrays and objects more than [`MAX_DEPTH`] deep.
pub fn too_deep(value: &serde_json::Value) -> bool {
    deeper_than(value, MAX_DEPTH)
}

fn deeper_than(value: &serde_json::Value, levels: usize) -> bool {
    match value {
        serde_json::Value::Array(items) => {
            levels == 0 || items.iter().any(|item| deeper_than(item, levels - 1))
        }
        serde_json::Value::Object(map) => {
            levels == 0 || map.values().any(|item| deeper_than(item, levels - 1))
        }
        _ => false,
    }
}

/// Line and column (from 1) where `text` opens its array or object number
/// `level` deep.
fn where_level_opens(text: &str, level: usize) -> (usize, usize) {
    let (mut line, mut column, mut depth) = (1, 0, 0);
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        column += 1;
        if c == '\n' {
            line += 1;
            column = 0;
        } else if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else {
            match c {
                '"' => in_string = true,
                '[' | '{' => {
                    depth += 1;
                    if depth == level {
                        return (line, column);
                    }
                }
                ']' | '}' => depth -= 1,
                _ => {}
            }
        }
    }
    (line, column)
}

/// A JSON document, as text that is known to parse.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Json(String);

/// Why a text is not JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSON at line {line}, column {column}: {message}")]
pub struct JsonError {
    /// The line of the first error, from 1.
    pub line: usize,
    /// The column of the first error, from 1.
    pub column: usize,
    /// What is wrong there.
    pub message: String,
}

impl Json {
    /// Checks that `text` is one JSON document.
    ///
    /// # Errors
    ///
    /// [`JsonError`] with the position of the first error. The check is the
    /// full parse into a tree that any later use would do, so a lone
    /// surrogate escape is refused here, not later, and so is nesting
    /// deeper than [`MAX_DEPTH`].
    pub fn parse(text: impl Into<String>) -> Result<Json, JsonError> {
        let text = text.into();
        match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(value) if too_deep(&value) => {
                let (line, column) = where_level_opens(&text, MAX_DEPTH + 1);
                Err(JsonError {
                    line,
                    column,
                    message: format!("nested more than {MAX_DEPTH} levels deep"),
                })
            }
            Ok(_) => Ok(Json(text)),
            Err(err) => {
                let message = err.to_string();
                // serde_json appends " at line L column C"; it is in the fields.
                let message = match message.rfind(" at line ") {
                    Some(idx) => message[..idx].to_owned(),
                    None => message,
                };
                Err(JsonError {
                    line: err.line(),
                    column: err.column(),
                    message,
                })
            }
        }
    }

    /// The text of a value.
    pub fn from_value(value: &serde_json::Value) -> Json {
        // Not `value.to_string()`: `Display` goes through a formatter, byte
        // by byte, at twice the cost of writing into the string.
        Json(serde_json::to_string(value).expect("a JSON value always encodes"))
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The JSON text, as the `String` the component bindings take.
    pub(crate) fn as_string(&self) -> &String {
        &self.0
    }

    /// Parses the text into a tree.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::from_str(&self.0).expect("Json holds valid JSON")
    }

    /// The JSON text.
    pub fn into_string(self) -> String {
        self.0
    }

    /// The size of the text in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the text is empty; never true for valid JSON.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromStr for Json {
    type Err = JsonError;

    fn from_str(text: &str) -> Result<Json, JsonError> {
        Json::parse(text)
    }
}

impl From<serde_json::Value> for Json {
    fn from(value: serde_json::Value) -> Json {
        Json::from_value(&value)
    }
}

impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Json({})", self.0)
    }
}

/// `value` with the keys of every object in order, whichever map type
/// serde_json was built with: text that is the same from every build.
pub(crate) fn sorted(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(sorted).collect())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(levels: usize) -> String {
        format!(
            "{}\"x\"{}",
            "[{\"a\":".repeat(levels / 2),
            "}]".repeat(levels / 2)
        )
    }

    #[test]
    fn data_may_nest_100_levels_deep_and_no_more() {
        let deepest = nested(MAX_DEPTH);
        Json::parse(deepest.as_str()).unwrap();
        assert!(!too_deep(&serde_json::from_str(&deepest).unwrap()));
        let text = format!(
            "{{\"s\": \"[{{\\\"\",\n \"deep\": {}}}",
            nested(MAX_DEPTH + 2)
        );
        let err = Json::parse(text.as_str()).unwrap_err();
        assert_eq!(err.message, "nested more than 100 levels deep");
        // The brackets inside the string do not count. The outer object is
        // level 1, so level 101 is the 100th bracket after ` "deep": ` on
        // line 2: the `{` of the 50th `[{"a":`.
        assert_eq!((err.line, err.column), (2, 9 + 49 * 6 + 2));
        assert!(too_deep(&serde_json::from_str(&text).unwrap()));
        assert!(!too_deep(&serde_json::json!([[[]], {"a": 1}, "x"])));
    }

    #[test]
    fn accepts_documents_and_locates_errors() {
        assert_eq!(
            Json::parse(r#" {"a": [1, 2.5, null]} "#).unwrap().as_str(),
            r#" {"a": [1, 2.5, null]} "#
        );
        let err = Json::parse("{\"a\": 1,\n \"b\" 2}").unwrap_err();
        assert_eq!((err.line, err.column), (2, 6));
        assert_eq!(
            err.to_string(),
            "invalid JSON at line 2, column 6: expected `:`"
        );
        assert!(Json::parse("{} {}").is_err(), "one document only");
        assert!(Json::parse("").is_err());
        let deep = |n: usize| format!("{}\"[{{\\\"\"{}", "[".repeat(n), "]".repeat(n));
        assert!(
            Json::parse(deep(100)).is_ok(),
            "brackets in strings do not count"
        );
        let err = Json::parse(deep(200)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid JSON at line 1, column 128: recursion limit exceeded"
        );
        let err = Json::parse(r#""\ud800""#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid JSON at line 1, column 8: unexpected end of hex escape"
        );
    }
}
