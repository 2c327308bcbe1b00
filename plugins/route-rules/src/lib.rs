//! route-rules: a decision table, in the manner of DMN, that picks the
//! route(s) a case takes from conditions over its data.
//!
//! Config:
//!
//! ```yaml
//! hit_policy: first            # first | unique | collect
//! rules:
//!   - when: {"/fee": {gte: 1000}, "/kind": {in: [commercial, industrial]}}
//!     route: senior-review
//!   - when: {"/applicant/email": {exists: true}}
//!     route: standard
//! default: manual-review       # taken when no rule matches
//! ```
//!
//! A rule matches when every condition in `when` holds; a condition may
//! combine several operators, which must all hold. Fields are JSON Pointers
//! into the case data. A missing field satisfies only `exists: false`.
//! Numbers compare as numbers and strings as strings (so ISO dates compare
//! by date); a number never equals or orders against a string.

use docket_sdk::{Context, Info, Kind, Outcome, Step, StepError};
use regex::Regex;
use serde::Deserialize;
use serde_json::{Value, json};
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// The step.
pub struct RouteRules;

/// The decision table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// How matching rules become routes.
    #[serde(default)]
    pub hit_policy: HitPolicy,
    /// The rules, in order.
    pub rules: Vec<Rule>,
    /// The route taken when no rule matches. Without it, no match is an error.
    #[serde(default)]
    pub default: Option<String>,
}

/// How matching rules become routes (DMN hit policies).
#[derive(Deserialize, Default, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum HitPolicy {
    /// The first matching rule, in table order.
    #[default]
    First,
    /// Exactly one rule may match; two matching rules are an error in the table.
    Unique,
    /// Every matching rule, in table order, each route once.
    Collect,
}

/// One row of the table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Conditions by field (a JSON Pointer); all must hold.
    #[serde(default)]
    pub when: BTreeMap<String, Condition>,
    /// The route this rule selects.
    pub route: String,
}

/// Operators on one field; every one given must hold.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// The field equals this value.
    pub equals: Option<Value>,
    /// The field exists and differs from this value.
    pub not_equals: Option<Value>,
    /// The field is less than this number or string.
    pub lt: Option<Value>,
    /// The field is at most this number or string.
    pub lte: Option<Value>,
    /// The field is greater than this number or string.
    pub gt: Option<Value>,
    /// The field is at least this number or string.
    pub gte: Option<Value>,
    /// The field equals one of these values.
    #[serde(rename = "in")]
    pub one_of: Option<Vec<Value>>,
    /// The field equals none of these values.
    pub not_in: Option<Vec<Value>>,
    /// The field is present (`true`) or absent (`false`).
    pub exists: Option<bool>,
    /// The field is a string matching this regular expression.
    pub matches: Option<String>,
}

impl Step for RouteRules {
    type Config = Config;
    type Input = Value;
    type Output = Value;

    fn describe() -> Info {
        Info::new(
            env!("CARGO_PKG_NAME"),
            env!("CARGO_PKG_VERSION"),
            Kind::Route,
        )
        .description(
            "Picks the route(s) a case takes from a decision table over its data, with the \
                 DMN hit policies first, unique and collect.",
        )
        .config_schema(config_schema())
    }

    fn routes(config: &Config) -> Result<Vec<String>, String> {
        compile(config).map_err(|err| err.message().to_owned())?;
        let mut routes: Vec<String> = Vec::new();
        for route in config.rules.iter().map(|r| &r.route).chain(&config.default) {
            if !routes.contains(route) {
                routes.push(route.clone());
            }
        }
        Ok(routes)
    }

    fn run(_ctx: &Context, config: Config, input: Value) -> Result<Outcome<Value>, StepError> {
        let rules = compile(&config)?;
        let matched: Vec<usize> = rules
            .iter()
            .enumerate()
            .filter(|(_, rule)| rule.matches(&input))
            .map(|(idx, _)| idx)
            .collect();
        let mut routes: Vec<String> = Vec::new();
        match (config.hit_policy, matched.as_slice()) {
            (_, []) => match &config.default {
                Some(default) => routes.push(default.clone()),
                None => {
                    return Err(StepError::permanent(
                        "no rule matched and the table has no `default` route",
                    ));
                }
            },
            (HitPolicy::First, [first, ..]) => routes.push(config.rules[*first].route.clone()),
            (HitPolicy::Unique, [only]) => routes.push(config.rules[*only].route.clone()),
            (HitPolicy::Unique, several) => {
                let numbers: Vec<String> =
                    several.iter().map(|idx| (idx + 1).to_string()).collect();
                return Err(StepError::permanent(format_args!(
                    "hit policy `unique`, but rules {} all match",
                    numbers.join(", ")
                )));
            }
            (HitPolicy::Collect, all) => {
                for idx in all {
                    let route = &config.rules[*idx].route;
                    if !routes.contains(route) {
                        routes.push(route.clone());
                    }
                }
            }
        }
        Ok(Outcome::Route {
            routes,
            data: input,
        })
    }
}

