//! The tamper-evident ledger on a real SQLite file: cases run through the
//! engine, then the file is tampered with behind docket's back (with plain
//! SQL, as a database administrator could) in each of the ways the ledger
//! must reveal, and verification must name what was done and where.

use crate::engine::{application, building_permit, plugin_dir};
use crate::support::{self, docket, target};
use docket_host::engine::{Decision, Host, HostConfig, LogOnly, ManualClock, StartCase};
use docket_host::ledger::{self, Entry, PublicKey, SigningKey, Tampering};
use docket_host::store::{Backend as _, Durability, Sqlite, Verdict};
use rusqlite::params;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const SEED: [u8; 32] = [5; 32];

/// A store holding two finished permits and one waiting, its ledger
/// signed at its head by the key [`SEED`] makes.
struct Signed {
    dir: tempfile::TempDir,
    cases: Vec<String>,
}

impl Signed {
    fn new() -> Signed {
        let dir = tempfile::tempdir().unwrap();
        let plugins = plugin_dir(dir.path());
        let clock = Arc::new(ManualClock::new(
            humantime::parse_rfc3339("2026-11-23T09:00:00Z").unwrap(),
        ));
        let host = Host::open(
            Arc::new(Sqlite::open(dir.path().join("docket.db"), Durability::Full).unwrap()),
            Arc::new(docket_host::plugin::Directory::open(&support::runtime(), &plugins).unwrap()),
            clock,
            Arc::new(LogOnly),
            HostConfig {
                workers: 1,
                seed: Some(11),
                ledger_key: Some(Arc::new(SigningKey::from_seed(SEED))),
                ..HostConfig::default()
            },
        )
        .unwrap();
        host.deploy(&building_permit()).unwrap();
        let mut cases = Vec::new();
        for (key, floors) in [("BP-1", 1), ("BP-2", 2), ("BP-3", 3)] {
            let started = host
                .start(
                    "building-permit",
                    StartCase {
                        input: application("residential", floors),
                        key: Some(key.to_owned()),
                        applicant: Some("ada".into()),
                    },
                )
                .unwrap();
            host.run_until_idle().unwrap();
            cases.push(started.id);
        }
        for case in &cases[..2] {
            host.decide(
                case,
                Decision {
                    step: "decide".into(),
                    verdict: Verdict::Approve,
                    person: "olga".into(),
                    role: "permit-officer".into(),
                    comment: None,
                },
            )
            .unwrap();
        }
        host.run_until_idle().unwrap();
        host.checkpoint().unwrap().expect("a checkpoint");
        drop(host);
        Signed { dir, cases }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("docket.db")
    }

    fn store(&self) -> Sqlite {
        Sqlite::open(self.path(), Durability::Full).unwrap()
    }

    fn sql(&self, sql: &str, params: impl rusqlite::Params) {
        let conn = rusqlite::Connection::open(self.path()).unwrap();
        conn.execute(sql, params).unwrap();
    }

    /// The ledger position of event `seq` of case `case`.
    fn position(&self, case: usize, seq: u64) -> u64 {
        let positions = self.store().ledger_of(&self.cases[case]).unwrap();
        positions[usize::try_from(seq).unwrap() - 1]
    }

    fn head(&self) -> u64 {
        self.store().ledger_head().unwrap().unwrap().0
    }

    fn verify(&self) -> ledger::Report {
        let key = SigningKey::from_seed(SEED).public();
        ledger::verify(&self.store(), Some(&key), None).unwrap()
    }

    #[track_caller]
    fn assert_found(&self, tampering: Tampering, position: Option<u64>, words: &str) {
        let report = self.verify();
        let problem = report.problem.expect("the tampering was not found");
        assert_eq!(
            (problem.tampering, problem.position),
            (tampering, position),
            "{problem}"
        );
        assert!(problem.detail.contains(words), "{problem}");
    }
}

fn key() -> PublicKey {
    SigningKey::from_seed(SEED).public()
}

