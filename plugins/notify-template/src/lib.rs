//! notify-template: renders a subject and a body from templates and the
//! case data, and sends the message through the host's `notify` capability.
//!
//! Config: `{"channel": "email", "to": "{{ applicant.email }}", "subject":
//! "...", "body": "..."}` (`to` is optional). Templates use Jinja syntax
//! (the minijinja engine); they see the case data's top-level fields, and
//! the execution's context as `docket.case_id`, `docket.workflow`,
//! `docket.step_id`. A variable that the case data lacks rejects the case,
//! pointing at the missing field; nothing is sent.

use docket_sdk::notify::{self, Notification};
use docket_sdk::{Context, Info, Kind, Outcome, Problem, Step, StepError};
use minijinja::{Environment, UndefinedBehavior};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// The step.
pub struct NotifyTemplate;

/// The message's templates.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The delivery channel, for example `email`.
    pub channel: String,
    /// A template for the recipient's address.
    #[serde(default)]
    pub to: Option<String>,
    /// A template for the subject line.
    pub subject: String,
    /// A template for the body.
    pub body: String,
}

impl Step for NotifyTemplate {
    type Config = Config;
    type Input = Value;
    type Output = Value;

    fn describe() -> Info {
        Info::new(
            env!("CARGO_PKG_NAME"),
            env!("CARGO_PKG_VERSION"),
            Kind::Notify,
        )
        .description(
            "Renders a subject and a body from templates and the case data, and sends the \
                 message through the host's notify capability.",
        )
        .config_schema(json!({
            "type": "object",
            "required": ["channel", "subject", "body"],
            "additionalProperties": false,
            "properties": {
                "channel": {"type": "string", "minLength": 1},
                "to": {"type": "string", "description": "template of the recipient's address"},
                "subject": {"type": "string", "description": "template of the subject line"},
                "body": {"type": "string", "description": "template of the body"}
            }
        }))
        .input_schema(json!({"type": "object"}))
    }

    fn routes(config: &Config) -> Result<Vec<String>, String> {
        match compiled(config).as_ref() {
            Ok(_) => Ok(Vec::new()),
            Err(err) => Err(err.message().to_owned()),
        }
    }

    fn run(ctx: &Context, config: Config, input: Value) -> Result<Outcome<Value>, StepError> {
        let compiled = compiled(&config);
        let env = compiled.as_ref().as_ref().map_err(Clone::clone)?;
        let names: &[&str] = if config.to.is_some() {
            &["subject", "body", "to"]
        } else {
            &["subject", "body"]
        };

        let mut problems = Vec::new();
        for name in names {
            let template = env
                .get_template(name)
                .expect("templates() added every name");
            let mut used: Vec<String> = template.undeclared_variables(true).into_iter().collect();
            used.sort();
            for variable in used {
                if variable == "docket" || variable.starts_with("docket.") {
                    continue;
                }
                let pointer = format!(
                    "/{}",
                    variable
                        .replace('~', "~0")
                        .replace('/', "~1")
                        .replace('.', "/")
                );
                if input.pointer(&pointer).is_none()
                    && !problems.iter().any(|p: &Problem| p.pointer() == pointer)
                {
                    problems.push(Problem::new(
                        pointer,
                        "required",
                        format!("the {name} of the `{}` message uses `{variable}`, which the case data lacks", config.channel),
                    ));
                }
            }
        }
        if !problems.is_empty() {
            return Ok(Outcome::Reject(problems));
        }

        let data = minijinja::context! {
            docket => minijinja::context! {
                case_id => ctx.case_id(),
                workflow => ctx.workflow(),
                workflow_version => ctx.workflow_version(),
                step_id => ctx.step_id(),
            },
            ..minijinja::Value::from(minijinja::value::Serde(&input))
        };
        let render = |name: &str| {
            env.get_template(name)
                .and_then(|t| t.render(&data))
                .map_err(|err| {
                    Problem::new(
                        "",
                        "template",
                        format!("the {name} of the `{}` message: {err}", config.channel),
                    )
                })
        };
        let rendered = (
            render("subject"),
            render("body"),
            config.to.as_ref().map(|_| render("to")).transpose(),
        );
        let (subject, body, to) = match rendered {
            (Ok(subject), Ok(body), Ok(to)) => (subject, body, to),
            (subject, body, to) => {
                let problems = [subject.err(), body.err(), to.err()].into_iter().flatten();
                return Ok(Outcome::reject(problems));
            }
        };
        let mut message = Notification::new(&config.channel, subject, body);
        message.to = to;
        notify::send(message);
        Ok(Outcome::Continue(input))
    }
}

