//! Live Prometheus metrics: a [`Metrics`] registry that a [`Host`] updates
//! as it commits events (set [`HostConfig::metrics`]), rendered in the text
//! exposition format by [`Metrics::render`] for an embedder's `/metrics`
//! endpoint (`docket serve` will expose it).
//!
//! Counters move with every commit. Durations are observed when the case
//! leaves a step or ends, from the journal's instants (the engine's clock),
//! by the same reading of the journal as the KPIs ([`super::visit`]), so a
//! histogram and `docket report` never disagree on what a duration is.
//! To do that it keeps the journal of each case in flight, without its case
//! data, and drops it when the case ends.
//!
//! [`Host`]: crate::engine::Host
//! [`HostConfig::metrics`]: crate::engine::HostConfig::metrics

use super::visit::{CaseJournal, StepKind, visits};
use crate::store::{CaseRow, Event, Recorded, Write};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

type Labels = Vec<(&'static str, String)>;
type Histograms = Family<Labels, Histogram, fn() -> Histogram>;

/// Durations from a second to about 97 days, doubling: a plugin step takes
/// milliseconds, an approval days.
fn duration_buckets() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 24))
}

/// The metrics of one host. Cheap to update; share it with an `Arc`.
pub struct Metrics {
    registry: Registry,
    events: Family<Labels, Counter>,
    cases_started: Family<Labels, Counter>,
    cases_ended: Family<Labels, Counter>,
    step_visits: Family<Labels, Counter>,
    case_lead_time: Histograms,
    step_lead_time: Histograms,
    step_waiting_time: Histograms,
    in_flight: Mutex<HashMap<String, InFlight>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

struct InFlight {
    workflow: String,
    version: u32,
    events: Vec<Recorded>,
    /// Indexes of the visits already observed, so each is observed once
    /// (visits keep their index: they are read in the order they began).
    observed: HashSet<usize>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::with_prefix("docket");
        let events = Family::<Labels, Counter>::default();
        let cases_started = Family::<Labels, Counter>::default();
        let cases_ended = Family::<Labels, Counter>::default();
        let step_visits = Family::<Labels, Counter>::default();
        let case_lead_time =
            Histograms::new_with_constructor(duration_buckets as fn() -> Histogram);
        let step_lead_time =
            Histograms::new_with_constructor(duration_buckets as fn() -> Histogram);
        let step_waiting_time =
            Histograms::new_with_constructor(duration_buckets as fn() -> Histogram);
        registry.register(
            "events",
            "Journal events committed, by type",
            events.clone(),
        );
        registry.register("cases_started", "Cases started", cases_started.clone());
        registry.register("cases_ended", "Cases ended, by ending", cases_ended.clone());
        registry.register(
            "step_visits",
            "Step visits that ended, by outcome",
            step_visits.clone(),
        );
        registry.register(
            "case_lead_time_seconds",
            "Lead time of ended cases, by the engine's clock",
            case_lead_time.clone(),
        );
        registry.register(
            "step_lead_time_seconds",
            "Time from a step's start until the case left it",
            step_lead_time.clone(),
        );
        registry.register(
            "step_waiting_time_seconds",
            "Part of a step's time spent waiting for people, timers, signals or retries",
            step_waiting_time.clone(),
        );
        Metrics {
            registry,
            events,
            cases_started,
            cases_ended,
            step_visits,
            case_lead_time,
            step_lead_time,
            step_waiting_time,
            in_flight: Mutex::new(HashMap::new()),
        }
    }
}

impl Metrics {
    /// The metrics in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }

    /// Counts what a committed batch wrote. The host calls this after each
    /// successful commit.
    pub fn observe(&self, writes: &[Write]) {
        for write in writes {
            match write {
                Write::CreateCase {
                    row: CaseRow { id, .. },
                    events,
                }
                | Write::Append {
                    case: id, events, ..
                } => self.observe_events(id, events),
                Write::Enqueue(_) | Write::Delivered(_) => {}
            }
        }
    }

