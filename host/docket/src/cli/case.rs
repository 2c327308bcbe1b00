//! `docket case`: list cases, show one as a timeline, and act on one as a
//! clerk (approve, reject, return for changes) or as a system (signal).

use super::host::HostArgs;
use super::json_arg;
use docket_host::engine::{Decision, rfc3339};
use docket_host::store::{CaseFilter, CaseRow, CaseStatus, Verdict};
use serde_json::json;
use std::io::Write as _;
use std::process::ExitCode;

/// Work with cases.
#[derive(clap::Subcommand)]
pub enum CaseCommand {
    /// List cases, newest first.
    List(ListCommand),
    /// Show a case (by id or tracking code): its status, stages, deadlines, and journal.
    Show(ShowCommand),
    /// Approve a waiting approval step.
    Approve(DecideCommand),
    /// Reject the application at a waiting approval step.
    Reject(DecideCommand),
    /// Return the case to the applicant for changes.
    Return(DecideCommand),
    /// Send a named signal with data to a case.
    Signal(SignalCommand),
    /// Resubmit a returned case with the applicant's changes.
    Resubmit(ResubmitCommand),
    /// Replay an automated decision and show it yields the recorded outcome.
    Explain(super::explain::ExplainCommand),
}

#[derive(clap::Args)]
pub struct ListCommand {
    /// Only this workflow.
    #[arg(long)]
    workflow: Option<String>,
    /// Only cases in this status: running, waiting, completed, rejected, failed.
    #[arg(long, value_parser = parse_status)]
    status: Option<CaseStatus>,
    /// Only cases with an open task for this role (an inbox).
    #[arg(long)]
    role: Option<String>,
    /// At most this many.
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    host: HostArgs,
}

#[derive(clap::Args)]
pub struct ShowCommand {
    /// The case id or tracking code.
    case: String,
    /// Print the journal as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    host: HostArgs,
}

#[derive(clap::Args)]
pub struct DecideCommand {
    /// The case id or tracking code.
    case: String,
    /// The approval step's path, for example `decide` or `reviews/fire/fire-safety`.
    #[arg(long)]
    step: String,
    /// Who decides.
    #[arg(long = "as", value_name = "PERSON")]
    person: String,
    /// The role they act in.
    #[arg(long)]
    role: String,
    /// Why.
    #[arg(long)]
    comment: Option<String>,
    #[command(flatten)]
    host: HostArgs,
}

#[derive(clap::Args)]
pub struct SignalCommand {
    /// The case id or tracking code.
    case: String,
    /// The signal's name.
    name: String,
    /// Its data: JSON, or @file.
    #[arg(long, default_value = "{}")]
    data: String,
    #[command(flatten)]
    host: HostArgs,
}

#[derive(clap::Args)]
pub struct ResubmitCommand {
    /// The case id or tracking code.
    case: String,
    /// The changed fields: JSON, or @file.
    #[arg(long, default_value = "{}")]
    data: String,
    #[command(flatten)]
    host: HostArgs,
}

fn parse_status(name: &str) -> Result<CaseStatus, String> {
    CaseStatus::parse(name).ok_or_else(|| {
        format!(
            "unknown status `{name}` (expected running, waiting, completed, rejected or failed)"
        )
    })
}

impl CaseCommand {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            CaseCommand::List(cmd) => cmd.run(),
            CaseCommand::Show(cmd) => cmd.run(),
            CaseCommand::Approve(cmd) => cmd.run(Verdict::Approve),
            CaseCommand::Reject(cmd) => cmd.run(Verdict::Reject),
            CaseCommand::Return(cmd) => cmd.run(Verdict::Return),
            CaseCommand::Signal(cmd) => cmd.run(),
            CaseCommand::Resubmit(cmd) => cmd.run(),
            CaseCommand::Explain(cmd) => cmd.run(),
        }
    }
}