/// The config's templates compiled, once per config text: `check-config`
/// compiles them, and a run from the host's snapshot after it finds them done.
fn compiled(config: &Config) -> Arc<Result<Environment<'static>, StepError>> {
    docket_sdk::prepared(|| templates(config))
}

/// The config's templates, compiled, under the names `subject`, `body` and `to`.
fn templates(config: &Config) -> Result<Environment<'static>, StepError> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    let sources = [
        ("subject", Some(&config.subject)),
        ("body", Some(&config.body)),
        ("to", config.to.as_ref()),
    ];
    for (name, source) in sources {
        if let Some(source) = source {
            env.add_template_owned(name, source.clone())
                .map_err(|err| {
                    StepError::permanent(format_args!("invalid {name} template: {err}"))
                })?;
        }
    }
    Ok(env)
}

docket_sdk::export!(NotifyTemplate, prepared);

#[cfg(test)]
mod tests {
    use super::*;
    use docket_sdk::testing::Harness;

    fn config() -> Value {
        json!({
            "channel": "email",
            "to": "{{ applicant.email }}",
            "subject": "Permit {{ docket.case_id }}: received",
            "body": "Dear {{ applicant.name }}, we received your application for parcel {{ parcel }}."
        })
    }

    #[test]
    fn renders_and_sends_one_message() {
        let input =
            json!({"applicant": {"name": "Ada", "email": "ada@example.org"}, "parcel": "1234-567"});
        let run = Harness::new()
            .case_id("BP-7")
            .run::<NotifyTemplate>(config(), input.clone());
        assert_eq!(run.outcome(), &Outcome::Continue(input));
        assert_eq!(
            run.notifications(),
            [Notification::new(
                "email",
                "Permit BP-7: received",
                "Dear Ada, we received your application for parcel 1234-567."
            )
            .to("ada@example.org")]
        );
    }

    #[test]
    fn a_missing_field_rejects_and_sends_nothing() {
        let run =
            Harness::new().run::<NotifyTemplate>(config(), json!({"applicant": {"name": "Ada"}}));
        let problems: Vec<(&str, &str)> = run
            .outcome()
            .problems()
            .iter()
            .map(|p| (p.pointer(), p.code()))
            .collect();
        assert_eq!(
            problems,
            [("/parcel", "required"), ("/applicant/email", "required")]
        );
        assert!(run.notifications().is_empty());
    }

    #[test]
    fn bad_templates_are_permanent_errors() {
        let bad = json!({"channel": "email", "subject": "{{ unclosed", "body": "x"});
        let run = Harness::new().run::<NotifyTemplate>(bad.clone(), json!({}));
        assert!(
            matches!(run.error(), StepError::Permanent(m) if m.starts_with("invalid subject template"))
        );
        assert!(Harness::check_config::<NotifyTemplate>(bad).is_err());
        assert_eq!(
            Harness::check_config::<NotifyTemplate>(config()),
            Ok(vec![])
        );
    }

    #[test]
    fn missing_config_is_a_permanent_error() {
        let run = Harness::new().run::<NotifyTemplate>(json!({"channel": "email"}), json!({}));
        assert!(
            matches!(run.error(), StepError::Permanent(m) if m.contains("missing field")),
            "{:?}",
            run.error()
        );
    }
}
