//! The plugin catalogue on a real directory and in a real OCI registry:
//! packages built from the first-party plugins, signed, published, pulled
//! and verified against a trust policy, and each way a host must refuse a
//! package, each named. Every case about a catalogue runs once per kind of
//! location (`catalog_test!`).

use crate::support::{self, Registry, docket, root, target};
use docket_host::catalog::{
    self, About, Catalog, CatalogError, DirectoryCatalog, Manifest, Package, Refusal, TrustPolicy,
};
use docket_host::keys::SigningKey;
use docket_host::plugin::Runtime;
use std::path::PathBuf;
use std::sync::Arc;

/// Where a test's catalogues live: directories in a temporary directory,
/// or namespaces of one throwaway registry.
enum Site {
    Directory(tempfile::TempDir),
    Registry(Registry),
}

impl Site {
    fn directory() -> Site {
        Site::Directory(tempfile::tempdir().unwrap())
    }

    fn registry() -> Site {
        Site::Registry(Registry::start())
    }

    /// The location of the catalogue called `label`, as `catalog::open`
    /// and `--catalog` take it.
    fn location(&self, label: &str) -> String {
        match self {
            Site::Directory(dir) => dir.path().join(label).to_str().unwrap().to_owned(),
            Site::Registry(registry) => registry.location(label),
        }
    }

    /// The catalogue called `label`, empty until something is published.
    fn open(&self, label: &str) -> Arc<dyn Catalog> {
        catalog::open(&self.location(label)).unwrap()
    }

    /// Where the catalogue `label` keeps the blob with sha256 `hex`, to
    /// change it behind the catalogue's back.
    fn blob_path(&self, label: &str, hex: &str) -> PathBuf {
        match self {
            Site::Directory(dir) => DirectoryCatalog::open(dir.path().join(label))
                .unwrap()
                .blob_path(hex),
            Site::Registry(registry) => registry.blob_path(hex),
        }
    }
}

/// One `#[test]` per kind of location for the case `$name(site: Site)`.
macro_rules! catalog_test {
    ($name:ident) => {
        mod $name {
            #[test]
            fn directory() {
                super::$name(super::Site::directory());
            }

            #[test]
            fn registry() {
                super::$name(super::Site::registry());
            }
        }
    };
}

fn about() -> About {
    About {
        team: "platform".into(),
        license: "Apache-2.0".into(),
        homepage: Some("https://example.org/docket".into()),
        changelog: "First release.".into(),
    }
}

fn pack(runtime: &Runtime, name: &str) -> Package {
    Package::pack(runtime, support::plugin(name), about()).expect("pack")
}

const PLATFORM: [u8; 32] = [1; 32];
const STRANGER: [u8; 32] = [2; 32];

fn platform_policy() -> TrustPolicy {
    TrustPolicy::trusting("platform", SigningKey::from_seed(PLATFORM).public(), &["*"])
}

/// The catalogue `catalog` at `site`, with validate-schema and
/// notify-template, signed by the platform key.
fn catalogue(runtime: &Runtime, site: &Site) -> Arc<dyn Catalog> {
    let catalog = site.open("catalog");
    for name in ["validate-schema", "notify-template"] {
        let mut package = pack(runtime, name);
        package.sign(&SigningKey::from_seed(PLATFORM));
        catalog.publish(&package).unwrap();
    }
    catalog
}

fn refusal(result: Result<Package, CatalogError>) -> Refusal {
    match result {
        Err(CatalogError::Refused(refusal)) => refusal,
        Err(other) => panic!("expected a refusal, got {other}"),
        Ok(package) => panic!("expected a refusal, got {}", package.id()),
    }
}