/// A rule with its regular expressions compiled and pointers checked.
struct Compiled<'a> {
    conditions: Vec<(&'a str, &'a Condition, Option<Regex>)>,
}

fn compile(config: &Config) -> Result<Vec<Compiled<'_>>, StepError> {
    config
        .rules
        .iter()
        .enumerate()
        .map(|(idx, rule)| {
            let n = idx + 1;
            let conditions = rule
                .when
                .iter()
                .map(|(field, condition)| {
                    if !field.is_empty() && !field.starts_with('/') {
                        return Err(StepError::permanent(format_args!(
                            "rule {n}: field `{field}` is not a JSON Pointer (write `/{field}`)"
                        )));
                    }
                    let regex = condition
                        .matches
                        .as_deref()
                        .map(Regex::new)
                        .transpose()
                        .map_err(|err| {
                            StepError::permanent(format_args!("rule {n}: field `{field}`: {err}"))
                        })?;
                    Ok((field.as_str(), condition, regex))
                })
                .collect::<Result<_, _>>()?;
            Ok(Compiled { conditions })
        })
        .collect()
}

impl Compiled<'_> {
    fn matches(&self, input: &Value) -> bool {
        self.conditions
            .iter()
            .all(|(field, condition, regex)| holds(condition, regex.as_ref(), input.pointer(field)))
    }
}

fn holds(c: &Condition, regex: Option<&Regex>, value: Option<&Value>) -> bool {
    let Some(value) = value else {
        // A missing field satisfies `exists: false` and nothing else.
        return c.exists == Some(false)
            && [&c.equals, &c.not_equals, &c.lt, &c.lte, &c.gt, &c.gte]
                .iter()
                .all(|op| op.is_none())
            && c.one_of.is_none()
            && c.not_in.is_none()
            && c.matches.is_none();
    };
    let ordered = |bound: &Option<Value>, accept: fn(Ordering) -> bool| {
        bound
            .as_ref()
            .is_none_or(|bound| compare(value, bound).is_some_and(accept))
    };
    c.exists.is_none_or(|exists| exists)
        && c.equals.as_ref().is_none_or(|v| same(value, v))
        && c.not_equals.as_ref().is_none_or(|v| !same(value, v))
        && ordered(&c.lt, Ordering::is_lt)
        && ordered(&c.lte, Ordering::is_le)
        && ordered(&c.gt, Ordering::is_gt)
        && ordered(&c.gte, Ordering::is_ge)
        && c.one_of
            .as_ref()
            .is_none_or(|list| list.iter().any(|v| same(value, v)))
        && c.not_in
            .as_ref()
            .is_none_or(|list| !list.iter().any(|v| same(value, v)))
        && regex.is_none_or(|regex| value.as_str().is_some_and(|s| regex.is_match(s)))
}

/// Equality where `1` and `1.0` are the same number.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn config_schema() -> Value {
    let scalar = json!({"type": ["string", "number", "boolean", "null"]});
    let ordered = json!({"type": ["string", "number"]});
    json!({
        "type": "object",
        "required": ["rules"],
        "additionalProperties": false,
        "properties": {
            "hit_policy": {"enum": ["first", "unique", "collect"], "default": "first"},
            "default": {"type": "string"},
            "rules": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["route"],
                    "additionalProperties": false,
                    "properties": {
                        "route": {"type": "string"},
                        "when": {
                            "type": "object",
                            "additionalProperties": {
                                "type": "object",
                                "additionalProperties": false,
                                "properties": {
                                    "equals": scalar, "not_equals": scalar,
                                    "lt": ordered, "lte": ordered, "gt": ordered, "gte": ordered,
                                    "in": {"type": "array"}, "not_in": {"type": "array"},
                                    "exists": {"type": "boolean"},
                                    "matches": {"type": "string", "format": "regex"}
                                }
                            }
                        }
                    }
                }
            }
        }
    })
}

