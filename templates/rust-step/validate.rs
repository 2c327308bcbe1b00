//! {{name}}: {{summary}}

use docket_sdk::{Context, Info, Kind, Outcome, Problem, Step, StepError};
use serde::Deserialize;
use serde_json::{Value, json};

/// The step.
pub struct {{Type}};

/// What a deployment configures.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The fields the case data must have (top-level names).
    pub required: Vec<String>,
}

impl Step for {{Type}} {
    type Config = Config;
    type Input = Value;
    type Output = Value;

    fn describe() -> Info {
        Info::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"), Kind::Validate)
            .description("{{summary}}")
            .config_schema(json!({
                "type": "object",
                "required": ["required"],
                "additionalProperties": false,
                "properties": {"required": {"type": "array", "items": {"type": "string"}}}
            }))
            .input_schema(json!({"type": "object"}))
    }

    fn run(_ctx: &Context, config: Config, input: Value) -> Result<Outcome<Value>, StepError> {
        let problems: Vec<Problem> = config
            .required
            .iter()
            .filter(|field| input.get(field.as_str()).is_none_or(Value::is_null))
            .map(|field| {
                Problem::new(format!("/{field}"), "missing", format!("`{field}` is required"))
            })
            .collect();
        if problems.is_empty() {
            Ok(Outcome::Continue(input))
        } else {
            Ok(Outcome::reject(problems))
        }
    }
}

docket_sdk::export!({{Type}});

#[cfg(test)]
mod tests {
    use super::*;
    use docket_sdk::testing::Harness;

    #[test]
    fn complete_data_continues() {
        let run = Harness::new().run::<{{Type}}>(
            json!({"required": ["name", "email"]}),
            json!({"name": "Ada", "email": "ada@example.org"}),
        );
        assert!(matches!(run.outcome(), Outcome::Continue(_)));
    }

    #[test]
    fn a_missing_field_is_a_problem_at_its_pointer() {
        let run = Harness::new().run::<{{Type}}>(
            json!({"required": ["name", "email"]}),
            json!({"name": "Ada"}),
        );
        let problems = run.outcome().problems();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].pointer(), "/email");
    }
}
