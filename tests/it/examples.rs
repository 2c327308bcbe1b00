//! The examples' workflows, run through the engine. (The building permit's
//! every path is in `engine`; `cargo xtask test` also runs its demo.)

use crate::engine::{Env, env};
use crate::support::root;
use docket_host::engine::{Error, Refusal};
use docket_host::store::{CaseStatus, Ending, Verdict};
use serde_json::{Value, json};

fn procurement(env: &Env) {
    let source =
        std::fs::read_to_string(root().join("examples/procurement/workflow.yaml")).unwrap();
    env.deploy(&source);
}

fn request(amount: f64) -> Value {
    json!({
        "requester": {"name": "Ada Lovelace", "email": "ada@example.org"},
        "item": "12 laptops",
        "supplier": "Acme Office Supplies",
        "amount": amount,
        "budget_line": "41.220"
    })
}

#[test]
fn procurement_asks_one_two_or_three_approvers_by_amount() {
    let env = env();
    procurement(&env);
    let small = env.start("procurement", request(800.0), "PR-1");
    let medium = env.start("procurement", request(14_400.0), "PR-2");
    let large = env.start("procurement", request(120_000.0), "PR-3");
    for (case, role) in [
        (&small, "budget-manager"),
        (&medium, "budget-manager"),
        (&large, "board"),
    ] {
        assert_eq!(env.case(case).row.waiting_roles, [role]);
    }

    env.decide(
        &small,
        "manager-approval",
        Verdict::Approve,
        "mona",
        "budget-manager",
    );
    assert_eq!(env.status(&small), CaseStatus::Ended(Ending::Completed));

    // Four-eyes: the requester (the case's applicant) may not approve, and
    // one manager's approval does not count twice.
    let own = env.try_decide(
        &medium,
        "managers-approval",
        Verdict::Approve,
        "ada",
        "budget-manager",
    );
    assert!(
        matches!(own, Err(Error::Refused(Refusal::Applicant { .. }))),
        "{own:?}"
    );
    env.decide(
        &medium,
        "managers-approval",
        Verdict::Approve,
        "mona",
        "budget-manager",
    );
    let twice = env.try_decide(
        &medium,
        "managers-approval",
        Verdict::Approve,
        "mona",
        "budget-manager",
    );
    assert!(
        matches!(twice, Err(Error::Refused(Refusal::AlreadyDecided { .. }))),
        "{twice:?}"
    );
    env.decide(
        &medium,
        "managers-approval",
        Verdict::Approve,
        "max",
        "budget-manager",
    );
    assert_eq!(env.status(&medium), CaseStatus::Ended(Ending::Completed));

    for member in ["bea", "bo", "bruno"] {
        env.decide(&large, "board-approval", Verdict::Approve, member, "board");
    }
    let view = env.case(&large);
    assert_eq!(view.row.status, CaseStatus::Ended(Ending::Completed));
    insta::assert_snapshot!("procurement_board", view.timeline());

    let orders: Vec<Value> = env.mail();
    assert_eq!(orders.len(), 3);
    assert!(
        orders
            .iter()
            .all(|m| m["subject"] == "Purchase order for 12 laptops")
    );
}

#[test]
fn procurement_refuses_what_breaks_the_budget_rules() {
    let env = env();
    procurement(&env);
    let over_cap = env.start("procurement", request(300_000.0), "PR-4");
    let mut no_supplier = request(100.0);
    no_supplier.as_object_mut().unwrap().remove("supplier");
    let no_supplier = env.start("procurement", no_supplier, "PR-5");
    for case in [&over_cap, &no_supplier] {
        assert_eq!(env.status(case), CaseStatus::Ended(Ending::Rejected));
    }
    insta::assert_snapshot!("procurement_over_cap", env.case(&over_cap).timeline());
    assert!(
        env.mail().is_empty(),
        "no purchase order for a refused request"
    );
}
