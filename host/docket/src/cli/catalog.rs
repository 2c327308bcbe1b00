//! Publishing and trusting plugins: `docket key new`, `docket plugin pack |
//! sign | manifest-schema`, and `docket catalog publish | list | search | show |
//! pull | yank | verify` on a catalogue directory or registry.

use super::RuntimeArgs;
use anyhow::Context as _;
use docket_host::catalog::{About, Catalog, Manifest, Package, TrustPolicy};
use docket_host::keys::SigningKey;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// Publisher keys.
#[derive(clap::Subcommand)]
pub enum KeyCommand {
    /// Make a new Ed25519 key for signing packages; prints its public key.
    New {
        /// Where to keep the private key (created readable by its owner only).
        #[arg(long)]
        out: PathBuf,
    },
}

impl KeyCommand {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let KeyCommand::New { out } = self;
        if out.exists() {
            anyhow::bail!("`{}` exists; a key is never overwritten", out.display());
        }
        let key = SigningKey::load_or_create(&out)?;
        println!("{}", key.public());
        Ok(ExitCode::SUCCESS)
    }
}

/// Pack a component into a package: the component, its manifest, no signature yet.
#[derive(clap::Args)]
pub struct PackCommand {
    /// The component (.wasm), or a plugin crate's directory, which is
    /// built first (as `docket plugin build` does).
    component: PathBuf,
    /// Where to write the package directory.
    #[arg(long)]
    out: PathBuf,
    /// The team that owns the plugin.
    #[arg(long)]
    team: String,
    /// Its licence (SPDX).
    #[arg(long)]
    license: String,
    /// Where to read more.
    #[arg(long)]
    homepage: Option<String>,
    /// What changed in this version.
    #[arg(long, default_value = "")]
    changelog: String,
    #[command(flatten)]
    runtime: RuntimeArgs,
}

impl PackCommand {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let bytes = if self.component.is_dir() {
            let manifest = self.component.join("Cargo.toml");
            let mut built = super::plugin_build::build_components(&manifest, &[])?;
            match built.pop() {
                Some((_, component)) if built.is_empty() => component,
                _ => anyhow::bail!(
                    "`{}` builds {} plugins; build them with `docket plugin build` and pack each component",
                    manifest.display(),
                    built.len() + 1
                ),
            }
        } else {
            std::fs::read(&self.component)
                .with_context(|| format!("failed to read `{}`", self.component.display()))?
        };
        let package = Package::pack(
            &self.runtime.runtime()?,
            bytes,
            About {
                team: self.team,
                license: self.license,
                homepage: self.homepage,
                changelog: self.changelog,
            },
        )
        .with_context(|| format!("failed to pack `{}`", self.component.display()))?;
        package
            .write(&self.out)
            .with_context(|| format!("failed to write `{}`", self.out.display()))?;
        println!(
            "packed {} (manifest sha256 {}, capabilities: {}) into {}",
            package.id(),
            package.digest(),
            list(&package.manifest.capabilities),
            self.out.display()
        );
        Ok(ExitCode::SUCCESS)
    }
}

/// Sign a package directory with a publisher key.
#[derive(clap::Args)]
pub struct SignCommand {
    /// The package directory.
    package: PathBuf,
    /// The publisher's private key file.
    #[arg(long)]
    key: PathBuf,
}

impl SignCommand {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        if !self.key.exists() {
            anyhow::bail!(
                "there is no key at `{}` (make one with `docket key new --out {}`)",
                self.key.display(),
                self.key.display()
            );
        }
        let key = SigningKey::load_or_create(&self.key)?;
        let mut package = Package::read(&self.package)?;
        package.sign(&key);
        package.write(&self.package)?;
        println!("signed {} with key {}", package.id(), key.public());
        Ok(ExitCode::SUCCESS)
    }
}

/// Where the catalogue and the trust policy are.
#[derive(clap::Args)]
pub struct CatalogArgs {
    /// The catalogue: a directory, or an OCI registry as
    /// `oci://host[:port]/namespace` (`oci+http://` for plain HTTP).
    #[arg(long, env = "DOCKET_CATALOG", default_value = "catalog", global = true)]
    catalog: String,
}