#[test]
fn an_untouched_store_verifies_and_every_change_is_in_the_chain() {
    let signed = Signed::new();
    let store = signed.store();
    let report = signed.verify();
    assert!(report.is_ok(), "{:?}", report.problem);
    assert_eq!(report.entries, signed.head());
    assert_eq!(report.signed_up_to, Some(report.entries));
    assert_eq!(report.key, Some(key()));

    // Every journal event, the deployment and each plugin's first load.
    let events: u64 = signed
        .cases
        .iter()
        .map(|case| store.journal(case).unwrap().len() as u64)
        .sum();
    let items = store.ledger(0, usize::MAX).unwrap();
    let count = |kind| items.iter().filter(|i| i.entry.kind == kind).count() as u64;
    assert_eq!(count(ledger::EntryKind::Event), events);
    assert_eq!(count(ledger::EntryKind::Deployment), 1);
    let plugins: Vec<_> = items
        .iter()
        .filter(|i| i.entry.kind == ledger::EntryKind::Plugin)
        .map(|i| i.entry.subject.as_str())
        .collect();
    assert!(
        plugins.contains(&"validate-schema@1.0.0") && plugins.contains(&"notify-template@1.0.0"),
        "{plugins:?}"
    );
    assert_eq!(items.len() as u64, report.entries);
}

#[test]
fn a_changed_byte_in_an_event_is_found_at_its_position() {
    let signed = Signed::new();
    let case = signed.cases[1].clone();
    signed.sql(
        "UPDATE journal SET event = replace(event, 'Ada', 'Adb') WHERE case_id = ?1 AND seq = 1",
        [&case],
    );
    signed.assert_found(
        Tampering::Modified,
        Some(signed.position(1, 1)),
        &format!("event 1 of case `{case}` differs from what was recorded"),
    );
}

#[test]
fn a_changed_time_or_an_edited_entry_is_found() {
    let signed = Signed::new();
    signed.sql(
        "UPDATE journal SET at = at - 1 WHERE case_id = ?1 AND seq = 3",
        [&signed.cases[0]],
    );
    signed.assert_found(
        Tampering::Modified,
        Some(signed.position(0, 3)),
        "differs from what was recorded",
    );

    let signed = Signed::new();
    let position = signed.position(2, 2);
    signed.sql(
        "UPDATE ledger SET seq = 9 WHERE position = ?1",
        [position as i64],
    );
    signed.assert_found(Tampering::Modified, Some(position), "do not give its hash");
}

#[test]
fn a_deleted_entry_or_event_is_found_at_its_position() {
    let signed = Signed::new();
    let position = signed.position(0, 4);
    signed.sql("DELETE FROM ledger WHERE position = ?1", [position as i64]);
    signed.assert_found(Tampering::Removed, Some(position), "jumps from entry");

    let signed = Signed::new();
    let case = signed.cases[0].clone();
    signed.sql(
        "DELETE FROM journal WHERE case_id = ?1 AND seq = 4",
        [&case],
    );
    signed.assert_found(
        Tampering::Removed,
        Some(signed.position(0, 4)),
        &format!("event 4 of case `{case}` is gone from the store"),
    );
}

#[test]
fn swapped_entries_are_found_as_reordered() {
    let signed = Signed::new();
    let (p, q) = (signed.position(0, 2), signed.position(1, 2));
    assert!(p < q);
    // Exchange the two rows whole, as someone reordering the log would.
    signed.sql(
        "UPDATE ledger SET position = -1 WHERE position = ?1",
        [p as i64],
    );
    signed.sql(
        "UPDATE ledger SET position = ?1 WHERE position = ?2",
        [p as i64, q as i64],
    );
    signed.sql(
        "UPDATE ledger SET position = ?1 WHERE position = -1",
        [q as i64],
    );
    signed.assert_found(Tampering::Reordered, Some(p), "was appended after entry");
}

#[test]
fn swapped_events_are_found_at_the_first_of_them() {
    let signed = Signed::new();
    let case = signed.cases[0].clone();
    // Exchange what two events say, keeping their numbers and times.
    signed.sql(
        "UPDATE journal SET event = CASE seq \
           WHEN 2 THEN (SELECT event FROM journal WHERE case_id = ?1 AND seq = 3) \
           ELSE (SELECT event FROM journal WHERE case_id = ?1 AND seq = 2) END, \
         at = CASE seq \
           WHEN 2 THEN (SELECT at FROM journal WHERE case_id = ?1 AND seq = 3) \
           ELSE (SELECT at FROM journal WHERE case_id = ?1 AND seq = 2) END \
         WHERE case_id = ?1 AND seq IN (2, 3)",
        [&case],
    );
    signed.assert_found(
        Tampering::Modified,
        Some(signed.position(0, 2)),
        "differs from what was recorded",
    );
}

