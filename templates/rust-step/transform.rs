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
    /// The fee charged per unit, in cents.
    pub cents_per_unit: u64,
}

impl Step for {{Type}} {
    type Config = Config;
    type Input = Value;
    type Output = Value;

    fn describe() -> Info {
        Info::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"), Kind::Transform)
            .description("{{summary}}")
            .config_schema(json!({
                "type": "object",
                "required": ["cents_per_unit"],
                "additionalProperties": false,
                "properties": {"cents_per_unit": {"type": "integer", "minimum": 0}}
            }))
            .input_schema(json!({
                "type": "object",
                "required": ["units"],
                "properties": {"units": {"type": "integer", "minimum": 0}}
            }))
            .output_schema(json!({
                "type": "object",
                "required": ["fee_cents"],
                "properties": {"fee_cents": {"type": "integer"}}
            }))
    }

    fn run(_ctx: &Context, config: Config, mut input: Value) -> Result<Outcome<Value>, StepError> {
        let Some(units) = input.get("units").and_then(Value::as_u64) else {
            return Err(StepError::permanent("the case data has no whole number `units`"));
        };
        let fee = units
            .checked_mul(config.cents_per_unit)
            .ok_or_else(|| StepError::permanent("the fee does not fit in 64 bits"))?;
        input["fee_cents"] = json!(fee);
        Ok(Outcome::Continue(input))
    }
}

docket_sdk::export!({{Type}});

#[cfg(test)]
mod tests {
    use super::*;
    use docket_sdk::testing::Harness;

    #[test]
    fn the_fee_is_added_to_the_case_data() {
        let run = Harness::new().run::<{{Type}}>(json!({"cents_per_unit": 250}), json!({"units": 4}));
        match run.outcome() {
            Outcome::Continue(data) => assert_eq!(data["fee_cents"], 1000),
            other => panic!("expected continue, got {other:?}"),
        }
    }
}
