//! The store conformance suite: every check is written once against
//! `&dyn Backend` and [`store_test!`] runs it on every backend (today the
//! embedded SQLite store, on a fresh file). The SQLite-only checks at the
//! end cover what is about the file: reopening it, and refusing files that
//! are not a docket store.

use docket_host::store::{
    Backend, CaseFilter, CaseRow, CaseStatus, CaseUpdate, Deployment, Durability, Ending, Error,
    Event, Millis, OutboxEntry, ParentRef, Pin, Recorded, Sqlite, StoredProblem, Verdict, Write,
};
use serde_json::json;
use std::path::Path;

/// Instantiates a check for every backend: `store_test!(name, |backend| {
/// ... })` becomes the module `name` with one `#[test]` per backend, each
/// calling the body on a fresh, empty store. A new backend is one more line
/// here and one `with_*` function below.
macro_rules! store_test {
    ($name:ident, |$backend:ident| $body:block) => {
        mod $name {
            use super::*;

            fn check($backend: &dyn Backend) $body

            #[test]
            fn sqlite() {
                with_sqlite(check);
            }
        }
    };
}

/// Runs `check` on a fresh SQLite store in a temporary directory.
fn with_sqlite(check: fn(&dyn Backend)) {
    let dir = tempfile::tempdir().unwrap();
    let store = Sqlite::open(dir.path().join("docket.db"), Durability::Normal).unwrap();
    check(&store);
}

// ---------------------------------------------------------------- fixtures

const T0: Millis = 1_790_000_000_000;
const MINUTE: Millis = 60_000;

/// A running case of `workflow` version 1, created at `T0 + at` minutes.
fn row(id: &str, workflow: &str, key: Option<&str>, at: i64) -> CaseRow {
    let created_at = T0 + at * MINUTE;
    CaseRow {
        id: id.to_owned(),
        workflow: workflow.to_owned(),
        version: 1,
        key: key.map(str::to_owned),
        tracking_code: format!("TRK-{id}"),
        parent: None,
        status: CaseStatus::Running,
        waiting_roles: Vec::new(),
        next_due: None,
        created_at,
        updated_at: created_at,
        events: 1,
    }
}

fn started(row: &CaseRow) -> Recorded {
    Recorded {
        seq: 1,
        at: row.created_at,
        event: Event::CaseStarted {
            workflow: row.workflow.clone(),
            version: row.version,
            key: row.key.clone(),
            tracking_code: row.tracking_code.clone(),
            applicant: Some("ana@example.org".to_owned()),
            input: json!({"address": "Main Street 1", "floors": 3}),
            parent: row.parent.as_ref().map(|parent| ParentRef {
                case: parent.clone(),
                step: "permit".to_owned(),
            }),
        },
    }
}

fn create(row: &CaseRow) -> Write {
    Write::CreateCase {
        row: row.clone(),
        events: vec![started(row)],
    }
}

/// Creates each case in its own batch.
#[track_caller]
fn create_all(backend: &dyn Backend, rows: &[&CaseRow]) {
    for row in rows {
        backend.commit(&[create(row)]).unwrap();
    }
}

/// Appends `events` to `case` from `seq`, each a second after the last.
fn append(case: &str, seq: u64, events: Vec<Event>, update: CaseUpdate) -> Write {
    Write::Append {
        case: case.to_owned(),
        events: numbered(seq, events),
        update,
    }
}

fn numbered(seq: u64, events: Vec<Event>) -> Vec<Recorded> {
    (seq..)
        .zip(events)
        .map(|(seq, event)| Recorded {
            seq,
            at: T0 + i64::try_from(seq).unwrap() * 1000,
            event,
        })
        .collect()
}

fn timer(step: &str) -> Event {
    Event::TimerFired {
        step: step.to_owned(),
    }
}

fn update(status: CaseStatus, roles: &[&str], next_due: Option<Millis>) -> CaseUpdate {
    CaseUpdate {
        status,
        waiting_roles: roles.iter().map(|role| (*role).to_owned()).collect(),
        next_due,
    }
}

fn ended(ending: Ending) -> CaseUpdate {
    update(CaseStatus::Ended(ending), &[], None)
}

fn message(key: &str, case: &str) -> OutboxEntry {
    OutboxEntry {
        key: key.to_owned(),
        case: case.to_owned(),
        channel: "email".to_owned(),
        to: Some("ana@example.org".to_owned()),
        subject: format!("about {key}"),
        body: format!("body of {key}"),
    }
}

fn deployment(workflow: &str, version: u32, source: &str) -> Deployment {
    Deployment {
        workflow: workflow.to_owned(),
        version,
        source: source.to_owned(),
        digest: format!("sha256-of-{source}"),
        deployed_at: T0,
        pins: vec![Pin {
            plugin: "validate-schema".to_owned(),
            requirement: "^1.2".to_owned(),
            version: "1.2.3".to_owned(),
            sha256: "ab".repeat(32),
        }],
    }
}

