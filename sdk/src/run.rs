//! The one place where JSON text becomes typed values and back, shared by
//! the WebAssembly export and the native test harness so both behave alike.

use crate::{Context, Outcome, Problem, Step, StepError};
use serde::de::DeserializeOwned;
use std::any::TypeId;
use std::sync::Mutex;

/// Runs [`Step::init`] for `S`, once per instance (per process, natively).
pub(crate) fn ensure_init<S: Step>() {
    static INITIALIZED: Mutex<Vec<TypeId>> = Mutex::new(Vec::new());
    let mut initialized = INITIALIZED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if !initialized.contains(&TypeId::of::<S>()) {
        S::init();
        initialized.push(TypeId::of::<S>());
    }
}

/// Runs `S` on JSON text and returns its outcome with the data as JSON text.
#[doc(hidden)]
pub fn run_json<S: Step>(
    ctx: &Context,
    config: &str,
    input: &str,
) -> Result<Outcome<String>, StepError> {
    ensure_init::<S>();
    crate::prepared::with_config(config, || run_parsed::<S>(ctx, config, input))
}

fn run_parsed<S: Step>(
    ctx: &Context,
    config: &str,
    input: &str,
) -> Result<Outcome<String>, StepError> {
    let config: S::Config = parse(config).map_err(|(pointer, message)| {
        StepError::permanent(format_args!("invalid config at `{pointer}`: {message}"))
    })?;
    let input: S::Input = match parse(input) {
        Ok(input) => input,
        Err((pointer, message)) => {
            return Ok(Outcome::reject([Problem::new(
                pointer,
                "invalid-input",
                message,
            )]));
        }
    };
    let outcome = S::run(ctx, config, input)?;
    let data = match &outcome {
        Outcome::Continue(data) | Outcome::Route { data, .. } => {
            Some(serde_json::to_string(data).map_err(|err| {
                StepError::permanent(format_args!("output does not serialize: {err}"))
            })?)
        }
        Outcome::Reject(_) => None,
    };
    Ok(outcome.map(|_| data.unwrap_or_default()))
}

/// Checks `config` for `S` and returns the routes it can take.
#[doc(hidden)]
pub fn routes_json<S: Step>(config: &str) -> Result<Vec<String>, String> {
    ensure_init::<S>();
    crate::prepared::with_config(config, || {
        let config: S::Config = parse(config)
            .map_err(|(pointer, message)| format!("invalid config at `{pointer}`: {message}"))?;
        S::routes(&config)
    })
}

/// Deserializes `text`, or says where (as a JSON Pointer) and why it failed.
fn parse<T: DeserializeOwned>(text: &str) -> Result<T, (String, String)> {
    // Tracking the path costs a string per map key, so it is done only to
    // explain a failure; a second pass over bad text fails the same way.
    if let Ok(value) = T::deserialize(&mut serde_json::Deserializer::from_str(text)) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let pointer = json_pointer(err.path());
        (pointer, err.into_inner().to_string())
    })
}

fn json_pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut pointer = String::new();
    for segment in path.iter() {
        pointer.push('/');
        match segment {
            Segment::Seq { index } => pointer.push_str(&index.to_string()),
            Segment::Map { key } => pointer.push_str(&key.replace('~', "~0").replace('/', "~1")),
            Segment::Enum { variant } => pointer.push_str(variant),
            Segment::Unknown => pointer.push('?'),
        }
    }
    pointer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_escape_and_index() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code, reason = "only deserialized")]
        struct Doc {
            items: Vec<Item>,
        }
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code, reason = "only deserialized")]
        struct Item {
            #[serde(rename = "a/b")]
            ab: u32,
        }
        let err = parse::<Doc>(r#"{"items": [{"a/b": 1}, {"a/b": "x"}]}"#).unwrap_err();
        assert_eq!(err.0, "/items/1/a~1b");
        assert!(err.1.contains("invalid type"), "{}", err.1);
    }
}
