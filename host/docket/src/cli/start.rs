//! `docket start` and `docket run`: start a case, and work on it until it
//! ends or waits for people, a signal or time.

use super::deploy::deploy;
use super::host::HostArgs;
use super::json_arg;
use docket_host::engine::{Host, StartCase};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

/// The options that describe a new case.
#[derive(clap::Args)]
pub struct CaseArgs {
    /// The case's input: JSON, or @file.
    #[arg(long, default_value = "{}")]
    input: String,
    /// The business key (an application number), unique per workflow.
    #[arg(long)]
    key: Option<String>,
    /// Who applies; four-eyes rules keep them from approving their own case.
    #[arg(long, value_name = "PERSON")]
    applicant: Option<String>,
}

/// Start a case of a deployed workflow and run its steps until it ends or
/// waits. Prints the case id, tracking code and status.
#[derive(clap::Args)]
pub struct StartCommand {
    /// The workflow's name.
    workflow: String,
    #[command(flatten)]
    case: CaseArgs,
    #[command(flatten)]
    host: HostArgs,
}

/// Deploy a workflow file, start a case of it, and run it until it ends or
/// waits. Prints the case id, tracking code and status.
#[derive(clap::Args)]
pub struct RunCommand {
    /// The workflow definition (YAML).
    workflow: PathBuf,
    #[command(flatten)]
    case: CaseArgs,
    #[command(flatten)]
    host: HostArgs,
}

impl StartCommand {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let host = self.host.open()?;
        start(&host, &self.workflow, self.case)
    }
}

impl RunCommand {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let host = self.host.open()?;
        let Some(workflow) = deploy(&host, &self.workflow)? else {
            return Ok(ExitCode::from(1));
        };
        start(&host, &workflow.name, self.case)
    }
}

fn start(host: &Host, workflow: &str, case: CaseArgs) -> anyhow::Result<ExitCode> {
    let input = json_arg("input", &case.input)?.to_value();
    let started = host.start(
        workflow,
        StartCase {
            input,
            key: case.key,
            applicant: case.applicant,
        },
    )?;
    host.run_until_idle()?;
    let view = host.case(&started.id)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "case {}", started.id)?;
    writeln!(out, "tracking code {}", started.tracking_code)?;
    writeln!(out, "status {}", view.row.status.as_str())?;
    if !view.row.waiting_roles.is_empty() {
        writeln!(out, "waiting for {}", view.row.waiting_roles.join(", "))?;
    }
    Ok(ExitCode::SUCCESS)
}