#[test]
fn a_forged_entry_put_into_the_chain_is_found_as_inserted() {
    let signed = Signed::new();
    let p = signed.position(1, 3);
    let store = signed.store();
    let before = store.ledger(p - 2, 1).unwrap().remove(0).entry;
    // Make room at p, then insert an entry that correctly follows p - 1.
    signed.sql(
        "UPDATE ledger SET position = position + 1000000 WHERE position >= ?1",
        [p as i64],
    );
    signed.sql(
        "UPDATE ledger SET position = position - 999999 WHERE position >= 1000000",
        [],
    );
    let forged = Entry::next(
        p,
        before.hash,
        ledger::EntryKind::Plugin,
        "forged@1.0.0",
        None,
        &serde_json::json!({"type": "plugin", "name": "forged"}),
    );
    signed.sql(
        "INSERT INTO ledger (position, kind, subject, seq, record, prev, content, hash) \
         VALUES (?1, 'plugin', 'forged@1.0.0', NULL, '{\"type\":\"plugin\",\"name\":\"forged\"}', ?2, ?3, ?4)",
        params![p as i64, forged.prev, forged.content, forged.hash],
    );
    signed.assert_found(Tampering::Inserted, Some(p), "was put between them");
}

#[test]
fn an_event_written_behind_the_ledger_is_found_as_inserted() {
    let signed = Signed::new();
    let case = signed.cases[2].clone();
    signed.sql(
        "INSERT INTO journal (case_id, seq, at, schema_version, event) \
         VALUES (?1, 99, 0, 1, '{\"type\":\"case_ended\",\"ending\":\"completed\"}')",
        [&case],
    );
    signed.assert_found(
        Tampering::Inserted,
        None,
        &format!("event 99 of case `{case}` is in the journal but not in the ledger"),
    );
}

#[test]
fn a_consistently_rewritten_tail_is_found_by_the_signed_checkpoint() {
    let signed = Signed::new();
    let case = signed.cases[0].clone();
    let from = signed.position(0, 1);
    signed.sql(
        "UPDATE journal SET event = replace(event, 'residential', 'industrial') \
         WHERE case_id = ?1 AND seq = 1",
        [&case],
    );
    // Recompute every entry from the change on, as a forger without the
    // key can: the chain itself is consistent again.
    let items = signed.store().ledger(from - 1, usize::MAX).unwrap();
    let conn = rusqlite::Connection::open(signed.path()).unwrap();
    let mut prev = items[0].entry.prev;
    for item in &items {
        let e = &item.entry;
        let record = item.record.as_ref().unwrap();
        let forged = Entry::next(e.position, prev, e.kind, &e.subject, e.seq, record);
        conn.execute(
            "UPDATE ledger SET prev = ?2, content = ?3, hash = ?4 WHERE position = ?1",
            params![e.position as i64, forged.prev, forged.content, forged.hash],
        )
        .unwrap();
        prev = forged.hash;
    }
    let head = signed.head();
    signed.assert_found(
        Tampering::Rewritten,
        Some(head),
        &format!("the chain up to entry {head} is not the one signed"),
    );

    // Nor does re-signing help without the host's key.
    let forger = SigningKey::from_seed([6; 32]);
    conn.execute("DELETE FROM checkpoints", []).unwrap();
    signed
        .store()
        .add_checkpoint(&forger.checkpoint(head, prev, 0))
        .unwrap();
    signed.assert_found(
        Tampering::BadSignature,
        Some(head),
        &format!("not signed by key {}", key()),
    );
}

#[test]
fn a_cut_off_tail_is_found_by_the_checkpoint_beyond_it() {
    let signed = Signed::new();
    let head = signed.head();
    signed.sql("DELETE FROM ledger WHERE position > ?1", [head as i64 - 3]);
    signed.assert_found(
        Tampering::Removed,
        Some(head - 2),
        &format!("a checkpoint was signed at entry {head}"),
    );
}

#[test]
fn a_store_from_before_the_ledger_gets_its_history_chained_on_open() {
    let signed = Signed::new();
    let entries = signed.head();
    let plugin_loads = signed
        .store()
        .ledger(0, usize::MAX)
        .unwrap()
        .iter()
        .filter(|i| i.entry.kind == ledger::EntryKind::Plugin)
        .count() as u64;
    let conn = rusqlite::Connection::open(signed.path()).unwrap();
    conn.execute_batch(
        "DROP TABLE ledger; DROP TABLE checkpoints; ALTER TABLE deployments DROP COLUMN pins; \
         PRAGMA user_version = 1;",
    )
    .unwrap();
    drop(conn);
    let store = signed.store();
    let report = ledger::verify(&store, None, None).unwrap();
    assert!(report.is_ok(), "{:?}", report.problem);
    // Everything but the plugin loads, which no table kept before.
    assert!(plugin_loads > 0);
    assert_eq!(report.entries, entries - plugin_loads);
}