fn ids(rows: &[CaseRow]) -> Vec<&str> {
    rows.iter().map(|row| row.id.as_str()).collect()
}

fn keys(entries: &[OutboxEntry]) -> Vec<&str> {
    entries.iter().map(|entry| entry.key.as_str()).collect()
}

/// Every event variant, with optional fields both set and unset.
fn every_event() -> Vec<Event> {
    vec![
        Event::StepScheduled {
            step: "validate".to_owned(),
            attempt: 1,
            role: None,
            due: None,
        },
        Event::StepFinished {
            step: "validate".to_owned(),
            attempt: 1,
            outcome: "continue".to_owned(),
            routes: Vec::new(),
            data: Some(json!({"address": "Main Street 1", "checked": true})),
            problems: Vec::new(),
            plugin: "ab12".repeat(16),
            notifications: 0,
            ran_at: None,
            input_sha256: None,
        },
        Event::StepFailed {
            step: "route".to_owned(),
            attempt: 1,
            error: "deadline exceeded after `10s`".to_owned(),
            transient: true,
            retry_at: Some(T0 + 5 * MINUTE),
        },
        Event::StepFailed {
            step: "route".to_owned(),
            attempt: 2,
            error: "trap".to_owned(),
            transient: false,
            retry_at: None,
        },
        Event::StepFinished {
            step: "route".to_owned(),
            attempt: 3,
            outcome: "route".to_owned(),
            routes: vec!["fire".to_owned(), "structure".to_owned()],
            data: Some(json!({"floors": 3})),
            problems: Vec::new(),
            plugin: "cd34".repeat(16),
            notifications: 2,
            ran_at: None,
            input_sha256: None,
        },
        Event::StepFinished {
            step: "completeness".to_owned(),
            attempt: 1,
            outcome: "reject".to_owned(),
            routes: Vec::new(),
            data: None,
            problems: vec![StoredProblem {
                pointer: "/floors".to_owned(),
                code: "maximum".to_owned(),
                message: "at most 2 floors — «quoted» ünïcode".to_owned(),
            }],
            plugin: "ef56".repeat(16),
            notifications: 0,
            ran_at: None,
            input_sha256: None,
        },
        Event::BranchesStarted {
            step: "reviews".to_owned(),
        },
        Event::StepScheduled {
            step: "reviews/fire/fire-check".to_owned(),
            attempt: 1,
            role: Some("fire-safety".to_owned()),
            due: Some(T0 + 3 * 24 * 60 * MINUTE),
        },
        Event::DeadlinePassed {
            step: "reviews/fire/fire-check".to_owned(),
            escalation: 0,
        },
        Event::Reassigned {
            step: "reviews/fire/fire-check".to_owned(),
            role: "fire-chief".to_owned(),
            due: Some(T0 + 4 * 24 * 60 * MINUTE),
        },
        Event::Reassigned {
            step: "reviews/fire/fire-check".to_owned(),
            role: "director".to_owned(),
            due: None,
        },
        Event::ApprovalDecided {
            step: "reviews/fire/fire-check".to_owned(),
            verdict: Verdict::Approve,
            by: "bo".to_owned(),
            role: "director".to_owned(),
            comment: Some("fine".to_owned()),
        },
        Event::ApprovalDecided {
            step: "reviews/structure/check".to_owned(),
            verdict: Verdict::Reject,
            by: "cy".to_owned(),
            role: "engineer".to_owned(),
            comment: None,
        },
        Event::BranchEnded {
            step: "reviews".to_owned(),
            branch: "fire".to_owned(),
            ending: Ending::Completed,
        },
        Event::BranchEnded {
            step: "reviews".to_owned(),
            branch: "structure".to_owned(),
            ending: Ending::Rejected,
        },
        Event::Joined {
            step: "reviews".to_owned(),
            ending: Ending::Failed,
        },
        Event::Moved {
            from: "reviews".to_owned(),
            to: "fix".to_owned(),
            reason: "on_reject".to_owned(),
        },
        timer("cool-down"),
        Event::SignalReceived {
            name: "payment".to_owned(),
            data: json!({"amount": 120.5, "currency": "EUR", "refs": [1, null, "x"]}),
        },
        Event::ChildStarted {
            step: "inspection".to_owned(),
            child: "child-1".to_owned(),
        },
        Event::ChildEnded {
            step: "inspection".to_owned(),
            child: "child-1".to_owned(),
            ending: Ending::Completed,
            data: json!({"passed": true}),
        },
        Event::ApprovalDecided {
            step: "sign-off".to_owned(),
            verdict: Verdict::Return,
            by: "bo".to_owned(),
            role: "director".to_owned(),
            comment: Some("add the floor plan".to_owned()),
        },
        Event::Returned {
            step: "sign-off".to_owned(),
        },
        Event::Resubmitted {
            data: json!({"floor_plan": "plan.pdf"}),
        },
        Event::CaseEnded {
            ending: Ending::Completed,
            data: json!({"permit": "P-1"}),
            step: Some("sign-off".to_owned()),
            reason: None,
        },
        Event::CaseEnded {
            ending: Ending::Failed,
            data: json!(null),
            step: None,
            reason: Some("a step failed `3` times".to_owned()),
        },
    ]
}

