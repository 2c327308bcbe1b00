//! A host's trust policy: which publisher keys it accepts, for which
//! plugin names. A YAML file:
//!
//! ```yaml
//! publishers:
//!   - name: platform-team
//!     key: 3f2a…            # the publisher's Ed25519 public key, hex
//!     plugins: ["*"]        # every plugin
//!   - name: fire-department
//!     key: 9c01…
//!     plugins: [fire-]      # only plugins whose names start with `fire-`
//! ```

use crate::keys::PublicKey;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Which keys a host accepts for which plugin names.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustPolicy {
    /// The accepted publishers.
    pub publishers: Vec<Publisher>,
}

/// One accepted publisher.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Publisher {
    /// Who it is, for messages.
    pub name: String,
    /// Its public key.
    pub key: PublicKey,
    /// Name prefixes of the plugins it may publish; `*` for all.
    pub plugins: Vec<String>,
}

/// Why a trust policy cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("trust policy `{}`: {reason}", path.display())]
pub struct PolicyError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong, with the line where the parser says.
    pub reason: String,
}

impl TrustPolicy {
    /// Reads the policy file at `path`.
    ///
    /// # Errors
    ///
    /// If it cannot be read or is not a policy.
    pub fn load(path: &Path) -> Result<TrustPolicy, PolicyError> {
        let error = |reason: String| PolicyError {
            path: path.to_owned(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|err| error(err.to_string()))?;
        let policy: TrustPolicy =
            serde_saphyr::from_str(&text).map_err(|err| error(err.to_string()))?;
        if let Some(publisher) = policy.publishers.iter().find(|p| p.plugins.is_empty()) {
            return Err(error(format!(
                "publisher `{}` lists no plugins; give name prefixes, or `*` for all",
                publisher.name
            )));
        }
        Ok(policy)
    }

    /// A policy accepting `key` for plugins whose names start with one of `prefixes`.
    pub fn trusting(name: &str, key: PublicKey, prefixes: &[&str]) -> TrustPolicy {
        TrustPolicy {
            publishers: vec![Publisher {
                name: name.to_owned(),
                key,
                plugins: prefixes.iter().map(|p| (*p).to_owned()).collect(),
            }],
        }
    }

    /// Whether `key` may publish plugin `name`.
    pub fn trusts(&self, key: &PublicKey, name: &str) -> bool {
        self.publishers.iter().any(|publisher| {
            publisher.key == *key
                && publisher
                    .plugins
                    .iter()
                    .any(|prefix| prefix == "*" || name.starts_with(prefix.as_str()))
        })
    }
}