#[test]
fn a_schema_3_store_gets_its_journal_in_append_order_on_open() {
    let signed = Signed::new();
    let before: Vec<_> = signed
        .cases
        .iter()
        .map(|case| signed.store().journal(case).unwrap())
        .collect();
    // Schema 3 kept the journal keyed by case and seq.
    let conn = rusqlite::Connection::open(signed.path()).unwrap();
    conn.execute_batch(
        "CREATE TABLE old_journal (
             case_id TEXT NOT NULL REFERENCES cases (id), seq INTEGER NOT NULL,
             at INTEGER NOT NULL, schema_version INTEGER NOT NULL, event TEXT NOT NULL,
             PRIMARY KEY (case_id, seq)) WITHOUT ROWID;
         INSERT INTO old_journal SELECT case_id, seq, at, schema_version, event FROM journal;
         DROP TABLE journal;
         ALTER TABLE old_journal RENAME TO journal;
         PRAGMA user_version = 3;",
    )
    .unwrap();
    drop(conn);

    let store = signed.store();
    for (case, journal) in signed.cases.iter().zip(&before) {
        assert_eq!(&store.journal(case).unwrap(), journal);
    }
    let report = ledger::verify(&store, None, None).unwrap();
    assert!(report.is_ok(), "{:?}", report.problem);
    // The rows are numbered in the order the ledger recorded them.
    let conn = rusqlite::Connection::open(signed.path()).unwrap();
    let (version, in_row_order, in_ledger_order): (i64, String, String) = conn
        .query_row(
            "SELECT (SELECT user_version FROM pragma_user_version),
                    (SELECT group_concat(case_id || '/' || seq) FROM (SELECT * FROM journal ORDER BY n)),
                    (SELECT group_concat(subject || '/' || seq) FROM
                        (SELECT * FROM ledger WHERE kind = 'event' ORDER BY position))",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(version, 4);
    assert_eq!(in_row_order, in_ledger_order);
    assert_eq!(
        in_row_order.split(',').count(),
        before.iter().map(Vec::len).sum::<usize>()
    );
}

#[test]
fn a_bundle_verifies_on_its_own_and_reveals_any_change() {
    let signed = Signed::new();
    let store = signed.store();
    let case = &signed.cases[1];
    let bundle = ledger::export_case(&store, case).unwrap();
    let report = ledger::verify_bundle(&bundle, Some(&key())).unwrap();
    assert_eq!(report.events, store.journal(case).unwrap().len() as u64);
    // Other cases' entries are there by hash only: no personal data leaks.
    let text = serde_json::to_string(&bundle).unwrap();
    let others_records = bundle
        .entries
        .iter()
        .filter(|e| e.entry.subject != *case && e.record.is_some())
        .count();
    assert_eq!(others_records, 0);
    assert!(
        text.contains("Ada Lovelace"),
        "the case's own input is in it"
    );

    let mut changed = bundle.clone();
    let event = changed
        .entries
        .iter_mut()
        .find(|e| e.record.is_some())
        .unwrap();
    event.record.as_mut().unwrap()["event"]["input"]["parcel"] = Value::from("9999-999");
    let problem = ledger::verify_bundle(&changed, Some(&key())).unwrap_err();
    assert_eq!(problem.tampering, Tampering::Modified, "{problem}");

    let mut hidden = bundle.clone();
    let last_own = hidden
        .entries
        .iter_mut()
        .rev()
        .find(|e| e.record.is_some())
        .unwrap();
    last_own.record = None;
    let problem = ledger::verify_bundle(&hidden, Some(&key())).unwrap_err();
    assert_eq!(problem.tampering, Tampering::Removed, "{problem}");

    let problem =
        ledger::verify_bundle(&bundle, Some(&SigningKey::from_seed([6; 32]).public())).unwrap_err();
    assert_eq!(problem.tampering, Tampering::BadSignature, "{problem}");
}

