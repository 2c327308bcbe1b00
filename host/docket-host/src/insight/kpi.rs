//! KPIs per workflow version and per step, the bottleneck ranking, and the
//! comparison of two versions: pure functions of journals read as
//! [`CaseVisits`]. The report is a published format (`docket report
//! --json`), hence `Serialize`; durations are milliseconds of the engine's
//! clock, rates are fractions between 0 and 1.

use super::visit::{CaseVisits, StepKind, Visit, VisitOutcome};
use crate::store::{Ending, Millis};
use serde::Serialize;
use std::collections::BTreeMap;

const DAY: Millis = 86_400_000;

/// Which cases a report covers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// Only this workflow.
    pub workflow: Option<String>,
    /// Only this version of it.
    pub version: Option<u32>,
    /// Only cases started at or after this instant.
    pub since: Option<Millis>,
}

impl Selection {
    /// Whether the selection covers `case`.
    pub fn covers(&self, case: &CaseVisits) -> bool {
        self.workflow.as_ref().is_none_or(|w| *w == case.workflow)
            && self.version.is_none_or(|v| v == case.version)
            && self.since.is_none_or(|since| case.started >= since)
    }
}

/// The 50th, 90th and 99th percentiles of a set of durations, by the
/// nearest-rank method: each is a duration that occurred.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Percentiles {
    /// Half the durations are at most this.
    pub p50: Millis,
    /// 90 % are at most this.
    pub p90: Millis,
    /// 99 % are at most this.
    pub p99: Millis,
}

impl Percentiles {
    /// The percentiles of `durations`; `None` for none.
    pub fn of(mut durations: Vec<Millis>) -> Option<Percentiles> {
        durations.sort_unstable();
        Some(Percentiles {
            p50: percentile(&durations, 50)?,
            p90: percentile(&durations, 90)?,
            p99: percentile(&durations, 99)?,
        })
    }
}

/// The `p`th percentile of sorted `values` by the nearest-rank method: the
/// smallest value that at least `p` percent of the values do not exceed.
pub fn percentile(sorted: &[Millis], p: u32) -> Option<Millis> {
    let n = sorted.len();
    let rank = (p as usize * n).div_ceil(100).clamp(1, n.max(1));
    sorted.get(rank - 1).copied()
}

/// A report over a set of cases: one entry per workflow version.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// The instant open cases and steps are measured to: the latest event
    /// in the covered journals (the engine's clock, never the reader's).
    pub as_of: Option<Millis>,
    /// Per workflow version, by name then version.
    pub workflows: Vec<VersionReport>,
}

/// The KPIs of one workflow version.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VersionReport {
    /// The workflow's name.
    pub workflow: String,
    /// The version.
    pub version: u32,
    /// Its cases.
    pub cases: CaseKpis,
    /// Per step, in the order cases first reached them.
    pub steps: Vec<StepKpis>,
    /// Steps by their share of the cases' lead time, largest first.
    pub bottlenecks: Vec<Bottleneck>,
}

/// Case-level KPIs of a workflow version.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CaseKpis {
    /// Cases started.
    pub started: usize,
    /// Cases that reached their end.
    pub completed: usize,
    /// Cases rejected.
    pub rejected: usize,
    /// Cases that failed.
    pub failed: usize,
    /// Cases not ended.
    pub open: usize,
    /// Lead time (start to end) of the ended cases.
    pub lead_time: Option<Percentiles>,
    /// Calendar days (UTC) from the first case's start to `as_of`, both counted.
    pub days: u32,
    /// Ended cases per day over `days`.
    pub throughput_per_day: f64,
    /// Cases started and ended per calendar day (UTC), days with neither left out.
    pub per_day: Vec<DayCount>,
}

/// Cases started and ended on one calendar day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DayCount {
    /// `YYYY-MM-DD`, UTC.
    pub date: String,
    /// Cases started that day.
    pub started: usize,
    /// Cases ended that day.
    pub ended: usize,
}