catalog_test!(a_package_describes_its_component_and_a_trusted_signature_lets_it_through);
fn a_package_describes_its_component_and_a_trusted_signature_lets_it_through(site: Site) {
    let runtime = support::runtime();
    let package = pack(&runtime, "notify-template");
    let manifest = &package.manifest;
    assert_eq!(manifest.name, "notify-template");
    assert_eq!(manifest.kind, "notify");
    assert_eq!(manifest.capabilities, ["log", "notify"]);
    assert_eq!(manifest.team, "platform");
    assert_eq!(manifest.component.sha256.len(), 64);
    assert!(manifest.config_schema.is_object());

    let catalog = catalogue(&runtime, &site);
    assert_eq!(
        catalog.names().unwrap(),
        ["notify-template", "validate-schema"]
    );
    let pulled = catalog
        .pull(&runtime, "notify-template", "*", &platform_policy())
        .unwrap();
    assert_eq!(pulled.component, support::plugin("notify-template"));
    assert_eq!(pulled.manifest, *manifest);

    // Only a key trusted for the name will do.
    let fire_only = TrustPolicy::trusting(
        "platform",
        SigningKey::from_seed(PLATFORM).public(),
        &["fire-"],
    );
    let refused = refusal(catalog.pull(&runtime, "notify-template", "*", &fire_only));
    assert!(matches!(refused, Refusal::UntrustedKey { .. }), "{refused}");
}

catalog_test!(each_reason_to_refuse_a_package_is_named);
fn each_reason_to_refuse_a_package_is_named(site: Site) {
    let runtime = support::runtime();
    let catalog = catalogue(&runtime, &site);
    let policy = platform_policy();
    let version =
        semver::Version::parse(&pack(&runtime, "validate-schema").manifest.version).unwrap();
    let id = format!("validate-schema@{version}");

    // Unsigned.
    let unsigned = site.open("unsigned");
    unsigned
        .publish(&pack(&runtime, "validate-schema"))
        .unwrap();
    let refused = refusal(unsigned.pull(&runtime, "validate-schema", "*", &policy));
    assert_eq!(
        refused.to_string(),
        format!("plugin `{id}` is not signed; a publisher must sign it (`docket plugin sign`)")
    );

    // Signed by a key nobody trusts.
    let strangers = site.open("strangers");
    let mut package = pack(&runtime, "validate-schema");
    package.sign(&SigningKey::from_seed(STRANGER));
    strangers.publish(&package).unwrap();
    let refused = refusal(strangers.pull(&runtime, "validate-schema", "*", &policy));
    let stranger = SigningKey::from_seed(STRANGER).public();
    assert_eq!(
        refused.to_string(),
        format!(
            "plugin `{id}` is signed by key {stranger}, which the trust policy does not accept for this plugin"
        )
    );

    // A manifest changed after signing (it now asks for fewer capabilities).
    let forged = site.open("forged");
    let mut package = pack(&runtime, "notify-template");
    package.sign(&SigningKey::from_seed(PLATFORM));
    let signatures = package.signatures.clone();
    package.manifest.capabilities = vec!["log".into()];
    package.manifest_bytes = package.manifest.to_bytes();
    package.signatures = signatures;
    forged.publish(&package).unwrap();
    let refused = refusal(forged.pull(&runtime, "notify-template", "*", &policy));
    assert!(matches!(refused, Refusal::BadSignature { .. }), "{refused}");
    assert!(
        refused
            .to_string()
            .contains("the package was changed after signing"),
        "{refused}"
    );

    // The same lie, signed by the publisher: the manifest must match the component.
    let mut package = pack(&runtime, "notify-template");
    package.manifest.capabilities = vec!["log".into()];
    package.manifest_bytes = package.manifest.to_bytes();
    package.sign(&SigningKey::from_seed(PLATFORM));
    let liars = site.open("liars");
    liars.publish(&package).unwrap();
    let refused = refusal(liars.pull(&runtime, "notify-template", "*", &policy));
    assert_eq!(
        refused.to_string(),
        format!(
            "plugin `{}`: the manifest says capabilities `log`, but the component's is `log, notify`",
            package.id()
        )
    );

    // A byte of the stored component changed behind the catalogue's back.
    let component = catalog.resolve("validate-schema", "*").unwrap().1.component;
    let blob = site.blob_path("catalog", &component);
    let mut bytes = std::fs::read(&blob).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&blob, &bytes).unwrap();
    let refused = refusal(catalog.pull(&runtime, "validate-schema", "*", &policy));
    assert!(
        matches!(&refused, Refusal::DigestMismatch { what, expected, .. } if what == "the component" && *expected == component),
        "{refused}"
    );
    assert!(
        refused.to_string().ends_with("its bytes were changed"),
        "{refused}"
    );
    bytes[middle] ^= 0x01;
    std::fs::write(&blob, &bytes).unwrap();
    catalog
        .pull(&runtime, "validate-schema", "*", &policy)
        .unwrap();

    // A yanked version is not pulled.
    catalog
        .yank("validate-schema", &version, "rejects valid postcodes")
        .unwrap();
    let refused = refusal(catalog.pull(&runtime, "validate-schema", "*", &policy));
    assert_eq!(
        refused.to_string(),
        format!("plugin `{id}` was yanked: rejects valid postcodes")
    );

    // Nothing matches.
    let refused = refusal(catalog.pull(&runtime, "validate-schema", "^9", &policy));
    assert_eq!(
        refused.to_string(),
        format!(
            "the catalogue has no version of plugin `validate-schema` matching `^9` (it has {version})"
        )
    );
}