// ------------------------------------------------------------ the journal

store_test!(every_event_round_trips, |backend| {
    let mut parent = row("parent", "permit", Some("APP-1"), 0);
    parent.waiting_roles = vec!["clerk".to_owned()];
    parent.next_due = Some(T0 + MINUTE);
    let mut child = row("child-1", "inspection", None, 1);
    child.parent = Some("parent".to_owned());
    create_all(backend, &[&parent, &child]);
    assert_eq!(backend.case("parent").unwrap().as_ref(), Some(&parent));
    assert_eq!(backend.case("child-1").unwrap().as_ref(), Some(&child));
    assert_eq!(backend.journal("child-1").unwrap(), vec![started(&child)]);

    let events = every_event();
    let n_events = events.len() as u64;
    let (first, rest) = events.split_at(10);
    backend
        .commit(&[append(
            "parent",
            2,
            first.to_vec(),
            update(CaseStatus::Waiting, &["director", "engineer"], Some(T0 + 7)),
        )])
        .unwrap();
    backend
        .commit(&[append(
            "parent",
            12,
            rest.to_vec(),
            ended(Ending::Completed),
        )])
        .unwrap();

    let mut expected = vec![started(&parent)];
    expected.extend(numbered(2, every_event()));
    assert_eq!(backend.journal("parent").unwrap(), expected);
    let row = backend.case("parent").unwrap().unwrap();
    assert_eq!(
        row,
        CaseRow {
            status: CaseStatus::Ended(Ending::Completed),
            waiting_roles: Vec::new(),
            next_due: None,
            updated_at: expected.last().unwrap().at,
            events: n_events + 1,
            ..parent
        }
    );
    // The ledger hashed each event as the journal's text reads back.
    let report = docket_host::ledger::verify(backend, None, None).unwrap();
    assert!(report.is_ok(), "{:?}", report.problem);
    assert_eq!(report.records, n_events + 2);
});

store_test!(unknown_case_reads_as_nothing, |backend| {
    assert_eq!(backend.case("nobody").unwrap(), None);
    assert_eq!(backend.journal("nobody").unwrap(), Vec::new());
    assert_eq!(backend.case_by_key("permit", "APP-1").unwrap(), None);
    assert_eq!(backend.case_by_tracking_code("TRK-nobody").unwrap(), None);
    assert_eq!(backend.cases(&CaseFilter::default()).unwrap(), Vec::new());
    backend.commit(&[]).unwrap();
});

store_test!(
    append_with_wrong_seq_conflicts_and_writes_nothing,
    |backend| {
        let case = row("c1", "permit", None, 0);
        create_all(backend, &[&case]);
        backend
            .commit(&[append(
                "c1",
                2,
                vec![timer("a")],
                update(CaseStatus::Waiting, &["clerk"], Some(T0)),
            )])
            .unwrap();
        let journal = backend.journal("c1").unwrap();
        let before = backend.case("c1").unwrap().unwrap();

        for (seq, events) in [
            (2, vec![timer("b")]),
            (4, vec![timer("b")]),
            (1, vec![timer("b")]),
        ] {
            let err = backend
                .commit(&[append("c1", seq, events, ended(Ending::Failed))])
                .unwrap_err();
            assert!(
                matches!(&err, Error::Conflict { case, expected, actual: 2 } if case == "c1" && *expected == seq),
                "{err:?}"
            );
        }
        // A gap inside the appended events.
        let mut gap = numbered(3, vec![timer("b"), timer("c")]);
        gap[1].seq = 5;
        let err = backend
            .commit(&[Write::Append {
                case: "c1".to_owned(),
                events: gap,
                update: ended(Ending::Failed),
            }])
            .unwrap_err();
        assert!(matches!(err, Error::Conflict { .. }), "{err:?}");

        assert_eq!(backend.journal("c1").unwrap(), journal);
        assert_eq!(backend.case("c1").unwrap().unwrap(), before);
        assert_eq!(
            backend
                .cases(&CaseFilter {
                    role: Some("clerk".to_owned()),
                    ..CaseFilter::default()
                })
                .map(|rows| ids(&rows).join(","))
                .unwrap(),
            "c1"
        );
    }
);

store_test!(append_to_a_missing_case_is_no_such_case, |backend| {
    let err = backend
        .commit(&[append("ghost", 2, vec![timer("a")], ended(Ending::Failed))])
        .unwrap_err();
    assert!(
        matches!(&err, Error::NoSuchCase(case) if case == "ghost"),
        "{err:?}"
    );
    assert_eq!(backend.journal("ghost").unwrap(), Vec::new());
    let err = backend
        .commit(&[Write::Enqueue(vec![message("ghost/2/0", "ghost")])])
        .unwrap_err();
    assert!(
        matches!(&err, Error::NoSuchCase(case) if case == "ghost"),
        "{err:?}"
    );
    assert_eq!(backend.undelivered(10).unwrap(), Vec::new());
});