fn cli(dir: &Path, args: &[&str]) -> (i32, String) {
    let output = docket()
        .args(args)
        .env("DOCKET_STORE", dir.join("docket.db"))
        .env("DOCKET_PLUGINS", dir.join("plugins"))
        .env("DOCKET_CACHE_DIR", target().join("test-cache"))
        .env("DOCKET_NOW", "2026-11-23T09:00:00Z")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().expect("killed by a signal"), text)
}

#[test]
fn docket_audit_verifies_exports_and_reports_tampering() {
    let dir = tempfile::tempdir().unwrap();
    plugin_dir(dir.path());
    let input = dir.path().join("application.json");
    std::fs::write(&input, application("residential", 2).to_string()).unwrap();
    let workflow = support::root().join("examples/building-permit/workflow.yaml");
    let (code, printed) = cli(
        dir.path(),
        &[
            "run",
            workflow.to_str().unwrap(),
            "--input",
            &format!("@{}", input.display()),
            "--key",
            "BP-1",
        ],
    );
    assert_eq!(code, 0, "{printed}");
    let case = printed
        .lines()
        .find_map(|line| line.strip_prefix("case "))
        .unwrap()
        .to_owned();
    // The key was made beside the store, and the run signed what it wrote.
    assert!(dir.path().join("docket.db.key").exists());
    let (code, printed) = cli(dir.path(), &["audit", "verify"]);
    assert_eq!(code, 0, "{printed}");
    assert!(printed.starts_with("ledger OK: "), "{printed}");
    assert!(
        printed.contains("signed: 1 checkpoints by key"),
        "{printed}"
    );

    let bundle = dir.path().join("bundle.json");
    let (code, printed) = cli(
        dir.path(),
        &[
            "audit",
            "export",
            "--case",
            &case,
            "--out",
            bundle.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{printed}");
    let (_, public) = cli(dir.path(), &["audit", "key"]);
    // A third party, without the store.
    let elsewhere = tempfile::tempdir().unwrap();
    let (code, printed) = cli(
        elsewhere.path(),
        &[
            "audit",
            "verify",
            "--bundle",
            bundle.to_str().unwrap(),
            "--public-key",
            public.trim(),
        ],
    );
    assert_eq!(code, 0, "{printed}");
    assert!(printed.starts_with("bundle OK: "), "{printed}");

    let conn = rusqlite::Connection::open(dir.path().join("docket.db")).unwrap();
    conn.execute(
        "UPDATE journal SET event = replace(event, '1234-567', '1234-568') WHERE seq = 1",
        [],
    )
    .unwrap();
    let (code, printed) = cli(dir.path(), &["audit", "verify"]);
    assert_eq!(code, 1, "{printed}");
    assert!(
        printed.starts_with("ledger TAMPERED: modified at position "),
        "{printed}"
    );
    assert!(
        printed.contains(&format!("event 1 of case `{case}`")),
        "{printed}"
    );
}

#[test]
fn the_host_signs_a_checkpoint_every_so_many_entries() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = plugin_dir(dir.path());
    let store = Arc::new(Sqlite::open(dir.path().join("docket.db"), Durability::Full).unwrap());
    let host = Host::open(
        store.clone(),
        Arc::new(docket_host::plugin::Directory::open(&support::runtime(), &plugins).unwrap()),
        Arc::new(ManualClock::new(
            humantime::parse_rfc3339("2026-11-23T09:00:00Z").unwrap(),
        )),
        Arc::new(LogOnly),
        HostConfig {
            workers: 1,
            ledger_key: Some(Arc::new(SigningKey::from_seed(SEED))),
            checkpoint_every: 10,
            ..HostConfig::default()
        },
    )
    .unwrap();
    host.deploy(&building_permit()).unwrap();
    for n in 0..4 {
        host.start(
            "building-permit",
            StartCase {
                input: application("residential", n + 1),
                key: None,
                applicant: None,
            },
        )
        .unwrap();
        host.run_until_idle().unwrap();
    }
    let while_running = store.checkpoints().unwrap().len();
    assert!(while_running >= 2, "{while_running} checkpoints");
    drop(host);
    // Closing signs what the last checkpoint did not cover.
    let checkpoints = store.checkpoints().unwrap();
    assert_eq!(
        checkpoints.last().map(|c| c.position),
        store.ledger_head().unwrap().map(|(position, _)| position)
    );
    let report = ledger::verify(&*store, Some(&key()), None).unwrap();
    assert!(report.is_ok(), "{:?}", report.problem);
    assert_eq!(report.checkpoints, checkpoints.len());
}