/// Step-level KPIs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StepKpis {
    /// The step's path.
    pub step: String,
    /// What it is, if the journals tell.
    pub kind: Option<StepKind>,
    /// Visits: times a case reached the step.
    pub visits: usize,
    /// Visits the step decided (passed, rejected, returned, failed, escalated).
    pub decided: usize,
    /// Visits cut short by a join or the case's end.
    pub cancelled: usize,
    /// Visits still open at `as_of`.
    pub open: usize,
    /// Lead time (arrival to departure) of the decided visits.
    pub lead_time: Option<Percentiles>,
    /// Time all visits spent at the step (open ones to `as_of`).
    pub total_time: Millis,
    /// The part of `total_time` spent waiting: for people, a timer, a
    /// signal, a child case, a retry's back-off.
    pub waiting_time: Millis,
    /// The part of `total_time` a plugin spent executing.
    pub working_time: Millis,
    /// Rejected visits per decided visit.
    pub rejection_rate: f64,
    /// Visits returned to the applicant per decided visit.
    pub return_rate: f64,
    /// Visits that failed for good per decided visit.
    pub error_rate: f64,
    /// Visits that needed more than one execution, per visit.
    pub retry_rate: f64,
    /// Visits whose deadline passed and escalated, per visit.
    pub escalation_rate: f64,
    /// Visits that ended after their deadline or escalated.
    pub deadline_breaches: usize,
    /// Decided visits per day over the version's `days`.
    pub throughput_per_day: f64,
}

/// A step's place in the bottleneck ranking.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Bottleneck {
    /// The step's path.
    pub step: String,
    /// Time cases spent at the step.
    pub total_time: Millis,
    /// That time as a fraction of the cases' summed lead time. Steps in
    /// parallel branches overlap, so shares can add up to more than 1.
    pub share_of_lead_time: f64,
    /// The fraction of the step's time spent waiting.
    pub waiting_share: f64,
}

fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn ratio_millis(part: Millis, whole: Millis) -> f64 {
    if whole <= 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// The UTC calendar day of an instant, as days since the epoch.
fn day_of(at: Millis) -> i64 {
    at.div_euclid(DAY)
}

/// `YYYY-MM-DD` of a day since the epoch (the civil-from-days algorithm).
fn date_of(day: i64) -> String {
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The report over the `cases` that `selection` covers.
pub fn report(cases: &[CaseVisits], selection: &Selection) -> Report {
    let covered: Vec<&CaseVisits> = cases.iter().filter(|c| selection.covers(c)).collect();
    let as_of = covered.iter().map(|c| c.last_event).max();
    let mut groups: BTreeMap<(&str, u32), Vec<&CaseVisits>> = BTreeMap::new();
    for case in &covered {
        groups
            .entry((case.workflow.as_str(), case.version))
            .or_default()
            .push(case);
    }
    let workflows = groups
        .into_iter()
        .map(|((workflow, version), cases)| {
            version_report(workflow, version, &cases, as_of.unwrap_or(0))
        })
        .collect();
    Report { as_of, workflows }
}

fn version_report(
    workflow: &str,
    version: u32,
    cases: &[&CaseVisits],
    as_of: Millis,
) -> VersionReport {
    let first_day = cases.iter().map(|c| day_of(c.started)).min().unwrap_or(0);
    let days = u32::try_from(day_of(as_of) - first_day + 1)
        .unwrap_or(1)
        .max(1);
    let ended = |ending: Ending| {
        cases
            .iter()
            .filter(|c| matches!(c.ended, Some((_, e)) if e == ending))
            .count()
    };
    let n_ended = cases.iter().filter(|c| c.ended.is_some()).count();
    let mut per_day: BTreeMap<i64, (usize, usize)> = BTreeMap::new();
    for case in cases {
        per_day.entry(day_of(case.started)).or_default().0 += 1;
        if let Some((at, _)) = case.ended {
            per_day.entry(day_of(at)).or_default().1 += 1;
        }
    }
    let case_kpis = CaseKpis {
        started: cases.len(),
        completed: ended(Ending::Completed),
        rejected: ended(Ending::Rejected),
        failed: ended(Ending::Failed),
        open: cases.len() - n_ended,
        lead_time: Percentiles::of(
            cases
                .iter()
                .filter(|c| c.ended.is_some())
                .map(|c| c.duration(as_of))
                .collect(),
        ),
        days,
        throughput_per_day: n_ended as f64 / f64::from(days),
        per_day: per_day
            .into_iter()
            .map(|(day, (started, ended))| DayCount {
                date: date_of(day),
                started,
                ended,
            })
            .collect(),
    };

    // Steps in the order cases first reached them.
    let mut order: Vec<&str> = Vec::new();
    let mut by_step: BTreeMap<&str, Vec<&Visit>> = BTreeMap::new();
    for case in cases {
        for visit in &case.visits {
            let entry = by_step.entry(visit.step.as_str()).or_default();
            if entry.is_empty() {
                order.push(visit.step.as_str());
            }
            entry.push(visit);
        }
    }
    let steps: Vec<StepKpis> = order
        .iter()
        .map(|step| step_kpis(step, &by_step[step], as_of, days))
        .collect();

    let case_time: Millis = cases.iter().map(|c| c.duration(as_of)).sum();
    let mut bottlenecks: Vec<Bottleneck> = steps
        .iter()
        // A parallel step's time is its branches' time; ranking it would
        // count that time twice and always put the container first.
        .filter(|s| s.kind != Some(StepKind::Parallel))
        .map(|s| Bottleneck {
            step: s.step.clone(),
            total_time: s.total_time,
            share_of_lead_time: ratio_millis(s.total_time, case_time),
            waiting_share: ratio_millis(s.waiting_time, s.total_time),
        })
        .collect();
    bottlenecks.sort_by(|a, b| {
        b.total_time
            .cmp(&a.total_time)
            .then_with(|| a.step.cmp(&b.step))
    });

    VersionReport {
        workflow: workflow.to_owned(),
        version,
        cases: case_kpis,
        steps,
        bottlenecks,
    }
}

fn step_kpis(step: &str, visits: &[&Visit], as_of: Millis, days: u32) -> StepKpis {
    let count =
        |outcome: VisitOutcome| visits.iter().filter(|v| v.outcome == Some(outcome)).count();
    let open = visits.iter().filter(|v| v.ended.is_none()).count();
    let cancelled = count(VisitOutcome::Cancelled);
    let decided = visits.len() - open - cancelled;
    // The kind most visits showed; a visit cut short may not show any.
    let mut kinds: BTreeMap<StepKind, usize> = BTreeMap::new();
    for kind in visits.iter().filter_map(|v| v.kind) {
        *kinds.entry(kind).or_default() += 1;
    }
    let kind = kinds
        .into_iter()
        .max_by_key(|(kind, n)| (*n, std::cmp::Reverse(*kind)))
        .map(|(kind, _)| kind);
    let total_time: Millis = visits.iter().map(|v| v.duration(as_of)).sum();
    let waiting_time: Millis = visits.iter().map(|v| v.waiting(as_of)).sum();
    let working_time: Millis = visits.iter().map(|v| v.working).sum();
    StepKpis {
        step: step.to_owned(),
        kind,
        visits: visits.len(),
        decided,
        cancelled,
        open,
        lead_time: Percentiles::of(
            visits
                .iter()
                .filter(|v| v.ended.is_some() && v.outcome != Some(VisitOutcome::Cancelled))
                .map(|v| v.duration(as_of))
                .collect(),
        ),
        total_time,
        waiting_time,
        working_time,
        rejection_rate: ratio(count(VisitOutcome::Rejected), decided),
        return_rate: ratio(count(VisitOutcome::Returned), decided),
        error_rate: ratio(count(VisitOutcome::Failed), decided),
        retry_rate: ratio(
            visits.iter().filter(|v| v.attempts > 1).count(),
            visits.len(),
        ),
        escalation_rate: ratio(
            visits.iter().filter(|v| v.escalations > 0).count(),
            visits.len(),
        ),
        deadline_breaches: visits.iter().filter(|v| v.breached()).count(),
        throughput_per_day: decided as f64 / f64::from(days),
    }
}

/// Two versions of a workflow side by side, step by step.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Comparison {
    /// The workflow.
    pub workflow: String,
    /// The earlier version.
    pub before: u32,
    /// The later version.
    pub after: u32,
    /// Cases started, then and now.
    pub started: Change<usize>,
    /// Case lead time p50.
    pub lead_time_p50: Change<Millis>,
    /// Case lead time p90.
    pub lead_time_p90: Change<Millis>,
    /// Ended cases per day.
    pub throughput_per_day: Change<f64>,
    /// Per step: the steps of the earlier version in order, then the ones
    /// only the later version has.
    pub steps: Vec<StepChange>,
}

/// A figure in both versions; `None` where a version has no value.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Change<T> {
    /// In the earlier version.
    pub before: Option<T>,
    /// In the later version.
    pub after: Option<T>,
}

