//! A catalogue in an OCI registry (a self-hosted Distribution, Harbor,
//! GHCR, ACR, ...), laid out the way the WebAssembly ecosystem stores
//! components (wasm-pkg-tools, `wkg oci pull`), so that any wasm tool
//! fetches a plugin's component and docket finds its manifest and
//! signatures beside it:
//!
//! ```text
//! <namespace>/<name>:<version>   an image manifest
//!     config  application/vnd.wasm.config.v0+json  wasm, wasip2, imports, exports
//!     layer   application/wasm                     the component
//!     annotations
//!         dev.docket.manifest          the docket manifest, its exact bytes
//!         dev.docket.manifest.sha256   their sha256: the package's identity
//!         dev.docket.signatures        the publishers' signatures (JSON)
//!         dev.docket.yanked            why the version was withdrawn, if it was
//! <namespace>/docket.index:plugins   an artifact whose annotation lists the names
//! ```
//!
//! Annotations rather than referrers: `wkg` wants exactly one layer, and
//! an annotation is read with the manifest, needs no referrers API
//! (Distribution 2.x has none) and no fallback index to keep in step.
//! Adding a signature or yanking re-pushes the version's image manifest
//! with new annotations; the component and config blobs it points to never
//! change, and other content under a published version is refused as in a
//! directory. A registry with tag immutability switched on refuses that
//! re-push, so countersigning and yanking need it off.
//!
//! Names come from the index artifact, not from `/v2/_catalog`: GHCR and
//! Docker Hub do not serve the catalog API, and where it exists it lists
//! every repository of the registry, docket's or not. Plugin names cannot
//! contain `.`, so `docket.index` never collides with one.
//!
//! Tags cannot hold `+`: `1.0.0+build.5` is tagged `1.0.0_build.5`, as Helm
//! does; semver has no `_`, so the mapping is one to one.
//!
//! The registry client is async; each operation runs on the catalogue's
//! own small tokio runtime, driven from a scoped thread so that a caller
//! inside another tokio runtime (an HTTP server) does not panic.

