//! Process insight derived from the journal: KPIs per workflow version and
//! per step, the bottleneck ranking and version comparison ([`kpi`]), event
//! logs for process-mining tools ([`xes`] for IEEE 1849 XES, [`ocel`] for
//! OCEL 2.0), and live Prometheus metrics ([`metrics`]).
//!
//! Every figure is a pure function of journals read as step visits
//! ([`visit`]); [`load`] is the only function here that reads the store.
//! Times are the journal's recorded instants (the engine's clock), never
//! the reader's wall clock: a report over the same journals is the same
//! report whenever it is made.
//!
//! This module does not decide what a good lead time is, and does not write
//! anything: it reads.

pub mod kpi;
pub mod metrics;
pub mod ocel;
pub mod visit;
pub mod xes;

#[cfg(test)]
mod tests;

pub use kpi::{
    Bottleneck, CaseKpis, Change, Comparison, DayCount, Percentiles, Report, Selection, StepChange,
    StepKpis, VersionReport, compare, percentile, report,
};
pub use metrics::Metrics;
pub use visit::{CaseJournal, CaseVisits, StepKind, Visit, VisitOutcome, visits};

use crate::store::{Backend, CaseFilter};

/// Why the journals could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store failed.
    #[error("cannot read the journals")]
    Store(#[from] crate::store::Error),
    /// No deployed version of the workflow matches.
    #[error("workflow `{workflow}` has no deployed version {version}")]
    NoSuchVersion {
        /// The workflow.
        workflow: String,
        /// The version asked for.
        version: u32,
    },
    /// No workflow of that name is deployed.
    #[error("no workflow `{0}` is deployed")]
    NoSuchWorkflow(String),
}

/// Reads the journals of every case `selection` covers, oldest first, as
/// visits. Child cases are cases of their own workflow.
///
/// # Errors
///
/// [`Error::Store`] if the store fails, [`Error::NoSuchWorkflow`] or
/// [`Error::NoSuchVersion`] if the selection names a workflow or version
/// that was never deployed (an empty report would hide the typo).
pub fn load(store: &dyn Backend, selection: &Selection) -> Result<Vec<CaseVisits>, Error> {
    if let Some(workflow) = &selection.workflow {
        let deployments = store.deployments()?;
        let mut versions = deployments
            .iter()
            .filter(|d| d.workflow == *workflow)
            .map(|d| d.version)
            .peekable();
        if versions.peek().is_none() {
            return Err(Error::NoSuchWorkflow(workflow.clone()));
        }
        if let Some(version) = selection.version
            && !versions.any(|v| v == version)
        {
            return Err(Error::NoSuchVersion {
                workflow: workflow.clone(),
                version,
            });
        }
    }
    let rows = store.cases(&CaseFilter {
        workflow: selection.workflow.clone(),
        ..CaseFilter::default()
    })?;
    let mut cases = Vec::with_capacity(rows.len());
    // Rows come newest first; reports and logs read better oldest first.
    for row in rows.into_iter().rev() {
        if selection.version.is_some_and(|v| v != row.version)
            || selection.since.is_some_and(|since| row.created_at < since)
        {
            continue;
        }
        let journal = CaseJournal {
            events: store.journal(&row.id)?,
            id: row.id,
        };
        cases.extend(visits(&journal));
    }
    Ok(cases)
}
