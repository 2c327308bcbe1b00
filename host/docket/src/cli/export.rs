//! `docket export xes|ocel`: the selected cases as an event log for
//! process-mining tools, on standard output.

use super::report::ReadArgs;
use docket_host::insight::{ocel, xes};
use std::io::Write as _;
use std::process::ExitCode;

/// Export cases as an event log.
#[derive(clap::Subcommand)]
pub enum ExportCommand {
    /// IEEE 1849 XES: one trace per case, start and complete events per step.
    Xes(LogCommand),
    /// OCEL 2.0 JSON: cases and roles as objects, completed steps as events.
    Ocel(LogCommand),
}

#[derive(clap::Args)]
pub struct LogCommand {
    #[command(flatten)]
    read: ReadArgs,
}

impl ExportCommand {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        match self {
            ExportCommand::Xes(cmd) => {
                let cases = cmd.read.load(&cmd.read.selection()?)?;
                xes::write(&cases, &mut out)?;
                writeln!(out)?;
            }
            ExportCommand::Ocel(cmd) => {
                let cases = cmd.read.load(&cmd.read.selection()?)?;
                serde_json::to_writer_pretty(&mut out, &ocel::document(&cases))?;
                writeln!(out)?;
            }
        }
        out.flush()?;
        Ok(ExitCode::SUCCESS)
    }
}