use super::{
    Catalog, CatalogError, Manifest, Package, Refusal, Release, Signature, publishable_version,
};
use crate::plugin::PluginDigest;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{DigestError, OciDistributionError, OciErrorCode};
use oci_client::manifest::{OCI_IMAGE_MEDIA_TYPE, OciDescriptor, OciImageManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use std::collections::BTreeMap;
use std::time::Duration;

const WASM_CONFIG: &str = "application/vnd.wasm.config.v0+json";
const WASM_LAYER: &str = "application/wasm";
const EMPTY: &str = "application/vnd.oci.empty.v1+json";
const INDEX_ARTIFACT: &str = "application/vnd.docket.index.v1+json";

const MANIFEST: &str = "dev.docket.manifest";
const MANIFEST_SHA256: &str = "dev.docket.manifest.sha256";
const SIGNATURES: &str = "dev.docket.signatures";
const YANKED: &str = "dev.docket.yanked";
const NAMES: &str = "dev.docket.names";

const INDEX_REPOSITORY: &str = "docket.index";
const INDEX_TAG: &str = "plugins";

/// Tags per page when listing a repository's versions.
const PAGE: usize = 100;

/// A catalogue in an OCI registry.
pub struct OciCatalog {
    location: String,
    /// `scheme://host[:port]`, for messages.
    url: String,
    registry: String,
    namespace: String,
    client: Client,
    auth: RegistryAuth,
    runtime: Background,
}

impl std::fmt::Debug for OciCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OciCatalog")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// The runtime the registry client runs on. Dropping a tokio runtime
/// inside another one panics, and a catalogue may be dropped in an async
/// handler, so it is shut down without waiting.
struct Background(Option<tokio::runtime::Runtime>);

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// A version's image manifest, read and understood.
struct Stored {
    reference: Reference,
    image: OciImageManifest,
    release: Release,
    manifest_text: String,
    layer: OciDescriptor,
}

impl OciCatalog {
    /// The catalogue at `oci://host[:port]/namespace` (HTTPS) or
    /// `oci+http://host:port/namespace` (plain HTTP, for a loopback or test
    /// registry), accessed anonymously. Nothing is sent until it is used.
    ///
    /// # Errors
    ///
    /// [`CatalogError::Invalid`] if the location is not one of those.
    pub fn open(location: &str) -> Result<OciCatalog, CatalogError> {
        let invalid = |why: &str| {
            CatalogError::Invalid(format!(
                "`{location}` is not a registry location: {why} (use `oci://host[:port]/namespace`, or `oci+http://` for plain HTTP)"
            ))
        };
        let (protocol, scheme, rest) = if let Some(rest) = location.strip_prefix("oci://") {
            (ClientProtocol::Https, "https", rest)
        } else if let Some(rest) = location.strip_prefix("oci+http://") {
            (ClientProtocol::Http, "http", rest)
        } else {
            return Err(invalid("it has neither `oci://` nor `oci+http://`"));
        };
        let (registry, namespace) = rest
            .trim_end_matches('/')
            .split_once('/')
            .ok_or_else(|| invalid("it names no namespace"))?;
        if registry.is_empty() || registry.contains(['@', '?', '#']) {
            return Err(invalid("it names no registry host"));
        }
        if !namespace.split('/').all(is_path_component) {
            return Err(invalid(
                "a namespace is lowercase letters and digits, separated by `/`, `.`, `_` or `-`",
            ));
        }
        // rustls needs one process-wide crypto provider; if another part of
        // the process installed one already, that one serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = Client::try_from(ClientConfig {
            protocol,
            // One request per blob: every registry accepts it, and
            // components are small.
            use_monolithic_push: true,
            connect_timeout: Some(Duration::from_secs(10)),
            read_timeout: Some(Duration::from_secs(60)),
            ..ClientConfig::default()
        })
        .map_err(|err| invalid(&chain(&err)))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("docket-registry")
            .enable_all()
            .build()
            .map_err(|err| invalid(&format!("cannot start its client: {err}")))?;
        Ok(OciCatalog {
            location: location.to_owned(),
            url: format!("{scheme}://{registry}"),
            registry: registry.to_owned(),
            namespace: namespace.to_owned(),
            client,
            auth: RegistryAuth::Anonymous,
            runtime: Background(Some(runtime)),
        })
    }

    /// The same catalogue, accessed with HTTP basic credentials (a robot
    /// account, or a user and an access token).
    #[must_use]
    pub fn with_basic_auth(self, username: String, password: String) -> OciCatalog {
        OciCatalog {
            auth: RegistryAuth::Basic(username, password),
            ..self
        }
    }

    /// The location it was opened with.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Where `name@version` is stored: `host/namespace/name:tag`.
    ///
    /// # Errors
    ///
    /// [`CatalogError::Invalid`] if the version makes a tag longer than a
    /// registry accepts (128 characters).
    pub fn reference(&self, name: &str, version: &semver::Version) -> Result<String, CatalogError> {
        Ok(self.version_reference(name, version)?.whole())
    }

    fn version_reference(
        &self,
        name: &str,
        version: &semver::Version,
    ) -> Result<Reference, CatalogError> {
        let tag = tag(version);
        if tag.len() > 128 {
            return Err(CatalogError::Invalid(format!(
                "plugin `{name}@{version}`: the version is longer than the 128 characters of an OCI tag"
            )));
        }
        Ok(Reference::with_tag(
            self.registry.clone(),
            self.repository(name),
            tag,
        ))
    }

    fn repository(&self, name: &str) -> String {
        format!("{}/{name}", self.namespace)
    }

    fn index_reference(&self) -> Reference {
        Reference::with_tag(
            self.registry.clone(),
            self.repository(INDEX_REPOSITORY),
            INDEX_TAG.to_owned(),
        )
    }

    /// Runs a registry operation to completion. The runtime is driven from
    /// a fresh scoped thread because `block_on` panics on a thread that is
    /// already inside a tokio runtime; the thread costs microseconds, the
    /// request milliseconds.
    fn block_on<F>(&self, future: F) -> F::Output
    where
        F: Future + Send,
        F::Output: Send,
    {
        let runtime = self
            .runtime
            .0
            .as_ref()
            .expect("the runtime is taken only when the catalogue is dropped");
        std::thread::scope(
            |scope| match scope.spawn(|| runtime.block_on(future)).join() {
                Ok(output) => output,
                Err(panic) => std::panic::resume_unwind(panic),
            },
        )
    }

    /// What a failed request means for a caller.
    fn failure(&self, reference: &Reference, err: &OciDistributionError) -> CatalogError {
        if let OciDistributionError::RequestError(request) = err
            && (request.is_connect() || request.is_timeout())
        {
            return CatalogError::Unreachable {
                url: self.url.clone(),
                reason: innermost(err),
            };
        }
        CatalogError::Registry {
            reference: reference.whole(),
            reason: describe(err),
        }
    }

    /// The image manifest at `reference`, or `None` if there is none.
    fn image(
        &self,
        reference: &Reference,
        plugin: &str,
    ) -> Result<Option<OciImageManifest>, CatalogError> {
        let pulled = self.block_on(self.client.pull_manifest_raw(
            reference,
            &self.auth,
            &[OCI_IMAGE_MEDIA_TYPE],
        ));
        let body = match pulled {
            Ok((body, _digest)) => body,
            Err(err) if is_not_found(&err) => return Ok(None),
            Err(OciDistributionError::DigestError(DigestError::VerificationError {
                expected,
                actual,
            })) => {
                return Err(Refusal::DigestMismatch {
                    plugin: plugin.to_owned(),
                    what: "its OCI manifest".to_owned(),
                    expected: hex_of(&expected),
                    actual: hex_of(&actual),
                }
                .into());
            }
            Err(err) => return Err(self.failure(reference, &err)),
        };
        serde_json::from_slice(&body)
            .map(Some)
            .map_err(|err| malformed(reference, &format!("not an OCI image manifest: {err}")))
    }

    /// The release of `name@version` as stored, or `None` if it was never
    /// published.
    fn stored(
        &self,
        name: &str,
        version: &semver::Version,
    ) -> Result<Option<Stored>, CatalogError> {
        let reference = self.version_reference(name, version)?;
        let Some(image) = self.image(&reference, &format!("{name}@{version}"))? else {
            return Ok(None);
        };
        let annotations = image.annotations.clone().unwrap_or_default();
        let annotation = |key: &str| {
            annotations.get(key).cloned().ok_or_else(|| {
                malformed(
                    &reference,
                    &format!("it has no `{key}` annotation: it is not a docket release"),
                )
            })
        };
        let manifest_text = annotation(MANIFEST)?;
        let manifest = annotation(MANIFEST_SHA256)?;
        let signatures: Vec<Signature> = serde_json::from_str(&annotation(SIGNATURES)?)
            .map_err(|err| malformed(&reference, &format!("`{SIGNATURES}`: {err}")))?;
        let [layer] = image.layers.as_slice() else {
            return Err(malformed(
                &reference,
                &format!("it has {} layers, not one component", image.layers.len()),
            ));
        };
        let component = match layer.digest.strip_prefix("sha256:") {
            Some(hex) if layer.media_type == WASM_LAYER => hex.to_owned(),
            _ => {
                return Err(malformed(
                    &reference,
                    &format!(
                        "its layer is `{}` with digest `{}`, not an `{WASM_LAYER}` with a sha256",
                        layer.media_type, layer.digest
                    ),
                ));
            }
        };
        let layer = layer.clone();
        Ok(Some(Stored {
            release: Release {
                manifest,
                component,
                signatures,
                yanked: annotations.get(YANKED).cloned(),
            },
            reference,
            image,
            manifest_text,
            layer,
        }))
    }

    /// The stored release of `name@version`, which must exist.
    fn existing(&self, name: &str, version: &semver::Version) -> Result<Stored, CatalogError> {
        self.stored(name, version)?
            .ok_or_else(|| Refusal::missing_version(name, version).into())
    }

    /// Uploads `bytes` under `digest` into the repository of `reference`,
    /// unless they are there already.
    async fn put_blob(
        &self,
        reference: &Reference,
        bytes: &[u8],
        digest: &str,
    ) -> Result<(), OciDistributionError> {
        if !self.client.blob_exists(reference, digest).await? {
            self.client
                .push_blob(reference, bytes.to_vec(), digest)
                .await?;
        }
        Ok(())
    }

    /// Uploads the blobs an image manifest names, then the manifest under
    /// the tag of `reference`: in that order, because a registry refuses a
    /// manifest whose blobs it does not hold.
    fn put_image(
        &self,
        reference: &Reference,
        image: &OciImageManifest,
        blobs: &[(&[u8], &str)],
    ) -> Result<(), CatalogError> {
        let body = serde_json::to_vec(image).unwrap_or_default();
        let pushed = self.block_on(async {
            self.client
                .store_auth_if_needed(reference.resolve_registry(), &self.auth)
                .await;
            for (bytes, digest) in blobs {
                self.put_blob(reference, bytes, digest).await?;
            }
            let content_type = OCI_IMAGE_MEDIA_TYPE
                .parse()
                .expect("a media type is a header value");
            self.client
                .push_manifest_raw(reference, body, content_type)
                .await
        });
        pushed
            .map(drop)
            .map_err(|err| self.failure(reference, &err))
    }

    /// The names the index lists.
    fn index(&self) -> Result<Vec<String>, CatalogError> {
        let reference = self.index_reference();
        let Some(image) = self.image(&reference, INDEX_REPOSITORY)? else {
            return Ok(Vec::new());
        };
        let names = image
            .annotations
            .as_ref()
            .and_then(|annotations| annotations.get(NAMES))
            .ok_or_else(|| malformed(&reference, &format!("it has no `{NAMES}` annotation")))?;
        serde_json::from_str(names)
            .map_err(|err| malformed(&reference, &format!("`{NAMES}`: {err}")))
    }

    /// Adds `name` to the index. Read, add, write: two publishers adding
    /// different names at the same instant can lose one, which publishing
    /// either again repairs.
    fn list(&self, name: &str) -> Result<(), CatalogError> {
        let mut names = self.index()?;
        if names.iter().any(|n| n == name) {
            return Ok(());
        }
        names.push(name.to_owned());
        names.sort();
        let empty = b"{}";
        let empty_digest = sha256(empty);
        let descriptor = OciDescriptor {
            media_type: EMPTY.to_owned(),
            digest: empty_digest.clone(),
            size: 2,
            ..OciDescriptor::default()
        };
        let image = OciImageManifest {
            schema_version: 2,
            media_type: Some(OCI_IMAGE_MEDIA_TYPE.to_owned()),
            config: descriptor.clone(),
            layers: vec![descriptor],
            subject: None,
            artifact_type: Some(INDEX_ARTIFACT.to_owned()),
            annotations: Some(BTreeMap::from([(
                NAMES.to_owned(),
                serde_json::to_string(&names).unwrap_or_default(),
            )])),
        };
        self.put_image(&self.index_reference(), &image, &[(empty, &empty_digest)])
    }
}