store_test!(several_appends_to_one_case_in_one_batch, |backend| {
    let case = row("c1", "permit", None, 0);
    backend
        .commit(&[
            create(&case),
            append(
                "c1",
                2,
                vec![timer("a")],
                update(CaseStatus::Waiting, &["clerk"], None),
            ),
            append(
                "c1",
                3,
                vec![timer("b"), timer("c")],
                update(CaseStatus::Running, &[], Some(T0)),
            ),
        ])
        .unwrap();
    assert_eq!(backend.journal("c1").unwrap().len(), 4);
    let row = backend.case("c1").unwrap().unwrap();
    assert_eq!(
        (row.events, row.status, row.next_due),
        (4, CaseStatus::Running, Some(T0))
    );
    assert_eq!(row.updated_at, T0 + 4000);
});

// ---------------------------------------------------------------- batches

store_test!(a_batch_is_all_or_nothing, |backend| {
    let existing = row("c1", "permit", Some("APP-1"), 0);
    create_all(backend, &[&existing]);
    let fresh = row("c2", "permit", Some("APP-2"), 1);

    // The second write fails: the first, and the enqueue, are not applied.
    let err = backend
        .commit(&[
            create(&fresh),
            Write::Enqueue(vec![message("c1/1/0", "c1")]),
            append("c1", 5, vec![timer("a")], ended(Ending::Completed)),
            append("c1", 2, vec![timer("a")], ended(Ending::Completed)),
        ])
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
    assert_eq!(backend.case("c2").unwrap(), None);
    assert_eq!(backend.case_by_key("permit", "APP-2").unwrap(), None);
    assert_eq!(backend.case_by_tracking_code("TRK-c2").unwrap(), None);
    assert_eq!(backend.journal("c2").unwrap(), Vec::new());
    assert_eq!(backend.undelivered(10).unwrap(), Vec::new());
    assert_eq!(backend.case("c1").unwrap().unwrap(), existing);
    assert_eq!(ids(&backend.cases(&CaseFilter::default()).unwrap()), ["c1"]);

    // The same batch without the bad write goes through whole.
    backend
        .commit(&[
            create(&fresh),
            Write::Enqueue(vec![message("c1/1/0", "c1")]),
            append("c1", 2, vec![timer("a")], ended(Ending::Completed)),
        ])
        .unwrap();
    assert_eq!(backend.case("c2").unwrap().unwrap(), fresh);
    assert_eq!(keys(&backend.undelivered(10).unwrap()), ["c1/1/0"]);
    assert_eq!(backend.case("c1").unwrap().unwrap().events, 2);
});

store_test!(
    a_duplicate_key_is_refused_and_nothing_is_written,
    |backend| {
        let first = row("c1", "permit", Some("APP-1"), 0);
        create_all(backend, &[&first]);

        let second = row("c2", "permit", Some("APP-1"), 1);
        let err = backend.commit(&[create(&second)]).unwrap_err();
        assert!(
            matches!(&err, Error::DuplicateKey { workflow, key } if workflow == "permit" && key == "APP-1"),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "workflow `permit` already has a case with key `APP-1`"
        );

        // Two new cases with one key in one batch: the batch is refused whole.
        let third = row("c3", "permit", Some("APP-3"), 2);
        let fourth = row("c4", "permit", Some("APP-3"), 3);
        let err = backend
            .commit(&[create(&third), create(&fourth)])
            .unwrap_err();
        assert!(
            matches!(&err, Error::DuplicateKey { key, .. } if key == "APP-3"),
            "{err:?}"
        );

        for id in ["c2", "c3", "c4"] {
            assert_eq!(backend.case(id).unwrap(), None, "{id}");
            assert_eq!(backend.journal(id).unwrap(), Vec::new(), "{id}");
            assert_eq!(
                backend.case_by_tracking_code(&format!("TRK-{id}")).unwrap(),
                None
            );
        }
        assert_eq!(backend.case_by_key("permit", "APP-1").unwrap(), Some(first));
        assert_eq!(backend.case_by_key("permit", "APP-3").unwrap(), None);
        assert_eq!(backend.unfinished_cases().unwrap(), ["c1"]);
    }
);

