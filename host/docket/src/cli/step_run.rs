//! `docket step run`: runs one step plugin once, outside any workflow.

use super::{RuntimeArgs, json_arg};
use anyhow::Context as _;
use docket_host::plugin::{Capability, Grants, Limits, Outcome, StepContext, StepError};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

/// Run a step plugin once and print its outcome as JSON.
///
/// The outcome goes to stdout; notifications and log lines go to stderr.
/// Exit code 0 when the step continues or routes, 1 when it rejects the
/// input, 2 when it fails.
#[derive(clap::Args)]
pub struct RunCommand {
    /// The plugin component (.wasm).
    plugin: PathBuf,
    /// The step's config: JSON, or @file.
    #[arg(long, default_value = "{}")]
    config: String,
    /// The case data: JSON, or @file.
    #[arg(long, default_value = "{}")]
    input: String,
    /// Capabilities to grant besides `log`, comma-separated: notify, settings, secrets.
    #[arg(long, value_delimiter = ',')]
    grant: Vec<Capability>,
    /// A deployment setting the step can read, as KEY=VALUE (repeatable).
    #[arg(long = "setting", value_name = "KEY=VALUE", value_parser = key_value)]
    settings: Vec<(String, String)>,
    /// A secret the step can read, as NAME=VALUE (repeatable).
    #[arg(long = "secret", value_name = "NAME=VALUE", value_parser = key_value)]
    secrets: Vec<(String, String)>,
    /// Wall-clock deadline in milliseconds.
    #[arg(long, value_name = "N")]
    timeout_ms: Option<u64>,
    /// Linear memory limit in MiB.
    #[arg(long, value_name = "N")]
    memory_mb: Option<u64>,
    /// The case id the step's context reports.
    #[arg(long = "case", value_name = "ID", default_value = "cli")]
    case_id: String,
    /// The acting person, as the step's context reports it.
    #[arg(long = "as", value_name = "PERSON")]
    actor: Option<String>,
    #[command(flatten)]
    runtime: RuntimeArgs,
}

pub fn key_value(arg: &str) -> Result<(String, String), String> {
    arg.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("`{arg}` is not KEY=VALUE"))
}

impl RunCommand {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let config = json_arg("config", &self.config)?;
        let input = json_arg("input", &self.input)?;
        let mut grants = Grants::default();
        for capability in self.grant {
            grants = grants.grant(capability);
        }
        for (key, value) in self.settings {
            grants = grants.setting(key, value);
        }
        for (name, value) in self.secrets {
            grants = grants.secret(name, value);
        }
        let mut limits = Limits::default();
        if let Some(ms) = self.timeout_ms {
            limits.deadline = Duration::from_millis(ms);
        }
        if let Some(mb) = self.memory_mb {
            limits.memory = mb.saturating_mul(1024 * 1024);
        }

        let runtime = self.runtime.runtime()?;
        let plugin = runtime
            .load_file(&self.plugin, grants)
            .with_context(|| format!("failed to load `{}`", self.plugin.display()))?;
        #[allow(
            clippy::disallowed_methods,
            reason = "outside a workflow, the CLI is the clock"
        )]
        let now = SystemTime::now();
        let ctx = StepContext {
            case_id: self.case_id,
            workflow: "cli".to_owned(),
            workflow_version: 1,
            step_id: plugin.info().name.clone(),
            attempt: 1,
            actor: self.actor,
            now,
        };
        let execution = plugin.run(&ctx, &config, &input, &limits);

        #[allow(
            clippy::print_stderr,
            clippy::print_stdout,
            reason = "this command's output"
        )]
        {
            for line in &execution.logs {
                eprintln!("log {}: {}", line.level.as_str(), line.message);
            }
            for n in &execution.notifications {
                let to =
                    n.to.as_deref()
                        .map(|to| format!(" to {to}"))
                        .unwrap_or_default();
                eprintln!("notify {}{to}: {}\n{}", n.channel, n.subject, n.body);
            }
            match &execution.result {
                Ok(outcome) => {
                    println!("{}", serde_json::to_string_pretty(&outcome_json(outcome))?);
                    Ok(if matches!(outcome, Outcome::Reject(_)) {
                        ExitCode::from(1)
                    } else {
                        ExitCode::SUCCESS
                    })
                }
                Err(err) => {
                    let retry = if err.is_transient() {
                        " (a retry may help)"
                    } else {
                        ""
                    };
                    eprintln!("error: {err}{retry}");
                    if let StepError::Failed(_) = err {
                        tracing::debug!("failure: {err:?}");
                    }
                    Ok(ExitCode::from(2))
                }
            }
        }
    }
}

/// The outcome as the JSON this command prints.
pub fn outcome_json(outcome: &Outcome) -> Value {
    match outcome {
        Outcome::Continue(data) => json!({"outcome": "continue", "data": data.to_value()}),
        Outcome::Route { routes, data } => {
            json!({"outcome": "route", "routes": routes, "data": data.to_value()})
        }
        Outcome::Reject(problems) => json!({
            "outcome": "reject",
            "problems": problems
                .iter()
                .map(|p| json!({"pointer": p.pointer, "code": p.code, "message": p.message}))
                .collect::<Vec<_>>(),
        }),
    }
}