impl Catalog for OciCatalog {
    fn publish(&self, package: &Package) -> Result<Release, CatalogError> {
        let manifest = &package.manifest;
        let version = publishable_version(manifest)?;
        let reference = self.version_reference(&manifest.name, &version)?;
        let existing = self
            .stored(&manifest.name, &version)?
            .map(|stored| stored.release);
        let release = Release::published(existing, package)?;
        let manifest_text = std::str::from_utf8(&package.manifest_bytes).map_err(|err| {
            CatalogError::Invalid(format!(
                "plugin `{}`: the manifest is not UTF-8 text: {err}",
                package.id()
            ))
        })?;
        let component_digest = format!("sha256:{}", release.component);
        let config = wasm_config(manifest, &package.component, &component_digest);
        let config_digest = sha256(&config);
        let mut annotations = BTreeMap::from([
            (
                "org.opencontainers.image.title".to_owned(),
                manifest.name.clone(),
            ),
            (
                "org.opencontainers.image.version".to_owned(),
                manifest.version.clone(),
            ),
            (
                "org.opencontainers.image.description".to_owned(),
                manifest.description.clone(),
            ),
            (
                "org.opencontainers.image.licenses".to_owned(),
                manifest.license.clone(),
            ),
            (MANIFEST.to_owned(), manifest_text.to_owned()),
            (MANIFEST_SHA256.to_owned(), release.manifest.clone()),
            (
                SIGNATURES.to_owned(),
                serde_json::to_string(&release.signatures).unwrap_or_default(),
            ),
        ]);
        if let Some(homepage) = &manifest.homepage {
            annotations.insert("org.opencontainers.image.url".to_owned(), homepage.clone());
        }
        if let Some(reason) = &release.yanked {
            annotations.insert(YANKED.to_owned(), reason.clone());
        }
        let image = OciImageManifest {
            schema_version: 2,
            media_type: Some(OCI_IMAGE_MEDIA_TYPE.to_owned()),
            config: OciDescriptor {
                media_type: WASM_CONFIG.to_owned(),
                digest: config_digest.clone(),
                size: size(&config),
                ..OciDescriptor::default()
            },
            layers: vec![OciDescriptor {
                media_type: WASM_LAYER.to_owned(),
                digest: component_digest.clone(),
                size: size(&package.component),
                ..OciDescriptor::default()
            }],
            subject: None,
            artifact_type: None,
            annotations: Some(annotations),
        };
        self.put_image(
            &reference,
            &image,
            &[
                (&package.component, &component_digest),
                (&config, &config_digest),
            ],
        )?;
        // Listed after the version exists, so that a name in the index
        // always has something behind it.
        self.list(&manifest.name)?;
        Ok(release)
    }

