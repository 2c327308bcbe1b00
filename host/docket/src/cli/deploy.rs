//! `docket deploy`: records a workflow definition as a new version.

use super::host::HostArgs;
use super::lint::Compiled;
use anyhow::Context as _;
use docket_host::engine::{DeployError, Host};
use docket_host::workflow::Workflow;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// Deploy a workflow definition. Cases already running keep their version.
///
/// Exit code 0 when deployed (or already deployed with the same content),
/// 1 when the definition has problems, 2 for any other failure.
#[derive(clap::Args)]
pub struct DeployCommand {
    /// The workflow definition (YAML).
    workflow: PathBuf,
    #[command(flatten)]
    host: HostArgs,
}

impl DeployCommand {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let host = self.host.open()?;
        match deploy(&host, &self.workflow)? {
            Some(workflow) => {
                writeln!(
                    std::io::stdout(),
                    "deployed {} v{} ({} steps, owner {})",
                    workflow.name,
                    workflow.version,
                    workflow.steps.len(),
                    workflow.owner
                )?;
                Ok(ExitCode::SUCCESS)
            }
            None => Ok(ExitCode::from(1)),
        }
    }
}

/// Deploys the file at `path`; on a definition with problems, shows them
/// as `docket lint` does and returns `None`.
pub fn deploy(host: &Host, path: &Path) -> anyhow::Result<Option<Arc<Workflow>>> {
    let source = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read `{}`", path.display()))?;
    match host.deploy(&source) {
        Ok(workflow) => Ok(Some(workflow)),
        Err(DeployError::Invalid(diagnostics)) => {
            Compiled {
                path: path.display().to_string(),
                source,
                result: Err(diagnostics.clone()),
            }
            .report(&diagnostics);
            Ok(None)
        }
        Err(err) => Err(err).with_context(|| format!("cannot deploy `{}`", path.display())),
    }
}
