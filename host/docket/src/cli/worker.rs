//! `docket worker`: processes due work until stopped.

use super::host::HostArgs;
use docket_host::engine::from_millis;
use std::process::ExitCode;
use std::time::Duration;

/// Process due work (steps, timers, deadlines, retries) until stopped.
///
/// Stopping the process at any moment is safe: a step whose outcome was
/// not recorded runs again on the next start, nothing recorded is lost.
#[derive(clap::Args)]
pub struct WorkerCommand {
    /// Exit once nothing is due now instead of waiting for more.
    #[arg(long)]
    until_idle: bool,
    /// Look for new work at least this often, in milliseconds.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    poll_ms: u64,
    #[command(flatten)]
    host: HostArgs,
}

impl WorkerCommand {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let host = self.host.open()?;
        loop {
            host.run_until_idle()?;
            if self.until_idle {
                return Ok(ExitCode::SUCCESS);
            }
            let poll = Duration::from_millis(self.poll_ms);
            let wait = host.next_due().map_or(poll, |due| {
                let now = from_millis(host.clock().now());
                from_millis(due)
                    .duration_since(now)
                    .unwrap_or_default()
                    .min(poll)
            });
            std::thread::sleep(wait.max(Duration::from_millis(10)));
        }
    }
}
