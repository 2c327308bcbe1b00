//! Cases as an OCEL 2.0 (object-centric event log) JSON document.
//!
//! Objects are the cases (type `case`: workflow, version, business key,
//! ending) and the roles that held approval tasks (type `role`: the
//! departments). Events are step visits completed (type: the step's path),
//! at the instant the case left the step, with the outcome and the
//! resource as attributes, related to their case (qualifier `case`) and,
//! for approvals, to the role that held the task (qualifier `assigned`).
//! Applicants and case data are left out, as in [`super::xes`]: people
//! outside the department are not objects of a log that leaves it.

use super::visit::{CaseVisits, StepKind};
use crate::engine::rfc3339;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// The OCEL 2.0 document for `cases`.
pub fn document(cases: &[CaseVisits]) -> Value {
    let mut event_types: BTreeSet<&str> = BTreeSet::new();
    let mut roles: BTreeSet<&str> = BTreeSet::new();
    let mut objects = Vec::new();
    let mut events = Vec::new();
    for case in cases {
        let mut attributes = vec![
            attribute(case.started, "workflow", json!(case.workflow)),
            attribute(case.started, "version", json!(case.version)),
        ];
        if let Some(key) = &case.key {
            attributes.push(attribute(case.started, "key", json!(key)));
        }
        if let Some((at, ending)) = case.ended {
            attributes.push(attribute(at, "ending", json!(ending.as_str())));
        }
        objects.push(json!({
            "id": case.id,
            "type": "case",
            "attributes": attributes,
            "relationships": [],
        }));
        for (idx, visit) in case.visits.iter().enumerate() {
            let Some(ended) = visit.ended else { continue };
            if visit.kind == Some(StepKind::Parallel) {
                continue; // its branches' steps are the events, as in XES
            }
            event_types.insert(&visit.step);
            let mut relationships = vec![json!({"objectId": case.id, "qualifier": "case"})];
            if let Some(role) = &visit.role {
                roles.insert(role);
                relationships.push(json!({"objectId": role_id(role), "qualifier": "assigned"}));
            }
            events.push(json!({
                "id": format!("{}/{idx}", case.id),
                "type": visit.step,
                "time": rfc3339(ended),
                "attributes": [
                    {"name": "outcome", "value": visit.outcome.map_or("open", |o| o.as_str())},
                    {"name": "resource", "value": visit.resources.join(", ")},
                    {"name": "started", "value": rfc3339(visit.started)},
                ],
                "relationships": relationships,
            }));
        }
    }
    for role in roles {
        objects.push(json!({
            "id": role_id(role),
            "type": "role",
            "attributes": [attribute(0, "name", json!(role))],
            "relationships": [],
        }));
    }
    let event_types: Vec<Value> = event_types
        .into_iter()
        .map(|name| {
            json!({
                "name": name,
                "attributes": [
                    {"name": "outcome", "type": "string"},
                    {"name": "resource", "type": "string"},
                    {"name": "started", "type": "time"},
                ],
            })
        })
        .collect();
    json!({
        "objectTypes": [
            {"name": "case", "attributes": [
                {"name": "workflow", "type": "string"},
                {"name": "version", "type": "integer"},
                {"name": "key", "type": "string"},
                {"name": "ending", "type": "string"},
            ]},
            {"name": "role", "attributes": [{"name": "name", "type": "string"}]},
        ],
        "eventTypes": event_types,
        "objects": objects,
        "events": events,
    })
}

/// Role ids are prefixed so that a role never collides with a case id.
fn role_id(role: &str) -> String {
    format!("role:{role}")
}

/// An object attribute value, valid from `at`.
fn attribute(at: i64, name: &str, value: Value) -> Value {
    json!({"name": name, "time": rfc3339(at), "value": value})
}
