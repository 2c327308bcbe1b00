//! Explaining an automated decision: the recorded plugin (same sha256) run
//! again on the same config, the same input and the same clock reading,
//! and its outcome compared with the one in the journal.

use super::Error;
use super::host::step_context;
use super::state::{CaseState, scope_of};
use crate::plugin::{Limits, Outcome, Plugin};
use crate::store::{Event, Millis, Recorded, StoredProblem};
use crate::workflow::{StepKind, Workflow};
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;

/// What a plugin decided, as the journal records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Decided {
    /// `continue`, `route` or `reject`.
    pub outcome: String,
    /// The routes chosen.
    pub routes: Vec<String>,
    /// The case data after the step, when the step changed it (`None` for
    /// a `reject`, and for a step that handed on the data it was given).
    pub data: Option<Value>,
    /// The problems found.
    pub problems: Vec<StoredProblem>,
    /// How many notifications it sent.
    pub notifications: u32,
}

/// What running the plugin again gave.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Replay {
    /// The recorded outcome, exactly.
    Same,
    /// Another outcome.
    Different {
        /// What the replay decided.
        replayed: Decided,
    },
    /// The plugin failed this time.
    Failed {
        /// Why.
        error: String,
    },
    /// The component that decided is no longer available.
    Unavailable {
        /// What is there instead, or why nothing is.
        reason: String,
    },
}

/// A recorded automated decision and its replay.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// The case.
    pub case: String,
    /// The step's path.
    pub step: String,
    /// The execution explained (the last one).
    pub attempt: u32,
    /// The plugin the workflow names, `name@version`.
    pub plugin: String,
    /// sha256 of the component that decided.
    pub sha256: String,
    /// The step's config.
    pub config: Value,
    /// The input, rebuilt from the journal.
    pub input: Value,
    /// Whether the rebuilt input has the recorded sha256 (`None`: not
    /// recorded, by a docket before explanations).
    pub input_matches: Option<bool>,
    /// The clock reading the plugin saw.
    pub ran_at: Millis,
    /// The outcome in the journal.
    pub recorded: Decided,
    /// The replay.
    pub replay: Replay,
}

impl Explanation {
    /// Whether the replay confirms the recorded decision.
    pub fn confirms(&self) -> bool {
        self.replay == Replay::Same && self.input_matches != Some(false)
    }
}

/// Explains the last recorded outcome of plugin step `step` of the case
/// whose `journal` this is. `plugin` is the one the deployment loads now,
/// or why it cannot be loaded.
pub(super) fn explain(
    case: &str,
    journal: &[Recorded],
    workflow: &Arc<Workflow>,
    plugin: Result<&Plugin, String>,
    step: &str,
    limits: &Limits,
) -> Result<Explanation, Error> {
    let Some(first) = journal.first() else {
        return Err(Error::Internal("an empty journal".into()));
    };
    let mut state = CaseState::new(case.to_owned(), workflow.clone(), first)
        .ok_or_else(|| Error::Internal(format!("case `{case}` does not start with CaseStarted")))?;
    let found = journal.iter().rposition(
        |recorded| matches!(&recorded.event, Event::StepFinished { step: s, .. } if s == step),
    );
    let Some(index) = found else {
        return Err(Error::NotExplainable(format!(
            "step `{step}` has no recorded plugin outcome in case `{case}`"
        )));
    };
    let recorded_at = journal[index].at;
    let Event::StepFinished {
        attempt,
        outcome,
        routes,
        data,
        problems,
        plugin: sha256,
        notifications,
        ran_at,
        input_sha256,
        ..
    } = &journal[index].event
    else {
        return Err(Error::Internal("not a StepFinished".into()));
    };
    for recorded in &journal[1..index] {
        state.apply(recorded);
    }
    let input = state.data_of(scope_of(step)).clone();
    let input_matches = input_sha256
        .as_ref()
        .map(|recorded| *recorded == hex::encode(crate::ledger::record_hash(&input)));
    let Some(StepKind::Plugin(plugin_step)) = workflow.step(step).map(|s| &s.kind) else {
        return Err(Error::NotExplainable(format!(
            "step `{step}` is not a plugin step of workflow `{}`",
            workflow.name
        )));
    };
    let ran_at = ran_at.unwrap_or(recorded_at);
    let recorded = Decided {
        outcome: outcome.clone(),
        routes: routes.clone(),
        // Journals written before unchanged data went unrecorded hold it
        // again; it compares as what `decided` makes of it now.
        data: data.clone().filter(|data| *data != input),
        problems: problems.clone(),
        notifications: *notifications,
    };
    let replay = match plugin {
        Err(reason) => Replay::Unavailable { reason },
        Ok(plugin) if plugin.digest().to_hex() != *sha256 => Replay::Unavailable {
            reason: format!(
                "the plugin directory now has {}@{} with sha256 {}",
                plugin.info().name,
                plugin.info().version,
                plugin.digest().to_hex()
            ),
        },
        Ok(plugin) => {
            let ctx = step_context(&state, step, *attempt, ran_at);
            // The component with the recorded sha256 itself, not the
            // snapshot a busy step runs on (the same outcome, by design).
            let sent = crate::Json::from_value(&input);
            let execution = plugin.run_unprepared(&ctx, &plugin_step.config, &sent, limits);
            match execution.result {
                Err(err) => Replay::Failed {
                    error: err.to_string(),
                },
                Ok(outcome) => {
                    let replayed = decided(
                        &outcome,
                        u32::try_from(execution.notifications.len()).unwrap_or(u32::MAX),
                        &input,
                        &sent,
                    );
                    if replayed == recorded {
                        Replay::Same
                    } else {
                        Replay::Different { replayed }
                    }
                }
            }
        }
    };
    Ok(Explanation {
        case: case.to_owned(),
        step: step.to_owned(),
        attempt: *attempt,
        plugin: format!("{}@{}", plugin_step.plugin, plugin_step.version),
        sha256: sha256.clone(),
        config: plugin_step.config.to_value(),
        input,
        input_matches,
        ran_at,
        recorded,
        replay,
    })
}

/// An outcome as the journal records it, for a step that was given `sent`,
/// the text of `current`, its sequence's case data (which nothing else
/// changes while the step runs). Data handed on as it was given is not
/// recorded again: applying it would change nothing, and validation and
/// routing steps, most of a workflow, do just that.
pub(super) fn decided(
    outcome: &Outcome,
    notifications: u32,
    current: &Value,
    sent: &crate::Json,
) -> Decided {
    let changed = |data: &crate::Json| {
        if data == sent {
            return None;
        }
        Some(data.to_value()).filter(|data| data != current)
    };
    let (routes, data, problems) = match outcome {
        Outcome::Continue(data) => (Vec::new(), changed(data), Vec::new()),
        Outcome::Route { routes, data } => (routes.clone(), changed(data), Vec::new()),
        Outcome::Reject(problems) => (
            Vec::new(),
            None,
            problems.iter().map(StoredProblem::from).collect(),
        ),
    };
    Decided {
        outcome: outcome.name().to_owned(),
        routes,
        data,
        problems,
        notifications,
    }
}
