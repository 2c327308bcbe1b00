//! KPIs, exports and metrics over real cases: building permits run through
//! a `Host` on a manual clock, so every duration in the report is exact;
//! then `docket report` and `docket export` on the same store, and the
//! exported logs read by PM4Py, an independent process-mining library.

use crate::engine::{DAY, application, building_permit, plugin_dir};
use crate::support::{self, docket};
use docket_host::engine::{Host, HostConfig, Mailbox, ManualClock, StartCase};
use docket_host::insight::{self, Metrics, Report, Selection, StepKind, StepKpis, VersionReport};
use docket_host::plugin::Directory;
use docket_host::store::{Durability, Sqlite, Verdict};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

const D: i64 = 86_400_000;

struct Env {
    host: Host,
    clock: Arc<ManualClock>,
    metrics: Arc<Metrics>,
    store: PathBuf,
    dir: tempfile::TempDir,
}

fn env() -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = plugin_dir(dir.path());
    let clock = Arc::new(ManualClock::new(
        humantime::parse_rfc3339("2026-11-23T09:00:00Z").expect("time"),
    ));
    let metrics = Arc::new(Metrics::default());
    let store = dir.path().join("docket.db");
    let runtime = support::runtime();
    let host = Host::open(
        Arc::new(Sqlite::open(&store, Durability::Full).expect("store")),
        Arc::new(Directory::open(&runtime, &plugins).expect("plugins")),
        clock.clone(),
        Arc::new(Mailbox::open(dir.path().join("mailbox.jsonl")).expect("mailbox")),
        HostConfig {
            workers: 1,
            seed: Some(11),
            metrics: Some(metrics.clone()),
            ..HostConfig::default()
        },
    )
    .expect("host");
    Env {
        host,
        clock,
        metrics,
        store,
        dir,
    }
}

impl Env {
    fn start(&self, key: &str, input: Value) -> String {
        let started = self
            .host
            .start(
                "building-permit",
                StartCase {
                    input,
                    key: Some(key.into()),
                    applicant: Some("ada".into()),
                },
            )
            .expect("start");
        self.host.run_until_idle().expect("run");
        started.id
    }

    fn decide(&self, case: &str, step: &str, verdict: Verdict, person: &str, role: &str) {
        self.host
            .decide(
                case,
                docket_host::engine::Decision {
                    step: step.into(),
                    verdict,
                    person: person.into(),
                    role: role.into(),
                    comment: None,
                },
            )
            .expect("decide");
        self.host.run_until_idle().expect("run");
    }

    fn advance(&self, by: Duration) {
        self.clock.advance(by);
        self.host.run_until_idle().expect("run");
    }

    fn report(&self) -> Report {
        let cases = insight::load(self.host.store().as_ref(), &Selection::default()).expect("load");
        insight::report(&cases, &Selection::default())
    }
}

/// Four permits over four days:
/// - BP-A, simple: decided on day 2 (lead time 2d);
/// - BP-B, commercial: fire on day 1, zoning day 2, environment day 3,
///   decided day 4 (4d);
/// - BP-C, incomplete: rejected at intake at once (0s);
/// - BP-D, industrial: fire safety refuses on day 1, zoning and environment
///   are cancelled by the join (1d).
fn four_permits() -> Env {
    let env = env();
    env.host.deploy(&building_permit()).expect("deploy");
    let a = env.start("BP-A", application("residential", 2));
    let b = env.start("BP-B", application("commercial", 6));
    env.start(
        "BP-C",
        json!({"applicant": {"name": "X", "email": "x@example.org"}}),
    );
    let d = env.start("BP-D", application("industrial", 2));
    env.advance(DAY);
    env.decide(
        &b,
        "reviews/fire/fire-safety",
        Verdict::Approve,
        "fred",
        "fire-safety",
    );
    env.decide(
        &d,
        "reviews/fire/fire-safety",
        Verdict::Reject,
        "fred",
        "fire-safety",
    );
    env.advance(DAY);
    env.decide(&a, "decide", Verdict::Approve, "olga", "permit-officer");
    env.decide(
        &b,
        "reviews/zoning/zoning",
        Verdict::Approve,
        "zoe",
        "zoning",
    );
    env.advance(DAY);
    env.decide(
        &b,
        "reviews/environment/environment",
        Verdict::Approve,
        "emil",
        "environment",
    );
    env.advance(DAY);
    env.decide(&b, "decide", Verdict::Approve, "olga", "permit-officer");
    env
}

