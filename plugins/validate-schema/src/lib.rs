//! validate-schema: checks the case data against a JSON Schema given in the
//! step's config, and rejects it with one problem per violation.
//!
//! Config: `{"schema": {...}, "validate_formats": true}`. The schema is
//! draft 2020-12 unless its `$schema` names another draft; `format`
//! keywords are checked unless `validate_formats` is `false`. Validation is
//! done by the boon crate, which passes the official JSON Schema test suite.
//!
//! The meta-schemas a schema is checked against are compiled in
//! [`Step::init`], so `docket plugin build` stores them compiled in the
//! component and no execution spends time on them.

use docket_sdk::{Context, Info, Kind, Outcome, Problem, Step, StepError};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// The step.
pub struct ValidateSchema;

/// The step's config.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The schema the case data must satisfy.
    pub schema: Value,
    /// Whether `format` keywords (email, date, uri, ...) are checked.
    #[serde(default = "yes")]
    pub validate_formats: bool,
}

fn yes() -> bool {
    true
}

/// Where the config's schema lives for the compiler; it is never fetched.
const SCHEMA_URL: &str = "urn:docket:config-schema";

impl Step for ValidateSchema {
    type Config = Config;
    type Input = Value;
    type Output = Value;

    fn describe() -> Info {
        Info::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"), Kind::Validate)
            .description(
                "Validates the case data against a JSON Schema (draft 2020-12) and rejects it \
                 with one problem per violation.",
            )
            .config_schema(json!({
                "type": "object",
                "required": ["schema"],
                "additionalProperties": false,
                "properties": {
                    "schema": {"type": ["object", "boolean"], "description": "the JSON Schema the case data must satisfy"},
                    "validate_formats": {"type": "boolean", "default": true}
                }
            }))
    }

    fn init() {
        // Compiling any schema compiles boon's meta-schemas, which it then
        // keeps; done here, that work lands in the component's memory image.
        let config = Config {
            schema: json!({"type": "object"}),
            validate_formats: true,
        };
        compile(&config).expect("a trivial schema compiles");
    }

    fn routes(config: &Config) -> Result<Vec<String>, String> {
        match compiled(config).as_ref() {
            Ok(_) => Ok(Vec::new()),
            Err(err) => Err(err.message().to_owned()),
        }
    }

    fn run(_ctx: &Context, config: Config, input: Value) -> Result<Outcome<Value>, StepError> {
        let compiled = compiled(&config);
        let (schemas, idx) = compiled.as_ref().as_ref().map_err(Clone::clone)?;
        let Err(err) = schemas.validate(&input, *idx) else {
            return Ok(Outcome::Continue(input));
        };
        let mut problems = Vec::new();
        collect_problems(&err, &mut problems);
        // The validator's order follows the schema's internals; an order by
        // place in the document reads better and never changes.
        problems.sort_by(|a, b| (a.pointer(), a.code()).cmp(&(b.pointer(), b.code())));
        Ok(Outcome::Reject(problems))
    }
}

type Compiled = Result<(boon::Schemas, boon::SchemaIndex), StepError>;

/// The config's schema compiled, once per config text: `check-config`
/// compiles it, and a run from the host's snapshot after it finds it done
/// (compiling costs some hundred times what validating a case does).
fn compiled(config: &Config) -> Arc<Compiled> {
    docket_sdk::prepared(|| compile(config))
}

fn compile(config: &Config) -> Compiled {
    let mut compiler = boon::Compiler::new();
    compiler.set_default_draft(boon::Draft::V2020_12);
    if config.validate_formats {
        compiler.enable_format_assertions();
    }
    let invalid = |err: boon::CompileError| match &err {
        boon::CompileError::ValidationError { src, .. } => {
            let leaf = first_leaf(src);
            StepError::permanent(format_args!(
                "invalid schema at `{}`: {}",
                leaf.instance_location, leaf.kind
            ))
        }
        _ => StepError::permanent(format_args!("invalid schema: {err:#}")),
    };
    compiler
        .add_resource(SCHEMA_URL, config.schema.clone())
        .map_err(invalid)?;
    let mut schemas = boon::Schemas::new();
    let idx = compiler
        .compile(SCHEMA_URL, &mut schemas)
        .map_err(invalid)?;
    Ok((schemas, idx))
}

fn first_leaf<'a, 's, 'v>(
    err: &'a boon::ValidationError<'s, 'v>,
) -> &'a boon::ValidationError<'s, 'v> {
    err.causes.first().map_or(err, first_leaf)
}