store_test!(the_same_key_in_two_workflows_is_fine, |backend| {
    let permit = row("c1", "permit", Some("APP-1"), 0);
    let license = row("c2", "license", Some("APP-1"), 1);
    let unkeyed = [row("c3", "permit", None, 2), row("c4", "permit", None, 3)];
    create_all(backend, &[&permit, &license, &unkeyed[0], &unkeyed[1]]);
    assert_eq!(
        backend.case_by_key("permit", "APP-1").unwrap(),
        Some(permit)
    );
    assert_eq!(
        backend.case_by_key("license", "APP-1").unwrap(),
        Some(license)
    );
    assert_eq!(backend.case_by_key("grant", "APP-1").unwrap(), None);
    assert_eq!(backend.cases(&CaseFilter::default()).unwrap().len(), 4);
});

store_test!(a_case_is_found_by_its_tracking_code, |backend| {
    let a = row("c1", "permit", None, 0);
    let b = row("c2", "license", Some("L-7"), 1);
    create_all(backend, &[&a, &b]);
    assert_eq!(backend.case_by_tracking_code("TRK-c1").unwrap(), Some(a));
    assert_eq!(backend.case_by_tracking_code("TRK-c2").unwrap(), Some(b));
    assert_eq!(backend.case_by_tracking_code("TRK-c").unwrap(), None);
    assert_eq!(backend.case_by_tracking_code("trk-c1").unwrap(), None);
});

store_test!(a_taken_case_id_or_tracking_code_is_refused, |backend| {
    let a = row("c1", "permit", None, 0);
    create_all(backend, &[&a]);
    let same_id = CaseRow {
        tracking_code: "TRK-other".to_owned(),
        ..row("c1", "license", None, 1)
    };
    let err = backend.commit(&[create(&same_id)]).unwrap_err();
    assert!(
        matches!(&err, Error::Conflict { case, .. } if case == "c1"),
        "{err:?}"
    );
    let same_code = CaseRow {
        tracking_code: "TRK-c1".to_owned(),
        ..row("c2", "permit", None, 1)
    };
    assert!(backend.commit(&[create(&same_code)]).is_err());
    assert_eq!(backend.case("c1").unwrap(), Some(a));
    assert_eq!(backend.case("c2").unwrap(), None);
});

// ------------------------------------------------------------ deployments

store_test!(
    deploying_is_idempotent_and_versions_are_immutable,
    |backend| {
        let v1 = deployment("permit", 1, "steps: [a]");
        backend.deploy(&v1).unwrap();
        backend
            .deploy(&Deployment {
                deployed_at: T0 + MINUTE,
                ..v1.clone()
            })
            .unwrap();
        assert_eq!(backend.deployments().unwrap(), std::slice::from_ref(&v1));

        let err = backend
            .deploy(&deployment("permit", 1, "steps: [b]"))
            .unwrap_err();
        assert!(
            matches!(&err, Error::VersionExists { workflow, version: 1 } if workflow == "permit"),
            "{err:?}"
        );
        assert_eq!(
            backend.deployment("permit", Some(1)).unwrap(),
            Some(v1.clone())
        );

        let v2 = deployment("permit", 2, "steps: [b]");
        let v10 = deployment("permit", 10, "steps: [c]");
        let other = deployment("license", 3, "steps: [x]");
        for deployment in [&v10, &other, &v2] {
            backend.deploy(deployment).unwrap();
        }
        assert_eq!(
            backend.deployment("permit", None).unwrap(),
            Some(v10.clone())
        );
        assert_eq!(
            backend.deployment("permit", Some(2)).unwrap(),
            Some(v2.clone())
        );
        assert_eq!(backend.deployment("permit", Some(3)).unwrap(), None);
        assert_eq!(
            backend.deployment("license", None).unwrap(),
            Some(other.clone())
        );
        assert_eq!(backend.deployment("grant", None).unwrap(), None);
        assert_eq!(backend.deployments().unwrap(), [other, v1, v2, v10]);
    }
);

// ---------------------------------------------------------------- listing

/// c1..c5, created a minute apart but inserted out of order, in two
/// workflows, in every status, with roles.
fn populate(backend: &dyn Backend) {
    let rows = [
        row("c3", "permit", None, 3),
        row("c1", "permit", None, 1),
        row("c5", "license", None, 5),
        row("c2", "license", None, 2),
        row("c4", "permit", None, 4),
    ];
    create_all(backend, &rows.iter().collect::<Vec<_>>());
    let waiting = |roles: &[&str]| update(CaseStatus::Waiting, roles, None);
    backend
        .commit(&[
            append("c1", 2, vec![timer("a")], waiting(&["fire-safety"])),
            append("c2", 2, vec![timer("a")], waiting(&["fire", "clerk"])),
            append("c3", 2, vec![timer("a")], ended(Ending::Rejected)),
            append("c4", 2, vec![timer("a")], waiting(&["clerk", "fire"])),
        ])
        .unwrap();
}

#[track_caller]
fn listed(backend: &dyn Backend, filter: CaseFilter) -> Vec<String> {
    ids(&backend.cases(&filter).unwrap())
        .into_iter()
        .map(str::to_owned)
        .collect()
}

