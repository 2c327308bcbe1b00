//! `docket audit`: verify the ledger, sign checkpoints, export and verify a
//! case's self-contained bundle.

use super::host::HostArgs;
use anyhow::Context as _;
use docket_host::ledger::{self, Bundle, ExportError, PublicKey};
use docket_host::store::Backend as _;
use std::path::PathBuf;
use std::process::ExitCode;

/// Verify the tamper-evident ledger and export what a third party needs.
#[derive(clap::Subcommand)]
pub enum AuditCommand {
    /// Recompute the chain and the signatures; report OK or the first
    /// entry that was modified, removed, reordered or inserted.
    Verify(VerifyCommand),
    /// Sign the ledger's current head now.
    Checkpoint(CheckpointCommand),
    /// Write a case's events, their stretch of chain, a checkpoint and the
    /// public key as one JSON file.
    Export(ExportCommand),
    /// Print the public key checkpoints are signed with, to publish.
    Key(KeyCommand),
}

#[derive(clap::Args)]
pub struct VerifyCommand {
    /// Compare only this case's records (the chain is checked whole).
    #[arg(long, conflicts_with = "bundle")]
    case: Option<String>,
    /// Verify an exported bundle instead of the store.
    #[arg(long, value_name = "FILE")]
    bundle: Option<PathBuf>,
    /// Require checkpoints signed by this key (64 hex digits)
    /// [default: the public half of --ledger-key, if that file exists].
    #[arg(long, value_name = "HEX")]
    public_key: Option<String>,
    #[command(flatten)]
    host: HostArgs,
}

#[derive(clap::Args)]
pub struct CheckpointCommand {
    #[command(flatten)]
    host: HostArgs,
}

#[derive(clap::Args)]
pub struct ExportCommand {
    /// The case id or tracking code.
    #[arg(long)]
    case: String,
    /// Write here instead of to standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    #[command(flatten)]
    host: HostArgs,
}

#[derive(clap::Args)]
pub struct KeyCommand {
    #[command(flatten)]
    host: HostArgs,
}

impl AuditCommand {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            AuditCommand::Verify(cmd) => cmd.run(),
            AuditCommand::Checkpoint(cmd) => cmd.run(),
            AuditCommand::Export(cmd) => cmd.run(),
            AuditCommand::Key(cmd) => {
                println!("{}", cmd.host.signing_key()?.public());
                Ok(ExitCode::SUCCESS)
            }
        }
    }
}

impl VerifyCommand {
    fn run(self) -> anyhow::Result<ExitCode> {
        let pinned = match &self.public_key {
            Some(text) => Some(
                text.parse::<PublicKey>()
                    .with_context(|| format!("--public-key `{text}`"))?,
            ),
            None => None,
        };
        match &self.bundle {
            Some(path) => verify_bundle(path, pinned.as_ref()),
            None => self.verify_store(pinned),
        }
    }

    fn verify_store(&self, pinned: Option<PublicKey>) -> anyhow::Result<ExitCode> {
        let store = self.host.open_store()?;
        let key_path = self.host.ledger_key_path();
        let trusted = match pinned {
            Some(key) => Some(key),
            None if key_path.exists() => Some(self.host.signing_key()?.public()),
            None => None,
        };
        let case = match &self.case {
            Some(case) => Some(resolve_case(&store, case)?),
            None => None,
        };
        let report = ledger::verify(&store, trusted.as_ref(), case.as_deref())?;
        if let Some(problem) = &report.problem {
            println!("ledger TAMPERED: {problem}");
            println!(
                "checked {} entries before it; nothing after it can be trusted",
                report.entries.saturating_sub(1)
            );
            return Ok(ExitCode::FAILURE);
        }
        match &case {
            Some(case) => println!(
                "ledger OK: {} entries chained, the {} events of case {case} match what was recorded",
                report.entries, report.records
            ),
            None => println!(
                "ledger OK: {} entries chained, every record matches",
                report.entries
            ),
        }
        if report.purged > 0 {
            println!(
                "{} events were purged under retention policies; each matches the content its purge recorded",
                report.purged
            );
        }
        match (report.signed_up_to, report.key) {
            (Some(position), Some(key)) => {
                println!(
                    "signed: {} checkpoints by key {key}{}, the last at entry {position}",
                    report.checkpoints,
                    if trusted.is_some() {
                        ""
                    } else {
                        " (not pinned: pass --public-key to require a key)"
                    }
                );
                let unsigned = report.entries - position;
                if unsigned > 0 {
                    println!(
                        "{unsigned} entries after it are chained but not yet signed (`docket audit checkpoint`)"
                    );
                }
            }
            _ => println!(
                "no checkpoint yet: the chain is consistent, but only a signed checkpoint shows it was not rewritten whole (`docket audit checkpoint`)"
            ),
        }
        Ok(ExitCode::SUCCESS)
    }
}

