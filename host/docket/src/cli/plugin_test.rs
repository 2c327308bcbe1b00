//! `docket plugin test`: runs a plugin over fixture pairs, for its author
//! before publishing and for a catalogue's reviewer before signing.

use super::RuntimeArgs;
use super::step_run::outcome_json;
use anyhow::Context as _;
use docket_host::Json;
use docket_host::catalog::Package;
use docket_host::plugin::{Capability, Execution, Grants, Limits, StepContext};
use serde_json::{Value, json};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Run a plugin over input/expected-outcome fixtures.
///
/// Each fixture is `<name>.input.json` (the case data) beside
/// `<name>.expected.json` (what `docket step run` prints for it, plus a
/// `notifications` array when the step sends any); the step's config is
/// `<name>.config.json`, else `config.json` in the directory, else `{}`.
/// The step gets every capability it imports, the settings `KEY=VALUE`
/// given, and a fixed clock, so a fixture gives the same outcome every run.
///
/// Exit code 0 when every fixture passes, 1 when one does not, 2 when the
/// plugin or the fixtures cannot be read.
#[derive(clap::Args)]
pub struct TestCommand {
    /// A package directory (`docket plugin pack`), checked against its
    /// manifest first, or a component (.wasm).
    plugin: PathBuf,
    /// The directory of fixtures.
    fixtures: PathBuf,
    /// The clock the step reads (RFC 3339).
    #[arg(long, default_value = "2026-01-01T09:00:00Z", value_name = "TIME")]
    now: String,
    /// A deployment setting the step can read, as KEY=VALUE (repeatable).
    #[arg(long = "setting", value_name = "KEY=VALUE", value_parser = super::step_run::key_value)]
    settings: Vec<(String, String)>,
    /// Write what the plugin does now into the `.expected.json` files
    /// instead of comparing (review the diff).
    #[arg(long)]
    bless: bool,
    #[command(flatten)]
    runtime: RuntimeArgs,
}

/// One fixture: its name and files.
struct Fixture {
    name: String,
    input: PathBuf,
    expected: PathBuf,
    config: Option<PathBuf>,
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read `{}`", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("`{}` is not JSON", path.display()))
}

fn fixtures(dir: &Path) -> anyhow::Result<Vec<Fixture>> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read `{}`", dir.display()))?;
    let mut found = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".input.json"))
        else {
            continue;
        };
        let config = [
            dir.join(format!("{name}.config.json")),
            dir.join("config.json"),
        ]
        .into_iter()
        .find(|path| path.is_file());
        found.push(Fixture {
            name: name.to_owned(),
            expected: dir.join(format!("{name}.expected.json")),
            input: path,
            config,
        });
    }
    if found.is_empty() {
        anyhow::bail!(
            "`{}` has no fixtures: each is `<name>.input.json` beside `<name>.expected.json`",
            dir.display()
        );
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// What a fixture's `.expected.json` holds: the outcome as `docket step
/// run` prints it, and the notifications sent, if any.
fn observed(execution: &Execution) -> Result<Value, String> {
    let outcome = execution
        .result
        .as_ref()
        .map_err(|err| format!("the step failed: {err}"))?;
    let mut value = outcome_json(outcome);
    if !execution.notifications.is_empty() {
        value["notifications"] = execution
            .notifications
            .iter()
            .map(
                |n| json!({"channel": n.channel, "to": n.to, "subject": n.subject, "body": n.body}),
            )
            .collect();
    }
    Ok(value)
}

impl TestCommand {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let runtime = self.runtime.runtime()?;
        let component = if self.plugin.is_dir() {
            let package = Package::read(&self.plugin)?;
            package.check(&runtime)?;
            package.component
        } else {
            std::fs::read(&self.plugin)
                .with_context(|| format!("cannot read `{}`", self.plugin.display()))?
        };
        let inspection = runtime.inspect(&component)?;
        let mut grants = Capability::ALL
            .into_iter()
            .filter(|c| inspection.imports.capabilities.contains(c))
            .fold(Grants::none(), Grants::grant);
        for (key, value) in self.settings {
            grants = grants.setting(key, value);
        }
        let plugin = runtime.load(&component, grants)?;
        let now = humantime::parse_rfc3339_weak(&self.now)
            .with_context(|| format!("--now `{}` is not an RFC 3339 time", self.now))?;
        let fixtures = fixtures(&self.fixtures)?;

        let info = plugin.info();
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "{}@{} (sha256 {}): {} fixture{}",
            info.name,
            info.version,
            plugin.digest().to_hex(),
            fixtures.len(),
            if fixtures.len() == 1 { "" } else { "s" }
        )?;
        let mut failed = 0;
        for fixture in &fixtures {
            let input = Json::from_value(&read_json(&fixture.input)?);
            let config = match &fixture.config {
                Some(path) => Json::from_value(&read_json(path)?),
                None => Json::from_value(&json!({})),
            };
            let ctx = StepContext {
                case_id: format!("fixture-{}", fixture.name),
                workflow: "plugin-test".to_owned(),
                workflow_version: 1,
                step_id: fixture.name.clone(),
                attempt: 1,
                actor: None,
                now,
            };
            let execution = plugin.run(&ctx, &config, &input, &Limits::default());
            let actual = observed(&execution);
            if self.bless {
                let value = actual.map_err(|err| anyhow::anyhow!("{}: {err}", fixture.name))?;
                let mut text = serde_json::to_string_pretty(&value)?;
                text.push('\n');
                std::fs::write(&fixture.expected, text)
                    .with_context(|| format!("cannot write `{}`", fixture.expected.display()))?;
                writeln!(out, "  blessed {}", fixture.name)?;
                continue;
            }
            let verdict = match (actual, fixture.expected.is_file()) {
                (_, false) => Err(format!(
                    "no `{}`: write it, or run with --bless",
                    fixture.expected.display()
                )),
                (Err(err), true) => Err(err),
                (Ok(actual), true) => {
                    let expected = read_json(&fixture.expected)?;
                    if actual == expected {
                        Ok(())
                    } else {
                        Err(format!(
                            "expected\n{}\n    got\n{}",
                            indent(&expected),
                            indent(&actual)
                        ))
                    }
                }
            };
            match verdict {
                Ok(()) => writeln!(out, "  ok    {}", fixture.name)?,
                Err(why) => {
                    failed += 1;
                    writeln!(out, "  FAIL  {}: {why}", fixture.name)?;
                }
            }
        }
        if self.bless {
            return Ok(ExitCode::SUCCESS);
        }
        writeln!(out, "{} passed, {failed} failed", fixtures.len() - failed)?;
        Ok(if failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    }
}

fn indent(value: &Value) -> String {
    serde_json::to_string_pretty(value)
        .unwrap_or_default()
        .lines()
        .map(|line| format!("      {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}
