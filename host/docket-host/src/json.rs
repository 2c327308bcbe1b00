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
    /// Checks that `text` is one JSON document.
    ///
    /// # Errors
    ///
    /// [`JsonError`] with the position of the first error. The check is the
    /// full parse into a tree that any later use would do, so a lone
    /// surrogate escape or nesting deeper than serde_json's 128 levels is
    /// refused here, not later.
    pub fn parse(text: impl Into<String>) -> Result<Json, JsonError> {
        let text = text.into();
        match serde_json::from_str::<serde_json::Value>(&text) {
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
