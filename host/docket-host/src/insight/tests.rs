//! The KPI arithmetic on hand-built journals, where every duration is known.

use super::*;
use crate::store::{Ending, Event, Millis, Recorded, Verdict};
use serde_json::Value;

const SECOND: Millis = 1000;
const HOUR: Millis = 3_600_000;
const DAY: Millis = 86_400_000;
/// 2026-11-23T00:00:00Z.
const T0: Millis = 1_795_392_000_000;

fn started(workflow: &str, version: u32) -> Event {
    Event::CaseStarted {
        workflow: workflow.into(),
        version,
        key: None,
        tracking_code: "T".into(),
        applicant: Some("someone".into()),
        input: Value::Null,
        parent: None,
    }
}

fn scheduled(step: &str, attempt: u32) -> Event {
    Event::StepScheduled {
        step: step.into(),
        attempt,
        role: None,
        due: None,
    }
}

fn task(step: &str, role: &str, due: Option<Millis>) -> Event {
    Event::StepScheduled {
        step: step.into(),
        attempt: 1,
        role: Some(role.into()),
        due,
    }
}

fn finished(step: &str, outcome: &str) -> Event {
    Event::StepFinished {
        step: step.into(),
        attempt: 1,
        outcome: outcome.into(),
        routes: Vec::new(),
        data: None,
        problems: Vec::new(),
        plugin: "ab".repeat(32),
        notifications: 0,
        ran_at: None,
        input_sha256: None,
    }
}

fn failed(step: &str, attempt: u32, retry_at: Option<Millis>) -> Event {
    Event::StepFailed {
        step: step.into(),
        attempt,
        error: "timeout".into(),
        transient: true,
        retry_at,
    }
}

fn decided(step: &str, verdict: Verdict, by: &str) -> Event {
    Event::ApprovalDecided {
        step: step.into(),
        verdict,
        by: by.into(),
        role: "clerk".into(),
        comment: None,
    }
}

fn ended(ending: Ending) -> Event {
    Event::CaseEnded {
        ending,
        data: Value::Null,
        step: None,
        reason: None,
    }
}

fn case(id: &str, events: Vec<(Millis, Event)>) -> CaseVisits {
    let journal = CaseJournal {
        id: id.into(),
        events: events
            .into_iter()
            .enumerate()
            .map(|(idx, (at, event))| Recorded {
                seq: idx as u64 + 1,
                at,
                event,
            })
            .collect(),
    };
    visits(&journal).expect("starts with CaseStarted")
}

/// A plugin step `check`, then an approval `approve` decided `verdict`
/// after `wait`, then the end.
fn approval_case(id: &str, start: Millis, wait: Millis, verdict: Verdict) -> CaseVisits {
    let decided_at = start + SECOND + wait;
    let mut events = vec![
        (start, started("permit", 1)),
        (start, scheduled("check", 1)),
        (start + SECOND, finished("check", "continue")),
        (
            start + SECOND,
            task("approve", "clerk", Some(start + SECOND + 2 * DAY)),
        ),
        (decided_at, decided("approve", verdict, "carla")),
    ];
    events.push(match verdict {
        Verdict::Approve => (decided_at, ended(Ending::Completed)),
        _ => (decided_at, ended(Ending::Rejected)),
    });
    case(id, events)
}

fn version<'a>(report: &'a Report, workflow: &str, v: u32) -> &'a VersionReport {
    report
        .workflows
        .iter()
        .find(|r| r.workflow == workflow && r.version == v)
        .expect("version in report")
}

fn step<'a>(report: &'a VersionReport, name: &str) -> &'a StepKpis {
    report
        .steps
        .iter()
        .find(|s| s.step == name)
        .expect("step in report")
}

#[test]
fn percentiles_are_nearest_rank() {
    let values: Vec<Millis> = (1..=10).collect();
    assert_eq!(percentile(&values, 50), Some(5));
    assert_eq!(percentile(&values, 90), Some(9));
    assert_eq!(percentile(&values, 99), Some(10));
    assert_eq!(percentile(&[7], 50), Some(7));
    assert_eq!(percentile(&[], 50), None);
    // 200 values: the 99th percentile is the 198th smallest.
    let values: Vec<Millis> = (1..=200).collect();
    assert_eq!(percentile(&values, 99), Some(198));
    assert_eq!(
        Percentiles::of(vec![30, 10, 20]),
        Some(Percentiles {
            p50: 20,
            p90: 30,
            p99: 30
        })
    );
}

