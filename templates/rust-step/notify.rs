//! {{name}}: {{summary}}

use docket_sdk::notify::{self, Notification};
use docket_sdk::{Context, Info, Kind, Outcome, Step, StepError};
use serde::Deserialize;
use serde_json::{Value, json};

/// The step.
pub struct {{Type}};

/// What a deployment configures.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The delivery channel, for example `email`.
    pub channel: String,
    /// The case data field holding the recipient's address (top-level name).
    pub to_field: String,
    /// The subject line.
    pub subject: String,
}

impl Step for {{Type}} {
    type Config = Config;
    type Input = Value;
    type Output = Value;

    fn describe() -> Info {
        Info::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"), Kind::Notify)
            .description("{{summary}}")
            .config_schema(json!({
                "type": "object",
                "required": ["channel", "to_field", "subject"],
                "additionalProperties": false,
                "properties": {
                    "channel": {"type": "string"},
                    "to_field": {"type": "string"},
                    "subject": {"type": "string"}
                }
            }))
            .input_schema(json!({"type": "object"}))
    }

    fn run(ctx: &Context, config: Config, input: Value) -> Result<Outcome<Value>, StepError> {
        let Some(to) = input.get(&config.to_field).and_then(Value::as_str) else {
            return Err(StepError::permanent(format!(
                "the case data has no address `{}`",
                config.to_field
            )));
        };
        let body = format!("Your case {} has reached step {}.", ctx.case_id(), ctx.step_id());
        notify::send(Notification::new(config.channel, config.subject, body).to(to));
        Ok(Outcome::Continue(input))
    }
}

docket_sdk::export!({{Type}});

#[cfg(test)]
mod tests {
    use super::*;
    use docket_sdk::testing::Harness;

    #[test]
    fn the_applicant_is_told() {
        let run = Harness::new().case_id("case-1").run::<{{Type}}>(
            json!({"channel": "email", "to_field": "email", "subject": "News"}),
            json!({"email": "ada@example.org"}),
        );
        assert!(matches!(run.outcome(), Outcome::Continue(_)));
        let sent = run.notifications();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].to.as_deref(), Some("ada@example.org"));
        assert!(sent[0].body.contains("case-1"));
    }
}
