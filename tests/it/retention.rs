//! Retention: a workflow's `retention: { keep: … }` policy archives each
//! case that ended long enough ago (its audit bundle, which verifies on its
//! own) and purges its personal data from the store — from the rows and
//! from the file — while the ledger still verifies, the purged rows stay
//! tamper-evident, and KPIs and tracking still work.

use crate::engine::{DAY, application, building_permit, plugin_dir};
use crate::support::{self, docket, target};
use docket_host::engine::{Decision, Error, Host, HostConfig, Mailbox, ManualClock, StartCase};
use docket_host::insight;
use docket_host::ledger::{self, Bundle, ExportError, PublicKey, SigningKey, Tampering};
use docket_host::store::{Durability, Event, Sqlite, Verdict};
use docket_host::tracking::Phase;
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;

/// The building permit, keeping ended cases 30 days.
fn permit_keeping_30_days() -> String {
    let source = building_permit().replace("keep: 730d", "keep: 30d");
    assert!(source.contains("keep: 30d"));
    source
}

/// A host on a fresh store with the 30-day permit deployed, a manual
/// clock, and (given a key) a ledger signed by it.
struct Fixture {
    dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    host: Host,
    public: Option<PublicKey>,
}

impl Fixture {
    fn new(key: Option<SigningKey>) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(
            humantime::parse_rfc3339("2026-11-23T09:00:00Z").unwrap(),
        ));
        let plugins = plugin_dir(dir.path());
        let public = key.as_ref().map(SigningKey::public);
        let host = Host::open(
            Arc::new(Sqlite::open(dir.path().join("docket.db"), Durability::Full).unwrap()),
            Arc::new(docket_host::plugin::Directory::open(&support::runtime(), &plugins).unwrap()),
            clock.clone(),
            Arc::new(Mailbox::open(dir.path().join("mailbox.jsonl")).unwrap()),
            HostConfig {
                workers: 1,
                seed: Some(3),
                ledger_key: key.map(Arc::new),
                ..HostConfig::default()
            },
        )
        .unwrap();
        host.deploy(&permit_keeping_30_days()).unwrap();
        Fixture {
            dir,
            clock,
            host,
            public,
        }
    }
}

fn applicant(name: &str, email: &str) -> Value {
    let mut input = application("residential", 1);
    input["applicant"] = json!({"name": name, "email": email});
    input
}

fn start(host: &Host, key: &str, input: Value) -> String {
    let id = host
        .start(
            "building-permit",
            StartCase {
                input,
                key: Some(key.into()),
                applicant: Some(key.to_lowercase()),
            },
        )
        .unwrap()
        .id;
    host.run_until_idle().unwrap();
    id
}

fn decide(host: &Host, case: &str, comment: &str) {
    host.decide(
        case,
        Decision {
            step: "decide".into(),
            verdict: Verdict::Approve,
            person: "olga".into(),
            role: "permit-officer".into(),
            comment: Some(comment.into()),
        },
    )
    .unwrap();
    host.run_until_idle().unwrap();
}

