//! `docket track <tracking-code>`: a case as its applicant follows it, and
//! the clerk's status view `docket case show` prints. Both render the
//! views of `docket_host::tracking`; nothing here decides what is shown.

use super::host::HostArgs;
use docket_host::tracking::{PublicStatus, Status, clock_text, date_text};
use std::io::{self, Write};
use std::process::ExitCode;

/// Follow a case by its tracking code: stages, dates and outcomes, no personal data.
#[derive(clap::Args)]
pub struct TrackCommand {
    /// The tracking code the applicant was given.
    tracking_code: String,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    host: HostArgs,
}

impl TrackCommand {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let host = self.host.open()?;
        let view = host.track(&self.tracking_code)?;
        let mut out = io::stdout().lock();
        if self.json {
            writeln!(out, "{}", serde_json::to_string_pretty(&view)?)?;
        } else {
            write_public(&mut out, &view)?;
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// The applicant's view as text.
pub fn write_public(out: &mut impl Write, view: &PublicStatus) -> io::Result<()> {
    writeln!(out, "{}: {}", view.tracking_code, view.process)?;
    writeln!(out, "department: {}", view.department)?;
    write!(
        out,
        "status: {}, submitted {}",
        view.phase.describe(),
        date_text(view.submitted)
    )?;
    match (view.ended, view.expected_completion) {
        (Some(ended), _) => writeln!(out, ", ended {}", date_text(ended))?,
        (None, Some(expected)) => {
            writeln!(out, ", expected to be completed by {}", date_text(expected))?;
        }
        (None, None) => writeln!(out)?,
    }
    if !view.current.is_empty() {
        writeln!(out, "\nnow:")?;
        for stage in &view.current {
            let deadline = stage
                .deadline
                .map(|d| format!(", deadline {}", date_text(d)))
                .unwrap_or_default();
            writeln!(
                out,
                "  {} ({}): waiting for {} since {}{deadline}, expected by {}",
                stage.title,
                stage.department,
                stage.waiting_for,
                date_text(stage.since),
                date_text(stage.expected_by)
            )?;
        }
    }
    if !view.history.is_empty() {
        writeln!(out, "\nso far:")?;
        for step in &view.history {
            writeln!(
                out,
                "  {}  {} ({}): {}",
                date_text(step.ended),
                step.title,
                step.department,
                step.outcome
            )?;
        }
    }
    if !view.fields.is_empty() {
        writeln!(out, "\ndetails:")?;
        for (name, value) in &view.fields {
            writeln!(out, "  {name}: {value}")?;
        }
    }
    Ok(())
}

/// The clerk's view as text.
pub fn write_status(out: &mut impl Write, status: &Status) -> io::Result<()> {
    writeln!(
        out,
        "case {}  tracking code {}{}",
        status.case,
        status.tracking_code,
        status
            .key
            .as_deref()
            .map(|k| format!("  key {k}"))
            .unwrap_or_default()
    )?;
    writeln!(
        out,
        "{} v{} ({}): {}",
        status.workflow, status.version, status.owner, status.process
    )?;
    let phase = status.phase.describe();
    let started = clock_text(status.started);
    match (
        status.ended,
        status.expected_completion,
        &status.returned_by,
    ) {
        (Some(ended), _, _) => {
            writeln!(
                out,
                "{phase}; started {started}, ended {}",
                clock_text(ended)
            )?;
        }
        (None, _, Some(step)) => writeln!(out, "{phase} by `{step}`; started {started}")?,
        (None, Some(expected), None) => writeln!(
            out,
            "{phase} since {started}; expected completion {} (durations measured on {} case{})",
            date_text(expected),
            status.measured_cases,
            if status.measured_cases == 1 { "" } else { "s" }
        )?,
        (None, None, None) => writeln!(out, "{phase} since {started}")?,
    }
    if !status.pending.is_empty() {
        writeln!(out, "\nnow:")?;
        for stage in &status.pending {
            let deadline = match stage.deadline {
                Some(d) if stage.overdue => format!(", deadline {} (overdue)", clock_text(d)),
                Some(d) => format!(", deadline {}", clock_text(d)),
                None if stage.overdue => ", overdue".to_owned(),
                None => String::new(),
            };
            writeln!(
                out,
                "  {} [{}] ({}): waiting for {} since {}{deadline}; expected by {}",
                stage.title,
                stage.step,
                stage.department,
                stage.waiting.describe(),
                clock_text(stage.since),
                date_text(stage.expected_by)
            )?;
        }
    }
    if !status.history.is_empty() {
        writeln!(out, "\nso far:")?;
        for stage in &status.history {
            let by = if stage.decided_by.is_empty() {
                String::new()
            } else {
                format!(" by {}", stage.decided_by.join(", "))
            };
            let late = if stage.late {
                " (after its deadline)"
            } else {
                ""
            };
            writeln!(
                out,
                "  {}  {} [{}] ({}): {}{by}{late}",
                clock_text(stage.ended),
                stage.title,
                stage.step,
                stage.department,
                stage.describe()
            )?;
        }
    }
    Ok(())
}