/// The violations at the leaves of boon's error tree, one problem each. A
/// missing property's pointer names the property itself, so a form can
/// mark the field; the code is the schema keyword that failed.
fn collect_problems(err: &boon::ValidationError<'_, '_>, out: &mut Vec<Problem>) {
    if !err.causes.is_empty() {
        for cause in &err.causes {
            collect_problems(cause, out);
        }
        return;
    }
    let pointer = err.instance_location.to_string();
    match &err.kind {
        boon::ErrorKind::Required { want } => {
            for property in want {
                let escaped = property.replace('~', "~0").replace('/', "~1");
                out.push(Problem::new(
                    format!("{pointer}/{escaped}"),
                    "required",
                    format!("missing property '{property}'"),
                ));
            }
        }
        kind => {
            let code = kind.keyword_path().map_or("invalid", |path| path.keyword);
            out.push(Problem::new(pointer, code, kind.to_string()));
        }
    }
}

docket_sdk::export!(ValidateSchema, prepared);

#[cfg(test)]
mod tests {
    use super::*;
    use docket_sdk::testing::Harness;

    fn permit_schema() -> Value {
        json!({
            "type": "object",
            "required": ["applicant", "parcel"],
            "properties": {
                "applicant": {
                    "type": "object",
                    "required": ["name", "email"],
                    "properties": {
                        "name": {"type": "string", "minLength": 1},
                        "email": {"type": "string", "format": "email"}
                    }
                },
                "parcel": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{3}$"},
                "floors": {"type": "integer", "minimum": 1, "maximum": 20}
            }
        })
    }

    #[track_caller]
    fn check(input: Value, expected: &[(&str, &str)]) {
        let run =
            Harness::new().run::<ValidateSchema>(json!({"schema": permit_schema()}), input.clone());
        let problems: Vec<(&str, &str)> = run
            .outcome()
            .problems()
            .iter()
            .map(|p| (p.pointer(), p.code()))
            .collect();
        assert_eq!(problems, expected);
        if expected.is_empty() {
            assert_eq!(run.outcome(), &Outcome::Continue(input));
        }
    }

    #[test]
    fn valid_application_continues_unchanged() {
        check(
            json!({"applicant": {"name": "Ada", "email": "ada@example.org"}, "parcel": "1234-567", "floors": 2}),
            &[],
        );
    }

    #[test]
    fn each_violation_is_one_problem() {
        check(
            json!({"applicant": {"name": "", "email": "not-an-email"}, "parcel": "12", "floors": 99}),
            &[
                ("/applicant/email", "format"),
                ("/applicant/name", "minLength"),
                ("/floors", "maximum"),
                ("/parcel", "pattern"),
            ],
        );
    }

    #[test]
    fn missing_properties_point_at_the_property() {
        check(
            json!({"applicant": {"name": "Ada"}}),
            &[("/applicant/email", "required"), ("/parcel", "required")],
        );
    }

    #[test]
    fn formats_can_be_switched_off() {
        let run = Harness::new().run::<ValidateSchema>(
            json!({"schema": {"type": "string", "format": "email"}, "validate_formats": false}),
            json!("nope"),
        );
        assert_eq!(run.outcome(), &Outcome::Continue(json!("nope")));
    }

    #[test]
    fn missing_schema_is_a_permanent_error() {
        let run = Harness::new().run::<ValidateSchema>(json!({}), json!({}));
        assert!(
            matches!(run.error(), StepError::Permanent(m) if m.contains("missing field `schema`")),
            "{:?}",
            run.error()
        );
    }

    #[test]
    fn invalid_schema_is_a_permanent_error() {
        let run = Harness::new().run::<ValidateSchema>(json!({"schema": {"type": 12}}), json!({}));
        assert!(
            matches!(run.error(), StepError::Permanent(m) if m.starts_with("invalid schema")),
            "{:?}",
            run.error()
        );
    }

    #[test]
    fn check_config_finds_a_bad_schema_before_any_case() {
        assert_eq!(
            Harness::check_config::<ValidateSchema>(json!({"schema": permit_schema()})),
            Ok(vec![])
        );
        let err = Harness::check_config::<ValidateSchema>(json!({"schema": {"minimum": "x"}}))
            .unwrap_err();
        assert!(err.starts_with("invalid schema"), "{err}");
    }

    #[test]
    fn describes_itself() {
        let info = ValidateSchema::describe();
        assert_eq!(
            (info.name(), info.kind()),
            ("validate-schema", Kind::Validate)
        );
    }
}