fn permits(report: &Report) -> &VersionReport {
    report
        .workflows
        .iter()
        .find(|w| w.workflow == "building-permit" && w.version == 1)
        .expect("building-permit v1 in the report")
}

#[track_caller]
fn step<'a>(version: &'a VersionReport, name: &str) -> &'a StepKpis {
    version
        .steps
        .iter()
        .find(|s| s.step == name)
        .unwrap_or_else(|| panic!("no step `{name}` in the report"))
}

#[test]
fn the_report_has_exact_lead_times_rates_and_the_bottleneck() {
    let env = four_permits();
    let report = env.report();
    let permits = permits(&report);

    let cases = &permits.cases;
    assert_eq!(
        (cases.started, cases.completed, cases.rejected, cases.open),
        (4, 2, 2, 0)
    );
    // Lead times 0s, 1d, 2d, 4d by nearest rank.
    let lead = cases.lead_time.expect("lead time");
    assert_eq!((lead.p50, lead.p90, lead.p99), (D, 4 * D, 4 * D));
    // The 23rd to the 27th: five calendar days, four cases ended.
    assert_eq!(cases.days, 5);
    assert_eq!(cases.throughput_per_day, 0.8);

    let intake = step(permits, "intake");
    assert_eq!(intake.kind, Some(StepKind::Plugin));
    assert_eq!(intake.visits, 4);
    assert_eq!(intake.rejection_rate, 0.25);
    assert_eq!(
        intake.total_time, 0,
        "plugins take no time on a manual clock"
    );

    let fire = step(permits, "reviews/fire/fire-safety");
    assert_eq!((fire.visits, fire.decided), (2, 2));
    assert_eq!(fire.rejection_rate, 0.5);
    assert_eq!(fire.lead_time.map(|p| p.p50), Some(D));

    let environment = step(permits, "reviews/environment/environment");
    assert_eq!(
        (
            environment.visits,
            environment.decided,
            environment.cancelled
        ),
        (2, 1, 1)
    );
    assert_eq!(environment.lead_time.map(|p| p.p50), Some(3 * D));
    assert_eq!(environment.total_time, 4 * D);
    assert_eq!(environment.waiting_time, 4 * D);
    assert_eq!(environment.working_time, 0);

    let decide = step(permits, "decide");
    let lead = decide.lead_time.expect("decide lead time");
    assert_eq!((lead.p50, lead.p90), (D, 2 * D));

    // Case time: 0 + 1d + 2d + 4d. Environment holds 4d of it, then the
    // decision and zoning 3d each (ties by name), fire safety 2d.
    let ranking: Vec<(&str, i64)> = permits
        .bottlenecks
        .iter()
        .take(4)
        .map(|b| (b.step.as_str(), b.total_time))
        .collect();
    assert_eq!(
        ranking,
        [
            ("reviews/environment/environment", 4 * D),
            ("decide", 3 * D),
            ("reviews/zoning/zoning", 3 * D),
            ("reviews/fire/fire-safety", 2 * D),
        ]
    );
    assert_eq!(permits.bottlenecks[0].share_of_lead_time, 4.0 / 7.0);
    assert_eq!(permits.bottlenecks[0].waiting_share, 1.0);
    assert!(
        permits.bottlenecks.iter().all(|b| b.step != "reviews"),
        "the parallel step is not ranked"
    );
}

