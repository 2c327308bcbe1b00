//! [`CatalogSource`]: a host's plugins, taken from a catalogue.
//!
//! Every package is verified against the host's trust policy before it is
//! loaded, and kept in a local cache (a [`DirectoryCatalog`], so by
//! content): a second pull of the same bytes reads the cache, and when the
//! catalogue cannot be reached, new deployments resolve against the cache
//! and pinned deployments load from it. A refusal by the catalogue (no such
//! version, a yanked one) is final and never answered from the cache.

use super::{Catalog, CatalogError, DirectoryCatalog, Package, Refusal, Release, TrustPolicy};
use crate::Json;
use crate::engine::PluginSource;
use crate::plugin::{Capability, Grants, Plugin, Runtime, routes_for};
use crate::store::Pin;
use crate::workflow::{PluginFacts, PluginProblem};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Plugins from a catalogue, verified, through a local cache.
pub struct CatalogSource {
    runtime: Runtime,
    catalog: Arc<dyn Catalog>,
    cache: DirectoryCatalog,
    policy: TrustPolicy,
    /// Verified and loaded, by the component's sha256.
    loaded: Mutex<HashMap<String, Plugin>>,
    fetched: AtomicU64,
}

impl std::fmt::Debug for CatalogSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogSource")
            .field("cache", &self.cache.root())
            .finish_non_exhaustive()
    }
}

/// Whether `err` says the catalogue could not be asked, rather than
/// answering no: only then may the cache stand in for it.
fn unreachable(err: &CatalogError) -> bool {
    !matches!(
        err,
        CatalogError::Refused(_) | CatalogError::Exists { .. } | CatalogError::Invalid(_)
    )
}

impl CatalogSource {
    /// Plugins from `catalog`, accepted by `policy`, cached in the
    /// directory `cache` (created if absent).
    ///
    /// # Errors
    ///
    /// If the cache directory cannot be created.
    pub fn new(
        runtime: Runtime,
        catalog: Arc<dyn Catalog>,
        policy: TrustPolicy,
        cache: impl Into<PathBuf>,
    ) -> Result<CatalogSource, CatalogError> {
        Ok(CatalogSource {
            runtime,
            catalog,
            cache: DirectoryCatalog::open(cache)?,
            policy,
            loaded: Mutex::new(HashMap::new()),
            fetched: AtomicU64::new(0),
        })
    }

    /// The local cache.
    pub fn cache(&self) -> &DirectoryCatalog {
        &self.cache
    }

    /// How many packages were fetched from the catalogue (not the cache)
    /// since this source was made.
    pub fn fetched(&self) -> u64 {
        self.fetched.load(Ordering::Relaxed)
    }

    /// The newest version of `name` matching `requirement`, verified and
    /// loaded: resolved by the catalogue, or by the cache when the
    /// catalogue cannot be reached.
    ///
    /// # Errors
    ///
    /// Any [`Refusal`]; the catalogue's error when it cannot be reached and
    /// the cache has no match either.
    pub fn resolve(&self, name: &str, requirement: &str) -> Result<Plugin, CatalogError> {
        let (version, release) = match self.catalog.resolve(name, requirement) {
            Ok(found) => found,
            Err(offline) if unreachable(&offline) => {
                self.cache.resolve(name, requirement).map_err(|_| offline)?
            }
            Err(refused) => return Err(refused),
        };
        self.load(name, &version, &release.component)
    }

    /// Exactly `name@version` with the component `sha256`, yanked or not
    /// (a case pinned to it still runs), verified and loaded.
    ///
    /// # Errors
    ///
    /// Any [`Refusal`] but `Yanked`; [`Refusal::DigestMismatch`] when the
    /// catalogue now has other bytes under that version.
    pub fn exact(
        &self,
        name: &str,
        version: &semver::Version,
        sha256: &str,
    ) -> Result<Plugin, CatalogError> {
        self.load(name, version, sha256)
    }

    fn load(
        &self,
        name: &str,
        version: &semver::Version,
        sha256: &str,
    ) -> Result<Plugin, CatalogError> {
        if let Some(plugin) = self.lock().get(sha256) {
            return Ok(plugin.clone());
        }
        let package = self.package(name, version, sha256)?;
        // Every capability granted, so `describe` and `check-config` work
        // whatever it imports; the engine reloads it with a step's grants.
        let grants = Capability::ALL
            .into_iter()
            .fold(Grants::none(), Grants::grant);
        let plugin = self
            .runtime
            .load(&package.component, grants)
            .map_err(|err| Refusal::Unloadable {
                plugin: package.id(),
                reason: format!("{err:#}"),
            })?;
        self.lock().insert(sha256.to_owned(), plugin.clone());
        Ok(plugin)
    }

    /// The verified package of `name@version` whose component is `sha256`:
    /// from the cache if it has it, else from the catalogue, then cached.
    fn package(
        &self,
        name: &str,
        version: &semver::Version,
        sha256: &str,
    ) -> Result<Package, CatalogError> {
        let cached = self.cache.releases(name)?.into_iter().any(
            |(v, release): (semver::Version, Release)| &v == version && release.component == sha256,
        );
        if cached {
            let package = self.cache.fetch(name, version)?;
            package.verify(&self.runtime, &self.policy)?;
            return Ok(package);
        }
        let package = self.catalog.fetch(name, version)?;
        self.fetched.fetch_add(1, Ordering::Relaxed);
        if package.manifest.component.sha256 != sha256 {
            return Err(Refusal::DigestMismatch {
                plugin: package.id(),
                what: "the component".to_owned(),
                expected: sha256.to_owned(),
                actual: package.manifest.component.sha256.clone(),
            }
            .into());
        }
        package.verify(&self.runtime, &self.policy)?;
        self.cache.publish(&package)?;
        Ok(package)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Plugin>> {
        self.loaded.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How the workflow language hears of a catalogue's answer.
fn problem(err: CatalogError) -> PluginProblem {
    match err {
        CatalogError::Refused(Refusal::NotFound {
            name, available, ..
        }) if available.is_empty() => {
            PluginProblem::Unknown(format!("the catalogue has no plugin `{name}`"))
        }
        CatalogError::Refused(not_found @ Refusal::NotFound { .. }) => {
            PluginProblem::UnknownVersion(not_found.to_string())
        }
        CatalogError::Refused(refusal) => PluginProblem::Refused(refusal.to_string()),
        other => PluginProblem::Unavailable(other.to_string()),
    }
}

impl PluginFacts for CatalogSource {
    fn routes(
        &self,
        name: &str,
        version: &str,
        config: &Json,
    ) -> Result<Vec<String>, PluginProblem> {
        routes_for(&self.plugin(name, version)?, config)
    }
}

impl PluginSource for CatalogSource {
    fn plugin(&self, name: &str, requirement: &str) -> Result<Plugin, PluginProblem> {
        self.resolve(name, requirement).map_err(problem)
    }

    fn pinned(&self, pin: &Pin) -> Result<Plugin, PluginProblem> {
        let version = semver::Version::parse(&pin.version).map_err(|err| {
            PluginProblem::Unavailable(format!(
                "`{}` was pinned at `{}`, which is not semver: {err}",
                pin.plugin, pin.version
            ))
        })?;
        self.exact(&pin.plugin, &version, &pin.sha256)
            .map_err(|err| match err {
                CatalogError::Refused(Refusal::NotFound { .. }) => {
                    PluginProblem::Unavailable(format!(
                        "`{}@{}` (sha256 {}) was deployed, but neither the catalogue nor the cache has it now",
                        pin.plugin, pin.version, pin.sha256
                    ))
                }
                other => problem(other),
            })
    }
}