store_test!(cases_are_listed_newest_first_with_a_limit, |backend| {
    populate(backend);
    assert_eq!(
        listed(backend, CaseFilter::default()),
        ["c5", "c4", "c3", "c2", "c1"]
    );
    let limit = |n| CaseFilter {
        limit: Some(n),
        ..CaseFilter::default()
    };
    assert_eq!(listed(backend, limit(2)), ["c5", "c4"]);
    assert_eq!(listed(backend, limit(0)), Vec::<String>::new());
    assert_eq!(listed(backend, limit(99)).len(), 5);
});

store_test!(cases_are_filtered_by_workflow_and_status, |backend| {
    populate(backend);
    let filter = |workflow: Option<&str>, status: Option<CaseStatus>| CaseFilter {
        workflow: workflow.map(str::to_owned),
        status,
        ..CaseFilter::default()
    };
    assert_eq!(
        listed(backend, filter(Some("permit"), None)),
        ["c4", "c3", "c1"]
    );
    assert_eq!(
        listed(backend, filter(Some("grant"), None)),
        Vec::<String>::new()
    );
    assert_eq!(
        listed(backend, filter(None, Some(CaseStatus::Waiting))),
        ["c4", "c2", "c1"]
    );
    assert_eq!(
        listed(backend, filter(None, Some(CaseStatus::Running))),
        ["c5"]
    );
    assert_eq!(
        listed(
            backend,
            filter(None, Some(CaseStatus::Ended(Ending::Rejected)))
        ),
        ["c3"]
    );
    assert_eq!(
        listed(
            backend,
            filter(None, Some(CaseStatus::Ended(Ending::Completed)))
        ),
        Vec::<String>::new()
    );
    assert_eq!(
        listed(backend, filter(Some("license"), Some(CaseStatus::Waiting))),
        ["c2"]
    );
});

store_test!(cases_are_filtered_by_exact_role, |backend| {
    populate(backend);
    let role = |role: &str| CaseFilter {
        role: Some(role.to_owned()),
        ..CaseFilter::default()
    };
    assert_eq!(listed(backend, role("fire")), ["c4", "c2"]);
    assert_eq!(listed(backend, role("fire-safety")), ["c1"]);
    assert_eq!(listed(backend, role("clerk")), ["c4", "c2"]);
    for missing in [
        "fir",
        "safety",
        "fire-",
        "Fire",
        "",
        "%",
        "_ire",
        "fire,clerk",
    ] {
        assert_eq!(
            listed(backend, role(missing)),
            Vec::<String>::new(),
            "{missing:?}"
        );
    }
    let all = CaseFilter {
        workflow: Some("permit".to_owned()),
        status: Some(CaseStatus::Waiting),
        role: Some("fire".to_owned()),
        limit: Some(1),
    };
    assert_eq!(listed(backend, all), ["c4"]);

    // A task closing takes the case out of the role's inbox.
    backend
        .commit(&[append(
            "c4",
            3,
            vec![timer("b")],
            update(CaseStatus::Waiting, &["clerk"], None),
        )])
        .unwrap();
    assert_eq!(listed(backend, role("fire")), ["c2"]);
    assert_eq!(listed(backend, role("clerk")), ["c4", "c2"]);
    assert_eq!(
        backend.case("c4").unwrap().unwrap().waiting_roles,
        ["clerk"]
    );
});

store_test!(unfinished_cases_are_the_open_ones_oldest_first, |backend| {
    populate(backend);
    assert_eq!(
        backend.unfinished_cases().unwrap(),
        ["c1", "c2", "c4", "c5"]
    );
    backend
        .commit(&[
            append("c2", 3, vec![timer("b")], ended(Ending::Completed)),
            append("c5", 2, vec![timer("b")], ended(Ending::Failed)),
        ])
        .unwrap();
    assert_eq!(backend.unfinished_cases().unwrap(), ["c1", "c4"]);
});

store_test!(due_cases_are_earliest_first_up_to_now, |backend| {
    let rows: Vec<CaseRow> = (1..=6)
        .map(|n| row(&format!("c{n}"), "permit", None, n))
        .collect();
    create_all(backend, &rows.iter().collect::<Vec<_>>());
    let due = |at: Millis| update(CaseStatus::Waiting, &[], Some(at));
    backend
        .commit(&[
            append("c1", 2, vec![timer("a")], due(T0 + 30)),
            append("c2", 2, vec![timer("a")], due(T0 + 10)),
            append("c3", 2, vec![timer("a")], due(T0 + 20)),
            append("c4", 2, vec![timer("a")], due(T0 + 40)),
            // Ended, with a stale due time: never due.
            append(
                "c5",
                2,
                vec![timer("a")],
                CaseUpdate {
                    next_due: Some(T0),
                    ..ended(Ending::Completed)
                },
            ),
            // c6 has no timer.
        ])
        .unwrap();
    assert_eq!(backend.due_cases(T0 + 9, 10).unwrap(), Vec::<String>::new());
    assert_eq!(backend.due_cases(T0 + 10, 10).unwrap(), ["c2"]);
    assert_eq!(backend.due_cases(T0 + 30, 10).unwrap(), ["c2", "c3", "c1"]);
    assert_eq!(backend.due_cases(T0 + 30, 2).unwrap(), ["c2", "c3"]);
    assert_eq!(
        backend.due_cases(Millis::MAX, 10).unwrap(),
        ["c2", "c3", "c1", "c4"]
    );
    assert_eq!(
        backend.due_cases(Millis::MAX, 0).unwrap(),
        Vec::<String>::new()
    );

    // Handling the timer moves the case's due time.
    backend
        .commit(&[append("c2", 3, vec![timer("b")], due(T0 + 35))])
        .unwrap();
    assert_eq!(backend.due_cases(T0 + 35, 10).unwrap(), ["c3", "c1", "c2"]);
});

