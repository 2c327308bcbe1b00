//! A plugin package: the component, its manifest, and publishers'
//! signatures over both.

use super::Refusal;
use super::trust::TrustPolicy;
use crate::keys::{PublicKey, SigningKey};
use crate::ledger::canonical;
use crate::plugin::{Inspection, LoadError, PluginDigest, Runtime};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// The manifest format this build writes and reads.
pub const MANIFEST_FORMAT: &str = "docket-plugin/1";

/// The signed statement's format.
const SIGNATURE_FORMAT: &str = "docket-plugin-signature/1";

/// What a package says about its component; `describe` gives most of it,
/// the publisher the rest. Published as `schema/plugin-manifest.schema.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "docket plugin manifest")]
pub struct Manifest {
    /// `docket-plugin/1`.
    pub format: String,
    /// The plugin's name, as its `describe` gives it.
    pub name: String,
    /// Its semantic version, as its `describe` gives it.
    pub version: String,
    /// What the step is for.
    pub description: String,
    /// `validate`, `route`, `notify`, `transform` or `other`.
    pub kind: String,
    /// The team that owns and maintains it.
    pub team: String,
    /// Its licence, as an SPDX expression.
    pub license: String,
    /// Where to read more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
    /// The capabilities the component imports: what a department grants
    /// when it uses the plugin.
    pub capabilities: Vec<String>,
    /// JSON Schema of its config.
    pub config_schema: Value,
    /// JSON Schema of the case data it accepts.
    pub input_schema: Value,
    /// JSON Schema of the case data it returns.
    pub output_schema: Value,
    /// The routes it can choose, when they do not depend on its config.
    #[serde(default)]
    pub routes: Vec<String>,
    /// What changed in this version.
    pub changelog: String,
    /// The component the manifest describes.
    pub component: ComponentRef,
}

/// The component of a package, by content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ComponentRef {
    /// sha256 of the component, hex.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
}

/// What `describe` cannot tell: the publisher's part of a manifest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct About {
    /// The owning team.
    pub team: String,
    /// SPDX licence expression.
    pub license: String,
    /// Where to read more.
    pub homepage: Option<String>,
    /// What changed in this version.
    pub changelog: String,
}

impl Manifest {
    /// The manifest of the inspected component.
    pub fn describe(inspection: &Inspection, about: About) -> Manifest {
        let info = &inspection.info;
        Manifest {
            format: MANIFEST_FORMAT.to_owned(),
            name: info.name.clone(),
            version: info.version.clone(),
            description: info.description.clone(),
            kind: info.kind.as_str().to_owned(),
            team: about.team,
            license: about.license,
            homepage: about.homepage,
            capabilities: capabilities_of(inspection),
            config_schema: info.config_schema.to_value(),
            input_schema: info.input_schema.to_value(),
            output_schema: info.output_schema.to_value(),
            routes: info.routes.clone(),
            changelog: about.changelog,
            component: ComponentRef {
                sha256: inspection.digest.to_hex(),
                size: inspection.size as u64,
            },
        }
    }

    /// Where the manifest says something the component does not: the
    /// first difference, in words.
    pub fn differs_from(&self, inspection: &Inspection) -> Option<String> {
        let described = Manifest::describe(
            inspection,
            About {
                team: self.team.clone(),
                license: self.license.clone(),
                homepage: self.homepage.clone(),
                changelog: self.changelog.clone(),
            },
        );
        let fields: [(&str, String, String); 8] = [
            ("format", self.format.clone(), described.format),
            ("name", self.name.clone(), described.name),
            ("version", self.version.clone(), described.version),
            ("kind", self.kind.clone(), described.kind),
            (
                "capabilities",
                self.capabilities.join(", "),
                described.capabilities.join(", "),
            ),
            (
                "config schema",
                self.config_schema.to_string(),
                described.config_schema.to_string(),
            ),
            (
                "input schema",
                self.input_schema.to_string(),
                described.input_schema.to_string(),
            ),
            (
                "output schema",
                self.output_schema.to_string(),
                described.output_schema.to_string(),
            ),
        ];
        fields
            .into_iter()
            .find(|(_, claimed, actual)| claimed != actual)
            .map(|(field, claimed, actual)| {
                format!("says {field} `{claimed}`, but the component's is `{actual}`")
            })
    }

