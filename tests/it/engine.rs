//! The durable engine, case by case: every construct of the workflow
//! language through journal snapshots (a case's journal rendered as a text
//! timeline, compared with a committed snapshot), authorization, versioning
//! and bad input. Time is a manual clock; no test sleeps.

use crate::support;
use docket_host::engine::{
    CaseView, Decision, DeployError, Error, Host, HostConfig, Mailbox, ManualClock, Refusal,
    StartCase,
};
use docket_host::json::MAX_DEPTH;
use docket_host::plugin::Directory;
use docket_host::store::{CaseFilter, CaseStatus, Durability, Ending, Sqlite, Verdict};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub const DAY: Duration = Duration::from_secs(86_400);

/// A host on a fresh SQLite file, with the first-party plugins and the
/// `misbehave` test guest, a manual clock and a mailbox file.
pub struct Env {
    pub host: Host,
    pub clock: Arc<ManualClock>,
    pub mailbox: PathBuf,
    pub dir: tempfile::TempDir,
}

/// A directory holding the built plugins and test guests a workflow may name.
pub fn plugin_dir(dir: &Path) -> PathBuf {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).expect("plugin dir");
    for name in ["validate-schema", "route-rules", "notify-template"] {
        std::fs::write(plugins.join(format!("{name}.wasm")), support::plugin(name)).expect("copy");
    }
    std::fs::write(plugins.join("misbehave.wasm"), support::guest("misbehave")).expect("copy");
    plugins
}

pub fn env() -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    plugin_dir(dir.path());
    let clock = Arc::new(ManualClock::new(
        humantime::parse_rfc3339("2026-11-23T09:00:00Z").expect("time"),
    ));
    let mailbox = dir.path().join("mailbox.jsonl");
    Env::open_in(dir, clock, mailbox)
}

pub fn open(
    dir: &Path,
    plugins: &Path,
    clock: Arc<ManualClock>,
    mailbox: &Path,
    seed: u64,
) -> Host {
    let runtime = support::runtime();
    let directory = Directory::open(&runtime, plugins).expect("plugin directory");
    let store = Sqlite::open(dir.join("docket.db"), Durability::Full).expect("store");
    Host::open(
        Arc::new(store),
        Arc::new(directory),
        clock,
        Arc::new(Mailbox::open(mailbox).expect("mailbox")),
        HostConfig {
            // One worker: parallel branches then run in a fixed order, so a
            // journal is the same on every run.
            workers: 1,
            seed: Some(seed),
            ..HostConfig::default()
        },
    )
    .expect("host")
}

pub fn building_permit() -> String {
    std::fs::read_to_string(support::root().join("examples/building-permit/workflow.yaml"))
        .expect("example workflow")
}

pub fn application(kind: &str, floors: u32) -> Value {
    json!({
        "applicant": {"name": "Ada Lovelace", "email": "ada@example.org"},
        "parcel": "1234-567",
        "project": {"kind": kind, "floors": floors}
    })
}

impl Env {
    #[track_caller]
    pub fn deploy(&self, source: &str) {
        self.host
            .deploy(source)
            .unwrap_or_else(|err| panic!("deploy: {err}"));
    }

    #[track_caller]
    pub fn start(&self, workflow: &str, input: Value, key: &str) -> String {
        let started = self
            .host
            .start(
                workflow,
                StartCase {
                    input,
                    key: Some(key.to_owned()),
                    applicant: Some("ada".into()),
                },
            )
            .unwrap_or_else(|err| panic!("start: {err}"));
        self.idle();
        started.id
    }

    #[track_caller]
    pub fn idle(&self) {
        self.host.run_until_idle().expect("run");
    }

    #[track_caller]
    pub fn decide(&self, case: &str, step: &str, verdict: Verdict, person: &str, role: &str) {
        self.try_decide(case, step, verdict, person, role)
            .unwrap_or_else(|err| panic!("decide: {err}"));
        self.idle();
    }

    pub fn try_decide(
        &self,
        case: &str,
        step: &str,
        verdict: Verdict,
        person: &str,
        role: &str,
    ) -> Result<(), Error> {
        self.host.decide(
            case,
            Decision {
                step: step.to_owned(),
                verdict,
                person: person.to_owned(),
                role: role.to_owned(),
                comment: None,
            },
        )
    }

