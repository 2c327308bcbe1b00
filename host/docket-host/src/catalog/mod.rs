//! The plugin catalogue: platform teams publish vetted steps once, every
//! department reuses them, and a host runs only what a publisher it trusts
//! signed.
//!
//! - [`Package`]: a component, its [`Manifest`] (what `describe` says, the
//!   capabilities it imports, the owning team, licence and changelog) and
//!   publishers' [`Signature`]s over the exact manifest and component bytes.
//! - [`TrustPolicy`]: which publisher keys a host accepts, per name prefix.
//! - [`Catalog`]: where packages live, stored by content (sha256), names
//!   and versions pointing to digests; [`DirectoryCatalog`] for a shared
//!   drive or an air-gapped site.
//! - [`CatalogSource`]: a host's plugins taken from a catalogue, verified,
//!   and cached locally by digest.
//!
//! [`Catalog::pull`] hands out a package only after [`Package::verify`]:
//! a changed byte, a missing, bad or untrusted signature, a yanked version
//! or a manifest that misstates the component is a [`Refusal`] that names
//! the reason.

mod directory;
mod package;
mod source;
mod trust;

pub use directory::DirectoryCatalog;
pub use package::{
    About, ComponentRef, MANIFEST_FORMAT, Manifest, Package, Signature, signed_statement,
};
pub use source::CatalogSource;
pub use trust::{PolicyError, Publisher, TrustPolicy};

use crate::keys::PublicKey;
use crate::plugin::Runtime;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;

/// Why a host refuses a package. Nothing is run or cached then.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// No signature at all.
    #[error("plugin `{plugin}` is not signed; a publisher must sign it (`docket plugin sign`)")]
    Unsigned {
        /// `name@version`.
        plugin: String,
    },
    /// Signatures that do not match this manifest and component.
    #[error(
        "plugin `{plugin}`: no signature matches its manifest and component (signed by {}): the package was changed after signing",
        keys.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    )]
    BadSignature {
        /// `name@version`.
        plugin: String,
        /// The keys the signatures name.
        keys: Vec<PublicKey>,
    },
    /// Valid signatures, by keys the trust policy does not accept for this name.
    #[error(
        "plugin `{plugin}` is signed by {}, which the trust policy does not accept for this plugin",
        keys.iter().map(|k| format!("key {k}")).collect::<Vec<_>>().join(", ")
    )]
    UntrustedKey {
        /// `name@version`.
        plugin: String,
        /// The keys that signed it.
        keys: Vec<PublicKey>,
    },
    /// Bytes that are not the ones the package names.
    #[error(
        "plugin `{plugin}`: {what} has sha256 {actual}, not {expected}: its bytes were changed"
    )]
    DigestMismatch {
        /// `name@version`.
        plugin: String,
        /// `the component` or `the manifest`.
        what: String,
        /// The digest the package names.
        expected: String,
        /// The digest of the bytes found.
        actual: String,
    },
    /// The version was withdrawn.
    #[error("plugin `{plugin}` was yanked: {reason}")]
    Yanked {
        /// `name@version`.
        plugin: String,
        /// Why, as the publisher said.
        reason: String,
    },
    /// The manifest misstates the component.
    #[error("plugin `{plugin}`: the manifest {detail}")]
    ManifestMismatch {
        /// `name@version`.
        plugin: String,
        /// The first difference.
        detail: String,
    },
    /// The component does not load.
    #[error("plugin `{plugin}` cannot be loaded: {reason}")]
    Unloadable {
        /// `name@version`.
        plugin: String,
        /// Why.
        reason: String,
    },
    /// Nothing matches.
    #[error("the catalogue has no version of plugin `{name}` matching `{requirement}`{}", if available.is_empty() { String::new() } else { format!(" (it has {})", available.join(", ")) })]
    NotFound {
        /// The name asked for.
        name: String,
        /// The semver requirement.
        requirement: String,
        /// The versions there are.
        available: Vec<String>,
    },
}