fn verify_bundle(path: &PathBuf, pinned: Option<&PublicKey>) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read the bundle `{}`", path.display()))?;
    let bundle: Bundle = serde_json::from_str(&text)
        .with_context(|| format!("`{}` is not an audit bundle", path.display()))?;
    match ledger::verify_bundle(&bundle, pinned) {
        Ok(report) => {
            println!(
                "bundle OK: the {} events of case {} match their entries, {} entries chain to the checkpoint at entry {}",
                report.events, report.case, report.entries, report.signed_at_position
            );
            println!(
                "signed by key {}{}",
                report.key,
                if pinned.is_some() {
                    ""
                } else {
                    " (not pinned: pass --public-key with the publisher's key to require it)"
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(problem) => {
            println!("bundle TAMPERED: {problem}");
            Ok(ExitCode::FAILURE)
        }
    }
}

impl CheckpointCommand {
    fn run(self) -> anyhow::Result<ExitCode> {
        let store = self.host.open_store()?;
        let key = self.host.signing_key()?;
        let Some((position, head)) = store.ledger_head()? else {
            println!("the ledger is empty: nothing to sign");
            return Ok(ExitCode::SUCCESS);
        };
        let checkpoint = key.checkpoint(position, head, self.host.clock()?.now());
        store.add_checkpoint(&checkpoint)?;
        println!(
            "signed entry {position} (head {}) with key {}",
            hex::encode(head),
            checkpoint.public_key
        );
        Ok(ExitCode::SUCCESS)
    }
}

impl ExportCommand {
    fn run(self) -> anyhow::Result<ExitCode> {
        let store = self.host.open_store()?;
        let case = resolve_case(&store, &self.case)?;
        let bundle = match ledger::export_case(&store, &case) {
            Err(ExportError::NotSigned { .. }) => {
                // Sign the head now, so the bundle covers the case as it is.
                let key = self.host.signing_key()?;
                if let Some((position, head)) = store.ledger_head()? {
                    store.add_checkpoint(&key.checkpoint(
                        position,
                        head,
                        self.host.clock()?.now(),
                    ))?;
                }
                ledger::export_case(&store, &case)?
            }
            other => other?,
        };
        let text = serde_json::to_string_pretty(&bundle)?;
        match &self.out {
            Some(path) => {
                std::fs::write(path, format!("{text}\n"))
                    .with_context(|| format!("failed to write `{}`", path.display()))?;
                eprintln!(
                    "wrote the bundle of case {case} ({} entries) to {}",
                    bundle.entries.len(),
                    path.display()
                );
            }
            None => println!("{text}"),
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// The id of the case named by id or tracking code.
fn resolve_case(store: &dyn docket_host::store::Backend, case: &str) -> anyhow::Result<String> {
    match docket_host::store::find_case(store, case)? {
        Some(row) => Ok(row.id),
        None => anyhow::bail!("no case `{case}` in the store"),
    }
}