    fn names(&self) -> Result<Vec<String>, CatalogError> {
        let mut names = self.index()?;
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn releases(&self, name: &str) -> Result<Vec<(semver::Version, Release)>, CatalogError> {
        let repository = Reference::with_tag(
            self.registry.clone(),
            self.repository(name),
            "latest".to_owned(),
        );
        let mut tags = Vec::new();
        loop {
            let last = tags.last().cloned();
            let page = self.block_on(self.client.list_tags(
                &repository,
                &self.auth,
                Some(PAGE),
                last.as_deref(),
            ));
            let page = match page {
                Ok(page) => page.tags,
                Err(err) if is_not_found(&err) => break,
                Err(err) => return Err(self.failure(&repository, &err)),
            };
            let full = page.len() == PAGE;
            tags.extend(page);
            if !full {
                break;
            }
        }
        let mut releases = Vec::new();
        for version in tags.iter().filter_map(|tag| version_of(tag)) {
            if let Some(stored) = self.stored(name, &version)? {
                releases.push((version, stored.release));
            }
        }
        releases.sort_by(|(a, _), (b, _)| a.cmp(b));
        Ok(releases)
    }

    fn manifest(&self, name: &str, version: &semver::Version) -> Result<Manifest, CatalogError> {
        checked_manifest(&self.existing(name, version)?, &format!("{name}@{version}"))
    }

    fn fetch(&self, name: &str, version: &semver::Version) -> Result<Package, CatalogError> {
        let plugin = format!("{name}@{version}");
        let stored = self.existing(name, version)?;
        let manifest = checked_manifest(&stored, &plugin)?;
        let mut component = Vec::new();
        let pulled = self.block_on(self.client.pull_blob(
            &stored.reference,
            &stored.layer,
            &mut component,
        ));
        match pulled {
            Ok(()) => {}
            // The client checks the bytes against their digest as they
            // arrive; a changed byte is the refusal a directory reports.
            Err(OciDistributionError::DigestError(DigestError::VerificationError {
                expected,
                actual,
            })) => {
                return Err(Refusal::DigestMismatch {
                    plugin,
                    what: "the component".to_owned(),
                    expected: hex_of(&expected),
                    actual: hex_of(&actual),
                }
                .into());
            }
            Err(err) => return Err(self.failure(&stored.reference, &err)),
        }
        Ok(Package {
            manifest,
            manifest_bytes: stored.manifest_text.into_bytes(),
            component,
            signatures: stored.release.signatures,
        })
    }

    fn yank(
        &self,
        name: &str,
        version: &semver::Version,
        reason: &str,
    ) -> Result<(), CatalogError> {
        let Stored {
            reference,
            mut image,
            ..
        } = self.existing(name, version)?;
        image
            .annotations
            .get_or_insert_default()
            .insert(YANKED.to_owned(), reason.to_owned());
        self.put_image(&reference, &image, &[])
    }
}

/// The tag of `version`.
/// The docket manifest a stored release carries, checked against the
/// digest its annotations name.
fn checked_manifest(stored: &Stored, plugin: &str) -> Result<Manifest, CatalogError> {
    let actual = PluginDigest::of(stored.manifest_text.as_bytes()).to_hex();
    if actual != stored.release.manifest {
        return Err(Refusal::DigestMismatch {
            plugin: plugin.to_owned(),
            what: "the manifest".to_owned(),
            expected: stored.release.manifest.clone(),
            actual,
        }
        .into());
    }
    serde_json::from_str(&stored.manifest_text)
        .map_err(|err| malformed(&stored.reference, &format!("`{MANIFEST}`: {err}")))
}

fn tag(version: &semver::Version) -> String {
    version.to_string().replace('+', "_")
}

/// The version tagged `tag`, if it is one.
fn version_of(tag: &str) -> Option<semver::Version> {
    semver::Version::parse(&tag.replace('_', "+")).ok()
}

/// A repository path component, as the distribution spec defines it.
fn is_path_component(component: &str) -> bool {
    let alphanumeric = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    component.starts_with(alphanumeric)
        && component.ends_with(alphanumeric)
        && component
            .chars()
            .all(|c| alphanumeric(c) || matches!(c, '.' | '_' | '-'))
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", PluginDigest::of(bytes).to_hex())
}

fn hex_of(digest: &str) -> String {
    digest.strip_prefix("sha256:").unwrap_or(digest).to_owned()
}

fn size(bytes: &[u8]) -> i64 {
    i64::try_from(bytes.len()).unwrap_or(i64::MAX)
}

fn malformed(reference: &Reference, reason: &str) -> CatalogError {
    CatalogError::Registry {
        reference: reference.whole(),
        reason: reason.to_owned(),
    }
}

/// Whether the registry said that what was asked for is not there.
fn is_not_found(err: &OciDistributionError) -> bool {
    match err {
        OciDistributionError::RegistryError { envelope, .. } => {
            envelope.errors.iter().any(|error| {
                matches!(
                    error.code,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::NotFound
                )
            })
        }
        OciDistributionError::ServerError { code, .. } => *code == 404,
        _ => false,
    }
}

/// A registry's answer in a sentence: its error codes and messages rather
/// than the client's wrapping of them.
fn describe(err: &OciDistributionError) -> String {
    match err {
        OciDistributionError::RegistryError { envelope, .. } => envelope
            .errors
            .iter()
            .map(|error| {
                let code = serde_json::to_value(&error.code)
                    .ok()
                    .and_then(|code| code.as_str().map(str::to_owned))
                    .unwrap_or_default();
                format!("{code}: {}", error.message)
            })
            .collect::<Vec<_>>()
            .join("; "),
        OciDistributionError::UnauthorizedError { .. } => "the registry wants credentials \
             (`DOCKET_REGISTRY_USERNAME` and `DOCKET_REGISTRY_PASSWORD`), or refused the ones given"
            .to_owned(),
        OciDistributionError::ServerError { code, message, .. } => {
            format!("HTTP {code}: {}", message.trim())
        }
        other => chain(other),
    }
}

/// An error and its sources, outermost first.
fn chain(err: &dyn std::error::Error) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !parts.iter().any(|part| part.contains(&cause_text)) {
            parts.push(cause_text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

/// The innermost cause of an error: for a connection, the one that says
/// what the operating system or the TLS handshake refused.
fn innermost(err: &dyn std::error::Error) -> String {
    let mut innermost = err;
    while let Some(cause) = innermost.source() {
        innermost = cause;
    }
    innermost.to_string()
}

/// The `application/vnd.wasm.config.v0+json` config `wkg` writes: what
/// the component imports and exports. `created` is the epoch, as in
/// reproducible image builds, so that the config depends on the component
/// alone and re-publishing writes the same blob.
fn wasm_config(manifest: &Manifest, component: &[u8], component_digest: &str) -> Vec<u8> {
    let (imports, exports) = interface_names(component);
    let config = serde_json::json!({
        "created": "1970-01-01T00:00:00Z",
        "author": manifest.team,
        "architecture": "wasm",
        "os": "wasip2",
        "layerDigests": [component_digest],
        "component": {
            "exports": exports,
            "imports": imports,
            "target": null,
        },
    });
    serde_json::to_vec(&config).unwrap_or_default()
}

/// The names a component imports and exports at its top level. A component
/// that does not parse has none here; loading it refuses it with the reason.
fn interface_names(component: &[u8]) -> (Vec<String>, Vec<String>) {
    use wasmparser::{Parser, Payload};
    let (mut imports, mut exports) = (Vec::new(), Vec::new());
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(component) {
        let Ok(payload) = payload else {
            return (Vec::new(), Vec::new());
        };
        match payload {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(section) if depth == 0 => {
                imports.extend(
                    section
                        .into_iter()
                        .flatten()
                        .map(|i| i.name.name.to_owned()),
                );
            }
            Payload::ComponentExportSection(section) if depth == 0 => {
                exports.extend(
                    section
                        .into_iter()
                        .flatten()
                        .map(|e| e.name.name.to_owned()),
                );
            }
            _ => {}
        }
    }
    imports.sort();
    exports.sort();
    (imports, exports)
}