catalog_test!(a_published_version_is_immutable_and_republishing_adds_signatures);
fn a_published_version_is_immutable_and_republishing_adds_signatures(site: Site) {
    let runtime = support::runtime();
    let catalog = catalogue(&runtime, &site);
    let mut again = pack(&runtime, "validate-schema");
    again.sign(&SigningKey::from_seed(STRANGER));
    let release = catalog.publish(&again).unwrap();
    assert_eq!(
        release.signatures.len(),
        2,
        "a second publisher countersigned"
    );

    let mut other = pack(&runtime, "validate-schema");
    other.manifest.changelog = "Something else.".into();
    other.manifest_bytes = other.manifest.to_bytes();
    let err = catalog.publish(&other).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "plugin `{}` is already published with other content; publish a new version",
            other.id()
        )
    );
    let releases = catalog.releases("validate-schema").unwrap();
    assert_eq!(releases.len(), 1, "{releases:?}");
    assert_eq!(
        releases[0].1, release,
        "the countersigned release, as stored"
    );
}

catalog_test!(a_version_with_build_metadata_is_published_listed_and_fetched);
fn a_version_with_build_metadata_is_published_listed_and_fetched(site: Site) {
    let runtime = support::runtime();
    let catalog = site.open("builds");
    let mut package = pack(&runtime, "route-rules");
    package.manifest.version = format!("{}+build.5", package.manifest.version);
    package.manifest_bytes = package.manifest.to_bytes();
    package.sign(&SigningKey::from_seed(PLATFORM));
    catalog.publish(&package).unwrap();

    let version = semver::Version::parse(&package.manifest.version).unwrap();
    let versions: Vec<semver::Version> = catalog
        .releases("route-rules")
        .unwrap()
        .into_iter()
        .map(|(version, _)| version)
        .collect();
    assert_eq!(versions, std::slice::from_ref(&version));
    assert_eq!(catalog.fetch("route-rules", &version).unwrap(), package);
    assert_eq!(catalog.names().unwrap(), ["route-rules"]);
    assert!(site.open("empty").names().unwrap().is_empty());
    assert!(catalog.releases("validate-schema").unwrap().is_empty());
}

#[test]
fn a_registry_stores_a_plugin_as_the_wasm_ecosystem_does() {
    let runtime = support::runtime();
    let site = Site::registry();
    let Site::Registry(registry) = &site else {
        unreachable!()
    };
    let catalog = catalogue(&runtime, &site);
    let (version, release) = catalog.resolve("notify-template", "*").unwrap();
    assert_eq!(
        catalog::OciCatalog::open(&site.location("catalog"))
            .unwrap()
            .reference("notify-template", &version)
            .unwrap(),
        format!(
            "{}/notify-template:{version}",
            site.location("catalog").trim_start_matches("oci+http://")
        )
    );

    // What `wkg oci pull` expects: one `application/wasm` layer, the
    // component, and a wasm config naming what it imports and exports.
    let (status, body) = registry.get(
        &format!("/v2/catalog/notify-template/manifests/{version}"),
        "application/vnd.oci.image.manifest.v1+json",
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let image: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        image["config"]["mediaType"],
        "application/vnd.wasm.config.v0+json"
    );
    let layers = image["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{image}");
    assert_eq!(layers[0]["mediaType"], "application/wasm");
    assert_eq!(layers[0]["digest"], format!("sha256:{}", release.component));
    assert_eq!(
        image["annotations"]["dev.docket.manifest.sha256"],
        release.manifest
    );

    let config = image["config"]["digest"].as_str().unwrap();
    let (status, body) = registry.get(
        &format!("/v2/catalog/notify-template/blobs/{config}"),
        "*/*",
    );
    assert_eq!(status, 200);
    let config: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(config["architecture"], "wasm");
    assert_eq!(config["os"], "wasip2");
    assert_eq!(config["layerDigests"][0], layers[0]["digest"]);
    let exports = config["component"]["exports"].to_string();
    assert!(exports.contains("docket:step/"), "{exports}");
}