    pub fn clock_now(&self) -> i64 {
        docket_host::engine::Clock::now(&*self.clock)
    }

    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
        self.idle();
    }

    #[track_caller]
    /// A host on the store and plugins in `dir`.
    pub fn open_in(dir: tempfile::TempDir, clock: Arc<ManualClock>, mailbox: PathBuf) -> Env {
        let plugins = dir.path().join("plugins");
        let host = open(dir.path(), &plugins, clock.clone(), &mailbox, 7);
        Env {
            host,
            clock,
            mailbox,
            dir,
        }
    }

    /// Closes the host and opens another on the same store, plugins, clock
    /// and mailbox.
    pub fn reopen(self) -> Env {
        let Env {
            host,
            clock,
            mailbox,
            dir,
        } = self;
        drop(host);
        Env::open_in(dir, clock, mailbox)
    }

    pub fn case(&self, id: &str) -> CaseView {
        self.host.case(id).expect("case")
    }

    pub fn status(&self, id: &str) -> CaseStatus {
        self.case(id).row.status
    }

    pub fn mail(&self) -> Vec<Value> {
        Mailbox::read(&self.mailbox).expect("mailbox")
    }
}

#[test]
fn a_simple_permit_is_validated_triaged_decided_and_notified() {
    let env = env();
    env.deploy(&building_permit());
    let case = env.start("building-permit", application("residential", 2), "BP-1");
    assert_eq!(env.status(&case), CaseStatus::Waiting);
    assert_eq!(env.case(&case).row.waiting_roles, ["permit-officer"]);
    env.decide(&case, "decide", Verdict::Approve, "olga", "permit-officer");
    let view = env.case(&case);
    assert_eq!(view.row.status, CaseStatus::Ended(Ending::Completed));
    insta::assert_snapshot!("simple_permit", view.timeline());
    let mail = env.mail();
    assert_eq!(mail.len(), 1, "{mail:?}");
    assert_eq!(mail[0]["to"], "ada@example.org");
    assert!(mail[0]["subject"].as_str().unwrap().contains("granted"));
}

#[test]
fn a_complex_permit_waits_for_three_departments_in_parallel() {
    let env = env();
    env.deploy(&building_permit());
    let case = env.start("building-permit", application("commercial", 6), "BP-2");
    let mut roles = env.case(&case).row.waiting_roles;
    roles.sort();
    assert_eq!(roles, ["environment", "fire-safety", "zoning"]);
    let open: Vec<(String, &str, Option<String>)> = env
        .case(&case)
        .open
        .into_iter()
        .map(|o| (o.step, o.kind, o.role))
        .collect();
    assert_eq!(
        open,
        [
            ("reviews".to_owned(), "parallel", None),
            (
                "reviews/environment/environment".to_owned(),
                "approval",
                Some("environment".to_owned())
            ),
            (
                "reviews/fire/fire-safety".to_owned(),
                "approval",
                Some("fire-safety".to_owned())
            ),
            (
                "reviews/zoning/zoning".to_owned(),
                "approval",
                Some("zoning".to_owned())
            ),
        ]
    );
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
    assert_eq!(env.case(&case).row.waiting_roles, ["environment"]);
    env.decide(
        &case,
        "reviews/environment/environment",
        Verdict::Approve,
        "emil",
        "environment",
    );
    env.decide(&case, "decide", Verdict::Approve, "olga", "permit-officer");
    let view = env.case(&case);
    assert_eq!(view.row.status, CaseStatus::Ended(Ending::Completed));
    insta::assert_snapshot!("complex_permit", view.timeline());
}

#[test]
fn one_department_refusing_rejects_the_application_and_tells_the_applicant() {
    let env = env();
    env.deploy(&building_permit());
    let case = env.start("building-permit", application("industrial", 2), "BP-3");
    env.decide(
        &case,
        "reviews/fire/fire-safety",
        Verdict::Reject,
        "fred",
        "fire-safety",
    );
    let view = env.case(&case);
    assert_eq!(view.row.status, CaseStatus::Ended(Ending::Rejected));
    insta::assert_snapshot!("refused_permit", view.timeline());
    assert!(
        env.mail()[0]["subject"]
            .as_str()
            .unwrap()
            .contains("refused")
    );
}

