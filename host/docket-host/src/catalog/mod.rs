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
//!   drive or an air-gapped site, `OciCatalog` (the `oci` feature) for any
//!   OCI registry; [`open`] names either by a location string.
//! - [`CatalogSource`]: a host's plugins taken from a catalogue, verified,
//!   and cached locally by digest.
//!
//! [`Catalog::pull`] hands out a package only after [`Package::verify`]:
//! a changed byte, a missing, bad or untrusted signature, a yanked version
//! or a manifest that misstates the component is a [`Refusal`] that names
//! the reason.

mod directory;
#[cfg(feature = "oci")]
mod oci;
mod package;
mod source;
mod trust;

pub use directory::DirectoryCatalog;
#[cfg(feature = "oci")]
pub use oci::OciCatalog;
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
        /// `the component`, `the manifest`, or in a registry `its OCI manifest`.
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

impl Refusal {
    /// `name@version` was asked for by its exact version and is not there.
    fn missing_version(name: &str, version: &semver::Version) -> Refusal {
        Refusal::NotFound {
            name: name.to_owned(),
            requirement: format!("={version}"),
            available: Vec::new(),
        }
    }
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
    /// The registry could not be reached at all (refused, timed out, TLS).
    #[error("cannot reach the registry at `{url}`: {reason}")]
    Unreachable {
        /// The registry's base URL.
        url: String,
        /// What failed, innermost cause last.
        reason: String,
    },
    /// The registry answered, but not with what was asked for: an error
    /// status, a refused upload, or an artifact that is not a docket release.
    #[error("registry `{reference}`: {reason}")]
    Registry {
        /// What was read or written: `host/repository[:tag]`.
        reference: String,
        /// What the registry said, or what is wrong with what it sent.
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

/// The catalogue at `location`. Every kind of location is opened here, so
/// the CLI, the host and the tests name a catalogue the same way:
///
/// - `oci://host[:port]/namespace`: an OCI registry over HTTPS;
/// - `oci+http://host:port/namespace`: one over plain HTTP, for a registry
///   on the loopback interface or a test;
/// - anything else: a directory path (created if absent).
///
/// A registry is accessed with the credentials in `DOCKET_REGISTRY_USERNAME`
/// and `DOCKET_REGISTRY_PASSWORD` when both are set, anonymously otherwise.
///
/// # Errors
///
/// If the location cannot be opened, or names a registry and this build
/// lacks the `oci` feature.
pub fn open(location: &str) -> Result<Arc<dyn Catalog>, CatalogError> {
    if location.starts_with("oci://") || location.starts_with("oci+http://") {
        return open_registry(location);
    }
    Ok(Arc::new(DirectoryCatalog::open(location)?))
}

#[cfg(feature = "oci")]
fn open_registry(location: &str) -> Result<Arc<dyn Catalog>, CatalogError> {
    let catalog = OciCatalog::open(location)?;
    let username = std::env::var("DOCKET_REGISTRY_USERNAME");
    let password = std::env::var("DOCKET_REGISTRY_PASSWORD");
    Ok(Arc::new(match (username, password) {
        (Ok(username), Ok(password)) => catalog.with_basic_auth(username, password),
        _ => catalog,
    }))
}

#[cfg(not(feature = "oci"))]
fn open_registry(location: &str) -> Result<Arc<dyn Catalog>, CatalogError> {
    Err(CatalogError::Invalid(format!(
        "`{location}` is a registry location, and this build of docket-host has no registry support: enable its `oci` feature"
    )))
}

/// A plugin name a catalogue accepts: lowercase letters, digits and `-`.
/// Such a name is also a valid OCI repository path component.
fn check_name(name: &str) -> Result<(), CatalogError> {
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if valid {
        Ok(())
    } else {
        Err(CatalogError::Invalid(format!(
            "`{name}` is not a plugin name a catalogue accepts: use lowercase letters, digits and `-`"
        )))
    }
}

/// The version of a package that may be published: its name must be one
/// a catalogue accepts, and its version semver.
fn publishable_version(manifest: &Manifest) -> Result<semver::Version, CatalogError> {
    check_name(&manifest.name)?;
    semver::Version::parse(&manifest.version).map_err(|err| {
        CatalogError::Invalid(format!(
            "plugin `{}` has version `{}`, which is not semver: {err}",
            manifest.name, manifest.version
        ))
    })
}

impl Release {
    /// The release publishing `package` makes, given what is stored under
    /// its `name@version` already: versions are immutable, so other content
    /// is [`CatalogError::Exists`]; the same content gains the package's
    /// new signatures.
    ///
    /// # Errors
    ///
    /// [`CatalogError::Exists`], or [`CatalogError::Invalid`] when the
    /// component is not the one the manifest names.
    pub fn published(
        existing: Option<Release>,
        package: &Package,
    ) -> Result<Release, CatalogError> {
        let digest = package.digest();
        let mut release = match existing {
            Some(existing) if existing.manifest != digest => {
                return Err(CatalogError::Exists {
                    plugin: package.id(),
                });
            }
            Some(existing) => existing,
            None => Release {
                manifest: digest,
                component: package.manifest.component.sha256.clone(),
                signatures: Vec::new(),
                yanked: None,
            },
        };
        if crate::plugin::PluginDigest::of(&package.component).to_hex() != release.component {
            return Err(CatalogError::Invalid(format!(
                "plugin `{}`: the component is not the one its manifest names",
                package.id()
            )));
        }
        for signature in &package.signatures {
            if !release.signatures.contains(signature) {
                release.signatures.push(signature.clone());
            }
        }
        Ok(release)
    }
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

    /// The manifest of `name@version`, checked against its digest, without
    /// the component: for listing and searching.
    ///
    /// # Errors
    ///
    /// What [`Catalog::fetch`] fails with.
    fn manifest(&self, name: &str, version: &semver::Version) -> Result<Manifest, CatalogError> {
        Ok(self.fetch(name, version)?.manifest)
    }

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
