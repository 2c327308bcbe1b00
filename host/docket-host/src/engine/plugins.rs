//! Where a host gets the plugins workflows name, and how a deployment stays
//! on the exact bytes it was deployed with.
//!
//! Deploying resolves each `uses:` requirement through the host's
//! [`PluginSource`] and records the result as [`Pin`]s with the deployment.
//! Loading that deployment again (after a restart, or for an old version)
//! compiles it against [`Pinned`], which answers every requirement with
//! the pinned plugin only, so a version published since never reaches a
//! running case.

use crate::Json;
use crate::plugin::{Directory, Plugin, routes_for};
use crate::store::Pin;
use crate::workflow::{PluginFacts, PluginProblem};
use std::collections::HashMap;
use std::sync::Mutex;

/// Where a host finds the plugins workflows name: a [`Directory`], or a
/// catalogue ([`crate::catalog::CatalogSource`]).
pub trait PluginSource: PluginFacts + Send + Sync {
    /// The plugin `name` matching the semver requirement, as a new
    /// deployment resolves it.
    ///
    /// # Errors
    ///
    /// Why there is no such plugin, or why it is refused.
    fn plugin(&self, name: &str, requirement: &str) -> Result<Plugin, PluginProblem>;

    /// Exactly the plugin a deployment pinned: that version, those bytes.
    ///
    /// # Errors
    ///
    /// [`PluginProblem::Unavailable`] if those bytes cannot be had, or why
    /// they are refused now.
    fn pinned(&self, pin: &Pin) -> Result<Plugin, PluginProblem>;
}

impl PluginSource for Directory {
    fn plugin(&self, name: &str, requirement: &str) -> Result<Plugin, PluginProblem> {
        self.resolve(name, requirement).cloned()
    }

    fn pinned(&self, pin: &Pin) -> Result<Plugin, PluginProblem> {
        Directory::pinned(self, pin).cloned()
    }
}

/// A deployment's pins as a plugin source: a requirement the deployment
/// pinned gets its pinned plugin, anything else nothing.
pub(super) struct Pinned<'a> {
    source: &'a dyn PluginSource,
    pins: &'a [Pin],
    loaded: Mutex<HashMap<String, Plugin>>,
}

impl<'a> Pinned<'a> {
    pub(super) fn new(source: &'a dyn PluginSource, pins: &'a [Pin]) -> Pinned<'a> {
        Pinned {
            source,
            pins,
            loaded: Mutex::new(HashMap::new()),
        }
    }
}

impl PluginFacts for Pinned<'_> {
    fn routes(
        &self,
        name: &str,
        version: &str,
        config: &Json,
    ) -> Result<Vec<String>, PluginProblem> {
        routes_for(&self.plugin(name, version)?, config)
    }
}

impl PluginSource for Pinned<'_> {
    fn plugin(&self, name: &str, requirement: &str) -> Result<Plugin, PluginProblem> {
        let pin = self
            .pins
            .iter()
            .find(|pin| pin.plugin == name && pin.requirement == requirement)
            .ok_or_else(|| {
                PluginProblem::Unavailable(format!(
                    "the deployment pinned no plugin for `{name}@{requirement}`"
                ))
            })?;
        self.pinned(pin)
    }

    fn pinned(&self, pin: &Pin) -> Result<Plugin, PluginProblem> {
        let mut loaded = self
            .loaded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(plugin) = loaded.get(&pin.sha256) {
            return Ok(plugin.clone());
        }
        let plugin = self.source.pinned(pin)?;
        loaded.insert(pin.sha256.clone(), plugin.clone());
        Ok(plugin)
    }
}
