//! A case's journal as a compact text timeline: what `docket case show`
//! prints and what the engine's snapshot tests compare. Times are relative
//! to the case's start; plugin digests and case ids are left out so that a
//! timeline depends on what happened, not on build or run details.

use crate::store::{Event, Millis, Recorded};

/// `offset` milliseconds as `0s`, `250ms`, `3d`, `1d4h`, `2h30m`.
pub fn format_offset(offset: Millis) -> String {
    if offset < 1000 {
        return if offset == 0 {
            "0s".into()
        } else {
            format!("{offset}ms")
        };
    }
    let mut rest = offset / 1000;
    let mut out = String::new();
    for (unit, seconds) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if rest >= seconds {
            out.push_str(&format!("{}{unit}", rest / seconds));
            rest %= seconds;
        }
    }
    out
}

/// One line per event.
pub fn timeline(journal: &[Recorded]) -> String {
    let start = journal.first().map_or(0, |r| r.at);
    let mut out = String::new();
    for recorded in journal {
        let at = format!("t+{}", format_offset(recorded.at - start));
        out.push_str(&format!("{at:<9} {}\n", describe(&recorded.event, start)));
    }
    out
}

fn describe(event: &Event, start: Millis) -> String {
    let due = |due: &Option<Millis>| match due {
        Some(due) => format!(", due t+{}", format_offset(due - start)),
        None => String::new(),
    };
    match event {
        Event::CaseStarted {
            workflow,
            version,
            key,
            applicant,
            parent,
            ..
        } => {
            let mut line = format!("started {workflow} v{version}");
            if let Some(key) = key {
                line.push_str(&format!(" key={key}"));
            }
            if let Some(applicant) = applicant {
                line.push_str(&format!(" applicant={applicant}"));
            }
            if let Some(parent) = parent {
                line.push_str(&format!(" child of step {}", parent.step));
            }
            line
        }
        Event::StepScheduled {
            step,
            attempt,
            role,
            due: when,
        } => match role {
            Some(role) => format!("{step}: task for {role}{}", due(when)),
            None if *attempt > 1 => format!("{step}: attempt {attempt}{}", due(when)),
            None => format!("{step}: begins{}", due(when)),
        },
        Event::StepFinished {
            step,
            outcome,
            routes,
            problems,
            notifications,
            ..
        } => {
            let mut line = format!("{step} → {outcome}");
            if !routes.is_empty() {
                line.push_str(&format!(" {}", routes.join(",")));
            }
            for problem in problems {
                let pointer = if problem.pointer.is_empty() {
                    "(input)"
                } else {
                    &problem.pointer
                };
                line.push_str(&format!(" [{pointer} {}]", problem.code));
            }
            if *notifications > 0 {
                line.push_str(&format!(
                    " (+{notifications} notification{})",
                    if *notifications == 1 { "" } else { "s" }
                ));
            }
            line
        }
        Event::StepFailed {
            step,
            attempt,
            error,
            retry_at,
            ..
        } => match retry_at {
            Some(at) => format!(
                "{step} ✗ attempt {attempt}: {error}; retry at t+{}",
                format_offset(at - start)
            ),
            None => format!("{step} ✗ attempt {attempt}: {error}"),
        },
        Event::ApprovalDecided {
            step,
            verdict,
            by,
            role,
            comment,
        } => match comment {
            Some(comment) => format!(
                "{step}: {} by {by} ({role}): \"{comment}\"",
                verdict.as_str()
            ),
            None => format!("{step}: {} by {by} ({role})", verdict.as_str()),
        },
        Event::DeadlinePassed { step, escalation } => {
            format!("{step}: deadline passed (escalation {})", escalation + 1)
        }
        Event::Reassigned {
            step,
            role,
            due: when,
        } => format!("{step}: reassigned to {role}{}", due(when)),
        Event::TimerFired { step } => format!("{step}: timer fired"),
        Event::SignalReceived { name, .. } => format!("signal {name} received"),
        Event::BranchesStarted { step } => format!("{step}: branches start"),
        Event::BranchEnded {
            step,
            branch,
            ending,
        } => {
            format!("{step}: branch {branch} {}", ending.as_str())
        }
        Event::Joined { step, ending } => format!("{step}: joined, {}", ending.as_str()),
        Event::ChildStarted { step, .. } => format!("{step}: child case started"),
        Event::ChildEnded { step, ending, .. } => format!("{step}: child case {}", ending.as_str()),
        Event::Moved { from, to, reason } => format!("{from} ⇒ {to} ({reason})"),
        Event::Returned { step } => format!("{step}: returned to the applicant"),
        Event::Resubmitted { .. } => "resubmitted by the applicant".into(),
        Event::CaseEnded { ending, reason, .. } => match reason {
            Some(reason) => format!("case {}: {reason}", ending.as_str()),
            None => format!("case {}", ending.as_str()),
        },
    }
}