/// An embedder's HTTP handler runs inside its own tokio runtime; the
/// registry client's runtime must neither start nor stop inside it.
#[test]
fn a_registry_catalogue_serves_a_caller_inside_another_async_runtime() {
    let runtime = support::runtime();
    let site = Site::registry();
    let location = site.location("catalog");
    catalogue(&runtime, &site);
    let outer = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let names = outer.block_on(async {
        let catalog = catalog::open(&location).unwrap();
        let names = catalog.names().unwrap();
        drop(catalog);
        names
    });
    assert_eq!(names, ["notify-template", "validate-schema"]);
}

#[test]
fn a_registry_location_is_checked_and_an_unreachable_one_is_named() {
    for (location, why) in [
        ("oci://registry.example", "it names no namespace"),
        ("oci://registry.example/Docket", "a namespace is lowercase"),
        ("oci:///docket", "it names no registry host"),
    ] {
        let err = catalog::open(location).err().unwrap().to_string();
        assert!(
            err.starts_with(&format!("`{location}` is not a registry location: {why}")),
            "{err}"
        );
    }

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .unwrap()
        .port();
    let closed = catalog::open(&format!("oci+http://127.0.0.1:{port}/docket")).unwrap();
    let err = closed.names().unwrap_err();
    assert!(matches!(err, CatalogError::Unreachable { .. }), "{err}");
    assert!(
        err.to_string().starts_with(&format!(
            "cannot reach the registry at `http://127.0.0.1:{port}`: "
        )),
        "{err}"
    );
}

#[test]
fn a_package_survives_the_trip_through_its_directory_form() {
    let runtime = support::runtime();
    let mut package = pack(&runtime, "route-rules");
    package.sign(&SigningKey::from_seed(PLATFORM));
    let dir = tempfile::tempdir().unwrap();
    package.write(dir.path()).unwrap();
    let read = Package::read(dir.path()).unwrap();
    assert_eq!(read, package);
    read.verify(&runtime, &platform_policy()).unwrap();
}

#[test]
fn the_committed_manifest_schema_is_fresh() {
    let path = root().join("schema/plugin-manifest.schema.json");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == Manifest::json_schema(),
        "`schema/plugin-manifest.schema.json` is stale: regenerate it with \
         `cargo run -p docket -- plugin manifest-schema > schema/plugin-manifest.schema.json`"
    );
}

#[test]
fn a_trust_policy_file_is_read_and_a_bad_one_says_where() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::from_seed(PLATFORM).public();
    let path = dir.path().join("trust.yaml");
    std::fs::write(
        &path,
        format!(
            "publishers:\n  - name: platform\n    key: {key}\n    plugins: [validate-, route-]\n"
        ),
    )
    .unwrap();
    let policy = TrustPolicy::load(&path).unwrap();
    assert!(policy.trusts(&key, "validate-schema"));
    assert!(!policy.trusts(&key, "notify-template"));

    std::fs::write(
        &path,
        "publishers:\n  - name: platform\n    key: 12ab\n    plugins: ['*']\n",
    )
    .unwrap();
    let err = TrustPolicy::load(&path).unwrap_err().to_string();
    assert!(
        err.contains("a public key is 64 hexadecimal digits"),
        "{err}"
    );
    std::fs::write(
        &path,
        format!("publishers:\n  - name: platform\n    key: {key}\n    plugins: []\n"),
    )
    .unwrap();
    let err = TrustPolicy::load(&path).unwrap_err().to_string();
    assert!(
        err.ends_with("publisher `platform` lists no plugins; give name prefixes, or `*` for all"),
        "{err}"
    );
}

