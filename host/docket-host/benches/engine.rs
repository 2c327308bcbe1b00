//! The engine over the embedded SQLite store, side by side with the raw
//! SQLite floor, in one run. `cargo xtask bench` builds the plugins and
//! runs this after the step benchmark.
//!
//! A 5-step workflow (validate, route, two parallel plugin steps, notify),
//! every commit durable (`synchronous = FULL`):
//! - a lone case from start to end, again and again: p50 and p99 latency;
//! - 10,000 cases started at once and run to their end: cases and steps
//!   per second, journal rows per second, peak RSS, store bytes per case;
//! - the floor: the same number of journal rows appended with rusqlite
//!   alone, same durability, in transactions of the size the engine's group
//!   commit reached, no engine.
//!
//! Steps are prepared as the runtime does by default (after 64 executions,
//! in the background, from the disk cache once it has the snapshots);
//! `DOCKET_BENCH_PREPARE=off` runs every step unprepared, for comparison.

#![allow(clippy::print_stdout, reason = "a benchmark prints its table")]

use docket_host::engine::{Host, HostConfig, LogOnly, ManualClock, StartCase};
use docket_host::plugin::{Directory, Runtime, RuntimeConfig};
use docket_host::store::{CaseFilter, CaseStatus, Durability, Ending, Sqlite};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

const WORKFLOW: &str = r#"
workflow: bench
version: 1
owner: bench
steps:
  - id: validate
    uses: validate-schema
    with:
      schema:
        type: object
        required: [applicant, parcel, project]
        properties:
          applicant: { type: object, required: [name, email] }
          parcel: { type: string, pattern: "^[0-9]{4}-[0-9]{3}$" }
  - id: triage
    uses: route-rules
    with:
      hit_policy: first
      rules: [{ when: { "/project/floors": { gt: 3 } }, route: complex }]
      default: simple
    routes: { simple: checks, complex: checks }
  - id: checks
    parallel:
      join: all
      branches:
        fire:
          - id: fire
            uses: validate-schema
            with: { schema: { type: object, properties: { project: { required: [floors] } } } }
        zoning:
          - id: zoning
            uses: route-rules
            with: { hit_policy: first, rules: [], default: ok }
  - id: notify
    uses: notify-template
    grant: [notify]
    with: { channel: email, to: "{{ applicant.email }}", subject: "Permit {{ parcel }}", body: "received" }
"#;

const LONE: usize = 300;
const IN_FLIGHT: usize = 10_000;
const STEPS_PER_CASE: usize = 5;

fn target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    )
}

fn application(n: usize) -> serde_json::Value {
    json!({
        "applicant": {"name": "Ada Lovelace", "email": format!("ada{n}@example.org")},
        "parcel": "1234-567",
        "project": {"kind": "residential", "floors": 1 + n % 6}
    })
}

/// Whether steps may be prepared: unless `DOCKET_BENCH_PREPARE=off`.
fn prepare() -> bool {
    std::env::var("DOCKET_BENCH_PREPARE").map_or(true, |value| value != "off")
}

fn host(dir: &Path) -> Host {
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(target().join("bench-cache")),
        prepare_after: if prepare() {
            RuntimeConfig::default().prepare_after
        } else {
            None
        },
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    let plugins = Directory::open(&runtime, target().join("plugins"))
        .expect("plugins: run `cargo xtask bench`, which builds them first");
    let store = Sqlite::open(dir.join("docket.db"), Durability::Full).expect("store");
    let host = Host::open(
        Arc::new(store),
        Arc::new(plugins),
        Arc::new(ManualClock::new(
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        )),
        // The benchmark measures the engine, not a mail server.
        Arc::new(LogOnly),
        HostConfig::default(),
    )
    .expect("host");
    host.deploy(WORKFLOW).expect("deploy");
    host
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// CPU time each thread of this process has used so far, by thread name
/// (`/proc/self/task/*/schedstat`, nanoseconds): unlike wall time, it shows
/// where the work goes even when other processes share the cores.
fn cpu_by_thread() -> Vec<(String, Duration)> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|task| {
            let name = std::fs::read_to_string(task.path().join("comm")).ok()?;
            let stat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
            let ns = stat.split_whitespace().next()?.parse().ok()?;
            Some((name.trim().to_owned(), Duration::from_nanos(ns)))
        })
        .collect()
}

