//! Workflows deployed from a plugin catalogue: each `uses:` resolved to a
//! signed, trusted package, the exact bytes pinned with the deployment so
//! a case never meets a version published later, packages cached by digest
//! so a second pull and a lost catalogue cost nothing, and every refusal
//! stopping the deployment with the reason named and nothing written.

use crate::support::{self, docket, target};
use docket_host::catalog::{About, Catalog, CatalogSource, DirectoryCatalog, Package, TrustPolicy};
use docket_host::engine::{DeployError, Error, Host, HostConfig, LogOnly, ManualClock, StartCase};
use docket_host::keys::SigningKey;
use docket_host::plugin::Runtime;
use docket_host::store::{Backend, Durability, Event, Pin, Sqlite, Verdict};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const PLATFORM: [u8; 32] = [1; 32];
const STRANGER: [u8; 32] = [2; 32];

/// An approval first, then the plugin: a case started before a restart
/// runs its plugin step after it.
const WORKFLOW: &str = "
workflow: permit-intake
version: 1
owner: urban-planning
steps:
  - id: accept
    approval: { role: clerk }
  - id: check
    uses: validate-schema@^1
    with:
      schema: { type: object, required: [parcel] }
";

fn about() -> About {
    About {
        team: "platform".into(),
        license: "Apache-2.0".into(),
        homepage: None,
        changelog: "First release.".into(),
    }
}

/// validate-schema with the version its `describe` reports changed from
/// 1.0.0 to `version` (same length): a newer release, other bytes.
fn validate_schema(version: &str) -> Vec<u8> {
    let bytes = support::plugin("validate-schema");
    let (from, to) = (b"1.0.0".as_slice(), version.as_bytes());
    assert_eq!(from.len(), to.len());
    let at: Vec<usize> = bytes
        .windows(from.len())
        .enumerate()
        .filter(|(_, w)| *w == from)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(at.len(), 1, "the version string appears once");
    let mut patched = bytes;
    patched[at[0]..at[0] + to.len()].copy_from_slice(to);
    patched
}

fn signed(runtime: &Runtime, component: Vec<u8>, key: [u8; 32]) -> Package {
    let mut package = Package::pack(runtime, component, about()).expect("pack");
    package.sign(&SigningKey::from_seed(key));
    package
}

fn policy() -> TrustPolicy {
    TrustPolicy::trusting("platform", SigningKey::from_seed(PLATFORM).public(), &["*"])
}

fn sha256(bytes: &[u8]) -> String {
    docket_host::plugin::PluginDigest::of(bytes).to_hex()
}

struct Site {
    dir: tempfile::TempDir,
    runtime: Runtime,
}

impl Site {
    fn new() -> Site {
        Site {
            dir: tempfile::tempdir().unwrap(),
            runtime: support::runtime(),
        }
    }

    fn catalog_path(&self) -> PathBuf {
        self.dir.path().join("catalog")
    }

    fn catalog(&self) -> DirectoryCatalog {
        DirectoryCatalog::open(self.catalog_path()).unwrap()
    }

    fn publish(&self, component: Vec<u8>, key: [u8; 32]) {
        self.catalog()
            .publish(&signed(&self.runtime, component, key))
            .unwrap();
    }

    fn source(&self) -> Arc<CatalogSource> {
        self.source_from(Arc::new(self.catalog()))
    }

    fn source_from(&self, catalog: Arc<dyn Catalog>) -> Arc<CatalogSource> {
        Arc::new(
            CatalogSource::new(
                self.runtime.clone(),
                catalog,
                policy(),
                self.dir.path().join("cache"),
            )
            .unwrap(),
        )
    }

    fn store(&self) -> Arc<Sqlite> {
        Arc::new(Sqlite::open(self.dir.path().join("docket.db"), Durability::Full).unwrap())
    }