#[test]
fn an_escalated_review_counts_as_a_deadline_breach() {
    let env = env();
    env.host.deploy(&building_permit()).expect("deploy");
    let case = env.start("BP-E", application("commercial", 2));
    env.decide(
        &case,
        "reviews/fire/fire-safety",
        Verdict::Approve,
        "fred",
        "fire-safety",
    );
    env.decide(
        &case,
        "reviews/zoning/zoning",
        Verdict::Approve,
        "zoe",
        "zoning",
    );
    env.advance(11 * DAY);
    env.decide(
        &case,
        "reviews/environment/environment",
        Verdict::Approve,
        "elias",
        "environment-lead",
    );
    let report = env.report();
    let environment = step(permits(&report), "reviews/environment/environment");
    assert_eq!(environment.escalation_rate, 1.0);
    assert_eq!(environment.deadline_breaches, 1);
    assert_eq!(environment.lead_time.map(|p| p.p50), Some(11 * D));
    let fire = step(permits(&report), "reviews/fire/fire-safety");
    assert_eq!(fire.deadline_breaches, 0);
}

const RETRIES: &str = r#"
workflow: retries
version: 1
owner: test
steps:
  - id: flaky
    uses: misbehave
    grant: [notify, settings, secrets]
    with: { mode: flaky }
    retry: { attempts: 3, backoff: 1s }
  - id: broken
    uses: misbehave
    grant: [notify, settings, secrets]
    with: { mode: transient }
    retry: { attempts: 2, backoff: 10s }
    on_error: fallback
  - id: fallback
    uses: misbehave
    grant: [notify, settings, secrets]
    with: { mode: ok }
"#;

#[test]
fn retries_wait_out_their_back_off_and_errors_are_counted() {
    let env = env();
    env.host.deploy(RETRIES).expect("deploy");
    env.host
        .start(
            "retries",
            StartCase {
                input: json!({}),
                ..StartCase::default()
            },
        )
        .expect("start");
    env.host.run_until_idle().expect("run");
    for seconds in [1, 2, 10] {
        env.advance(Duration::from_secs(seconds));
    }
    let report = env.report();
    let retries = &report.workflows[0];
    let flaky = step(retries, "flaky");
    assert_eq!((flaky.retry_rate, flaky.error_rate), (1.0, 0.0));
    assert_eq!(flaky.waiting_time, 3000, "back-off 1s, then 2s");
    let broken = step(retries, "broken");
    assert_eq!((broken.retry_rate, broken.error_rate), (1.0, 1.0));
    assert_eq!(broken.total_time, 10_000);
    assert_eq!(step(retries, "fallback").visits, 1);
}

#[test]
fn metrics_follow_the_commits() {
    let env = four_permits();
    let text = env.metrics.render();
    for line in [
        r#"docket_cases_started_total{workflow="building-permit",version="1"} 4"#,
        r#"docket_cases_ended_total{workflow="building-permit",version="1",ending="completed"} 2"#,
        r#"docket_cases_ended_total{workflow="building-permit",version="1",ending="rejected"} 2"#,
        r#"docket_step_lead_time_seconds_count{workflow="building-permit",version="1",step="decide"} 2"#,
        r#"docket_step_lead_time_seconds_sum{workflow="building-permit",version="1",step="decide"} 259200.0"#,
        r#"docket_step_visits_total{workflow="building-permit",version="1",step="reviews/zoning/zoning",outcome="cancelled"} 1"#,
    ] {
        assert!(text.contains(line), "no `{line}` in:\n{text}");
    }
}