/// The CPU time of the threads whose name starts with `prefix`.
fn cpu_of(threads: &[(String, Duration)], prefix: &str) -> Duration {
    threads
        .iter()
        .filter(|(name, _)| name.starts_with(prefix))
        .map(|(_, cpu)| *cpu)
        .sum()
}

/// Bytes this process has written so far (`/proc/self/io`, `wchar`): the
/// WAL frames, checkpoints and everything else.
fn written_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|io| {
            io.lines()
                .find_map(|line| line.strip_prefix("wchar:"))
                .and_then(|n| n.trim().parse().ok())
        })
        .unwrap_or(0)
}

fn store_bytes(dir: &Path) -> u64 {
    ["docket.db", "docket.db-wal"]
        .iter()
        .filter_map(|name| std::fs::metadata(dir.join(name)).ok())
        .map(|m| m.len())
        .sum()
}

/// Appends `rows` journal-like rows with rusqlite alone, to a table laid
/// out as the store's journal is, `per_commit` rows per durable
/// transaction; rows per second.
fn raw_floor(dir: &Path, rows: usize, per_commit: usize) -> f64 {
    let conn = rusqlite::Connection::open(dir.join("floor.db")).expect("floor db");
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
         CREATE TABLE journal (n INTEGER PRIMARY KEY, case_id TEXT NOT NULL, seq INTEGER NOT NULL,
                               at INTEGER NOT NULL, schema_version INTEGER NOT NULL,
                               event TEXT NOT NULL);
         CREATE UNIQUE INDEX journal_by_case ON journal (case_id, seq);",
    )
    .expect("floor schema");
    let event = r#"{"type":"step_finished","step":"validate","attempt":1,"outcome":"continue","data":{"applicant":{"name":"Ada Lovelace","email":"ada1@example.org"},"parcel":"1234-567","project":{"kind":"residential","floors":2}},"plugin":"0f3c9a7e5d1b2c4a6e8f0a1b3c5d7e9f1a2b3c4d5e6f708192a3b4c5d6e7f809"}"#;
    let started = Instant::now();
    let mut written = 0;
    while written < rows {
        let tx = conn.unchecked_transaction().expect("begin");
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO journal (case_id, seq, at, schema_version, event) \
                     VALUES (?1, ?2, ?3, 1, ?4)",
                )
                .expect("prepare");
            for _ in 0..per_commit.min(rows - written) {
                let case = format!("case{:07}", written / 12);
                insert
                    .execute(rusqlite::params![
                        case,
                        (written % 12) as i64,
                        1_800_000_000_000i64,
                        event
                    ])
                    .expect("insert");
                written += 1;
            }
        }
        tx.commit().expect("commit");
    }
    rows as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    // A lone case, start to end, one after the other.
    let dir = tempfile::tempdir().expect("tempdir");
    let lone_host = host(dir.path());
    let mut lone = Vec::with_capacity(LONE);
    for n in 0..LONE + 20 {
        let began = Instant::now();
        let started = lone_host
            .start(
                "bench",
                StartCase {
                    input: application(n),
                    ..StartCase::default()
                },
            )
            .expect("start");
        lone_host.run_until_idle().expect("run");
        if n >= 20 {
            lone.push(began.elapsed());
        }
        debug_assert_eq!(
            lone_host.case(&started.id).expect("case").row.status,
            CaseStatus::Ended(Ending::Completed)
        );
    }
    drop(lone_host);
    lone.sort();

    // Many cases in flight.
    let dir = tempfile::tempdir().expect("tempdir");
    let many_host = host(dir.path());
    let main_thread = std::fs::read_to_string("/proc/self/comm").unwrap_or_default();
    let main_thread = main_thread.trim().to_owned();
    let main_before = cpu_of(&cpu_by_thread(), &main_thread);
    let written_before = written_bytes();
    let began = Instant::now();
    let starts = (0..IN_FLIGHT)
        .map(|n| StartCase {
            input: application(n),
            ..StartCase::default()
        })
        .collect();
    let results = many_host.start_many("bench", starts).expect("start");
    let accepted = began.elapsed();
    assert!(results.iter().all(Result::is_ok), "every case is accepted");
    many_host.run_until_idle().expect("run");
    let elapsed = began.elapsed();
    let threads = cpu_by_thread();
    let written = written_bytes() - written_before;
    let per_case = |cpu: Duration| cpu.as_secs_f64() * 1e6 / IN_FLIGHT as f64;
    let committer_us = per_case(cpu_of(&threads, "docket-committ"));
    let freeing_us = per_case(cpu_of(&threads, "docket-freeing"));
    let workers_us = per_case(cpu_of(&threads, "docket-worker"));
    let starting_us = per_case(cpu_of(&threads, &main_thread).saturating_sub(main_before));
    let rss = peak_rss_mib();
    let rows = many_host.cases(&CaseFilter::default()).expect("cases");
    let completed = rows
        .iter()
        .filter(|r| r.status == CaseStatus::Ended(Ending::Completed))
        .count();
    assert_eq!(completed, IN_FLIGHT, "every case completed");
    let events: u64 = rows.iter().map(|r| r.events).sum();
    let stats = many_host.commit_stats();
    drop(many_host);
    let bytes = store_bytes(dir.path());
    let per_commit = (stats.events as f64 / stats.transactions.max(1) as f64)
        .round()
        .max(1.0) as usize;

    let cases_per_s = IN_FLIGHT as f64 / elapsed.as_secs_f64();
    let rows_per_s = events as f64 / elapsed.as_secs_f64();
    let floor_dir = tempfile::tempdir().expect("tempdir");
    let floor = raw_floor(floor_dir.path(), events as usize, per_commit);

    println!(
        "a 5-step workflow (validate, route, 2 parallel plugin steps, notify); SQLite, WAL, synchronous = FULL; {cores} cores; steps {}",
        if prepare() {
            "prepared after 64 executions"
        } else {
            "never prepared"
        }
    );
    println!();
    println!("| measure | value |");
    println!("|---|---:|");
    println!(
        "| lone case, start to end, p50 | {:.2} ms |",
        ms(quantile(&lone, 0.5))
    );
    println!(
        "| lone case, start to end, p99 | {:.2} ms |",
        ms(quantile(&lone, 0.99))
    );
    println!("| {IN_FLIGHT} cases in flight: cases/s | {cases_per_s:.0} |");
    println!(
        "| {IN_FLIGHT} cases in flight: steps/s | {:.0} |",
        cases_per_s * STEPS_PER_CASE as f64
    );
    println!(
        "| {IN_FLIGHT} cases accepted (start_many, durable) | {:.0} ms |",
        ms(accepted)
    );
    println!("| journal rows/s, engine | {rows_per_s:.0} |");
    println!(
        "| journal rows/s, raw SQLite floor (same rows, same durability, {per_commit} rows per commit) | {floor:.0} |"
    );
    println!("| engine / floor | {:.1} % |", 100.0 * rows_per_s / floor);
    println!(
        "| transactions, journal rows per transaction | {}, {:.1} |",
        stats.transactions,
        stats.events as f64 / stats.transactions.max(1) as f64
    );
    println!(
        "| events per case | {:.1} |",
        events as f64 / IN_FLIGHT as f64
    );
    println!(
        "| store bytes per finished case | {:.0} |",
        bytes as f64 / IN_FLIGHT as f64
    );
    println!(
        "| bytes written per finished case (WAL frames, checkpoints) | {:.0} |",
        written as f64 / IN_FLIGHT as f64
    );
    println!("| peak RSS | {rss:.0} MiB |");
    println!("| CPU per case: committer thread | {committer_us:.0} µs |");
    println!("| CPU per case: worker threads (plugin steps, engine) | {workers_us:.0} µs |");
    println!("| CPU per case: freeing committed batches | {freeing_us:.0} µs |");
    println!("| CPU per case: the thread starting the cases | {starting_us:.0} µs |");
    println!(
        "| CPU per case, all four | {:.0} µs |",
        committer_us + workers_us + freeing_us + starting_us
    );
}