/// Everything the store's files hold, main file and write-ahead log.
fn store_bytes(dir: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(dir.join("docket.db")).unwrap();
    if let Ok(wal) = std::fs::read(dir.join("docket.db-wal")) {
        bytes.extend(wal);
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[test]
fn a_case_kept_long_enough_is_archived_and_purged_and_the_ledger_still_verifies() {
    let Fixture {
        dir,
        clock,
        host,
        public,
    } = Fixture::new(Some(SigningKey::from_seed([9; 32])));

    // Old ends on day 0, recent on day 10, open never.
    let old = start(
        &host,
        "BP-OLD",
        applicant("Theodora Oldenburg", "theodora@example.org"),
    );
    decide(&host, &old, "Mrs Oldenburg's plans are fine");
    clock.advance(DAY * 10);
    let recent = start(
        &host,
        "BP-NEW",
        applicant("Rupert Recentley", "rupert@example.org"),
    );
    decide(&host, &recent, "fine");
    let open_case = start(
        &host,
        "BP-OPEN",
        applicant("Olive Openshaw", "olive@example.org"),
    );
    let kpis_before = insight::report(
        &insight::load(host.store().as_ref(), &insight::Selection::default()).unwrap(),
        &insight::Selection::default(),
    );

    // Day 35: only the old case has been kept 30 days since it ended.
    clock.advance(DAY * 25);
    let archive = dir.path().join("archive");
    let retained = host.apply_retention(&archive).unwrap();
    assert_eq!(retained.len(), 1, "{retained:?}");
    let purge = &retained[0];
    assert_eq!(purge.purged.case, old);
    assert_eq!(purge.workflow, "building-permit");
    assert_eq!(
        purge.archive,
        archive.join("building-permit").join(format!("{old}.json"))
    );
    // The input, the final data, and each step that changed the data (a
    // step handing it on unchanged records none).
    assert!(purge.purged.events >= 3, "{purge:?}");
    assert_eq!(purge.purged.messages, 1, "the granted letter");

    // The personal data is gone from the journal, the outbox and the file.
    let journal = host.store().journal(&old).unwrap();
    let Event::CaseStarted {
        input, applicant, ..
    } = &journal[0].event
    else {
        panic!("{journal:?}")
    };
    assert_eq!((input, applicant), (&Value::Null, &None));
    let bytes = store_bytes(dir.path());
    for gone in [
        "Theodora Oldenburg",
        "theodora@example.org",
        "Oldenburg's plans",
        "bp-old",
    ] {
        assert!(
            !contains(&bytes, gone),
            "`{gone}` is still in the store file"
        );
    }
    for kept in ["Rupert Recentley", "Olive Openshaw"] {
        assert!(
            contains(&bytes, kept),
            "`{kept}` should still be in the store file"
        );
    }

    // The ledger verifies: purged events match what the purge recorded.
    let report = ledger::verify(host.store().as_ref(), public.as_ref(), None).unwrap();
    assert!(report.is_ok(), "{:?}", report.problem);
    assert_eq!(report.purged, purge.purged.events as u64);

    // The archive is the full record, and it verifies on its own.
    let text = std::fs::read_to_string(&purge.archive).unwrap();
    assert!(text.contains("Theodora Oldenburg"));
    assert_eq!(
        purge.archive_sha256,
        docket_host::plugin::PluginDigest::of(text.as_bytes()).to_hex(),
        "the ledger records the archive's sha256"
    );
    let bundle: Bundle = serde_json::from_str(&text).unwrap();
    let checked = ledger::verify_bundle(&bundle, public.as_ref());
    assert!(checked.is_ok(), "{checked:?}");

    // KPIs are the same: steps, times and outcomes were kept.
    let kpis_after = insight::report(
        &insight::load(host.store().as_ref(), &insight::Selection::default()).unwrap(),
        &insight::Selection::default(),
    );
    assert_eq!(
        kpis_after.workflows[0].cases,
        kpis_before.workflows[0].cases
    );
    assert_eq!(
        kpis_after.workflows[0].steps,
        kpis_before.workflows[0].steps
    );

    // Tracking still shows the stages; explaining and exporting say why not.
    let status = host.status(&old).unwrap();
    assert_eq!(status.phase, Phase::Completed);
    assert!(status.public_fields.is_empty());
    assert_eq!(status.history.len(), 4, "intake, triage, decide, notify");
    let err = host.explain(&old, "triage").unwrap_err();
    assert!(
        matches!(&err, Error::NotExplainable(m) if m.contains("was purged")),
        "{err}"
    );
    let err = ledger::export_case(host.store().as_ref(), &old).unwrap_err();
    assert!(matches!(err, ExportError::Purged { .. }), "{err}");

    // Again: nothing new to purge; the open case is never purged.
    assert!(host.apply_retention(&archive).unwrap().is_empty());
    clock.advance(DAY * 365);
    let later = host.apply_retention(&archive).unwrap();
    assert_eq!(
        later
            .iter()
            .map(|r| r.purged.case.as_str())
            .collect::<Vec<_>>(),
        [recent.as_str()]
    );
    assert!(host.store().purged(&open_case).unwrap().is_none());
    assert!(
        ledger::verify(host.store().as_ref(), public.as_ref(), None)
            .unwrap()
            .is_ok()
    );
}

#[test]
fn a_purged_event_changed_afterwards_is_caught() {
    let Fixture {
        dir,
        clock,
        host,
        public,
    } = Fixture::new(Some(SigningKey::from_seed([9; 32])));
    let case = start(&host, "BP-1", applicant("Ada Lovelace", "ada@example.org"));
    decide(&host, &case, "fine");
    clock.advance(DAY * 31);
    assert_eq!(
        host.apply_retention(&dir.path().join("archive"))
            .unwrap()
            .len(),
        1
    );
    let positions = host.store().ledger_of(&case).unwrap();
    drop(host);

    // An administrator turns the purged approval into a rejection.
    let conn = rusqlite::Connection::open(dir.path().join("docket.db")).unwrap();
    let changed = conn
        .execute(
            "UPDATE journal SET event = replace(event, '\"approve\"', '\"reject\"') \
             WHERE case_id = ?1 AND event LIKE '%approval_decided%'",
            [&case],
        )
        .unwrap();
    assert_eq!(changed, 1);
    let seq: i64 = conn
        .query_row(
            "SELECT seq FROM journal WHERE case_id = ?1 AND event LIKE '%approval_decided%'",
            [&case],
            |row| row.get(0),
        )
        .unwrap();
    drop(conn);
    let store = Sqlite::open(dir.path().join("docket.db"), Durability::Full).unwrap();
    let report = ledger::verify(&store, public.as_ref(), None).unwrap();
    let problem = report.problem.expect("the change is caught");
    assert_eq!(problem.tampering, Tampering::Modified);
    assert_eq!(
        problem.position,
        Some(positions[seq as usize - 1]),
        "{problem}"
    );
}

#[test]
fn retention_refuses_what_it_cannot_archive_and_changes_nothing() {
    // No ledger key: nothing can sign the checkpoint an archive needs.
    let Fixture {
        dir, clock, host, ..
    } = Fixture::new(None);
    let case = start(&host, "BP-1", applicant("Ada Lovelace", "ada@example.org"));
    decide(&host, &case, "fine");
    clock.advance(DAY * 31);
    let err = host
        .apply_retention(&dir.path().join("archive"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot archive case `{case}`: no checkpoint covers it and the host has no ledger key to sign one"
        )
    );
    assert!(host.store().purged(&case).unwrap().is_none());
    assert!(contains(&store_bytes(dir.path()), "Ada Lovelace"));

    // The store refuses to purge a case that has not ended, or twice.
    let open_case = start(&host, "BP-2", applicant("Bo", "bo@example.org"));
    let err = host.store().purge(&open_case, 0, "test", "00").unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("case `{open_case}` cannot be purged: it has not ended")
    );
    host.store().purge(&case, 0, "test", "00").unwrap();
    let err = host.store().purge(&case, 0, "test", "00").unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("case `{case}` cannot be purged: it was purged before")
    );
    let err = host.store().purge("nope", 0, "test", "00").unwrap_err();
    assert_eq!(err.to_string(), "no case `nope`");
}

