//! `docket case explain`: replay an automated decision and show that the
//! recorded plugin, on the same config, input and clock reading, decides
//! as the journal says.

use super::host::HostArgs;
use docket_host::engine::{Decided, Replay};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct ExplainCommand {
    /// The case id or tracking code.
    case: String,
    /// The plugin step's path, for example `triage`.
    #[arg(long)]
    step: String,
    /// Print the explanation as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    host: HostArgs,
}

impl ExplainCommand {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let host = self.host.open()?;
        let explanation = host.explain(&self.case, &self.step)?;
        let code = if explanation.confirms() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
        if self.json {
            println!("{}", serde_json::to_string_pretty(&explanation)?);
            return Ok(code);
        }
        let e = &explanation;
        let time = |millis| {
            humantime::format_rfc3339_millis(docket_host::engine::from_millis(millis)).to_string()
        };
        println!("case {}  step {}  attempt {}", e.case, e.step, e.attempt);
        println!("plugin    {}  sha256 {}", e.plugin, e.sha256);
        println!("config    {}", e.config);
        println!(
            "input     {}  ({})",
            e.input,
            match e.input_matches {
                Some(true) => "the input recorded with the outcome",
                Some(false) => "NOT the input recorded with the outcome",
                None => "no input was recorded to compare with",
            }
        );
        println!("clock     {}", time(e.ran_at));
        println!("recorded  {}", summary(&e.recorded));
        match &e.replay {
            Replay::Same => {
                println!("replayed  {}", summary(&e.recorded));
                println!("the recorded plugin yields the recorded outcome");
            }
            Replay::Different { replayed } => {
                println!("replayed  {}", summary(replayed));
                println!("the replay DIFFERS from the recorded outcome");
            }
            Replay::Failed { error } => {
                println!("replayed  failed: {error}");
            }
            Replay::Unavailable { reason } => {
                println!(
                    "the plugin with sha256 {} is no longer available: {reason}",
                    e.sha256
                );
            }
        }
        Ok(code)
    }
}

/// An outcome in one line.
fn summary(decided: &Decided) -> String {
    let mut line = decided.outcome.clone();
    if !decided.routes.is_empty() {
        line.push_str(&format!(" -> {}", decided.routes.join(", ")));
    }
    for problem in &decided.problems {
        line.push_str(&format!("; {}: {}", problem.pointer, problem.message));
    }
    if decided.notifications > 0 {
        line.push_str(&format!("; {} notifications", decided.notifications));
    }
    line
}
