//! Crash recovery: the engine runs as a separate process (`docket worker`)
//! over batches of cases and is killed with SIGKILL at random moments, at
//! least fifty times, then restarted. Every case must complete, no step's
//! finish may be recorded twice, and every notification must be delivered
//! exactly once.

use crate::engine::{open, plugin_dir};
use crate::support::{docket, target};
use docket_host::engine::{Mailbox, ManualClock, StartCase};
use docket_host::ledger::{self, SigningKey};
use docket_host::store::{Backend, CaseFilter, CaseStatus, Durability, Ending, Event, Sqlite};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

const WORKFLOW: &str = r#"
workflow: crash-batch
version: 1
owner: test
steps:
  - id: hold
    wait: { for: 1s }
  - id: check
    uses: validate-schema@1
    with: { schema: { type: object, required: [n] } }
  - id: route
    uses: route-rules@1
    with:
      hit_policy: first
      rules: [{ when: { "/n": { gte: 0 } }, route: both }]
      default: both
    routes: { both: fan-out }
  - id: fan-out
    parallel:
      join: all
      branches:
        left: [{ id: left, uses: misbehave, with: { mode: ok }, grant: [notify, settings, secrets] }]
        right: [{ id: right, uses: misbehave, with: { mode: ok }, grant: [notify, settings, secrets] }]
  - id: tell
    uses: notify-template@1
    grant: [notify]
    with: { channel: email, to: "case-{{ n }}@example.org", subject: "case {{ n }} is done", body: "done" }
"#;

const START: &str = "2026-11-23T09:00:00Z";
const LATER: &str = "2026-11-23T10:00:00Z";
const BATCH: usize = 300;
const KILLS: usize = 50;

/// Starts a batch of cases that wait on a one-second timer, so that the
/// worker process, whose clock reads an hour later, has them all to do.
fn start_batch(dir: &Path, plugins: &Path, first: usize) {
    let clock = Arc::new(ManualClock::new(humantime::parse_rfc3339(START).unwrap()));
    let host = open(
        dir,
        plugins,
        clock,
        &dir.join("mailbox.jsonl"),
        first as u64,
    );
    host.deploy(WORKFLOW).expect("deploy");
    for n in first..first + BATCH {
        host.start(
            "crash-batch",
            StartCase {
                input: json!({ "n": n }),
                key: Some(format!("C-{n:05}")),
                applicant: None,
            },
        )
        .expect("start");
    }
    host.run_until_idle().expect("run");
}

/// A small deterministic generator: the kill moments differ from one
/// kill to the next, and from one run of the test to the next only by
/// the machine's speed.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn worker(dir: &Path, plugins: &Path) -> std::process::Command {
    let mut cmd = docket();
    cmd.args(["worker", "--until-idle", "--now", LATER])
        .env("DOCKET_STORE", dir.join("docket.db"))
        .env("DOCKET_PLUGINS", plugins)
        .env("DOCKET_MAILBOX", dir.join("mailbox.jsonl"))
        .env("DOCKET_CACHE_DIR", target().join("test-cache"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

fn unfinished(store: &Sqlite) -> usize {
    store.unfinished_cases().expect("unfinished").len()
}

#[test]
fn sigkill_at_random_moments_loses_nothing_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = plugin_dir(dir.path());
    let mut rng = Lcg(0x5eed);
    let mut kills = 0;
    let mut batches = 0;
    let mut clean_exits = 0;
    // Kills that struck while the worker was part-way through a batch.
    let mut kills_mid_batch = 0;
    // Kills during start-up (recovery) count too, but at least half must
    // strike a worker that is advancing cases.
    while (kills < KILLS || kills_mid_batch < KILLS / 2) && kills < 10 * KILLS {
        let before = {
            let store = Sqlite::open(dir.path().join("docket.db"), Durability::Full).unwrap();
            if unfinished(&store) == 0 {
                drop(store);
                start_batch(dir.path(), &plugins, batches * BATCH);
                batches += 1;
                BATCH
            } else {
                unfinished(&store)
            }
        };
        let mut child = worker(dir.path(), &plugins)
            .spawn()
            .expect("spawn docket worker");
        let delay = Duration::from_millis(20 + rng.below(300));
        std::thread::sleep(delay);
        match child.try_wait().expect("wait") {
            Some(status) => {
                let output = child.wait_with_output().expect("output");
                assert!(
                    status.success(),
                    "the worker failed: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
                clean_exits += 1;
            }
            None => {
                child.kill().expect("SIGKILL");
                child.wait().expect("reap");
                kills += 1;
                let store = Sqlite::open(dir.path().join("docket.db"), Durability::Full).unwrap();
                let after = unfinished(&store);
                if after < before && after > 0 {
                    kills_mid_batch += 1;
                }
            }
        }
    }
    // One last run, uninterrupted, finishes what the last kill left.
    let output = worker(dir.path(), &plugins).output().expect("worker");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let store = Sqlite::open(dir.path().join("docket.db"), Durability::Full).unwrap();
    let cases = store.cases(&CaseFilter::default()).expect("cases");
    assert_eq!(
        cases.len(),
        batches * BATCH,
        "every accepted case is in the store"
    );
    let mut duplicate_finishes = 0;
    for case in &cases {
        assert_eq!(
            case.status,
            CaseStatus::Ended(Ending::Completed),
            "case {} did not complete:\n{}",
            case.id,
            docket_host::engine::timeline(&store.journal(&case.id).unwrap())
        );
        let mut finished: BTreeMap<String, usize> = BTreeMap::new();
        for recorded in store.journal(&case.id).expect("journal") {
            if let Event::StepFinished { step, .. } = recorded.event {
                *finished.entry(step).or_default() += 1;
            }
        }
        assert_eq!(finished.len(), 5, "{}: {finished:?}", case.id);
        duplicate_finishes += finished.values().filter(|n| **n > 1).count();
    }
    let mail = Mailbox::read(dir.path().join("mailbox.jsonl")).expect("mailbox");
    let keys: BTreeSet<&str> = mail.iter().map(|m| m["key"].as_str().unwrap()).collect();
    let recipients: BTreeSet<&str> = mail.iter().map(|m| m["to"].as_str().unwrap()).collect();
    let duplicate_deliveries = mail.len() - keys.len();
    eprintln!(
        "crash test: {kills} SIGKILLs ({kills_mid_batch} part-way through a batch), {clean_exits} clean exits, {} cases in {batches} batches, \
         {duplicate_finishes} steps finished twice, {} notifications, {duplicate_deliveries} delivered twice",
        cases.len(),
        mail.len()
    );
    assert!(
        kills_mid_batch >= KILLS / 2,
        "too few kills struck mid-batch: {kills_mid_batch}"
    );
    assert_eq!(duplicate_finishes, 0);
    assert_eq!(duplicate_deliveries, 0);
    assert_eq!(mail.len(), cases.len(), "one notification per case");
    assert_eq!(
        recipients.len(),
        cases.len(),
        "each case's own notification"
    );
    assert!(store.undelivered(10).expect("outbox").is_empty());

    // The ledger went through every kill with the journal: whole, in
    // order, and signed by the workers that exited cleanly.
    let key = SigningKey::load_or_create(&dir.path().join("docket.db.key"))
        .expect("the workers' key")
        .public();
    let report = ledger::verify(&store, Some(&key), None).expect("verify");
    eprintln!(
        "crash test: the ledger verifies: {} entries, {} checkpoints",
        report.entries, report.checkpoints
    );
    assert!(report.is_ok(), "{:?}", report.problem);
    assert!(report.checkpoints > 0);
}