catalog_test!(publish_trust_and_pull_from_the_command_line);
fn publish_trust_and_pull_from_the_command_line(site: Site) {
    let dir = tempfile::tempdir().unwrap();
    let location = site.location("catalog");
    let run = |args: &[&str]| {
        docket()
            .current_dir(dir.path())
            .args(args)
            .env("DOCKET_CACHE_DIR", target().join("test-cache"))
            .env("DOCKET_CATALOG", &location)
            .output()
            .unwrap()
    };
    let ok = |args: &[&str]| {
        let output = run(args);
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let wasm = target().join("plugins/notify-template.wasm");
    let wasm = wasm.to_str().unwrap();

    let public = ok(&["key", "new", "--out", "platform.key"])
        .trim()
        .to_owned();
    assert_eq!(public.len(), 64);
    let packed = ok(&[
        "plugin",
        "pack",
        wasm,
        "--out",
        "pkg",
        "--team",
        "platform",
        "--license",
        "Apache-2.0",
    ]);
    assert!(packed.contains("capabilities: log, notify"), "{packed}");
    ok(&["plugin", "sign", "pkg", "--key", "platform.key"]);
    let published = ok(&["catalog", "publish", "pkg"]);
    assert!(published.contains("1 signature"), "{published}");
    // Published where the location says, not into a directory named like it.
    assert_eq!(site.open("catalog").names().unwrap(), ["notify-template"]);
    assert!(ok(&["catalog", "list"]).starts_with("notify-template "));
    let listed = ok(&["catalog", "list", "--catalog", &location]);
    assert!(listed.starts_with("notify-template "), "{listed}");
    let shown = ok(&["catalog", "show", "notify-template"]);
    assert!(shown.contains("capabilities  log, notify"), "{shown}");
    assert!(shown.contains("\n  config        {"), "{shown}");
    let found = ok(&["catalog", "search", "NOTIFY", "platform"]);
    assert!(
        found.starts_with("notify-template          1.0.0              notify     platform"),
        "{found}"
    );
    let nothing = run(&["catalog", "search", "notify", "zoning"]);
    assert_eq!(nothing.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&nothing.stdout),
        "no plugin matches `notify zoning`\n"
    );

    // Which deployed workflows use it: building-permit does, in any branch.
    let example = root().join("examples/building-permit/workflow.yaml");
    ok(&[
        "deploy",
        example.to_str().unwrap(),
        "--store",
        "permits.db",
        "--plugins",
        target().join("plugins").to_str().unwrap(),
    ]);
    let shown = ok(&[
        "catalog",
        "show",
        "notify-template",
        "--store",
        "permits.db",
    ]);
    assert!(
        shown.starts_with("notify-template: used by building-permit v1\n"),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("signed by     {public}")),
        "{shown}"
    );

    std::fs::write(
        dir.path().join("trust.yaml"),
        format!("publishers:\n  - name: platform\n    key: {public}\n    plugins: [notify-]\n"),
    )
    .unwrap();
    let verified = ok(&[
        "catalog",
        "verify",
        "notify-template@^1",
        "--trust",
        "trust.yaml",
    ]);
    assert!(verified.contains(" OK: "), "{verified}");
    ok(&[
        "catalog",
        "pull",
        "notify-template",
        "--trust",
        "trust.yaml",
        "--out",
        "pulled",
    ]);
    assert_eq!(
        std::fs::read(dir.path().join("pulled/component.wasm")).unwrap(),
        std::fs::read(wasm).unwrap()
    );

    // A key the policy does not list: refused, exit 2, the reason on stderr.
    ok(&["key", "new", "--out", "other.key"]);
    std::fs::write(
        dir.path().join("other.yaml"),
        format!(
            "publishers:\n  - name: other\n    key: {}\n    plugins: ['*']\n",
            SigningKey::from_seed(STRANGER).public()
        ),
    )
    .unwrap();
    let refused = run(&[
        "catalog",
        "verify",
        "notify-template",
        "--trust",
        "other.yaml",
    ]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("which the trust policy does not accept for this plugin"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    let yanked = ok(&[
        "catalog",
        "yank",
        "notify-template@1.0.0",
        "--reason",
        "sends to the wrong address",
    ]);
    assert!(
        yanked.starts_with("yanked notify-template@1.0.0"),
        "{yanked}"
    );
    let refused = run(&[
        "catalog",
        "pull",
        "notify-template",
        "--trust",
        "trust.yaml",
        "--out",
        "again",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&refused.stderr).trim(),
        "error: plugin `notify-template@1.0.0` was yanked: sends to the wrong address"
    );
    assert!(
        !dir.path().join("again").exists(),
        "a refused pull writes nothing"
    );
}