    fn host(&self, source: Arc<CatalogSource>) -> Result<Host, Error> {
        Host::open(
            self.store(),
            source,
            Arc::new(ManualClock::new(
                humantime::parse_rfc3339("2026-11-23T09:00:00Z").unwrap(),
            )),
            Arc::new(LogOnly),
            HostConfig {
                workers: 1,
                ..HostConfig::default()
            },
        )
    }

    fn pins(&self, version: u32) -> Vec<Pin> {
        self.pins_of("permit-intake", version)
    }

    fn pins_of(&self, workflow: &str, version: u32) -> Vec<Pin> {
        self.store()
            .deployment(workflow, Some(version))
            .unwrap()
            .unwrap()
            .pins
    }
}

fn start(host: &Host, key: &str) -> String {
    let id = host
        .start(
            "permit-intake",
            StartCase {
                input: json!({"parcel": "1234-567"}),
                key: Some(key.to_owned()),
                applicant: None,
            },
        )
        .unwrap()
        .id;
    host.run_until_idle().unwrap();
    id
}

fn accept(host: &Host, case: &str) {
    host.decide(
        case,
        docket_host::engine::Decision {
            step: "accept".into(),
            verdict: Verdict::Approve,
            person: "clara".into(),
            role: "clerk".into(),
            comment: None,
        },
    )
    .unwrap();
    host.run_until_idle().unwrap();
}

/// The sha256 of the component that decided step `check` of `case`.
fn decided_by(store: &dyn Backend, case: &str) -> String {
    store
        .journal(case)
        .unwrap()
        .into_iter()
        .find_map(|recorded| match recorded.event {
            Event::StepFinished { step, plugin, .. } if step == "check" => Some(plugin),
            _ => None,
        })
        .expect("step `check` finished")
}

#[test]
fn a_deployment_pins_the_bytes_it_resolved_and_its_cases_keep_them() {
    let site = Site::new();
    let v1 = support::plugin("validate-schema");
    site.publish(v1.clone(), PLATFORM);
    let host = site.host(site.source()).unwrap();
    host.deploy(WORKFLOW).unwrap();
    assert_eq!(
        site.pins(1),
        [Pin {
            plugin: "validate-schema".into(),
            requirement: "^1".into(),
            version: "1.0.0".into(),
            sha256: sha256(&v1),
        }]
    );
    let before = start(&host, "A-1");
    drop(host);

    // 1.0.1 is published: `^1` now resolves to it, but version 1 of the
    // workflow was deployed with 1.0.0 and stays on it, after a restart,
    // for the case in flight and for a case started now.
    let v101 = validate_schema("1.0.1");
    site.publish(v101.clone(), PLATFORM);
    let host = site.host(site.source()).unwrap();
    let after = start(&host, "A-2");
    accept(&host, &before);
    accept(&host, &after);
    let store = site.store();
    assert_eq!(decided_by(&*store, &before), sha256(&v1));
    assert_eq!(decided_by(&*store, &after), sha256(&v1));

    // Deploying the same source again changes nothing, pins included.
    host.deploy(WORKFLOW).unwrap();
    assert_eq!(site.pins(1)[0].version, "1.0.0");
    // A new version of the workflow resolves anew.
    host.deploy(&WORKFLOW.replace("version: 1", "version: 2"))
        .unwrap();
    assert_eq!(site.pins(2)[0].version, "1.0.1");
    assert_eq!(site.pins(2)[0].sha256, sha256(&v101));
    let on_v2 = start(&host, "A-3");
    accept(&host, &on_v2);
    assert_eq!(decided_by(&*store, &on_v2), sha256(&v101));

    // The ledger records the pins with the deployment.
    let deployments: Vec<serde_json::Value> = store
        .ledger(0, usize::MAX)
        .unwrap()
        .into_iter()
        .filter_map(|item| item.record)
        .filter(|record| record["type"] == "deployment")
        .collect();
    assert_eq!(deployments[0]["plugins"][0]["version"], "1.0.0");
    assert_eq!(deployments[1]["plugins"][0]["version"], "1.0.1");
    assert!(
        docket_host::ledger::verify(&*store, None, None)
            .unwrap()
            .is_ok()
    );
}

