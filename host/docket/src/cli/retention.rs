//! `docket retention`: apply every workflow's retention policy: archive
//! each case kept long enough and purge its personal data.

use super::host::HostArgs;
use docket_host::tracking::date_text;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

/// Archive and purge ended cases whose workflow's retention period has passed.
#[derive(clap::Args)]
pub struct RetentionCommand {
    /// Where the archives go, one file per case under a directory per
    /// workflow. Default: `<store>.archive` beside the store.
    #[arg(long, value_name = "DIR")]
    archive: Option<PathBuf>,
    #[command(flatten)]
    host: HostArgs,
}

impl RetentionCommand {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let archive = self
            .archive
            .clone()
            .unwrap_or_else(|| self.host.beside_store(".archive"));
        let host = self.host.open()?;
        let retained = host.apply_retention(&archive)?;
        let mut out = std::io::stdout().lock();
        for case in &retained {
            writeln!(
                out,
                "purged case {} ({} v{}, ended {}): {} events, {} messages; archive {} (sha256 {})",
                case.purged.case,
                case.workflow,
                case.version,
                date_text(case.ended),
                case.purged.events,
                case.purged.messages,
                case.archive.display(),
                &case.archive_sha256[..16]
            )?;
        }
        writeln!(
            out,
            "{} case{} purged",
            retained.len(),
            if retained.len() == 1 { "" } else { "s" }
        )?;
        Ok(ExitCode::SUCCESS)
    }
}