    /// The stored form: pretty JSON with sorted keys and a newline, the
    /// same bytes from every build; its sha256 is the manifest's digest.
    pub fn to_bytes(&self) -> Vec<u8> {
        let value = crate::json::sorted(serde_json::to_value(self).unwrap_or_default());
        let mut bytes = serde_json::to_vec_pretty(&value).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }

    /// The manifest's JSON Schema.
    pub fn json_schema() -> String {
        let schema = schemars::generate::SchemaSettings::draft2020_12()
            .for_deserialize()
            .into_generator()
            .into_root_schema_for::<Manifest>();
        let value = crate::json::sorted(schema.to_value());
        let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
        text.push('\n');
        text
    }
}

/// The capabilities a component imports, sorted by name.
fn capabilities_of(inspection: &Inspection) -> Vec<String> {
    let mut names: Vec<String> = inspection
        .imports
        .capabilities
        .iter()
        .map(|c| c.as_str().to_owned())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// A publisher's signature over a package.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// The publisher's public key.
    pub key: PublicKey,
    /// Ed25519 over [`signed_statement`], hex.
    #[serde(with = "hex")]
    pub signature: [u8; 64],
}

/// What a publisher signs: canonical JSON binding the name and version to
/// the exact manifest and component bytes, so neither can be swapped, nor
/// a tag repointed, without the signature failing.
pub fn signed_statement(manifest: &Manifest, manifest_sha256: &str) -> Vec<u8> {
    canonical(&json!({
        "format": SIGNATURE_FORMAT,
        "name": manifest.name,
        "version": manifest.version,
        "manifest_sha256": manifest_sha256,
        "component_sha256": manifest.component.sha256,
    }))
}

/// A component with its manifest and signatures.
#[derive(Clone, Debug, PartialEq)]
pub struct Package {
    /// The manifest.
    pub manifest: Manifest,
    /// The manifest as stored; its sha256 is what signatures cover.
    pub manifest_bytes: Vec<u8>,
    /// The component.
    pub component: Vec<u8>,
    /// Publishers' signatures.
    pub signatures: Vec<Signature>,
}

impl Package {
    /// Packs a component: inspects it (the same checks as loading it) and
    /// writes its manifest. The package is unsigned.
    ///
    /// # Errors
    ///
    /// If the component cannot be loaded.
    pub fn pack(runtime: &Runtime, component: Vec<u8>, about: About) -> Result<Package, LoadError> {
        let inspection = runtime.inspect(&component)?;
        let manifest = Manifest::describe(&inspection, about);
        Ok(Package {
            manifest_bytes: manifest.to_bytes(),
            manifest,
            component,
            signatures: Vec::new(),
        })
    }

    /// `name@version`.
    pub fn id(&self) -> String {
        format!("{}@{}", self.manifest.name, self.manifest.version)
    }

    /// sha256 of the stored manifest: the package's identity.
    pub fn digest(&self) -> String {
        PluginDigest::of(&self.manifest_bytes).to_hex()
    }

    /// Adds `key`'s signature (once per key).
    pub fn sign(&mut self, key: &SigningKey) {
        let public = key.public();
        self.signatures.retain(|s| s.key != public);
        self.signatures.push(Signature {
            key: public,
            signature: key.sign(&signed_statement(&self.manifest, &self.digest())),
        });
    }