#[test]
fn a_retried_plugin_step_works_during_attempts_and_waits_during_back_off() {
    let cases = [case(
        "c1",
        vec![
            (T0, started("sync", 1)),
            (T0, scheduled("push", 1)),
            (T0 + 2 * SECOND, failed("push", 1, Some(T0 + 62 * SECOND))),
            (T0 + 62 * SECOND, scheduled("push", 2)),
            (T0 + 65 * SECOND, finished("push", "continue")),
            (T0 + 65 * SECOND, ended(Ending::Completed)),
        ],
    )];
    let report = report(&cases, &Selection::default());
    let push = step(version(&report, "sync", 1), "push");
    assert_eq!(push.visits, 1);
    assert_eq!(push.kind, Some(StepKind::Plugin));
    assert_eq!(push.working_time, 5 * SECOND);
    assert_eq!(push.waiting_time, 60 * SECOND);
    assert_eq!(push.total_time, 65 * SECOND);
    assert_eq!(push.retry_rate, 1.0);
    assert_eq!(push.error_rate, 0.0);
    assert_eq!(push.lead_time.map(|p| p.p50), Some(65 * SECOND));
}

#[test]
fn rates_count_decided_visits_and_deadlines() {
    let cases = [
        approval_case("c1", T0, HOUR, Verdict::Approve),
        approval_case("c2", T0, 2 * HOUR, Verdict::Reject),
        approval_case("c3", T0, 3 * HOUR, Verdict::Return),
        // Decided a day after its two-day deadline, with no worker to escalate.
        approval_case("c4", T0, 3 * DAY, Verdict::Approve),
    ];
    let report = report(&cases, &Selection::default());
    let permit = version(&report, "permit", 1);
    let approve = step(permit, "approve");
    assert_eq!(approve.kind, Some(StepKind::Approval));
    assert_eq!((approve.visits, approve.decided, approve.open), (4, 4, 0));
    assert_eq!(approve.rejection_rate, 0.25);
    assert_eq!(approve.return_rate, 0.25);
    assert_eq!(approve.deadline_breaches, 1);
    assert_eq!(approve.escalation_rate, 0.0);
    assert_eq!(approve.working_time, 0);
    assert_eq!(approve.waiting_time, approve.total_time);
    assert_eq!(
        approve.lead_time,
        Some(Percentiles {
            p50: 2 * HOUR,
            p90: 3 * DAY,
            p99: 3 * DAY
        })
    );
    assert_eq!(permit.cases.started, 4);
    assert_eq!(permit.cases.completed, 2);
    assert_eq!(permit.cases.rejected, 2);
    // From the 23rd to the 26th (c4 ends on day 3): four calendar days.
    assert_eq!(permit.cases.days, 4);
    assert_eq!(permit.cases.throughput_per_day, 1.0);
    assert_eq!(permit.cases.per_day[0].date, "2026-11-23");
    assert_eq!(permit.cases.per_day[0].started, 4);
    assert_eq!(permit.cases.per_day[0].ended, 3);
    assert_eq!(permit.cases.per_day[1].date, "2026-11-26");
}

#[test]
fn bottlenecks_rank_steps_by_their_share_of_lead_time() {
    let cases = [
        approval_case("c1", T0, DAY, Verdict::Approve),
        approval_case("c2", T0, 3 * DAY, Verdict::Approve),
    ];
    let report = report(&cases, &Selection::default());
    let permit = version(&report, "permit", 1);
    let ranking: Vec<(&str, f64, f64)> = permit
        .bottlenecks
        .iter()
        .map(|b| (b.step.as_str(), b.share_of_lead_time, b.waiting_share))
        .collect();
    let case_time = (DAY + SECOND + 3 * DAY + SECOND) as f64;
    assert_eq!(
        ranking,
        [
            ("approve", (4 * DAY) as f64 / case_time, 1.0),
            ("check", (2 * SECOND) as f64 / case_time, 0.0),
        ]
    );
}