#[test]
fn an_incomplete_application_is_rejected_with_its_problems() {
    let env = env();
    env.deploy(&building_permit());
    let mut input = application("residential", 2);
    input["parcel"] = json!("12-3");
    input["project"].as_object_mut().unwrap().remove("floors");
    let case = env.start("building-permit", input, "BP-4");
    let view = env.case(&case);
    assert_eq!(view.row.status, CaseStatus::Ended(Ending::Rejected));
    insta::assert_snapshot!("incomplete_permit", view.timeline());
}

#[test]
fn a_missed_deadline_escalates_and_never_approves_by_itself() {
    let env = env();
    env.deploy(&building_permit());
    let case = env.start("building-permit", application("commercial", 2), "BP-5");
    for department in ["zoning/zoning", "environment/environment"] {
        let (step, role) = (
            format!("reviews/{department}"),
            department.split('/').next().unwrap(),
        );
        env.decide(
            &case,
            &step,
            Verdict::Approve,
            &format!("{role}-clerk"),
            role,
        );
    }
    env.advance(9 * DAY);
    assert_eq!(env.case(&case).row.waiting_roles, ["fire-safety"]);
    env.advance(DAY);
    assert_eq!(env.case(&case).row.waiting_roles, ["fire-safety-lead"]);
    // Still waiting a year later: a deadline escalates, it never decides.
    env.advance(365 * DAY);
    assert_eq!(env.status(&case), CaseStatus::Waiting);
    let refused = env.try_decide(
        &case,
        "reviews/fire/fire-safety",
        Verdict::Approve,
        "fred",
        "fire-safety",
    );
    assert!(
        matches!(refused, Err(Error::Refused(Refusal::WrongRole { .. }))),
        "{refused:?}"
    );
    env.decide(
        &case,
        "reviews/fire/fire-safety",
        Verdict::Approve,
        "lena",
        "fire-safety-lead",
    );
    env.decide(&case, "decide", Verdict::Approve, "olga", "permit-officer");
    let view = env.case(&case);
    assert_eq!(view.row.status, CaseStatus::Ended(Ending::Completed));
    insta::assert_snapshot!("escalated_permit", view.timeline());
    let escalation = env
        .mail()
        .into_iter()
        .find(|m| m["to"] == "fire-safety-lead@city.example");
    assert!(escalation.is_some(), "the escalation notice was delivered");
}

#[test]
fn a_returned_application_goes_back_to_intake_with_the_changes() {
    let env = env();
    env.deploy(&building_permit());
    let case = env.start("building-permit", application("residential", 1), "BP-6");
    env.decide(&case, "decide", Verdict::Return, "olga", "permit-officer");
    assert_eq!(env.status(&case), CaseStatus::Waiting);
    env.host
        .resubmit(&case, json!({"parcel": "1234-999"}))
        .expect("resubmit");
    env.idle();
    // The same officer may approve: returning is not approving.
    env.decide(&case, "decide", Verdict::Approve, "olga", "permit-officer");
    let view = env.case(&case);
    assert_eq!(view.data().unwrap()["parcel"], "1234-999");
    insta::assert_snapshot!("returned_permit", view.timeline());
}

const WAITS: &str = r#"
workflow: waits
version: 1
owner: test
steps:
  - id: cool-off
    wait: { for: 14d }
  - id: payment
    wait: { signal: payment-received }
    escalate:
      - after: 30d
        goto: reject
"#;

#[test]
fn a_timer_fires_after_its_duration_and_a_signal_carries_data() {
    let env = env();
    env.deploy(WAITS);
    let case = env.start("waits", json!({}), "W-1");
    env.advance(13 * DAY);
    assert_eq!(env.status(&case), CaseStatus::Waiting);
    env.advance(DAY);
    env.host
        .signal(&case, "payment-received", json!({"paid": 120}))
        .expect("signal");
    env.idle();
    let view = env.case(&case);
    assert_eq!(view.row.status, CaseStatus::Ended(Ending::Completed));
    assert_eq!(view.data().unwrap()["paid"], 120);
    insta::assert_snapshot!("timer_and_signal", view.timeline());
}