/// One step in both versions.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StepChange {
    /// The step's path.
    pub step: String,
    /// Visits.
    pub visits: Change<usize>,
    /// Lead time p50 of decided visits.
    pub lead_time_p50: Change<Millis>,
    /// Lead time p90 of decided visits.
    pub lead_time_p90: Change<Millis>,
    /// Share of the cases' lead time.
    pub share_of_lead_time: Change<f64>,
    /// Fraction of the step's time spent waiting.
    pub waiting_share: Change<f64>,
    /// Rejected per decided visit.
    pub rejection_rate: Change<f64>,
    /// Visits that breached their deadline.
    pub deadline_breaches: Change<usize>,
}

/// A step's KPIs and its place in the bottleneck ranking, if it has one.
type Ranked = (StepKpis, Option<Bottleneck>);

/// Compares two version reports step by step.
pub fn compare(before: &VersionReport, after: &VersionReport) -> Comparison {
    let mut names: Vec<&str> = before.steps.iter().map(|s| s.step.as_str()).collect();
    for step in &after.steps {
        if !names.contains(&step.step.as_str()) {
            names.push(&step.step);
        }
    }
    let find = |report: &VersionReport, name: &str| -> Option<Ranked> {
        let step = report.steps.iter().find(|s| s.step == name)?.clone();
        let rank = report.bottlenecks.iter().find(|b| b.step == name).cloned();
        Some((step, rank))
    };
    let steps = names
        .into_iter()
        .map(|name| {
            let (b, a) = (find(before, name), find(after, name));
            let change = |f: &dyn Fn(&Ranked) -> Option<f64>| Change {
                before: b.as_ref().and_then(f),
                after: a.as_ref().and_then(f),
            };
            StepChange {
                step: name.to_owned(),
                visits: Change {
                    before: b.as_ref().map(|(s, _)| s.visits),
                    after: a.as_ref().map(|(s, _)| s.visits),
                },
                lead_time_p50: Change {
                    before: b.as_ref().and_then(|(s, _)| s.lead_time.map(|p| p.p50)),
                    after: a.as_ref().and_then(|(s, _)| s.lead_time.map(|p| p.p50)),
                },
                lead_time_p90: Change {
                    before: b.as_ref().and_then(|(s, _)| s.lead_time.map(|p| p.p90)),
                    after: a.as_ref().and_then(|(s, _)| s.lead_time.map(|p| p.p90)),
                },
                share_of_lead_time: change(&|(_, r)| r.as_ref().map(|r| r.share_of_lead_time)),
                waiting_share: change(&|(s, _)| Some(ratio_millis(s.waiting_time, s.total_time))),
                rejection_rate: change(&|(s, _)| Some(s.rejection_rate)),
                deadline_breaches: Change {
                    before: b.as_ref().map(|(s, _)| s.deadline_breaches),
                    after: a.as_ref().map(|(s, _)| s.deadline_breaches),
                },
            }
        })
        .collect();
    Comparison {
        workflow: after.workflow.clone(),
        before: before.version,
        after: after.version,
        started: Change {
            before: Some(before.cases.started),
            after: Some(after.cases.started),
        },
        lead_time_p50: Change {
            before: before.cases.lead_time.map(|p| p.p50),
            after: after.cases.lead_time.map(|p| p.p50),
        },
        lead_time_p90: Change {
            before: before.cases.lead_time.map(|p| p.p90),
            after: after.cases.lead_time.map(|p| p.p90),
        },
        throughput_per_day: Change {
            before: Some(before.cases.throughput_per_day),
            after: Some(after.cases.throughput_per_day),
        },
        steps,
    }
}