// ----------------------------------------------------------------- outbox

store_test!(
    the_outbox_delivers_each_key_once_in_enqueue_order,
    |backend| {
        create_all(
            backend,
            &[&row("c1", "permit", None, 0), &row("c2", "permit", None, 1)],
        );
        // Keys in the opposite of their enqueue order.
        backend
            .commit(&[Write::Enqueue(vec![
                message("k9", "c1"),
                message("k5", "c2"),
            ])])
            .unwrap();
        backend
            .commit(&[Write::Enqueue(vec![
                OutboxEntry {
                    body: "changed".to_owned(),
                    ..message("k9", "c1")
                },
                message("k1", "c1"),
            ])])
            .unwrap();
        let entries = backend.undelivered(10).unwrap();
        assert_eq!(keys(&entries), ["k9", "k5", "k1"]);
        assert_eq!(entries[0], message("k9", "c1"));
        assert_eq!(
            backend.undelivered(2).map(|entries| entries.len()).unwrap(),
            2
        );

        let no_recipient = OutboxEntry {
            to: None,
            ..message("k0", "c2")
        };
        backend
            .commit(&[Write::Enqueue(vec![no_recipient.clone()])])
            .unwrap();
        backend
            .commit(&[Write::Delivered(vec!["k9".to_owned(), "k1".to_owned()])])
            .unwrap();
        assert_eq!(
            backend.undelivered(10).unwrap(),
            [message("k5", "c2"), no_recipient]
        );

        // Delivered twice, unknown keys, and enqueueing a delivered key again
        // change nothing.
        backend
            .commit(&[
                Write::Delivered(vec!["k9".to_owned(), "unknown".to_owned()]),
                Write::Enqueue(vec![message("k9", "c1")]),
            ])
            .unwrap();
        assert_eq!(keys(&backend.undelivered(10).unwrap()), ["k5", "k0"]);
        backend
            .commit(&[Write::Delivered(vec!["k5".to_owned(), "k0".to_owned()])])
            .unwrap();
        assert_eq!(backend.undelivered(10).unwrap(), Vec::new());
    }
);

// ------------------------------------------------------------ concurrency

store_test!(concurrent_writers_and_readers, |backend| {
    const N_WRITERS: usize = 4;
    const N_CASES: usize = 25;
    std::thread::scope(|scope| {
        for writer in 0..N_WRITERS {
            scope.spawn(move || {
                for n in 0..N_CASES {
                    let id = format!("w{writer}-{n}");
                    let case = row(&id, "permit", Some(&id), 0);
                    backend.commit(&[create(&case)]).unwrap();
                    backend
                        .commit(&[
                            append(
                                &id,
                                2,
                                vec![timer("a")],
                                update(CaseStatus::Waiting, &["clerk"], None),
                            ),
                            Write::Enqueue(vec![message(&format!("{id}/2/0"), &id)]),
                        ])
                        .unwrap();
                }
            });
        }
        scope.spawn(|| {
            for _ in 0..50 {
                for row in backend.cases(&CaseFilter::default()).unwrap() {
                    assert!(row.events >= 1);
                }
                backend.unfinished_cases().unwrap();
            }
        });
    });
    let waiting = backend
        .cases(&CaseFilter {
            role: Some("clerk".to_owned()),
            ..CaseFilter::default()
        })
        .unwrap();
    assert_eq!(waiting.len(), N_WRITERS * N_CASES);
    assert!(waiting.iter().all(|row| row.events == 2));
    assert_eq!(
        backend.undelivered(1000).unwrap().len(),
        N_WRITERS * N_CASES
    );
});

// --------------------------------------------------- SQLite: the file itself

/// Writes a bit of everything, so that a reopened store can be compared.
fn fill(backend: &dyn Backend) {
    backend
        .deploy(&deployment("permit", 1, "steps: [a]"))
        .unwrap();
    backend
        .deploy(&deployment("permit", 2, "steps: [b]"))
        .unwrap();
    populate(backend);
    backend
        .commit(&[
            append(
                "c1",
                3,
                every_event(),
                update(CaseStatus::Waiting, &["fire-safety"], Some(T0)),
            ),
            Write::Enqueue(vec![
                message("k1", "c1"),
                message("k2", "c2"),
                message("k3", "c1"),
            ]),
            Write::Delivered(vec!["k2".to_owned()]),
        ])
        .unwrap();
}

