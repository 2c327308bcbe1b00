//! Case tracking: the clerk's status view (`Host::status`) and the
//! applicant's public view by tracking code (`Host::track`), with stages in
//! plain words, departments, deadlines and the expected completion date;
//! the public view shows nothing personal.

use crate::engine::{DAY, application, building_permit, env};
use docket_host::engine::{Decision, Error, StartCase};
use docket_host::store::Verdict;
use docket_host::tracking::{Phase, Status, Waiting};
use serde_json::{Value, json};
use std::time::Duration;

const T0: &str = "2026-11-23T09:00:00Z";

fn at(offset: Duration) -> i64 {
    docket_host::engine::to_millis(humantime::parse_rfc3339(T0).unwrap() + offset)
}

/// Each finished stage's title and outcome, in order.
fn outcomes(status: &Status) -> Vec<(&str, &str)> {
    status
        .history
        .iter()
        .map(|s| (s.title.as_str(), s.describe()))
        .collect()
}

#[test]
fn a_clerk_sees_stages_departments_deadlines_and_an_expected_date() {
    let env = env();
    env.deploy(&building_permit());
    let case = env.start("building-permit", application("commercial", 6), "BP-1");

    let status = env.host.status(&case).unwrap();
    assert_eq!(status.phase, Phase::InProgress);
    assert_eq!(status.owner, "urban-planning");
    assert_eq!(
        status.process,
        "Single-window building permit with parallel departmental reviews."
    );
    let pending: Vec<(&str, &str, &Waiting)> = status
        .pending
        .iter()
        .map(|p| (p.title.as_str(), p.department.as_str(), &p.waiting))
        .collect();
    let decision = |role: &str| Waiting::Decision {
        role: role.into(),
        approved: 0,
        required: 1,
    };
    assert_eq!(
        pending,
        [
            (
                "Environmental review",
                "environment-agency",
                &decision("environment")
            ),
            (
                "Fire safety review",
                "fire-department",
                &decision("fire-safety")
            ),
            ("Zoning review", "zoning-office", &decision("zoning")),
        ]
    );
    for stage in &status.pending {
        assert_eq!(stage.since, at(Duration::ZERO));
        assert_eq!(stage.deadline, Some(at(DAY * 10)), "{stage:?}");
        assert!(!stage.overdue);
        // Nothing measured yet: a review takes its deadline.
        assert_eq!(stage.expected_by, at(DAY * 10));
    }
    // Reviews (10 days by their deadlines), then the decision (5 days).
    assert_eq!(status.expected_completion, Some(at(DAY * 15)));
    assert_eq!(
        outcomes(&status),
        [("Completeness check", "done"), ("Triage", "done")]
    );

    // Fire safety approves on day 2; zoning and environment miss their deadline.
    env.advance(DAY * 2);
    env.decide(
        &case,
        "reviews/fire/fire-safety",
        Verdict::Approve,
        "fred",
        "fire-safety",
    );
    env.advance(DAY * 10);
    let status = env.host.status(&case).unwrap();
    let fire = status
        .history
        .iter()
        .find(|s| s.step == "reviews/fire/fire-safety")
        .unwrap();
    assert_eq!(
        (fire.describe(), fire.decided_by.as_slice()),
        ("approved", &["fred".to_owned()][..])
    );
    assert_eq!(fire.ended, at(DAY * 2));
    assert!(!fire.late);
    let zoning = status
        .pending
        .iter()
        .find(|p| p.step == "reviews/zoning/zoning")
        .unwrap();
    assert!(zoning.overdue, "{zoning:?}");
    assert_eq!(zoning.escalations, 1);
    assert_eq!(
        zoning.deadline,
        Some(at(DAY * 10)),
        "the first deadline stays the deadline"
    );
    assert_eq!(
        zoning.waiting,
        decision("zoning-lead"),
        "the task was reassigned"
    );
    // Overdue stages are expected now; the decision still takes 5 days.
    assert_eq!(zoning.expected_by, at(DAY * 12));
    assert_eq!(status.expected_completion, Some(at(DAY * 17)));
}