    /// Takes up a case the host read back from its journal (after a restart,
    /// or after it left memory), so its durations are observed when it ends.
    pub fn resume(&self, case: &str, journal: &[Recorded]) {
        let mut in_flight = self.lock();
        if in_flight.contains_key(case) {
            return;
        }
        let Some(Event::CaseStarted {
            workflow, version, ..
        }) = journal.first().map(|r| &r.event)
        else {
            return;
        };
        if journal
            .iter()
            .any(|r| matches!(r.event, Event::CaseEnded { .. }))
        {
            return;
        }
        let events: Vec<Recorded> = journal.iter().map(slim).collect();
        // Visits that ended before the restart were observed by the process
        // that saw them end.
        let observed = ended_visits(case, &events);
        in_flight.insert(
            case.to_owned(),
            InFlight {
                workflow: workflow.clone(),
                version: *version,
                events,
                observed,
            },
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, InFlight>> {
        self.in_flight
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn observe_events(&self, case: &str, events: &[Recorded]) {
        let mut in_flight = self.lock();
        for recorded in events {
            let kind = event_type(&recorded.event);
            if let Event::CaseStarted {
                workflow, version, ..
            } = &recorded.event
            {
                self.cases_started
                    .get_or_create(&vec![
                        ("workflow", workflow.clone()),
                        ("version", version.to_string()),
                    ])
                    .inc();
                in_flight.insert(
                    case.to_owned(),
                    InFlight {
                        workflow: workflow.clone(),
                        version: *version,
                        events: Vec::new(),
                        observed: HashSet::new(),
                    },
                );
            }
            let workflow = in_flight
                .get(case)
                .map_or_else(|| "unknown".to_owned(), |f| f.workflow.clone());
            self.events
                .get_or_create(&vec![("workflow", workflow), ("type", kind.to_owned())])
                .inc();
            if let Some(flight) = in_flight.get_mut(case) {
                flight.events.push(slim(recorded));
            }
        }
        let Some(flight) = in_flight.get_mut(case) else {
            return;
        };
        // The whole kept journal is read again on each commit: journals are
        // tens of events, and one reading of a journal is the only one.
        let journal = CaseJournal {
            id: case.to_owned(),
            events: std::mem::take(&mut flight.events),
        };
        let read = visits(&journal);
        flight.events = journal.events;
        let Some(read) = read else {
            return;
        };
        let labels = |step: &str| {
            vec![
                ("workflow", flight.workflow.clone()),
                ("version", flight.version.to_string()),
                ("step", step.to_owned()),
            ]
        };
        for (idx, visit) in read.visits.iter().enumerate() {
            let Some(ended) = visit.ended else { continue };
            if visit.kind == Some(StepKind::Parallel) || !flight.observed.insert(idx) {
                continue;
            }
            let outcome = visit.outcome.map_or("open", |o| o.as_str());
            let mut with_outcome = labels(&visit.step);
            with_outcome.push(("outcome", outcome.to_owned()));
            self.step_visits.get_or_create(&with_outcome).inc();
            self.step_lead_time
                .get_or_create(&labels(&visit.step))
                .observe(seconds(visit.duration(ended)));
            self.step_waiting_time
                .get_or_create(&labels(&visit.step))
                .observe(seconds(visit.waiting(ended)));
        }
        if let Some((at, ending)) = read.ended {
            let labels = vec![
                ("workflow", flight.workflow.clone()),
                ("version", flight.version.to_string()),
            ];
            self.case_lead_time
                .get_or_create(&labels)
                .observe(seconds(at - read.started));
            let mut with_ending = labels;
            with_ending.push(("ending", ending.as_str().to_owned()));
            self.cases_ended.get_or_create(&with_ending).inc();
            in_flight.remove(case);
        }
    }
}

fn seconds(millis: i64) -> f64 {
    millis as f64 / 1000.0
}

fn ended_visits(case: &str, events: &[Recorded]) -> HashSet<usize> {
    let journal = CaseJournal {
        id: case.to_owned(),
        events: events.to_vec(),
    };
    visits(&journal).map_or_else(HashSet::new, |read| {
        read.visits
            .iter()
            .enumerate()
            .filter(|(_, v)| v.ended.is_some())
            .map(|(idx, _)| idx)
            .collect()
    })
}

/// An event without the case data it carries: durations do not need it,
/// and memory should not hold every open case's data twice.
fn slim(recorded: &Recorded) -> Recorded {
    let mut event = recorded.event.clone();
    match &mut event {
        Event::CaseStarted { input, .. } => *input = Value::Null,
        Event::StepFinished { data, .. } => *data = None,
        Event::SignalReceived { data, .. }
        | Event::ChildEnded { data, .. }
        | Event::Resubmitted { data }
        | Event::CaseEnded { data, .. } => *data = Value::Null,
        _ => {}
    }
    Recorded {
        seq: recorded.seq,
        at: recorded.at,
        event,
    }
}

fn event_type(event: &Event) -> &'static str {
    match event {
        Event::CaseStarted { .. } => "case_started",
        Event::StepScheduled { .. } => "step_scheduled",
        Event::StepFinished { .. } => "step_finished",
        Event::StepFailed { .. } => "step_failed",
        Event::ApprovalDecided { .. } => "approval_decided",
        Event::DeadlinePassed { .. } => "deadline_passed",
        Event::Reassigned { .. } => "reassigned",
        Event::TimerFired { .. } => "timer_fired",
        Event::SignalReceived { .. } => "signal_received",
        Event::BranchesStarted { .. } => "branches_started",
        Event::BranchEnded { .. } => "branch_ended",
        Event::Joined { .. } => "joined",
        Event::ChildStarted { .. } => "child_started",
        Event::ChildEnded { .. } => "child_ended",
        Event::Moved { .. } => "moved",
        Event::Returned { .. } => "returned",
        Event::Resubmitted { .. } => "resubmitted",
        Event::CaseEnded { .. } => "case_ended",
    }
}