#[test]
fn a_second_pull_reads_the_cache_and_a_lost_catalogue_is_no_outage() {
    let site = Site::new();
    site.publish(support::plugin("validate-schema"), PLATFORM);
    let source = site.source();
    let host = site.host(source.clone()).unwrap();
    host.deploy(WORKFLOW).unwrap();
    assert_eq!(source.fetched(), 1);
    let case = start(&host, "A-1");
    drop(host);

    // A new process: the package comes from the cache, not the catalogue.
    let source = site.source();
    let host = site.host(source.clone()).unwrap();
    host.deploy(&WORKFLOW.replace("version: 1", "version: 2"))
        .unwrap();
    assert_eq!(source.fetched(), 0);
    drop(host);

    // The shared drive is gone (its index unreadable): a restarted host
    // still runs the case in flight, and a new deployment resolves
    // against the cache.
    let catalog = Arc::new(site.catalog());
    let plugins = site.catalog_path().join("plugins");
    std::fs::remove_dir_all(&plugins).unwrap();
    std::fs::write(&plugins, "not a directory").unwrap();
    assert!(catalog.resolve("validate-schema", "^1").is_err());
    let source = site.source_from(catalog);
    let host = site.host(source.clone()).unwrap();
    accept(&host, &case);
    assert_eq!(
        host.case(&case).unwrap().row.status,
        docket_host::store::CaseStatus::Ended(docket_host::store::Ending::Completed)
    );
    host.deploy(&WORKFLOW.replace("version: 1", "version: 3"))
        .unwrap();
    assert_eq!(source.fetched(), 0);
    // What was never pulled cannot be had.
    let err = host
        .deploy(&WORKFLOW.replace("validate-schema@^1", "notify-template@^1"))
        .unwrap_err();
    let DeployError::Invalid(diagnostics) = &err else {
        panic!("expected diagnostics, got {err}");
    };
    assert_eq!(diagnostics[0].code, "plugin-unavailable", "{err}");
    assert!(
        diagnostics[0].message.contains("catalog/plugins"),
        "names the unreadable catalogue: {err}"
    );
}

/// Deploys `WORKFLOW` from a catalogue holding `component` signed with
/// `key`, after `spoil` had its way with the catalogue; returns the
/// diagnostic and checks that nothing was deployed.
fn refused(component: Vec<u8>, key: [u8; 32], spoil: impl FnOnce(&Site)) -> String {
    let site = Site::new();
    site.publish(component, key);
    spoil(&site);
    let host = site.host(site.source()).unwrap();
    let err = host.deploy(WORKFLOW).unwrap_err();
    let DeployError::Invalid(diagnostics) = &err else {
        panic!("expected diagnostics, got {err}");
    };
    assert_eq!(diagnostics.len(), 1, "{err}");
    assert!(site.store().deployments().unwrap().is_empty());
    assert!(
        std::fs::read_dir(site.dir.path().join("cache/plugins"))
            .unwrap()
            .next()
            .is_none(),
        "nothing refused is cached"
    );
    format!("{}: {}", diagnostics[0].code, diagnostics[0].message)
}