impl CatalogArgs {
    fn open(&self) -> anyhow::Result<Arc<dyn Catalog>> {
        Ok(docket_host::catalog::open(&self.catalog)?)
    }
}

/// `name[@requirement]` from the catalogue, verified against the trust
/// policy at `trust`.
fn pull(
    plugin: &str,
    trust: &Path,
    at: &CatalogArgs,
    runtime: &RuntimeArgs,
) -> anyhow::Result<Package> {
    let (name, requirement) = split(plugin);
    let policy = TrustPolicy::load(trust)?;
    Ok(at
        .open()?
        .pull(&runtime.runtime()?, name, requirement, &policy)?)
}

/// Work with a plugin catalogue.
#[derive(clap::Subcommand)]
pub enum CatalogCommand {
    /// Publish a package directory.
    Publish {
        /// The package directory (`docket plugin pack`, then `sign`).
        package: PathBuf,
        #[command(flatten)]
        at: CatalogArgs,
    },
    /// List the plugins and their versions.
    List {
        #[command(flatten)]
        at: CatalogArgs,
    },
    /// Find plugins by words in their name, description, kind, team or
    /// capabilities (every word must match); newest version first.
    Search {
        /// The words.
        #[arg(required = true)]
        words: Vec<String>,
        #[command(flatten)]
        at: CatalogArgs,
    },
    /// Show a plugin: versions, what each asks for, who signed it, and
    /// which workflows deployed in a store use it.
    Show {
        /// The plugin's name.
        name: String,
        /// A store whose deployed workflows to search for the plugin.
        #[arg(long, env = "DOCKET_STORE")]
        store: Option<PathBuf>,
        #[command(flatten)]
        at: CatalogArgs,
    },
    /// Fetch a verified package into a directory.
    Pull {
        /// `name` or `name@requirement`.
        plugin: String,
        /// The host's trust policy (YAML).
        #[arg(long, env = "DOCKET_TRUST")]
        trust: PathBuf,
        /// Where to write the package.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        at: CatalogArgs,
        #[command(flatten)]
        runtime: RuntimeArgs,
    },
    /// Withdraw a version.
    Yank {
        /// `name@version`.
        plugin: String,
        /// Why, for whoever pulls it next.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        at: CatalogArgs,
    },
    /// Check a plugin against a trust policy, as a host would.
    Verify {
        /// `name` or `name@requirement`.
        plugin: String,
        /// The host's trust policy (YAML).
        #[arg(long, env = "DOCKET_TRUST")]
        trust: PathBuf,
        #[command(flatten)]
        at: CatalogArgs,
        #[command(flatten)]
        runtime: RuntimeArgs,
    },
}