    /// Checks everything a host must know before it runs the component:
    /// the bytes are those the manifest names, a key the policy trusts for
    /// this name signed exactly this manifest, and the manifest tells the
    /// truth about the component.
    ///
    /// # Errors
    ///
    /// The first [`Refusal`], in that order.
    pub fn verify(&self, runtime: &Runtime, policy: &TrustPolicy) -> Result<(), Refusal> {
        self.check_digest()?;
        let name = &self.manifest.name;
        if self.signatures.is_empty() {
            return Err(Refusal::Unsigned { plugin: self.id() });
        }
        let statement = signed_statement(&self.manifest, &self.digest());
        let valid: Vec<&PublicKey> = self
            .signatures
            .iter()
            .filter(|s| s.key.verifies(&statement, &s.signature))
            .map(|s| &s.key)
            .collect();
        if valid.is_empty() {
            return Err(Refusal::BadSignature {
                plugin: self.id(),
                keys: self.signatures.iter().map(|s| s.key).collect(),
            });
        }
        if !valid.iter().any(|key| policy.trusts(key, name)) {
            return Err(Refusal::UntrustedKey {
                plugin: self.id(),
                keys: valid.into_iter().copied().collect(),
            });
        }
        self.check_manifest(runtime)
    }

    /// What [`Package::verify`] checks but the signatures: the component
    /// is the one the manifest names, and the manifest says what the
    /// component says of itself. For an author's or a reviewer's package,
    /// before anyone signs it.
    ///
    /// # Errors
    ///
    /// [`Refusal::DigestMismatch`], [`Refusal::Unloadable`] or
    /// [`Refusal::ManifestMismatch`].
    pub fn check(&self, runtime: &Runtime) -> Result<(), Refusal> {
        self.check_digest()?;
        self.check_manifest(runtime)
    }

    fn check_digest(&self) -> Result<(), Refusal> {
        let actual = PluginDigest::of(&self.component).to_hex();
        if actual == self.manifest.component.sha256 {
            Ok(())
        } else {
            Err(Refusal::DigestMismatch {
                plugin: self.id(),
                what: "the component".to_owned(),
                expected: self.manifest.component.sha256.clone(),
                actual,
            })
        }
    }

    fn check_manifest(&self, runtime: &Runtime) -> Result<(), Refusal> {
        let inspection = runtime
            .inspect(&self.component)
            .map_err(|err| Refusal::Unloadable {
                plugin: self.id(),
                reason: format!("{err:#}"),
            })?;
        match self.manifest.differs_from(&inspection) {
            Some(detail) => Err(Refusal::ManifestMismatch {
                plugin: self.id(),
                detail,
            }),
            None => Ok(()),
        }
    }

    /// Writes the package as a directory: `component.wasm`,
    /// `manifest.json`, `signatures.json`.
    ///
    /// # Errors
    ///
    /// If a file cannot be written.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("component.wasm"), &self.component)?;
        std::fs::write(dir.join("manifest.json"), &self.manifest_bytes)?;
        let mut signatures = serde_json::to_vec_pretty(&self.signatures)?;
        signatures.push(b'\n');
        std::fs::write(dir.join("signatures.json"), signatures)
    }

    /// Reads a package directory [`Package::write`] made.
    ///
    /// # Errors
    ///
    /// [`super::CatalogError::Io`] or [`super::CatalogError::Malformed`].
    pub fn read(dir: &Path) -> Result<Package, super::CatalogError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|source| super::CatalogError::Io { path, source })
        };
        let manifest_bytes = read("manifest.json")?;
        let manifest = parse(&dir.join("manifest.json"), &manifest_bytes)?;
        let signatures = match std::fs::read(dir.join("signatures.json")) {
            Ok(bytes) => parse(&dir.join("signatures.json"), &bytes)?,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => {
                return Err(super::CatalogError::Io {
                    path: dir.join("signatures.json"),
                    source,
                });
            }
        };
        Ok(Package {
            manifest,
            manifest_bytes,
            component: read("component.wasm")?,
            signatures,
        })
    }
}

/// Parses JSON file `path`, saying where it is wrong.
pub(super) fn parse<T: serde::de::DeserializeOwned>(
    path: &Path,
    bytes: &[u8],
) -> Result<T, super::CatalogError> {
    serde_json::from_slice(bytes).map_err(|err| super::CatalogError::Malformed {
        path: PathBuf::from(path),
        reason: err.to_string(),
    })
}