#[test]
fn each_refused_plugin_stops_the_deployment_with_its_reason() {
    let v1 = || support::plugin("validate-schema");

    let untrusted = refused(v1(), STRANGER, |_| {});
    assert!(
        untrusted.starts_with("refused-plugin: step `check` uses `validate-schema@^1`, which this host refuses: plugin `validate-schema@1.0.0` is signed by key "),
        "{untrusted}"
    );
    assert!(
        untrusted.ends_with("which the trust policy does not accept for this plugin"),
        "{untrusted}"
    );

    let tampered = refused(v1(), PLATFORM, |site| {
        let blob = site.catalog().blob_path(&sha256(&v1()));
        let mut bytes = std::fs::read(&blob).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&blob, bytes).unwrap();
    });
    assert!(
        tampered.contains("plugin `validate-schema@1.0.0`: the component has sha256 ")
            && tampered.ends_with("its bytes were changed"),
        "{tampered}"
    );

    let yanked = refused(v1(), PLATFORM, |site| {
        site.catalog()
            .yank(
                "validate-schema",
                &semver::Version::new(1, 0, 0),
                "rejects valid parcels",
            )
            .unwrap();
    });
    assert!(
        yanked.ends_with("plugin `validate-schema@1.0.0` was yanked: rejects valid parcels"),
        "{yanked}"
    );

    let unsigned = {
        let site = Site::new();
        let package = Package::pack(&site.runtime, v1(), about()).unwrap();
        site.catalog().publish(&package).unwrap();
        let err = site
            .host(site.source())
            .unwrap()
            .deploy(WORKFLOW)
            .unwrap_err();
        err.to_string()
    };
    assert!(
        unsigned.contains("refused-plugin: ") && unsigned.contains("is not signed"),
        "{unsigned}"
    );

    let missing = refused(support::plugin("notify-template"), PLATFORM, |_| {});
    assert_eq!(
        missing,
        "unknown-plugin: step `check` uses plugin `validate-schema`: the catalogue has no plugin `validate-schema`"
    );
}

#[test]
fn a_restart_refuses_pinned_bytes_it_cannot_find_unchanged() {
    let site = Site::new();
    let v1 = support::plugin("validate-schema");
    site.publish(v1.clone(), PLATFORM);
    let host = site.host(site.source()).unwrap();
    host.deploy(WORKFLOW).unwrap();
    let case = start(&host, "A-1");
    drop(host);
    let events = site.store().journal(&case).unwrap().len();
    let restart = || site.host(site.source()).unwrap_err().to_string();

    // A byte of the cached component changed.
    let cache = site.dir.path().join("cache");
    let blob = cache.join("blobs/sha256").join(sha256(&v1));
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&blob, bytes).unwrap();
    let err = restart();
    assert!(
        err.contains("workflow `permit-intake` version 1 cannot be loaded")
            && err.contains("its bytes were changed"),
        "{err}"
    );

    // No cache, and the catalogue was replaced by one whose 1.0.0 is
    // another build.
    std::fs::remove_dir_all(&cache).unwrap();
    std::fs::remove_dir_all(site.catalog_path()).unwrap();
    let other_build = support::plugin_wasip2("validate-schema");
    assert_ne!(sha256(&other_build), sha256(&v1));
    site.publish(other_build.clone(), PLATFORM);
    let err = restart();
    assert!(
        err.contains(&format!(
            "the component has sha256 {}, not {}",
            sha256(&other_build),
            sha256(&v1)
        )),
        "{err}"
    );

    // Neither has it.
    std::fs::remove_dir_all(site.catalog_path()).unwrap();
    let err = restart();
    assert!(
        err.contains(&format!(
            "`validate-schema@1.0.0` (sha256 {}) was deployed, but neither the catalogue nor the cache has it now",
            sha256(&v1)
        )),
        "{err}"
    );
    assert_eq!(site.store().journal(&case).unwrap().len(), events);
}

fn write_trust(dir: &Path, key: &SigningKey) -> PathBuf {
    let path = dir.join("trust.yaml");
    std::fs::write(
        &path,
        format!(
            "publishers:\n  - name: platform\n    key: {}\n    plugins: ['*']\n",
            key.public()
        ),
    )
    .unwrap();
    path
}

