//! What the subcommands that run workflows share: where the store, the
//! plugins and the mailbox are, and the clock.

use super::RuntimeArgs;
use anyhow::Context as _;
use docket_host::engine::{Clock, Host, HostConfig, Mailbox, ManualClock, SystemClock};
use docket_host::ledger::SigningKey;
use docket_host::plugin::Directory;
use docket_host::store::{Durability, Sqlite};
use std::path::PathBuf;
use std::sync::Arc;

/// Options of every subcommand that opens a host.
#[derive(clap::Args)]
pub struct HostArgs {
    /// The store: a SQLite file, created if absent.
    #[arg(long, env = "DOCKET_STORE", default_value = "docket.db", global = true)]
    pub store: PathBuf,
    /// The directory of plugin components (.wasm) workflows may use.
    #[arg(
        long,
        env = "DOCKET_PLUGINS",
        default_value = "target/plugins",
        global = true
    )]
    pub plugins: PathBuf,
    /// Where delivered notifications are appended, one JSON object per
    /// line [default: the store's path with `.mailbox.jsonl`].
    #[arg(long, env = "DOCKET_MAILBOX", global = true)]
    pub mailbox: Option<PathBuf>,
    /// Read the time as this RFC 3339 instant instead of the system clock
    /// (to replay or test deadlines).
    #[arg(long, env = "DOCKET_NOW", global = true, value_name = "TIME")]
    pub now: Option<String>,
    /// The Ed25519 key that signs ledger checkpoints, created if absent
    /// [default: the store's path with `.key`]. Keep it away from the store
    /// in production, and publish its public key (`docket audit key`).
    #[arg(long, env = "DOCKET_LEDGER_KEY", global = true, value_name = "FILE")]
    pub ledger_key: Option<PathBuf>,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

impl HostArgs {
    /// Opens the host, recovering what the last process left in flight.
    pub fn open(&self) -> anyhow::Result<Host> {
        let runtime = self.runtime.runtime()?;
        let plugins = Directory::open(&runtime, &self.plugins)
            .with_context(|| format!("cannot load the plugins in `{}`", self.plugins.display()))?;
        let store = Sqlite::open(&self.store, Durability::Full)
            .with_context(|| format!("cannot open the store `{}`", self.store.display()))?;
        let mailbox_path = self
            .mailbox
            .clone()
            .unwrap_or_else(|| self.beside_store(".mailbox.jsonl"));
        let mailbox = Mailbox::open(&mailbox_path)
            .with_context(|| format!("cannot open the mailbox `{}`", mailbox_path.display()))?;
        let clock = self.clock()?;
        let config = HostConfig {
            ledger_key: Some(Arc::new(self.signing_key()?)),
            ..HostConfig::default()
        };
        Ok(Host::open(
            Arc::new(store),
            Arc::new(plugins),
            clock,
            Arc::new(mailbox),
            config,
        )?)
    }

    /// The system clock, or the time `--now` fixes.
    pub fn clock(&self) -> anyhow::Result<Arc<dyn Clock>> {
        Ok(match &self.now {
            None => Arc::new(SystemClock),
            Some(now) => {
                let time = humantime::parse_rfc3339_weak(now)
                    .with_context(|| format!("--now `{now}` is not an RFC 3339 time"))?;
                Arc::new(ManualClock::new(time))
            }
        })
    }

    /// Opens the store alone, for commands that only read it.
    pub fn open_store(&self) -> anyhow::Result<Sqlite> {
        if !self.store.exists() {
            anyhow::bail!("there is no store at `{}`", self.store.display());
        }
        Sqlite::open(&self.store, Durability::Full)
            .with_context(|| format!("cannot open the store `{}`", self.store.display()))
    }

    /// Where the ledger key is.
    pub fn ledger_key_path(&self) -> PathBuf {
        self.ledger_key
            .clone()
            .unwrap_or_else(|| self.beside_store(".key"))
    }

    /// The ledger key, created if absent.
    pub fn signing_key(&self) -> anyhow::Result<SigningKey> {
        let path = self.ledger_key_path();
        SigningKey::load_or_create(&path)
            .with_context(|| format!("cannot use the ledger key `{}`", path.display()))
    }

    /// The store's path with `suffix` appended.
    pub fn beside_store(&self, suffix: &str) -> PathBuf {
        let mut path = self.store.clone().into_os_string();
        path.push(suffix);
        PathBuf::from(path)
    }
}