/// Why a catalogue operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// The package is refused.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// `name@version` is published with other content; versions are immutable.
    #[error("plugin `{plugin}` is already published with other content; publish a new version")]
    Exists {
        /// `name@version`.
        plugin: String,
    },
    /// A name or version that cannot be published.
    #[error("{0}")]
    Invalid(String),
    /// A file could not be read or written.
    #[error("`{}`: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// A file is not what it should be.
    #[error("`{}` is malformed: {reason}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// A published version: digests, signatures, and whether it was yanked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Release {
    /// sha256 of the manifest, hex: the package's identity.
    pub manifest: String,
    /// sha256 of the component, hex.
    pub component: String,
    /// Publishers' signatures.
    pub signatures: Vec<Signature>,
    /// Why the version was withdrawn, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yanked: Option<String>,
}

/// The catalogue at `location`: a directory path (created if absent).
/// Every kind of location is opened here, so the CLI, the host and the
/// tests name a catalogue the same way.
///
/// # Errors
///
/// If the location cannot be opened.
pub fn open(location: &str) -> Result<Arc<dyn Catalog>, CatalogError> {
    Ok(Arc::new(DirectoryCatalog::open(location)?))
}

/// Where packages live. Every location stores them by content and hands
/// them out only through [`Catalog::pull`], verified.
pub trait Catalog: Send + Sync {
    /// Publishes a package (its signatures with it). Publishing the same
    /// content again adds its new signatures; other content under a
    /// published `name@version` is refused.
    ///
    /// # Errors
    ///
    /// [`CatalogError::Exists`], [`CatalogError::Invalid`], or I/O.
    fn publish(&self, package: &Package) -> Result<Release, CatalogError>;

    /// The plugin names, sorted.
    ///
    /// # Errors
    ///
    /// If the catalogue cannot be read.
    fn names(&self) -> Result<Vec<String>, CatalogError>;

    /// The published versions of `name`, oldest first.
    ///
    /// # Errors
    ///
    /// If the catalogue cannot be read.
    fn releases(&self, name: &str) -> Result<Vec<(semver::Version, Release)>, CatalogError>;

    /// The package of `name@version` as stored, not yet verified; a
    /// manifest whose bytes are not its digest is refused here.
    ///
    /// # Errors
    ///
    /// [`Refusal::NotFound`], [`Refusal::DigestMismatch`], or I/O.
    fn fetch(&self, name: &str, version: &semver::Version) -> Result<Package, CatalogError>;

    /// Withdraws `name@version`: it stays for cases pinned to it but is
    /// no longer pulled.
    ///
    /// # Errors
    ///
    /// [`Refusal::NotFound`], or I/O.
    fn yank(&self, name: &str, version: &semver::Version, reason: &str)
    -> Result<(), CatalogError>;

    /// The newest version of `name` matching `requirement` that was not
    /// yanked.
    ///
    /// # Errors
    ///
    /// [`Refusal::NotFound`]; [`Refusal::Yanked`] if every match was
    /// yanked; or what [`Catalog::releases`] fails with.
    fn resolve(
        &self,
        name: &str,
        requirement: &str,
    ) -> Result<(semver::Version, Release), CatalogError> {
        let req = semver::VersionReq::parse(requirement).map_err(|err| {
            CatalogError::Invalid(format!(
                "`{requirement}` is not a semver requirement: {err}"
            ))
        })?;
        let releases = self.releases(name)?;
        let matching: Vec<&(semver::Version, Release)> =
            releases.iter().filter(|(v, _)| req.matches(v)).collect();
        if let Some(found) = matching.iter().rev().find(|(_, r)| r.yanked.is_none()) {
            return Ok((*found).clone());
        }
        match matching.last() {
            Some((version, release)) => Err(Refusal::Yanked {
                plugin: format!("{name}@{version}"),
                reason: release.yanked.clone().unwrap_or_default(),
            }
            .into()),
            None => Err(Refusal::NotFound {
                name: name.to_owned(),
                requirement: requirement.to_owned(),
                available: releases.iter().map(|(v, _)| v.to_string()).collect(),
            }
            .into()),
        }
    }

    /// Resolves, fetches and verifies: the only way a package leaves a
    /// catalogue for a host.
    ///
    /// # Errors
    ///
    /// Any [`Refusal`], or what fetching fails with.
    fn pull(
        &self,
        runtime: &Runtime,
        name: &str,
        requirement: &str,
        policy: &TrustPolicy,
    ) -> Result<Package, CatalogError> {
        let (version, _) = self.resolve(name, requirement)?;
        let package = self.fetch(name, &version)?;
        package.verify(runtime, policy)?;
        Ok(package)
    }
}
