//! {{name}}: {{summary}}

use docket_sdk::{Context, Info, Kind, Outcome, Step, StepError};
use serde::Deserialize;
use serde_json::{Value, json};

/// The step.
pub struct {{Type}};

/// What a deployment configures.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The case data field holding the amount (top-level name).
    pub field: String,
    /// Amounts at or above this take route `high`, the others `low`.
    pub threshold: f64,
}

impl Step for {{Type}} {
    type Config = Config;
    type Input = Value;
    type Output = Value;

    fn describe() -> Info {
        Info::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"), Kind::Route)
            .description("{{summary}}")
            .config_schema(json!({
                "type": "object",
                "required": ["field", "threshold"],
                "additionalProperties": false,
                "properties": {
                    "field": {"type": "string"},
                    "threshold": {"type": "number"}
                }
            }))
            .input_schema(json!({"type": "object"}))
            .routes(["high", "low"])
    }

    fn run(_ctx: &Context, config: Config, input: Value) -> Result<Outcome<Value>, StepError> {
        let Some(amount) = input.get(&config.field).and_then(Value::as_f64) else {
            return Err(StepError::permanent(format!(
                "the case data has no number `{}`",
                config.field
            )));
        };
        let route = if amount >= config.threshold { "high" } else { "low" };
        Ok(Outcome::route(route, input))
    }
}

docket_sdk::export!({{Type}});

#[cfg(test)]
mod tests {
    use super::*;
    use docket_sdk::testing::Harness;

    fn routes(amount: f64) -> Vec<String> {
        let run = Harness::new().run::<{{Type}}>(
            json!({"field": "amount", "threshold": 1000}),
            json!({"amount": amount}),
        );
        match run.outcome() {
            Outcome::Route { routes, .. } => routes.clone(),
            other => panic!("expected a route, got {other:?}"),
        }
    }

    #[test]
    fn amounts_route_by_the_threshold() {
        assert_eq!(routes(1000.0), ["high"]);
        assert_eq!(routes(999.5), ["low"]);
    }

    #[test]
    fn a_missing_amount_is_an_error() {
        let run = Harness::new().run::<{{Type}}>(
            json!({"field": "amount", "threshold": 1000}),
            json!({}),
        );
        assert!(run.error().message().contains("no number `amount`"));
    }
}