#[test]
fn docket_retention_archives_and_purges_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let workflow = dir.path().join("permit.yaml");
    std::fs::write(&workflow, permit_keeping_30_days()).unwrap();
    let input = dir.path().join("application.json");
    std::fs::write(
        &input,
        applicant("Ada Lovelace", "ada@example.org").to_string(),
    )
    .unwrap();
    let run = |args: &[&str], now: &str| {
        let output = docket()
            .current_dir(dir.path())
            .args(args)
            .args(["--plugins"])
            .arg(target().join("plugins"))
            .args(["--now", now])
            .env("DOCKET_CACHE_DIR", target().join("test-cache"))
            .env_remove("DOCKET_STORE")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let printed = run(
        &[
            "run",
            "permit.yaml",
            "--input",
            "@application.json",
            "--key",
            "BP-1",
        ],
        "2026-11-23T09:00:00Z",
    );
    let case = printed
        .lines()
        .find_map(|l| l.strip_prefix("case "))
        .unwrap()
        .to_owned();
    run(
        &[
            "case",
            "approve",
            &case,
            "--step",
            "decide",
            "--as",
            "olga",
            "--role",
            "permit-officer",
        ],
        "2026-11-23T10:00:00Z",
    );
    assert_eq!(
        run(&["retention"], "2026-12-01T10:00:00Z"),
        "0 cases purged\n"
    );
    let purged = run(&["retention"], "2026-12-24T10:00:00Z");
    assert!(
        purged.starts_with(&format!(
            "purged case {case} (building-permit v1, ended 2026-11-23): "
        )),
        "{purged}"
    );
    assert!(purged.ends_with("1 case purged\n"), "{purged}");
    assert!(
        dir.path()
            .join(format!("docket.db.archive/building-permit/{case}.json"))
            .exists()
    );
    let verified = run(&["audit", "verify"], "2026-12-24T10:00:00Z");
    assert!(verified.contains("OK"), "{verified}");
    assert!(verified.contains("purged"), "{verified}");
}