/// Everything a backend can be asked, for comparing two stores.
fn snapshot(backend: &dyn Backend) -> String {
    let cases = backend.cases(&CaseFilter::default()).unwrap();
    let journals: Vec<Vec<Recorded>> = cases
        .iter()
        .map(|row| backend.journal(&row.id).unwrap())
        .collect();
    format!(
        "{:#?}\n{cases:#?}\n{journals:#?}\n{:?}\n{:?}\n{:#?}",
        backend.deployments().unwrap(),
        backend.unfinished_cases().unwrap(),
        backend.due_cases(Millis::MAX, 100).unwrap(),
        backend.undelivered(100).unwrap(),
    )
}

#[test]
fn sqlite_reopened_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("docket.db");
    let store = Sqlite::open(&path, Durability::Full).unwrap();
    assert_eq!(store.path(), path);
    fill(&store);
    let before = snapshot(&store);
    assert!(before.contains("fire-safety") && before.contains("k3"));
    drop(store);

    for durability in [Durability::Normal, Durability::Full] {
        let store = Sqlite::open(&path, durability).unwrap();
        assert_eq!(snapshot(&store), before);
    }

    // The reopened store goes on where the old one stopped.
    let store = Sqlite::open(&path, Durability::Full).unwrap();
    let err = store
        .commit(&[append("c1", 3, vec![timer("x")], ended(Ending::Failed))])
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
    let len = store.journal("c1").unwrap().len() as u64;
    store
        .commit(&[append(
            "c1",
            len + 1,
            vec![timer("x")],
            ended(Ending::Failed),
        )])
        .unwrap();
    assert_eq!(store.unfinished_cases().unwrap(), ["c2", "c4", "c5"]);
    let err = store
        .deploy(&deployment("permit", 2, "steps: [changed]"))
        .unwrap_err();
    assert!(matches!(err, Error::VersionExists { .. }), "{err:?}");
}

#[test]
fn sqlite_two_handles_on_one_file_see_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("docket.db");
    let a = Sqlite::open(&path, Durability::Normal).unwrap();
    let b = Sqlite::open(&path, Durability::Normal).unwrap();
    create_all(&a, &[&row("c1", "permit", None, 0)]);
    assert_eq!(b.unfinished_cases().unwrap(), ["c1"]);
    b.commit(&[append("c1", 2, vec![timer("a")], ended(Ending::Completed))])
        .unwrap();
    let err = a
        .commit(&[append("c1", 2, vec![timer("a")], ended(Ending::Completed))])
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Conflict {
                expected: 2,
                actual: 2,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(a.unfinished_cases().unwrap(), Vec::<String>::new());
}

#[track_caller]
fn open_error(path: &Path) -> String {
    match Sqlite::open(path, Durability::Full) {
        Ok(store) => panic!("opened {store:?}"),
        Err(err) => {
            let message = err.to_string();
            assert!(
                message.contains(&path.display().to_string()),
                "the message does not name the file: {message}"
            );
            message
        }
    }
}

#[test]
fn sqlite_refuses_a_file_that_is_not_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("notes.txt");
    std::fs::write(&short, "these are my notes\n").unwrap();
    let long = dir.path().join("notes.yaml");
    std::fs::write(&long, "steps: [a, b, c]\n".repeat(1000)).unwrap();
    for path in [short, long] {
        let before = std::fs::read(&path).unwrap();
        let message = open_error(&path);
        assert!(message.contains("not a SQLite database"), "{message}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            before,
            "the file was changed"
        );
    }

    let message = open_error(&dir.path().join("missing/docket.db"));
    assert!(message.starts_with("store: failed to open"), "{message}");
}

/// Overwrites the big-endian u32 at `offset` of a closed store's header.
fn patch_header(path: &Path, offset: usize, value: u32) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset..offset + 4].copy_from_slice(&value.to_be_bytes());
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn sqlite_refuses_a_newer_or_foreign_schema() {
    const USER_VERSION: usize = 60;
    const APPLICATION_ID: usize = 68;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("docket.db");
    fill(&Sqlite::open(&path, Durability::Full).unwrap());
    assert!(
        !dir.path().join("docket.db-wal").exists(),
        "closing checkpoints the WAL"
    );

    patch_header(&path, USER_VERSION, 5);
    let message = open_error(&path);
    assert!(
        message.contains("newer docket (store schema 5"),
        "{message}"
    );

    patch_header(&path, USER_VERSION, 4);
    Sqlite::open(&path, Durability::Full).unwrap();

    patch_header(&path, APPLICATION_ID, 0);
    let message = open_error(&path);
    assert!(message.contains("not a docket store"), "{message}");
}