#[test]
fn a_signal_that_comes_early_is_kept_and_one_that_never_comes_escalates() {
    let env = env();
    env.deploy(WAITS);
    let early = env.start("waits", json!({}), "W-2");
    env.host
        .signal(&early, "payment-received", json!({"paid": 1}))
        .expect("signal");
    let late = env.start("waits", json!({}), "W-3");
    env.advance(14 * DAY);
    assert_eq!(env.status(&early), CaseStatus::Ended(Ending::Completed));
    env.advance(30 * DAY);
    let view = env.case(&late);
    assert_eq!(view.row.status, CaseStatus::Ended(Ending::Rejected));
    insta::assert_snapshot!("signal_never_came", view.timeline());
}

const JOINS: &str = r#"
workflow: joins
version: 1
owner: test
steps:
  - id: any-of
    parallel:
      join: any
      branches:
        a: [{ id: a, approval: { role: a } }]
        b: [{ id: b, approval: { role: b } }]
  - id: two-of-three
    parallel:
      join: { at_least: 2 }
      branches:
        north: [{ id: north, approval: { role: north } }]
        south: [{ id: south, approval: { role: south } }]
        east: [{ id: east, approval: { role: east } }]
"#;

#[test]
fn joins_any_and_at_least_n_cancel_the_branches_they_no_longer_need() {
    let env = env();
    env.deploy(JOINS);
    let case = env.start("joins", json!({}), "J-1");
    env.decide(&case, "any-of/b/b", Verdict::Approve, "bea", "b");
    let mut roles = env.case(&case).row.waiting_roles;
    roles.sort();
    assert_eq!(roles, ["east", "north", "south"], "branch a was cancelled");
    env.decide(
        &case,
        "two-of-three/north/north",
        Verdict::Reject,
        "nora",
        "north",
    );
    env.decide(
        &case,
        "two-of-three/south/south",
        Verdict::Approve,
        "sam",
        "south",
    );
    assert_eq!(env.status(&case), CaseStatus::Waiting);
    env.decide(
        &case,
        "two-of-three/east/east",
        Verdict::Approve,
        "eve",
        "east",
    );
    let view = env.case(&case);
    assert_eq!(view.row.status, CaseStatus::Ended(Ending::Completed));
    insta::assert_snapshot!("joins", view.timeline());
}

const PROCUREMENT_LIKE: &str = r#"
workflow: board
version: 1
owner: test
steps:
  - id: first-look
    approval: { role: clerk }
  - id: board
    approval:
      role: board
      required: 2
"#;

#[test]
fn n_of_m_approval_needs_distinct_people_and_four_eyes_holds() {
    let env = env();
    env.deploy(PROCUREMENT_LIKE);
    let case = env.start("board", json!({}), "N-1");
    let own = env.try_decide(&case, "first-look", Verdict::Approve, "ada", "clerk");
    assert!(
        matches!(own, Err(Error::Refused(Refusal::Applicant { .. }))),
        "{own:?}"
    );
    env.decide(&case, "first-look", Verdict::Approve, "carl", "clerk");
    let again = env.try_decide(&case, "board", Verdict::Approve, "carl", "board");
    assert!(
        matches!(again, Err(Error::Refused(Refusal::PreviousApprover { .. }))),
        "{again:?}"
    );
    env.decide(&case, "board", Verdict::Approve, "bo", "board");
    let twice = env.try_decide(&case, "board", Verdict::Approve, "bo", "board");
    assert!(
        matches!(twice, Err(Error::Refused(Refusal::AlreadyDecided { .. }))),
        "{twice:?}"
    );
    assert_eq!(env.status(&case), CaseStatus::Waiting);
    env.decide(&case, "board", Verdict::Approve, "bea", "board");
    let view = env.case(&case);
    assert_eq!(view.row.status, CaseStatus::Ended(Ending::Completed));
    insta::assert_snapshot!("n_of_m", view.timeline());
}