#[test]
fn the_expected_completion_comes_from_measured_durations() {
    let env = env();
    env.deploy(&building_permit());
    // Three permits: reviews take 2 days, the decision 1 day.
    for n in 0..3 {
        let case = env.start(
            "building-permit",
            application("commercial", 6),
            &format!("BP-{n}"),
        );
        env.advance(DAY * 2);
        for (step, person, role) in [
            ("reviews/fire/fire-safety", "fred", "fire-safety"),
            ("reviews/zoning/zoning", "zoe", "zoning"),
            ("reviews/environment/environment", "emil", "environment"),
        ] {
            env.decide(&case, step, Verdict::Approve, person, role);
        }
        env.advance(DAY);
        env.decide(&case, "decide", Verdict::Approve, "olga", "permit-officer");
    }
    let case = env.start("building-permit", application("commercial", 6), "BP-9");
    let now = env.clock_now();
    let status = env.host.status(&case).unwrap();
    assert_eq!(
        status.measured_cases, 4,
        "the three ended cases and this one"
    );
    assert_eq!(status.expected_completion, Some(now + 3 * DAY_MS));
    assert!(
        status
            .pending
            .iter()
            .all(|p| p.expected_by == now + 2 * DAY_MS)
    );

    // Half a day into the reviews, they need a day and a half more.
    env.advance(DAY / 2);
    let status = env.host.status(&case).unwrap();
    assert_eq!(status.expected_completion, Some(now + 3 * DAY_MS));
    assert!(
        status
            .pending
            .iter()
            .all(|p| p.expected_by == now + 2 * DAY_MS)
    );
}

const DAY_MS: i64 = 86_400_000;

/// Parallel branches combine by their join: n of m finish when the n-th
/// fastest branch does.
#[test]
fn parallel_branches_combine_by_their_join() {
    let env = env();
    for (name, join) in [
        ("any-of", "any"),
        ("two-of", "{ at_least: 2 }"),
        ("all-of", "all"),
    ] {
        env.deploy(&format!(
            r#"
workflow: {name}
version: 1
owner: registry
steps:
  - id: checks
    parallel:
      join: {join}
      branches:
        a: [{{ id: wait-a, wait: {{ for: 1d }} }}]
        b: [{{ id: wait-b, wait: {{ for: 3d }} }}]
        c: [{{ id: wait-c, wait: {{ for: 2d }} }}]
  - id: sign
    approval: {{ role: registrar }}
    escalate: [{{ after: 4d, notify: {{ channel: email, subject: late, body: late }} }}]
"#
        ));
    }
    let now = env.clock_now();
    for (name, days) in [("any-of", 1 + 4), ("two-of", 2 + 4), ("all-of", 3 + 4)] {
        let case = env.host.start(name, StartCase::default()).unwrap().id;
        env.idle();
        let status = env.host.status(&case).unwrap();
        assert_eq!(
            status.expected_completion,
            Some(now + days * DAY_MS),
            "{name}"
        );
        let titles: Vec<&str> = status.pending.iter().map(|p| p.title.as_str()).collect();
        assert_eq!(titles, ["Wait a", "Wait b", "Wait c"], "ids spelled out");
        assert!(status.pending.iter().all(|p| p.department == "registry"));
        assert!(
            matches!(status.pending[1].waiting, Waiting::Timer { until: Some(t) } if t == now + 3 * DAY_MS)
        );
    }
}

/// Every string the applicant entered, outside the public fields.
fn private_strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| private_strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| private_strings(v, out)),
        _ => {}
    }
}

