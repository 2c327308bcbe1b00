//! `Json`: JSON text that is known to parse, the form case data, configs and
//! outcomes take everywhere in docket.
//!
//! Case data crosses the plugin boundary as text, so the host keeps it as
//! text and checks it once, instead of parsing it into a tree at every hop.

use std::fmt;
use std::str::FromStr;

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
    /// How deeply arrays and objects may nest; serde_json refuses to build
    /// a tree deeper than 128.
    pub const MAX_DEPTH: usize = 100;

    /// Checks that `text` is one JSON document.
    ///
    /// # Errors
    ///
    /// [`JsonError`] with the position of the first error. Documents nested
    /// deeper than [`Json::MAX_DEPTH`] levels are refused too, so that any
    /// later parse of the text into a tree succeeds.
    pub fn parse(text: impl Into<String>) -> Result<Json, JsonError> {
        let text = text.into();
        match serde_json::from_str::<serde::de::IgnoredAny>(&text) {
            Ok(_) => match too_deep(&text) {
                None => Ok(Json(text)),
                Some((line, column)) => Err(JsonError {
                    line,
                    column,
                    message: format!("nested deeper than {} levels", Json::MAX_DEPTH),
                }),
            },
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
        Json(value.to_string())
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

/// The line and column of the first bracket that nests deeper than
/// [`Json::MAX_DEPTH`], in text that is known to be JSON.
fn too_deep(text: &str) -> Option<(usize, usize)> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (idx, byte) in text.bytes().enumerate() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > Json::MAX_DEPTH {
                    let before = &text[..idx];
                    let line = before.matches('\n').count() + 1;
                    let column = before.len() - before.rfind('\n').map_or(0, |nl| nl + 1) + 1;
                    return Some((line, column));
                }
            }
            b']' | b'}' => depth -= 1,
            _ => {}
        }
    }
    None
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

#[cfg(test)]
mod tests {
    use super::*;

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
            Json::parse(deep(Json::MAX_DEPTH)).is_ok(),
            "brackets in strings do not count"
        );
        assert!(serde_json::from_str::<serde_json::Value>(&deep(Json::MAX_DEPTH)).is_ok());
        let err = Json::parse(deep(Json::MAX_DEPTH + 1)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid JSON at line 1, column 101: nested deeper than 100 levels"
        );
    }
}
