//! `Grants`: which host capabilities a deployment gives a plugin, and the
//! settings and secrets behind them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

/// A host capability a plugin may import, one WIT interface each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Capability {
    /// `docket:step/log`: write to the host's log.
    Log,
    /// `docket:step/notify`: ask the host to deliver a message.
    Notify,
    /// `docket:step/settings`: read deployment settings.
    Settings,
    /// `docket:step/secrets`: read secrets.
    Secrets,
}

impl Capability {
    /// Every capability.
    pub const ALL: [Capability; 4] = [
        Capability::Log,
        Capability::Notify,
        Capability::Settings,
        Capability::Secrets,
    ];

    /// The interface's name within the `docket:step` package.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Log => "log",
            Capability::Notify => "notify",
            Capability::Settings => "settings",
            Capability::Secrets => "secrets",
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name is not a capability.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown capability `{0}` (expected one of: log, notify, settings, secrets)")]
pub struct UnknownCapability(pub String);

impl FromStr for Capability {
    type Err = UnknownCapability;

    fn from_str(name: &str) -> Result<Capability, UnknownCapability> {
        Capability::ALL
            .into_iter()
            .find(|c| c.as_str() == name)
            .ok_or_else(|| UnknownCapability(name.to_owned()))
    }
}

/// What a deployment grants one plugin: capabilities, and the settings and
/// secrets they read.
///
/// The host links only granted capabilities; a plugin importing anything
/// else is refused when it is loaded. [`Grants::default`] grants `log`
/// alone, which every plugin built with the SDK imports to report panics.
#[derive(Clone, PartialEq, Eq)]
pub struct Grants {
    capabilities: BTreeSet<Capability>,
    settings: BTreeMap<String, String>,
    secrets: BTreeMap<String, String>,
}

impl Default for Grants {
    fn default() -> Grants {
        Grants::none().grant(Capability::Log)
    }
}

impl Grants {
    /// Grants nothing, not even `log`.
    pub fn none() -> Grants {
        Grants {
            capabilities: BTreeSet::new(),
            settings: BTreeMap::new(),
            secrets: BTreeMap::new(),
        }
    }

    /// Grants `capability` as well.
    pub fn grant(mut self, capability: Capability) -> Grants {
        self.capabilities.insert(capability);
        self
    }

    /// Sets a setting, readable when [`Capability::Settings`] is granted.
    pub fn setting(mut self, key: impl Into<String>, value: impl Into<String>) -> Grants {
        self.settings.insert(key.into(), value.into());
        self
    }

    /// Sets a secret, readable when [`Capability::Secrets`] is granted.
    pub fn secret(mut self, name: impl Into<String>, value: impl Into<String>) -> Grants {
        self.secrets.insert(name.into(), value.into());
        self
    }

    /// Whether `capability` is granted.
    pub fn allows(&self, capability: Capability) -> bool {
        self.capabilities.contains(&capability)
    }

    /// The granted capabilities, in order.
    pub fn capabilities(&self) -> impl Iterator<Item = Capability> + '_ {
        self.capabilities.iter().copied()
    }

    pub(crate) fn setting_value(&self, key: &str) -> Option<&str> {
        self.settings.get(key).map(String::as_str)
    }

    pub(crate) fn secret_value(&self, name: &str) -> Option<&str> {
        self.secrets.get(name).map(String::as_str)
    }
}

impl fmt::Debug for Grants {
    /// Shows secret names, never their values.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grants")
            .field("capabilities", &self.capabilities)
            .field("settings", &self.settings)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .finish()
    }
}