fn row_json(row: &CaseRow) -> serde_json::Value {
    json!({
        "id": row.id,
        "workflow": row.workflow,
        "version": row.version,
        "key": row.key,
        "tracking_code": row.tracking_code,
        "parent": row.parent,
        "status": row.status.as_str(),
        "waiting_roles": row.waiting_roles,
        "created_at": rfc3339(row.created_at),
        "updated_at": rfc3339(row.updated_at),
        "events": row.events,
    })
}

impl ListCommand {
    fn run(self) -> anyhow::Result<ExitCode> {
        let host = self.host.open()?;
        let rows = host.cases(&CaseFilter {
            workflow: self.workflow,
            status: self.status,
            role: self.role,
            limit: Some(self.limit),
        })?;
        let mut out = std::io::stdout().lock();
        if self.json {
            let rows: Vec<_> = rows.iter().map(row_json).collect();
            writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
            return Ok(ExitCode::SUCCESS);
        }
        writeln!(
            out,
            "{:<13} {:<10} {:<22} {:<16} {:<10} waiting for",
            "case", "tracking", "workflow", "key", "status"
        )?;
        for row in rows {
            writeln!(
                out,
                "{:<13} {:<10} {:<22} {:<16} {:<10} {}",
                row.id,
                row.tracking_code,
                format!("{} v{}", row.workflow, row.version),
                row.key.as_deref().unwrap_or("-"),
                row.status.as_str(),
                row.waiting_roles.join(", ")
            )?;
        }
        Ok(ExitCode::SUCCESS)
    }
}

impl ShowCommand {
    fn run(self) -> anyhow::Result<ExitCode> {
        let host = self.host.open()?;
        let status = host.status(&self.case)?;
        let view = host.case(&status.case)?;
        let mut out = std::io::stdout().lock();
        if self.json {
            let journal: Vec<_> = view
                .journal
                .iter()
                .map(|r| {
                    json!({
                        "seq": r.seq,
                        "at": rfc3339(r.at),
                        "event": r.event,
                    })
                })
                .collect();
            let value = json!({
                "case": row_json(&view.row),
                "status": status,
                "journal": journal,
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
            return Ok(ExitCode::SUCCESS);
        }
        super::track::write_status(&mut out, &status)?;
        writeln!(
            out,
            "
journal:"
        )?;
        write!(out, "{}", view.timeline())?;
        Ok(ExitCode::SUCCESS)
    }
}

impl DecideCommand {
    fn run(self, verdict: Verdict) -> anyhow::Result<ExitCode> {
        let host = self.host.open()?;
        let id = host.case(&self.case)?.row.id;
        host.decide(
            &id,
            Decision {
                step: self.step.clone(),
                verdict,
                person: self.person,
                role: self.role,
                comment: self.comment,
            },
        )?;
        host.run_until_idle()?;
        let row = host.case(&id)?.row;
        writeln!(
            std::io::stdout(),
            "{} on {}: case {} is {}",
            verdict.as_str(),
            self.step,
            row.id,
            row.status.as_str()
        )?;
        Ok(ExitCode::SUCCESS)
    }
}

impl SignalCommand {
    fn run(self) -> anyhow::Result<ExitCode> {
        let host = self.host.open()?;
        let id = host.case(&self.case)?.row.id;
        let data = json_arg("data", &self.data)?.to_value();
        host.signal(&id, &self.name, data)?;
        host.run_until_idle()?;
        let row = host.case(&id)?.row;
        writeln!(
            std::io::stdout(),
            "signal {} sent: case {} is {}",
            self.name,
            row.id,
            row.status.as_str()
        )?;
        Ok(ExitCode::SUCCESS)
    }
}

impl ResubmitCommand {
    fn run(self) -> anyhow::Result<ExitCode> {
        let host = self.host.open()?;
        let id = host.case(&self.case)?.row.id;
        let data = json_arg("data", &self.data)?.to_value();
        host.resubmit(&id, data)?;
        host.run_until_idle()?;
        let row = host.case(&id)?.row;
        writeln!(
            std::io::stdout(),
            "resubmitted: case {} is {}",
            row.id,
            row.status.as_str()
        )?;
        Ok(ExitCode::SUCCESS)
    }
}