docket_sdk::export!(RouteRules);

#[cfg(test)]
mod tests {
    use super::*;
    use docket_sdk::testing::Harness;

    fn table(hit_policy: &str) -> Value {
        json!({
            "hit_policy": hit_policy,
            "rules": [
                {"when": {"/fee": {"gte": 1000}, "/kind": {"in": ["commercial", "industrial"]}}, "route": "senior-review"},
                {"when": {"/fee": {"gte": 1000}}, "route": "large"},
                {"when": {"/applicant/email": {"matches": "@city\\.example$"}}, "route": "internal"},
                {"when": {"/heritage": {"equals": true}}, "route": "heritage"},
                {"when": {"/deadline": {"lt": "2026-12-31"}, "/urgent": {"exists": false}}, "route": "soon"}
            ],
            "default": "standard"
        })
    }

    #[track_caller]
    fn check(hit_policy: &str, input: Value, expected: &[&str]) {
        let run = Harness::new().run::<RouteRules>(table(hit_policy), input.clone());
        match run.outcome() {
            Outcome::Route { routes, data } => {
                assert_eq!(routes, expected);
                assert_eq!(data, &input);
            }
            other => panic!("expected a route, got {other:?}"),
        }
    }

    #[test]
    fn first_takes_the_first_matching_rule() {
        check(
            "first",
            json!({"fee": 1500, "kind": "commercial"}),
            &["senior-review"],
        );
        check(
            "first",
            json!({"fee": 1500.0, "kind": "residential"}),
            &["large"],
        );
        check(
            "first",
            json!({"fee": 10, "applicant": {"email": "a@city.example"}}),
            &["internal"],
        );
    }

    #[test]
    fn collect_takes_every_matching_rule_once() {
        check(
            "collect",
            json!({"fee": 1500, "kind": "industrial", "heritage": true, "deadline": "2026-06-01"}),
            &["senior-review", "large", "heritage", "soon"],
        );
    }

    #[test]
    fn no_match_takes_the_default() {
        check(
            "collect",
            json!({"fee": 5, "deadline": "2026-06-01", "urgent": true}),
            &["standard"],
        );
        check("first", json!({}), &["standard"]);
    }

    #[test]
    fn a_string_never_orders_against_a_number() {
        check("first", json!({"fee": "5000"}), &["standard"]);
    }

    #[test]
    fn unique_accepts_one_match_and_refuses_two() {
        check("unique", json!({"heritage": true}), &["heritage"]);
        let run = Harness::new()
            .run::<RouteRules>(table("unique"), json!({"fee": 2000, "kind": "commercial"}));
        assert_eq!(
            run.error(),
            &StepError::permanent("hit policy `unique`, but rules 1, 2 all match")
        );
    }

    #[test]
    fn no_match_without_default_is_an_error() {
        let config = json!({"rules": [{"when": {"/a": {"equals": 1}}, "route": "one"}]});
        let run = Harness::new().run::<RouteRules>(config, json!({"a": 2}));
        assert!(matches!(run.error(), StepError::Permanent(m) if m.contains("no rule matched")));
    }

    #[test]
    fn bad_tables_are_permanent_errors() {
        let cases = [
            (
                json!({"rules": [{"when": {"fee": {"gt": 1}}, "route": "x"}]}),
                "is not a JSON Pointer",
            ),
            (
                json!({"rules": [{"when": {"/a": {"matches": "("}}, "route": "x"}]}),
                "rule 1: field `/a`",
            ),
            (
                json!({"rules": [{"when": {"/a": {"bigger": 1}}, "route": "x"}]}),
                "unknown field `bigger`",
            ),
            (json!({}), "missing field `rules`"),
        ];
        for (config, expected) in cases {
            let run = Harness::new().run::<RouteRules>(config, json!({"a": 1}));
            assert!(
                matches!(run.error(), StepError::Permanent(m) if m.contains(expected)),
                "{:?}",
                run.error()
            );
        }
    }

    #[test]
    fn routes_come_from_the_table() {
        let config: Config = serde_json::from_value(table("first")).unwrap();
        assert_eq!(
            RouteRules::routes(&config).unwrap(),
            [
                "senior-review",
                "large",
                "internal",
                "heritage",
                "soon",
                "standard"
            ]
        );
    }
}