#[test]
fn the_command_line_deploys_from_a_catalogue_only_with_a_trust_policy() {
    let site = Site::new();
    site.publish(support::plugin("validate-schema"), PLATFORM);
    let dir = site.dir.path();
    std::fs::write(dir.join("intake.yaml"), WORKFLOW).unwrap();
    let trust = write_trust(dir, &SigningKey::from_seed(PLATFORM));
    let deploy = |extra: &[&str]| {
        docket()
            .current_dir(dir)
            .env("DOCKET_CACHE_DIR", target().join("test-cache"))
            .args([
                "deploy",
                "intake.yaml",
                "--store",
                "permits.db",
                "--catalog",
            ])
            .arg(site.catalog_path())
            .args(extra)
            .output()
            .unwrap()
    };
    let output = deploy(&[]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("needs `--trust FILE`"), "{stderr}");
    assert!(!dir.join("permits.db").exists() || site_deployments(dir).is_empty());

    let output = deploy(&["--trust", trust.to_str().unwrap()]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(site_deployments(dir), ["permit-intake"]);
    assert!(
        dir.join("permits.db.plugin-cache/plugins/validate-schema/1.0.0.json")
            .exists()
    );

    // `docket lint` checks against the catalogue as a host would: with a
    // policy that trusts someone else, the step's plugin is refused.
    let stranger = dir.join("stranger");
    std::fs::create_dir_all(&stranger).unwrap();
    let other_trust = write_trust(&stranger, &SigningKey::from_seed(STRANGER));
    let output = docket()
        .current_dir(dir)
        .env("DOCKET_CACHE_DIR", target().join("test-cache"))
        .args(["lint", "intake.yaml", "--catalog"])
        .arg(site.catalog_path())
        .arg("--trust")
        .arg(&other_trust)
        .arg("--plugin-cache")
        .arg(dir.join("lint-cache"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("refused-plugin") && stderr.contains("which this host refuses"),
        "{stderr}"
    );
}

fn site_deployments(dir: &Path) -> Vec<String> {
    Sqlite::open(dir.join("permits.db"), Durability::Full)
        .unwrap()
        .deployments()
        .unwrap()
        .into_iter()
        .map(|d| d.workflow)
        .collect()
}

#[test]
fn building_permit_deploys_from_a_registry_and_runs_on_from_the_cache_when_it_is_gone() {
    let registry = support::Registry::start();
    let location = registry.location("permits");
    let site = Site::new();
    let catalog = docket_host::catalog::open(&location).unwrap();
    let workflow = crate::engine::building_permit();
    let used = docket_host::workflow::plugins_used(&workflow);
    for name in &used {
        catalog
            .publish(&signed(&site.runtime, support::plugin(name), PLATFORM))
            .unwrap();
    }
    let source = site.source_from(catalog);
    let host = site.host(source.clone()).unwrap();
    host.deploy(&workflow).unwrap();
    assert_eq!(source.fetched(), used.len() as u64);
    let case = host
        .start(
            "building-permit",
            StartCase {
                input: crate::engine::application("residential", 1),
                key: Some("BP-1".into()),
                applicant: Some("ada".into()),
            },
        )
        .unwrap()
        .id;
    host.run_until_idle().unwrap();
    drop(host);

    // The registry stops: the host restarts from the cache, decides the
    // case (its letter goes out through notify-template) and deploys a
    // new version against what the cache holds.
    drop(registry);
    let catalog = docket_host::catalog::open(&location).unwrap();
    assert!(matches!(
        catalog.resolve("route-rules", "^1"),
        Err(docket_host::catalog::CatalogError::Unreachable { .. })
    ));
    let source = site.source_from(catalog);
    let host = site.host(source.clone()).unwrap();
    host.decide(
        &case,
        docket_host::engine::Decision {
            step: "decide".into(),
            verdict: Verdict::Approve,
            person: "olga".into(),
            role: "permit-officer".into(),
            comment: None,
        },
    )
    .unwrap();
    host.run_until_idle().unwrap();
    assert_eq!(
        host.case(&case).unwrap().row.status,
        docket_host::store::CaseStatus::Ended(docket_host::store::Ending::Completed)
    );
    host.deploy(&workflow.replace("version: 1", "version: 2"))
        .unwrap();
    assert_eq!(source.fetched(), 0);
    assert_eq!(site.pins_of("building-permit", 2).len(), used.len());
}
