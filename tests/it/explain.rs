//! `Host::explain` and `docket case explain`: an automated decision is
//! replayed with the recorded component, config, input and clock reading,
//! and must yield the recorded outcome; when it cannot, the explanation
//! says why.

use crate::engine::{application, building_permit, env, plugin_dir};
use crate::support::{self, docket, target};
use docket_host::engine::{Error, Host, HostConfig, LogOnly, ManualClock, Replay};
use docket_host::store::{Durability, Sqlite, Verdict};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;

fn reopen(dir: &Path, plugins: &Path) -> Host {
    Host::open(
        Arc::new(Sqlite::open(dir.join("docket.db"), Durability::Full).unwrap()),
        Arc::new(docket_host::plugin::Directory::open(&support::runtime(), plugins).unwrap()),
        Arc::new(ManualClock::new(
            humantime::parse_rfc3339("2026-12-24T09:00:00Z").unwrap(),
        )),
        Arc::new(LogOnly),
        HostConfig::default(),
    )
    .unwrap()
}

#[test]
fn a_routing_and_a_rejection_replay_to_their_recorded_outcomes() {
    let env = env();
    env.deploy(&building_permit());
    let case = env.start("building-permit", application("commercial", 6), "BP-1");
    let triage = env.host.explain(&case, "triage").unwrap();
    assert_eq!(triage.replay, Replay::Same);
    assert_eq!(triage.input_matches, Some(true));
    assert_eq!(triage.recorded.outcome, "route");
    assert_eq!(triage.recorded.routes, ["complex"]);
    assert_eq!(triage.plugin, "route-rules@1");
    assert!(triage.confirms());

    let mut incomplete = application("residential", 2);
    incomplete.as_object_mut().unwrap().remove("parcel");
    let rejected = env.start("building-permit", incomplete, "BP-2");
    let intake = env.host.explain(&rejected, "intake").unwrap();
    assert_eq!(intake.recorded.outcome, "reject");
    assert!(!intake.recorded.problems.is_empty());
    assert_eq!(intake.replay, Replay::Same, "{intake:?}");

    // The tracking code names the case too.
    let code = env.case(&case).row.tracking_code;
    assert_eq!(env.host.explain(&code, "triage").unwrap().case, case);
}

#[test]
fn what_is_not_an_automated_decision_is_refused_clearly() {
    let env = env();
    env.deploy(&building_permit());
    let case = env.start("building-permit", application("commercial", 6), "BP-1");
    let err = env.host.explain(&case, "decide").unwrap_err();
    assert!(
        matches!(&err, Error::NotExplainable(m) if m.contains("step `decide` has no recorded plugin outcome")),
        "{err}"
    );
    let err = env.host.explain("nope", "triage").unwrap_err();
    assert!(matches!(err, Error::NoSuchCase(_)), "{err}");
}

#[test]
fn other_bytes_under_the_same_name_do_not_explain_a_decision() {
    let env = env();
    env.deploy(&building_permit());
    // A finished case: a host opens without the plugins of ended cases.
    let case = env.start("building-permit", application("residential", 1), "BP-1");
    env.decide(&case, "decide", Verdict::Approve, "olga", "permit-officer");
    let dir = env.dir.path().to_owned();
    let recorded = env.host.explain(&case, "triage").unwrap().sha256;
    drop(env.host);

    // The same plugin, name and version, built another way: other bytes.
    let plugins = dir.join("plugins");
    std::fs::write(
        plugins.join("route-rules.wasm"),
        support::plugin_wasip2("route-rules"),
    )
    .unwrap();
    // The deployment pinned the bytes that decided: it no longer loads.
    let host = reopen(&dir, &plugins);
    let err = host.explain(&case, "triage").unwrap_err().to_string();
    assert!(
        err.contains(&format!(
            "`route-rules@1.0.0` was deployed with sha256 {recorded}"
        )) && err.contains("now has sha256"),
        "{err}"
    );
    drop(host);

    std::fs::remove_file(plugins.join("route-rules.wasm")).unwrap();
    let host = reopen(&dir, &plugins);
    let err = host.explain(&case, "triage").unwrap_err();
    assert!(err.to_string().contains("no longer available"), "{err}");
}

#[test]
fn an_edited_journal_no_longer_explains_its_decision() {
    let env = env();
    env.deploy(&building_permit());
    let case = env.start("building-permit", application("commercial", 6), "BP-1");
    let dir = env.dir.path().to_owned();
    drop(env.host);
    // Someone makes the application look small after the fact.
    let conn = rusqlite::Connection::open(dir.join("docket.db")).unwrap();
    // Every event before triage decided carries the floors.
    let changed = conn
        .execute(
            "UPDATE journal SET event = replace(event, '\"floors\":6', '\"floors\":1') \
             WHERE case_id = ?1 AND seq < (SELECT min(seq) FROM journal WHERE case_id = ?1 \
               AND event LIKE '%step_finished%' AND event LIKE '%\"step\":\"triage\"%')",
            [&case],
        )
        .unwrap();
    assert!(changed >= 2, "{changed}");
    let host = reopen(&dir, &dir.join("plugins"));
    let explanation = host.explain(&case, "triage").unwrap();
    assert_eq!(explanation.input_matches, Some(false));
    assert_eq!(explanation.input["project"]["floors"], json!(1));
    assert!(!explanation.confirms());
}

#[test]
fn docket_case_explain_shows_the_replay() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = plugin_dir(dir.path());
    let input = dir.path().join("application.json");
    std::fs::write(&input, application("commercial", 6).to_string()).unwrap();
    let run = |args: &[&str]| {
        let output = docket()
            .args(args)
            .env("DOCKET_STORE", dir.path().join("docket.db"))
            .env("DOCKET_PLUGINS", &plugins)
            .env("DOCKET_CACHE_DIR", target().join("test-cache"))
            .env("DOCKET_NOW", "2026-11-23T09:00:00Z")
            .output()
            .unwrap();
        (
            output.status.code().unwrap(),
            String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr),
        )
    };
    let workflow = support::root().join("examples/building-permit/workflow.yaml");
    let (code, printed) = run(&[
        "run",
        workflow.to_str().unwrap(),
        "--input",
        &format!("@{}", input.display()),
    ]);
    assert_eq!(code, 0, "{printed}");
    let case = printed
        .lines()
        .find_map(|l| l.strip_prefix("case "))
        .unwrap()
        .to_owned();
    let (code, printed) = run(&["case", "explain", &case, "--step", "triage"]);
    assert_eq!(code, 0, "{printed}");
    assert!(printed.contains("recorded  route -> complex"), "{printed}");
    assert!(
        printed.contains("the recorded plugin yields the recorded outcome"),
        "{printed}"
    );
    assert!(
        printed.contains("clock     2026-11-23T09:00:00.000Z"),
        "{printed}"
    );
}