#[test]
fn the_public_view_shows_stages_and_public_fields_and_nothing_personal() {
    let env = env();
    env.deploy(&building_permit());
    let mut input = application("commercial", 6);
    input["applicant"] = json!({
        "name": "Wilhelmina Quartermaine",
        "email": "w.quartermaine@example.org",
        "phone": "+31 6 5550 1234",
        "address": {"street": "Kastanjelaan 17", "city": "Zuidhorn"},
    });
    input["parcel"] = "9876-543".into();
    input["notes"] = "my neighbour Bartholomew objects".into();
    let started = env
        .host
        .start(
            "building-permit",
            StartCase {
                input: input.clone(),
                key: Some("BP-2026-000417".into()),
                applicant: Some("wquartermaine".into()),
            },
        )
        .unwrap();
    env.idle();
    for (step, person, role) in [
        (
            "reviews/fire/fire-safety",
            "frida.fireofficer",
            "fire-safety",
        ),
        ("reviews/zoning/zoning", "zoltan.zoner", "zoning"),
        (
            "reviews/environment/environment",
            "emilia.greenfield",
            "environment",
        ),
    ] {
        env.decide(&started.id, step, Verdict::Approve, person, role);
    }
    env.host
        .decide(
            &started.id,
            Decision {
                step: "decide".into(),
                verdict: Verdict::Return,
                person: "olga.permits".into(),
                role: "permit-officer".into(),
                comment: Some("Mrs Quartermaine, please attach the fire exit plan".into()),
            },
        )
        .unwrap();
    env.idle();
    let returned = env.host.track(&started.tracking_code).unwrap();
    assert_eq!(returned.phase, Phase::Returned);
    assert_eq!(returned.expected_completion, None);
    let status = env.host.status(&started.id).unwrap();
    assert_eq!(status.returned_by.as_deref(), Some("decide"));

    // Fields are replaced whole on resubmission.
    let mut applicant = input["applicant"].clone();
    applicant["phone"] = "+31 6 5550 9876".into();
    env.host
        .resubmit(
            &started.id,
            json!({"applicant": applicant, "project": {"kind": "commercial", "floors": 5}}),
        )
        .unwrap();
    env.idle();

    let public = env.host.track(&started.tracking_code).unwrap();
    assert_eq!(public.phase, Phase::InProgress);
    assert_eq!(public.department, "urban-planning");
    // The public field, as last submitted.
    assert_eq!(public.fields.keys().collect::<Vec<_>>(), ["project"]);
    assert_eq!(
        public.fields["project"],
        json!({"kind": "commercial", "floors": 5})
    );
    let titles: Vec<&str> = public.history.iter().map(|s| s.title.as_str()).collect();
    assert!(titles.contains(&"Fire safety review"), "{titles:?}");
    assert!(
        public
            .history
            .iter()
            .any(|s| s.title == "Permit decision" && s.outcome == "returned for changes"),
        "{public:?}"
    );
    // Resubmitted, the application is checked and reviewed again.
    let current: Vec<(&str, &str)> = public
        .current
        .iter()
        .map(|s| (s.title.as_str(), s.waiting_for.as_str()))
        .collect();
    assert_eq!(
        current,
        [
            ("Environmental review", "a decision by environment-agency"),
            ("Fire safety review", "a decision by fire-department"),
            ("Zoning review", "a decision by zoning-office"),
        ]
    );

    let shown = serde_json::to_string(&public).unwrap();
    let mut secrets = Vec::new();
    let mut private_input = input.clone();
    private_input.as_object_mut().unwrap().remove("project");
    private_strings(&private_input, &mut secrets);
    secrets.extend(
        [
            "+31 6 5550 9876",
            "wquartermaine",
            "BP-2026-000417",
            "frida.fireofficer",
            "zoltan.zoner",
            "emilia.greenfield",
            "olga.permits",
            "Quartermaine",
            "fire exit plan",
            "permit-officer",
        ]
        .map(String::from),
    );
    secrets.push(started.id.clone());
    assert!(secrets.len() > 15);
    for secret in &secrets {
        assert!(
            !shown.to_lowercase().contains(&secret.to_lowercase()),
            "`{secret}` leaks into the public view: {shown}"
        );
    }

    // Only a tracking code finds a case publicly, never its id.
    assert!(matches!(
        env.host.track(&started.id),
        Err(Error::NoSuchCase(_))
    ));
}

#[test]
fn an_ended_case_has_no_pending_stage_and_no_estimate() {
    let env = env();
    env.deploy(&building_permit());
    let case = env.start("building-permit", application("residential", 1), "BP-1");
    env.advance(DAY);
    env.decide(&case, "decide", Verdict::Reject, "olga", "permit-officer");
    let status = env.host.status(&case).unwrap();
    assert_eq!(status.phase, Phase::Rejected);
    assert_eq!(status.ended, Some(at(DAY)));
    assert!(status.pending.is_empty());
    assert_eq!(status.expected_completion, None);
    assert_eq!(
        outcomes(&status),
        [
            ("Completeness check", "done"),
            ("Triage", "done"),
            ("Permit decision", "rejected"),
            ("Notification of the decision", "done"),
        ]
    );
}