#[test]
fn a_join_cancels_open_branches_and_the_parallel_step_is_not_ranked() {
    let cases = [case(
        "c1",
        vec![
            (T0, started("review", 1)),
            (
                T0,
                Event::BranchesStarted {
                    step: "reviews".into(),
                },
            ),
            (T0, task("reviews/a/check-a", "a", None)),
            (T0, task("reviews/b/check-b", "b", Some(T0 + DAY))),
            (
                T0 + 2 * DAY,
                Event::DeadlinePassed {
                    step: "reviews/b/check-b".into(),
                    escalation: 0,
                },
            ),
            (
                T0 + 3 * DAY,
                decided("reviews/a/check-a", Verdict::Reject, "ann"),
            ),
            (
                T0 + 3 * DAY,
                Event::BranchEnded {
                    step: "reviews".into(),
                    branch: "a".into(),
                    ending: Ending::Rejected,
                },
            ),
            (
                T0 + 3 * DAY,
                Event::Joined {
                    step: "reviews".into(),
                    ending: Ending::Rejected,
                },
            ),
            (
                T0 + 3 * DAY,
                Event::Moved {
                    from: "reviews".into(),
                    to: "reject".into(),
                    reason: "on_reject".into(),
                },
            ),
            (T0 + 3 * DAY, ended(Ending::Rejected)),
        ],
    )];
    let report = report(&cases, &Selection::default());
    let review = version(&report, "review", 1);
    let b = step(review, "reviews/b/check-b");
    assert_eq!((b.visits, b.decided, b.cancelled), (1, 0, 1));
    assert_eq!(b.lead_time, None, "a cancelled visit has no lead time");
    assert_eq!(b.total_time, 3 * DAY);
    assert_eq!(b.escalation_rate, 1.0);
    assert_eq!(b.deadline_breaches, 1);
    let reviews = step(review, "reviews");
    assert_eq!(reviews.kind, Some(StepKind::Parallel));
    assert_eq!(reviews.rejection_rate, 1.0);
    assert_eq!(reviews.waiting_time, 0);
    let ranked: Vec<&str> = review.bottlenecks.iter().map(|b| b.step.as_str()).collect();
    assert_eq!(ranked, ["reviews/a/check-a", "reviews/b/check-b"]);
}

#[test]
fn open_cases_are_measured_to_the_last_recorded_event() {
    let cases = [
        approval_case("c1", T0, DAY, Verdict::Approve),
        case(
            "c2",
            vec![
                (T0, started("permit", 1)),
                (T0, scheduled("check", 1)),
                (T0 + SECOND, finished("check", "continue")),
                (T0 + SECOND, task("approve", "clerk", None)),
            ],
        ),
    ];
    let report = report(&cases, &Selection::default());
    assert_eq!(report.as_of, Some(T0 + SECOND + DAY));
    let permit = version(&report, "permit", 1);
    assert_eq!(permit.cases.open, 1);
    assert_eq!(
        permit.cases.lead_time.map(|p| p.p50),
        Some(DAY + SECOND),
        "only ended cases have a lead time"
    );
    let approve = step(permit, "approve");
    assert_eq!((approve.decided, approve.open), (1, 1));
    assert_eq!(approve.total_time, 2 * DAY);
}

#[test]
fn a_selection_filters_by_workflow_version_and_start() {
    let cases = [
        approval_case("c1", T0, HOUR, Verdict::Approve),
        approval_case("c2", T0 + 2 * DAY, HOUR, Verdict::Approve),
        case(
            "c3",
            vec![(T0, started("other", 1)), (T0, ended(Ending::Completed))],
        ),
    ];
    let all = report(&cases, &Selection::default());
    assert_eq!(all.workflows.len(), 2);
    let recent = report(
        &cases,
        &Selection {
            workflow: Some("permit".into()),
            version: Some(1),
            since: Some(T0 + DAY),
        },
    );
    assert_eq!(recent.workflows.len(), 1);
    assert_eq!(recent.workflows[0].cases.started, 1);
}