/// `name@requirement` split; `*` when no requirement is given.
fn split(plugin: &str) -> (&str, &str) {
    plugin.split_once('@').unwrap_or((plugin, "*"))
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

impl CatalogCommand {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let mut out = std::io::stdout().lock();
        match self {
            CatalogCommand::Publish { package, at } => {
                let package = Package::read(&package)?;
                let release = at.open()?.publish(&package)?;
                writeln!(
                    out,
                    "published {} (manifest sha256 {}, {} signature{})",
                    package.id(),
                    release.manifest,
                    release.signatures.len(),
                    if release.signatures.len() == 1 {
                        ""
                    } else {
                        "s"
                    }
                )?;
            }
            CatalogCommand::List { at } => {
                let catalog = at.open()?;
                for name in catalog.names()? {
                    let versions: Vec<String> = catalog
                        .releases(&name)?
                        .iter()
                        .map(|(v, r)| match r.yanked {
                            Some(_) => format!("{v} (yanked)"),
                            None => v.to_string(),
                        })
                        .collect();
                    writeln!(out, "{name:<24} {}", versions.join(", "))?;
                }
            }
            CatalogCommand::Search { words, at } => {
                let catalog = at.open()?;
                let words: Vec<String> = words.iter().map(|w| w.to_lowercase()).collect();
                let mut found = 0;
                for name in catalog.names()? {
                    let releases = catalog.releases(&name)?;
                    // The newest version not yanked, else the newest.
                    let Some((version, release)) = releases
                        .iter()
                        .rev()
                        .find(|(_, r)| r.yanked.is_none())
                        .or(releases.last())
                    else {
                        continue;
                    };
                    let m = catalog.manifest(&name, version)?;
                    let text = format!(
                        "{name} {} {} {} {}",
                        m.description,
                        m.kind,
                        m.team,
                        m.capabilities.join(" ")
                    )
                    .to_lowercase();
                    if words.iter().all(|word| text.contains(word.as_str())) {
                        found += 1;
                        let yanked = if release.yanked.is_some() {
                            " (yanked)"
                        } else {
                            ""
                        };
                        let shown = format!("{version}{yanked}");
                        writeln!(
                            out,
                            "{name:<24} {shown:<18} {:<10} {:<12} {}",
                            m.kind, m.team, m.description
                        )?;
                    }
                }
                if found == 0 {
                    writeln!(out, "no plugin matches `{}`", words.join(" "))?;
                    return Ok(ExitCode::from(1));
                }
            }
            CatalogCommand::Show { name, store, at } => {
                let catalog = at.open()?;
                let releases = catalog.releases(&name)?;
                if releases.is_empty() {
                    anyhow::bail!("the catalogue has no plugin `{name}`");
                }
                if let Some(store) = store.filter(|path| path.exists()) {
                    let store = docket_host::store::Sqlite::open(
                        &store,
                        docket_host::store::Durability::Full,
                    )
                    .with_context(|| format!("cannot open the store `{}`", store.display()))?;
                    let users: Vec<String> = docket_host::store::Backend::deployments(&store)?
                        .iter()
                        .filter(|d| docket_host::workflow::plugins_used(&d.source).contains(&name))
                        .map(|d| format!("{} v{}", d.workflow, d.version))
                        .collect();
                    writeln!(out, "{name}: used by {}", list(&users))?;
                }
                for (version, release) in releases {
                    let m = &catalog.manifest(&name, &version)?;
                    writeln!(out, "{name}@{version}  {}", m.description)?;
                    writeln!(out, "  kind          {}", m.kind)?;
                    writeln!(out, "  team          {} ({})", m.team, m.license)?;
                    writeln!(out, "  capabilities  {}", list(&m.capabilities))?;
                    writeln!(out, "  routes        {}", list(&m.routes))?;
                    writeln!(out, "  config        {}", m.config_schema)?;
                    writeln!(out, "  input         {}", m.input_schema)?;
                    writeln!(out, "  output        {}", m.output_schema)?;
                    writeln!(
                        out,
                        "  component     sha256 {} ({} bytes)",
                        m.component.sha256, m.component.size
                    )?;
                    let keys: Vec<String> = release
                        .signatures
                        .iter()
                        .map(|s| s.key.to_string())
                        .collect();
                    writeln!(out, "  signed by     {}", list(&keys))?;
                    if let Some(reason) = &release.yanked {
                        writeln!(out, "  yanked        {reason}")?;
                    }
                    if !m.changelog.is_empty() {
                        writeln!(out, "  changes       {}", m.changelog)?;
                    }
                }
            }
            CatalogCommand::Pull {
                plugin,
                trust,
                out: dir,
                at,
                runtime,
            } => {
                let package = pull(&plugin, &trust, &at, &runtime)?;
                package.write(&dir)?;
                writeln!(
                    out,
                    "pulled {} into {} (verified)",
                    package.id(),
                    dir.display()
                )?;
            }
            CatalogCommand::Yank { plugin, reason, at } => {
                let Some((name, version)) = plugin.split_once('@') else {
                    anyhow::bail!("name the version to yank: `{plugin}@<version>`");
                };
                let version = semver::Version::parse(version)
                    .with_context(|| format!("`{version}` is not a version"))?;
                at.open()?.yank(name, &version, &reason)?;
                writeln!(out, "yanked {name}@{version}: {reason}")?;
            }
            CatalogCommand::Verify {
                plugin,
                trust,
                at,
                runtime,
            } => {
                let package = pull(&plugin, &trust, &at, &runtime)?;
                writeln!(
                    out,
                    "{} OK: component and manifest intact, signed by a trusted key, manifest matches the component",
                    package.id()
                )?;
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// Print the plugin manifest's JSON Schema.
#[derive(clap::Args)]
pub struct ManifestSchemaCommand {}

impl ManifestSchemaCommand {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        print!("{}", Manifest::json_schema());
        Ok(ExitCode::SUCCESS)
    }
}
