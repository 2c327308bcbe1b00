//! Cases as an IEEE 1849 (XES) event log, for process-mining tools: one
//! trace per case (`concept:name` is the case id), two events per step
//! visit (`lifecycle:transition` `start` when the step began, `complete`
//! when the case left it), the step's path as the activity
//! (`concept:name`), the journal's instant as `time:timestamp`, and who
//! acted as `org:resource` (the approvers, or `plugin:<digest>`).
//!
//! Parallel steps are left out: their branches' steps are the activities,
//! and a container activity spanning them would only blur a discovered
//! model. The log carries no case data and no applicant: an XES file
//! leaves the department, personal data does not.

use super::visit::{CaseVisits, StepKind};
use crate::engine::rfc3339;
use crate::store::Millis;
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, Event};
use std::io;

/// Writes `cases` as an XES document to `out`.
///
/// # Errors
///
/// Whatever writing to `out` returns.
pub fn write(cases: &[CaseVisits], out: impl io::Write) -> io::Result<()> {
    let mut writer = Writer::new_with_indent(out, b' ', 2);
    writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    writer
        .create_element("log")
        .with_attribute(("xes.version", "1849-2016"))
        .with_attribute(("xes.features", "nested-attributes"))
        .with_attribute(("xmlns", "http://www.xes-standard.org/"))
        .write_inner_content(|w| {
            for (name, prefix) in [
                ("Concept", "concept"),
                ("Time", "time"),
                ("Lifecycle", "lifecycle"),
                ("Organizational", "org"),
            ] {
                w.create_element("extension")
                    .with_attribute(("name", name))
                    .with_attribute(("prefix", prefix))
                    .with_attribute((
                        "uri",
                        format!("http://www.xes-standard.org/{prefix}.xesext").as_str(),
                    ))
                    .write_empty()?;
            }
            // Every trace and event carries these, so tools may rely on them.
            w.create_element("global")
                .with_attribute(("scope", "trace"))
                .write_inner_content(|w| string(w, "concept:name", "__INVALID__"))?;
            w.create_element("global")
                .with_attribute(("scope", "event"))
                .write_inner_content(|w| {
                    string(w, "concept:name", "__INVALID__")?;
                    date(w, "time:timestamp", 0)?;
                    string(w, "lifecycle:transition", "complete")
                })?;
            w.create_element("classifier")
                .with_attribute(("name", "Activity"))
                .with_attribute(("keys", "concept:name"))
                .write_empty()?;
            w.create_element("classifier")
                .with_attribute(("name", "Activity and transition"))
                .with_attribute(("keys", "concept:name lifecycle:transition"))
                .write_empty()?;
            string(w, "concept:name", &log_name(cases))?;
            for case in cases {
                trace(w, case)?;
            }
            Ok(())
        })?;
    Ok(())
}

/// The log's name: the workflow versions it holds.
fn log_name(cases: &[CaseVisits]) -> String {
    let mut names: Vec<String> = cases
        .iter()
        .map(|c| format!("{} v{}", c.workflow, c.version))
        .collect();
    names.sort();
    names.dedup();
    names.join(", ")
}

fn trace<W: io::Write>(w: &mut Writer<W>, case: &CaseVisits) -> io::Result<()> {
    // Events in time order, starts before completions at the same instant,
    // so a start never follows its own completion.
    let mut events: Vec<(Millis, u8, usize)> = Vec::new();
    for (idx, visit) in case.visits.iter().enumerate() {
        if visit.kind == Some(StepKind::Parallel) {
            continue;
        }
        events.push((visit.started, 0, idx));
        if let Some(ended) = visit.ended {
            events.push((ended, 1, idx));
        }
    }
    events.sort_by_key(|&(at, phase, idx)| (at, idx, phase));
    w.create_element("trace").write_inner_content(|w| {
        string(w, "concept:name", &case.id)?;
        string(w, "docket:workflow", &case.workflow)?;
        w.create_element("int")
            .with_attribute(("key", "docket:version"))
            .with_attribute(("value", case.version.to_string().as_str()))
            .write_empty()?;
        if let Some((_, ending)) = case.ended {
            string(w, "docket:ending", ending.as_str())?;
        }
        for (at, phase, idx) in events {
            let visit = &case.visits[idx];
            w.create_element("event").write_inner_content(|w| {
                string(w, "concept:name", &visit.step)?;
                date(w, "time:timestamp", at)?;
                if phase == 0 {
                    string(w, "lifecycle:transition", "start")?;
                } else {
                    string(w, "lifecycle:transition", "complete")?;
                    if !visit.resources.is_empty() {
                        string(w, "org:resource", &visit.resources.join(", "))?;
                    }
                    if let Some(role) = &visit.role {
                        string(w, "org:role", role)?;
                    }
                    if let Some(outcome) = visit.outcome {
                        string(w, "docket:outcome", outcome.as_str())?;
                    }
                }
                Ok(())
            })?;
        }
        Ok(())
    })?;
    Ok(())
}

fn string<W: io::Write>(w: &mut Writer<W>, key: &str, value: &str) -> io::Result<()> {
    w.create_element("string")
        .with_attribute(("key", key))
        .with_attribute(("value", value))
        .write_empty()?;
    Ok(())
}

fn date<W: io::Write>(w: &mut Writer<W>, key: &str, at: Millis) -> io::Result<()> {
    w.create_element("date")
        .with_attribute(("key", key))
        .with_attribute(("value", rfc3339(at).as_str()))
        .write_empty()?;
    Ok(())
}