#[test]
fn a_comparison_pairs_steps_of_two_versions() {
    let mut v2 = approval_case("c2", T0, 4 * HOUR, Verdict::Approve);
    v2.version = 2;
    let cases = [approval_case("c1", T0, 2 * DAY, Verdict::Approve), v2];
    let report = report(&cases, &Selection::default());
    let comparison = compare(version(&report, "permit", 1), version(&report, "permit", 2));
    assert_eq!((comparison.before, comparison.after), (1, 2));
    let approve = comparison
        .steps
        .iter()
        .find(|s| s.step == "approve")
        .expect("approve compared");
    assert_eq!(approve.lead_time_p50.before, Some(2 * DAY));
    assert_eq!(approve.lead_time_p50.after, Some(4 * HOUR));
    assert_eq!(approve.deadline_breaches.before, Some(0));
    assert_eq!(comparison.lead_time_p50.after, Some(4 * HOUR + SECOND));
}

#[test]
fn a_signal_wait_ends_when_the_next_step_begins() {
    let cases = [case(
        "c1",
        vec![
            (T0, started("sig", 1)),
            (T0, scheduled("await-payment", 1)),
            (
                T0 + 5 * HOUR,
                Event::SignalReceived {
                    name: "paid".into(),
                    data: Value::Null,
                },
            ),
            (T0 + 5 * HOUR, scheduled("ship", 1)),
            (T0 + 5 * HOUR, finished("ship", "continue")),
            (T0 + 5 * HOUR, ended(Ending::Completed)),
        ],
    )];
    let report = report(&cases, &Selection::default());
    let wait = step(version(&report, "sig", 1), "await-payment");
    assert_eq!(wait.kind, Some(StepKind::Wait));
    assert_eq!(wait.decided, 1);
    assert_eq!(wait.waiting_time, 5 * HOUR);
}

#[test]
fn the_ocel_document_relates_events_to_cases_and_roles() {
    let cases = [
        approval_case("c1", T0, HOUR, Verdict::Approve),
        approval_case("c2", T0, HOUR, Verdict::Reject),
    ];
    let doc = ocel::document(&cases);
    assert_eq!(doc["events"].as_array().map(Vec::len), Some(4));
    // Two cases and the one role.
    assert_eq!(doc["objects"].as_array().map(Vec::len), Some(3));
    let approval = &doc["events"][1];
    assert_eq!(approval["type"], "approve");
    assert_eq!(approval["relationships"][1]["objectId"], "role:clerk");
    let text = doc.to_string();
    assert!(!text.contains("someone"), "no applicant in the log: {text}");
}

#[test]
fn metrics_count_commits_and_observe_durations() {
    use crate::store::{CaseRow, CaseStatus, CaseUpdate, Write};
    let metrics = Metrics::default();
    let row = CaseRow {
        id: "c1".into(),
        workflow: "permit".into(),
        version: 1,
        key: None,
        tracking_code: "T".into(),
        parent: None,
        status: CaseStatus::Waiting,
        waiting_roles: Vec::new(),
        next_due: None,
        created_at: T0,
        updated_at: T0,
        events: 0,
    };
    let record = |seq: u64, at: Millis, event: Event| Recorded { seq, at, event };
    let update = CaseUpdate {
        status: CaseStatus::Waiting,
        waiting_roles: Vec::new(),
        next_due: None,
    };
    metrics.observe(&[Write::CreateCase {
        row,
        events: vec![
            record(1, T0, started("permit", 1)),
            record(2, T0, task("approve", "clerk", None)),
        ],
    }]);
    metrics.observe(&[Write::Append {
        case: "c1".into(),
        events: vec![
            record(
                3,
                T0 + 90 * SECOND,
                decided("approve", Verdict::Approve, "carla"),
            ),
            record(4, T0 + 90 * SECOND, ended(Ending::Completed)),
        ],
        update,
    }]);
    let text = metrics.render();
    for line in [
        r#"docket_cases_started_total{workflow="permit",version="1"} 1"#,
        r#"docket_cases_ended_total{workflow="permit",version="1",ending="completed"} 1"#,
        r#"docket_events_total{workflow="permit",type="approval_decided"} 1"#,
        r#"docket_step_visits_total{workflow="permit",version="1",step="approve",outcome="passed"} 1"#,
        r#"docket_step_lead_time_seconds_sum{workflow="permit",version="1",step="approve"} 90.0"#,
        r#"docket_case_lead_time_seconds_bucket{le="64.0",workflow="permit",version="1"} 0"#,
        r#"docket_case_lead_time_seconds_bucket{le="128.0",workflow="permit",version="1"} 1"#,
    ] {
        assert!(text.contains(line), "no `{line}` in:\n{text}");
    }
}