#[test]
fn refused_decisions_leave_the_journal_unchanged() {
    let env = env();
    env.deploy(&building_permit());
    let case = env.start("building-permit", application("residential", 1), "BP-7");
    let before = env.case(&case).journal;
    let attempts = [
        ("decide", "olga", "zoning"),                        // wrong role
        ("decide", "ada", "permit-officer"),                 // the applicant
        ("intake", "olga", "permit-officer"),                // not an approval
        ("reviews/fire/fire-safety", "fred", "fire-safety"), // not waiting
    ];
    for (step, person, role) in attempts {
        let result = env.try_decide(&case, step, Verdict::Approve, person, role);
        let err = result.expect_err("refused");
        assert!(matches!(err, Error::Refused(_)), "{err}");
    }
    let unknown = env.try_decide(
        "no-such-case",
        "decide",
        Verdict::Approve,
        "olga",
        "permit-officer",
    );
    assert!(matches!(unknown, Err(Error::NoSuchCase(_))), "{unknown:?}");
    assert_eq!(env.case(&case).journal, before);
    env.decide(&case, "decide", Verdict::Approve, "olga", "permit-officer");
    let ended = env.try_decide(&case, "decide", Verdict::Approve, "otto", "permit-officer");
    assert!(
        matches!(ended, Err(Error::Refused(Refusal::CaseEnded { .. }))),
        "{ended:?}"
    );
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
  - id: never-reached
    approval: { role: nobody }
  - id: fallback
    uses: misbehave
    grant: [notify, settings, secrets]
    with: { mode: ok }
"#;

#[test]
fn transient_failures_are_retried_with_backoff_then_handled() {
    let env = env();
    env.deploy(RETRIES);
    let case = env.start("retries", json!({}), "R-1");
    assert_eq!(env.status(&case), CaseStatus::Waiting);
    env.advance(Duration::from_secs(1));
    env.advance(Duration::from_secs(2));
    env.advance(Duration::from_secs(10));
    let view = env.case(&case);
    assert_eq!(view.row.status, CaseStatus::Ended(Ending::Completed));
    insta::assert_snapshot!("retries", view.timeline());
}

const CHILD: &str = r#"
workflow: inspection
version: 1
owner: fire-brigade
steps:
  - id: inspect
    approval: { role: inspector }
"#;

const PARENT: &str = r#"
workflow: with-inspection
version: 1
owner: test
steps:
  - id: inspection
    subflow: { workflow: inspection }
  - id: sign-off
    approval: { role: officer }
"#;

#[test]
fn a_subflow_runs_a_child_case_and_the_parent_waits_for_its_end() {
    let env = env();
    let unknown = env.host.deploy(PARENT);
    assert!(
        matches!(unknown, Err(DeployError::UnknownWorkflow { .. })),
        "{unknown:?}"
    );
    env.deploy(CHILD);
    env.deploy(PARENT);
    let parent = env.start("with-inspection", json!({"site": "north"}), "P-1");
    let children = env
        .host
        .cases(&CaseFilter {
            workflow: Some("inspection".into()),
            ..CaseFilter::default()
        })
        .expect("cases");
    assert_eq!(children.len(), 1);
    assert_eq!(children[0].parent.as_deref(), Some(parent.as_str()));
    env.decide(
        &children[0].id,
        "inspect",
        Verdict::Approve,
        "ivan",
        "inspector",
    );
    assert_eq!(env.case(&parent).row.waiting_roles, ["officer"]);
    env.decide(&parent, "sign-off", Verdict::Approve, "olga", "officer");
    insta::assert_snapshot!("subflow_parent", env.case(&parent).timeline());
    insta::assert_snapshot!("subflow_child", env.case(&children[0].id).timeline());
}

#[test]
fn a_running_case_finishes_on_the_version_it_started_with() {
    let env = env();
    env.deploy(PROCUREMENT_LIKE);
    let old = env.start("board", json!({}), "V-1");
    let v2 = PROCUREMENT_LIKE
        .replace("version: 1", "version: 2")
        .replace("required: 2", "required: 1");
    env.deploy(&v2);
    let new = env.start("board", json!({}), "V-2");
    for case in [&old, &new] {
        env.decide(case, "first-look", Verdict::Approve, "carl", "clerk");
        env.decide(case, "board", Verdict::Approve, "bo", "board");
    }
    assert_eq!(env.case(&new).row.version, 2);
    assert_eq!(env.status(&new), CaseStatus::Ended(Ending::Completed));
    assert_eq!(env.case(&old).row.version, 1);
    assert_eq!(
        env.status(&old),
        CaseStatus::Waiting,
        "v1 still needs two board members"
    );
    env.decide(&old, "board", Verdict::Approve, "bea", "board");
    assert_eq!(env.status(&old), CaseStatus::Ended(Ending::Completed));
}

#[test]
fn bad_input_is_refused_with_a_clear_error_and_nothing_is_written() {
    let env = env();
    let malformed = env.host.deploy("workflow: [unclosed");
    assert!(
        matches!(malformed, Err(DeployError::Invalid(_))),
        "{malformed:?}"
    );
    assert!(
        env.host
            .store()
            .deployments()
            .expect("deployments")
            .is_empty()
    );

    let unknown = env.host.start("nope", StartCase::default());
    let err = unknown.expect_err("unknown workflow");
    assert_eq!(err.to_string(), "no workflow `nope` is deployed");

    env.deploy(&building_permit());
    let invalid = env.host.start(
        "building-permit",
        StartCase {
            input: json!({"parcel": 7}),
            ..StartCase::default()
        },
    );
    let err = invalid.expect_err("invalid input");
    assert!(
        err.to_string()
            .contains("/applicant: missing property `applicant`"),
        "{err}"
    );

    env.start("building-permit", application("residential", 1), "BP-8");
    let duplicate = env.host.start(
        "building-permit",
        StartCase {
            input: application("residential", 1),
            key: Some("BP-8".into()),
            applicant: None,
        },
    );
    let err = duplicate.expect_err("duplicate key");
    assert_eq!(
        err.to_string(),
        "workflow `building-permit` already has a case with key `BP-8`"
    );
    let cases = env.host.cases(&CaseFilter::default()).expect("cases");
    assert_eq!(cases.len(), 1, "only the accepted case was written");
}

#[test]
fn a_batch_giving_one_key_twice_starts_one_case_and_refuses_the_other() {
    let env = env();
    env.deploy(&building_permit());
    let start = |floors| StartCase {
        input: application("residential", floors),
        key: Some("BP-9".into()),
        applicant: None,
    };
    let results = env
        .host
        .start_many("building-permit", vec![start(1), start(2)])
        .expect("start_many");
    assert!(results[0].is_ok(), "{:?}", results[0]);
    let err = results[1].as_ref().expect_err("the same key again");
    assert_eq!(
        err.to_string(),
        "workflow `building-permit` already has a case with key `BP-9`"
    );
    env.host.run_until_idle().expect("run");
    let cases = env.host.cases(&CaseFilter::default()).expect("cases");
    assert_eq!(cases.len(), 1, "only the first case was written");
    let report =
        docket_host::ledger::verify(env.host.store().as_ref(), None, None).expect("verify");
    assert!(report.is_ok(), "{:?}", report.problem);
}

/// `levels` of arrays and objects around a string.
fn nested(levels: usize) -> Value {
    (0..levels).fold(json!("bottom"), |value, level| {
        if level % 2 == 0 {
            json!([value])
        } else {
            json!({ "x": value })
        }
    })
}

#[test]
fn data_nested_deeper_than_a_journal_can_hold_is_refused_and_data_just_within_survives_a_restart() {
    let env = env();
    env.deploy(&building_permit());
    // The input object is one level; its attachments the rest.
    let mut input = application("residential", 1);
    input["attachments"] = nested(MAX_DEPTH);
    let refused = env.host.start(
        "building-permit",
        StartCase {
            input: input.clone(),
            key: Some("BP-D".into()),
            applicant: None,
        },
    );
    assert_eq!(
        refused.expect_err("too deep").to_string(),
        "the input is nested more than 100 levels deep, deeper than a case's data may be"
    );
    assert!(
        env.host
            .cases(&CaseFilter::default())
            .expect("cases")
            .is_empty()
    );

    input["attachments"] = nested(MAX_DEPTH - 1);
    let case = env.start("building-permit", input, "BP-D");
    let journal = env.host.store().journal(&case).expect("journal");
    let err = env
        .host
        .signal(&case, "documents", nested(MAX_DEPTH + 1))
        .expect_err("too deep");
    assert_eq!(
        err.to_string(),
        "the data of signal `documents` is nested more than 100 levels deep, deeper than a case's data may be"
    );
    assert_eq!(env.host.store().journal(&case).expect("journal"), journal);

    // Every event holding the data reads back, after a restart too.
    let env = env.reopen();
    assert_eq!(env.host.store().journal(&case).expect("journal"), journal);
    let report =
        docket_host::ledger::verify(env.host.store().as_ref(), None, None).expect("verify");
    assert!(report.is_ok(), "{:?}", report.problem);
}

#[test]
fn a_host_reopened_on_the_same_store_picks_up_waiting_cases_and_timers() {
    let env = env();
    env.deploy(&building_permit());
    let case = env.start("building-permit", application("commercial", 2), "BP-9");
    let env = env.reopen();
    env.advance(10 * DAY);
    let mut roles = env.case(&case).row.waiting_roles;
    roles.sort();
    assert_eq!(
        roles,
        ["environment-lead", "fire-safety-lead", "zoning-lead"]
    );
}

const HANDING_ON: &str = r#"
workflow: handing-on
version: 1
owner: test
steps:
  - id: check
    uses: misbehave
    grant: [notify, settings, secrets]
    with: { mode: ok }
  - id: count
    uses: misbehave
    grant: [notify, settings, secrets]
    with: { mode: counter }
  - id: count-again
    uses: misbehave
    grant: [notify, settings, secrets]
    with: { mode: counter }
  - id: paid
    wait: { signal: paid }
"#;

/// The data each `StepFinished` of `case` records, by step.
fn recorded_data(env: &Env, case: &str) -> Vec<(String, Option<Value>)> {
    env.case(case)
        .journal
        .into_iter()
        .filter_map(|recorded| match recorded.event {
            docket_host::store::Event::StepFinished { step, data, .. } => Some((step, data)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_step_handing_on_its_data_unchanged_records_none_and_the_case_keeps_its_data_across_a_restart()
{
    let env = env();
    env.deploy(HANDING_ON);
    let case = env.start("handing-on", json!({"parcel": "1234-567"}), "H-1");
    assert_eq!(env.status(&case), CaseStatus::Waiting);
    // `check` hands its input on; `count` replaces the data; `count-again`
    // returns what it was given (a fresh instance counts 1 again).
    assert_eq!(
        recorded_data(&env, &case),
        [
            ("check".to_owned(), None),
            ("count".to_owned(), Some(json!({"count": 1}))),
            ("count-again".to_owned(), None),
        ]
    );
    // The state a restarted host derives from that journal has the data.
    let env = env.reopen();
    env.host
        .signal(&case, "paid", json!({"paid": true}))
        .expect("signal");
    env.idle();
    let journal = env.case(&case).journal;
    let Some(docket_host::store::Event::CaseEnded { ending, data, .. }) =
        journal.last().map(|recorded| &recorded.event)
    else {
        panic!("the case did not end: {journal:?}");
    };
    assert_eq!(*ending, Ending::Completed);
    assert_eq!(*data, json!({"count": 1, "paid": true}));
}

#[test]
fn case_ids_sort_in_the_order_the_cases_were_created() {
    let env = env();
    env.deploy(HANDING_ON);
    let mut ids = Vec::new();
    for n in 0..40 {
        // Some at the same millisecond, some later.
        if n % 8 == 0 {
            env.clock.advance(Duration::from_millis(1));
        }
        ids.push(env.start("handing-on", json!({}), &format!("ID-{n}")));
    }
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted);
    assert!(ids.iter().all(|id| id.len() == 20), "{ids:?}");
    sorted.dedup();
    assert_eq!(sorted.len(), ids.len());
}

#[test]
fn a_case_whose_journal_cannot_be_read_back_does_not_keep_the_others_from_running() {
    let env = env();
    env.deploy(&building_permit());
    let damaged = env.start("building-permit", application("residential", 2), "BP-D");
    let sound = env.start("building-permit", application("residential", 2), "BP-S");
    let dir = env.dir.path().to_owned();
    let Env {
        host,
        clock,
        mailbox,
        dir: tempdir,
    } = env;
    drop(host);
    // Damage the last event of one case, as an edit by hand could.
    let conn = rusqlite::Connection::open(dir.join("docket.db")).expect("store");
    let changed = conn
        .execute(
            "UPDATE journal SET event = '{not json' WHERE case_id = ?1 \
             AND seq = (SELECT MAX(seq) FROM journal WHERE case_id = ?1)",
            [&damaged],
        )
        .expect("damage");
    assert_eq!(changed, 1);
    drop(conn);

    let env = Env::open_in(tempdir, clock, mailbox);
    env.decide(&sound, "decide", Verdict::Approve, "olga", "permit-officer");
    assert_eq!(env.status(&sound), CaseStatus::Ended(Ending::Completed));
    let err = env
        .try_decide(
            &damaged,
            "decide",
            Verdict::Approve,
            "olga",
            "permit-officer",
        )
        .expect_err("a case that cannot be read cannot be decided");
    assert!(err.to_string().contains(&damaged), "{err}");
}
