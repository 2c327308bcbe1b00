//! What the subcommands that run workflows share: where the store, the
//! plugins and the mailbox are, and the clock.

use super::RuntimeArgs;
use anyhow::Context as _;
use docket_host::catalog::{CatalogSource, TrustPolicy};
use docket_host::engine::{
    Clock, Host, HostConfig, Mailbox, ManualClock, PluginSource, SystemClock,
};
use docket_host::ledger::SigningKey;
use docket_host::plugin::{Directory, Runtime};
use docket_host::store::{Durability, Sqlite};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The plugins of the catalogue at `location` that the trust policy at
/// `trust` accepts, cached in `cache`.
pub fn catalog_source(
    runtime: Runtime,
    location: &str,
    trust: Option<&Path>,
    cache: &Path,
) -> anyhow::Result<CatalogSource> {
    let Some(trust) = trust else {
        anyhow::bail!(
            "`--catalog {location}` needs `--trust FILE`: a host runs only plugins signed by publishers its trust policy names"
        );
    };
    let policy = TrustPolicy::load(trust)?;
    let catalog = docket_host::catalog::open(location)
        .with_context(|| format!("cannot open the catalogue `{location}`"))?;
    CatalogSource::new(runtime, catalog, policy, cache)
        .with_context(|| format!("cannot use `{}` as the plugin cache", cache.display()))
}

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
    /// Take plugins from this catalogue (a directory, or a registry:
    /// `oci://host/namespace`) instead of `--plugins`, each checked against
    /// `--trust`.
    // Its own variable, so that `DOCKET_CATALOG`, which the `catalog`
    // commands use, does not switch where a host's plugins come from.
    #[arg(
        long,
        env = "DOCKET_PLUGIN_CATALOG",
        global = true,
        value_name = "LOCATION"
    )]
    pub catalog: Option<String>,
    /// The trust policy (YAML) that plugins from `--catalog` must satisfy.
    #[arg(long, env = "DOCKET_TRUST", global = true, value_name = "FILE")]
    pub trust: Option<PathBuf>,
    /// Where plugins pulled from `--catalog` are kept, by digest, so a
    /// restart or a lost connection still finds them [default: the
    /// store's path with `.plugin-cache`].
    #[arg(long, env = "DOCKET_PLUGIN_CACHE", global = true, value_name = "DIR")]
    pub plugin_cache: Option<PathBuf>,
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
        let plugins = self.plugin_source()?;
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
            plugins,
            clock,
            Arc::new(mailbox),
            config,
        )?)
    }

    /// The plugins: the `--catalog`, checked against `--trust`, or the
    /// `--plugins` directory.
    pub fn plugin_source(&self) -> anyhow::Result<Arc<dyn PluginSource>> {
        let runtime = self.runtime.runtime()?;
        let Some(location) = &self.catalog else {
            let plugins = Directory::open(&runtime, &self.plugins).with_context(|| {
                format!("cannot load the plugins in `{}`", self.plugins.display())
            })?;
            return Ok(Arc::new(plugins));
        };
        let cache = self
            .plugin_cache
            .clone()
            .unwrap_or_else(|| self.beside_store(".plugin-cache"));
        Ok(Arc::new(catalog_source(
            runtime,
            location,
            self.trust.as_deref(),
            &cache,
        )?))
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