fn cli(store: &Path, args: &[&str]) -> String {
    let output = docket()
        .args(args)
        .env("DOCKET_STORE", store)
        .output()
        .expect("docket");
    assert_eq!(
        output.status.code(),
        Some(0),
        "docket {args:?}\nstderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

#[test]
fn docket_report_prints_the_table_the_json_and_a_comparison() {
    let env = four_permits();
    let store = env.store.clone();
    let v2 = building_permit().replace("version: 1", "version: 2");
    env.host.deploy(&v2).expect("deploy v2");
    let case = env.start("BP-V2", application("residential", 1));
    env.advance(Duration::from_secs(3600));
    env.decide(&case, "decide", Verdict::Approve, "olga", "permit-officer");
    drop(env.host);

    let table = cli(&store, &["report", "--workflow", "building-permit@1"]);
    assert!(
        table.starts_with(
            "building-permit v1: 4 cases (2 completed, 2 rejected, 0 failed, 0 open) over 5 days, 0.80 ended per day\ncase lead time: p50 1d, p90 4d, p99 4d\n"
        ),
        "{table}"
    );
    let first = table
        .lines()
        .skip_while(|l| !l.starts_with("bottlenecks"))
        .nth(1)
        .expect("a ranked step");
    assert!(
        first.starts_with("  1. reviews/environment/environment")
            && first.contains("57% of lead time")
            && first.ends_with("waiting 100%"),
        "{first}"
    );

    let json: Value = serde_json::from_str(&cli(&store, &["report", "--json"])).expect("json");
    let versions: Vec<(&str, u64, u64)> = json["workflows"]
        .as_array()
        .expect("workflows")
        .iter()
        .map(|w| {
            (
                w["workflow"].as_str().unwrap(),
                w["version"].as_u64().unwrap(),
                w["cases"]["started"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        versions,
        [("building-permit", 1, 4), ("building-permit", 2, 1)]
    );
    assert_eq!(json["workflows"][1]["cases"]["lead_time"]["p50"], 3_600_000);

    // --since the day after the first batch leaves none of it.
    let recent: Value =
        serde_json::from_str(&cli(&store, &["report", "--since", "2026-11-24", "--json"]))
            .expect("json");
    assert_eq!(recent["workflows"].as_array().map(Vec::len), Some(1));
    assert_eq!(recent["workflows"][0]["version"], 2);

    let compared = cli(
        &store,
        &[
            "report",
            "--compare",
            "building-permit@1",
            "building-permit@2",
        ],
    );
    assert!(
        compared.starts_with("building-permit v1 → v2\ncases: 4 → 1; lead time p50: 1d → 1h;"),
        "{compared}"
    );
    let decide = compared
        .lines()
        .find(|l| l.starts_with("decide "))
        .expect("decide compared");
    assert!(
        decide.contains("2 → 1") && decide.contains("1d → 1h"),
        "{decide}"
    );

    let missing = docket()
        .args(["report", "--workflow", "building-permit@9"])
        .env("DOCKET_STORE", &store)
        .output()
        .expect("docket");
    assert_ne!(missing.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("no deployed version 9"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
}

/// A virtual environment with PM4Py, made on first use: `python3 -m venv`
/// (with Debian's `python3-venv` installed when it is missing) and pip.
fn pm4py() -> PathBuf {
    let venv = support::target().join("pm4py-venv");
    let python = venv.join("bin/python");
    let ready = |python: &Path| {
        Command::new(python)
            .args(["-c", "import pm4py"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if ready(&python) {
        return python;
    }
    let venv_made = |venv: &Path| {
        Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(venv)
            .status()
            .is_ok_and(|s| s.success())
    };
    if !venv_made(&venv) {
        // Debian ships venv separately; the test machines run as root.
        let installed = Command::new("sh")
            .args([
                "-c",
                "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv",
            ])
            .status()
            .is_ok_and(|s| s.success());
        assert!(installed, "cannot install python3-venv");
        assert!(venv_made(&venv), "python3 -m venv failed");
    }
    let pip = Command::new(venv.join("bin/pip"))
        .args(["install", "-q", "pm4py"])
        .status()
        .expect("pip");
    assert!(pip.success(), "pip install pm4py failed");
    assert!(ready(&python), "pm4py does not import");
    python
}

const CHECK_LOGS: &str = r#"
import json, sys
import pm4py
xes, ocel_path, out = sys.argv[1:4]
log = pm4py.read_xes(xes)
dfg, starts, ends = pm4py.discover_dfg(log)
tree = pm4py.discover_process_tree_inductive(log)
complete = log[log["lifecycle:transition"] == "complete"]
ocel = pm4py.read_ocel2_json(ocel_path)
result = {
    "cases": int(log["case:concept:name"].nunique()),
    "events": int(len(log)),
    "activities": sorted(log["concept:name"].unique().tolist()),
    "dfg_activities": sorted({a for edge in dfg for a in edge} | set(starts) | set(ends)),
    "tree": str(tree),
    "resources": sorted(complete["org:resource"].dropna().unique().tolist()),
    "ocel_events": int(len(ocel.events)),
    "ocel_objects": int(len(ocel.objects)),
    "ocel_object_types": sorted(ocel.objects["ocel:type"].unique().tolist()),
    "ocel_activities": sorted(ocel.events["ocel:activity"].unique().tolist()),
    "ocel_relations": int(len(ocel.relations)),
}
with open(out, "w") as f:
    json.dump(result, f)
"#;

#[test]
fn pm4py_reads_the_exported_xes_and_ocel_logs() {
    let env = four_permits();
    let store = env.store.clone();
    let dir = env.dir.path().to_owned();
    let expected = env.report();
    drop(env.host);

    let xes = dir.join("log.xes");
    let ocel = dir.join("log.json");
    std::fs::write(
        &xes,
        cli(&store, &["export", "xes", "--workflow", "building-permit"]),
    )
    .expect("write");
    std::fs::write(&ocel, cli(&store, &["export", "ocel"])).expect("write");

    let python = pm4py();
    let script = dir.join("check_logs.py");
    let result = dir.join("result.json");
    std::fs::write(&script, CHECK_LOGS).expect("script");
    let output = Command::new(&python)
        .arg(&script)
        .args([&xes, &ocel, &result])
        .output()
        .expect("python");
    assert!(
        output.status.success(),
        "pm4py failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: Value =
        serde_json::from_str(&std::fs::read_to_string(&result).expect("result")).expect("json");

    let permits = permits(&expected);
    // Every step visit but the parallel container's is an activity, with a
    // start and a completion.
    let visits: usize = permits
        .steps
        .iter()
        .filter(|s| s.kind != Some(StepKind::Parallel))
        .map(|s| s.visits)
        .sum();
    assert_eq!(visits, 19);
    assert_eq!(result["cases"], 4);
    assert_eq!(result["events"], 2 * visits);
    let activities = [
        "decide",
        "intake",
        "notify-granted",
        "notify-incomplete",
        "notify-refused",
        "reviews/environment/environment",
        "reviews/fire/fire-safety",
        "reviews/zoning/zoning",
        "triage",
    ];
    assert_eq!(result["activities"], json!(activities));
    assert_eq!(result["dfg_activities"], json!(activities));
    let tree = result["tree"].as_str().expect("tree");
    for activity in activities {
        assert!(
            tree.contains(&format!("'{activity}'")),
            "{activity} not in {tree}"
        );
    }
    let resources: Vec<&str> = result["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let people: Vec<&str> = resources
        .iter()
        .copied()
        .filter(|r| !r.starts_with("plugin:"))
        .collect();
    assert_eq!(people, ["emil", "fred", "olga", "zoe"]);
    assert!(
        resources.len() > people.len(),
        "plugins are resources too: {resources:?}"
    );

    assert_eq!(result["ocel_events"], visits);
    // Four cases and the four roles that held tasks.
    assert_eq!(result["ocel_objects"], 8);
    assert_eq!(result["ocel_object_types"], json!(["case", "role"]));
    assert_eq!(result["ocel_activities"], json!(activities));
    // Each event relates to its case, an approval also to its role.
    let approvals: usize = permits
        .steps
        .iter()
        .filter(|s| s.kind == Some(StepKind::Approval))
        .map(|s| s.visits)
        .sum();
    assert_eq!(approvals, 8);
    assert_eq!(result["ocel_relations"], visits + approvals);
}
