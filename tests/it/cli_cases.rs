//! The workflow commands of the `docket` binary, run as a clerk runs them:
//! `run`, `deploy`, `start`, `case list|show|approve|reject|return|signal`,
//! `worker`, each process on the same store file.

use crate::support::{docket, root, target};
use serde_json::Value;
use std::path::Path;
use std::process::Output;

struct Cli {
    dir: tempfile::TempDir,
}

impl Cli {
    fn new() -> Cli {
        Cli {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        let output = docket()
            .args(args)
            .env("DOCKET_STORE", self.dir.path().join("docket.db"))
            .env("DOCKET_PLUGINS", target().join("plugins"))
            .env("DOCKET_CACHE_DIR", target().join("test-cache"))
            // Every process reads the same instant, unless a test says otherwise.
            .env("DOCKET_NOW", "2026-11-23T09:00:00Z")
            .output()
            .unwrap();
        assert!(output.status.code().is_some(), "killed by a signal");
        output
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert_eq!(
            output.status.code(),
            Some(0),
            "docket {args:?}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        format!("@{}", path.display())
    }

    fn mail(&self) -> Vec<Value> {
        let path = self.dir.path().join("docket.db.mailbox.jsonl");
        docket_host::engine::Mailbox::read(path).unwrap()
    }
}

fn example() -> String {
    root()
        .join("examples/building-permit/workflow.yaml")
        .display()
        .to_string()
}

fn field<'a>(printed: &'a str, name: &str) -> &'a str {
    printed
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no `{name}` in:\n{printed}"))
}

const COMPLEX: &str = r#"{"applicant": {"name": "Ada Lovelace", "email": "ada@example.org"},
  "parcel": "1234-567", "project": {"kind": "commercial", "floors": 6}}"#;

#[test]
fn a_permit_is_run_approved_by_three_departments_and_shown() {
    let cli = Cli::new();
    let input = cli.write("application.json", COMPLEX);
    let printed = cli.ok(&[
        "run",
        &example(),
        "--input",
        &input,
        "--key",
        "BP-1",
        "--applicant",
        "ada",
    ]);
    let case = field(&printed, "case").to_owned();
    let tracking = field(&printed, "tracking code").to_owned();
    assert_eq!(field(&printed, "status"), "waiting");
    assert_eq!(
        field(&printed, "waiting for"),
        "environment, fire-safety, zoning"
    );

    let shown = cli.ok(&["case", "show", &case]);
    assert!(
        shown.contains(
            "  Fire safety review [reviews/fire/fire-safety] (fire-department): \
             waiting for a decision by role `fire-safety` since "
        ),
        "a clerk sees which step to decide on:\n{shown}"
    );
    assert!(shown.contains("in progress since "), "{shown}");
    assert!(
        shown.contains("  Triage [triage] (urban-planning): done"),
        "{shown}"
    );

    // The applicant follows it by tracking code, and sees nothing personal.
    let tracked = cli.ok(&["track", &tracking]);
    assert!(
        tracked.starts_with(&format!("{tracking}: Single-window building permit")),
        "{tracked}"
    );
    assert!(
        tracked.contains(
            "Fire safety review (fire-department): waiting for a decision by fire-department since "
        ),
        "{tracked}"
    );
    assert!(
        tracked.contains("  project: {\"kind\":\"commercial\",\"floors\":6}"),
        "{tracked}"
    );
    for private in [
        "Ada",
        "ada@example.org",
        "1234-567",
        "BP-1",
        "fire-safety`",
        &case,
    ] {
        assert!(
            !tracked.contains(private),
            "`{private}` in the public view:\n{tracked}"
        );
    }
    let json: Value = serde_json::from_str(&cli.ok(&["track", &tracking, "--json"])).unwrap();
    assert_eq!(json["phase"], "in_progress");
    assert_eq!(json["current"].as_array().unwrap().len(), 3);
    let by_id = cli.run(&["track", &case]);
    assert_eq!(by_id.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&by_id.stderr).trim(),
        format!("error: no case `{case}`")
    );
    let inbox = cli.ok(&["case", "list", "--role", "zoning", "--json"]);
    let inbox: Value = serde_json::from_str(&inbox).unwrap();
    assert_eq!(inbox.as_array().unwrap().len(), 1);
    assert_eq!(inbox[0]["key"], "BP-1");

    for (step, person, role) in [
        ("reviews/fire/fire-safety", "fred", "fire-safety"),
        ("reviews/zoning/zoning", "zoe", "zoning"),
        ("reviews/environment/environment", "emil", "environment"),
        ("decide", "olga", "permit-officer"),
    ] {
        cli.ok(&[
            "case", "approve", &case, "--step", step, "--as", person, "--role", role,
        ]);
    }
    // The applicant tracks the case by its tracking code.
    let shown = cli.ok(&["case", "show", &tracking]);
    assert!(
        shown.contains("key BP-1\nbuilding-permit v1 (urban-planning)"),
        "{shown}"
    );
    assert!(shown.contains("\ncompleted; started "), "{shown}");
    assert!(
        shown.contains("  Permit decision [decide] (urban-planning): approved by olga"),
        "{shown}"
    );
    assert!(
        shown.contains("decide: approve by olga (permit-officer)"),
        "{shown}"
    );
    let json: Value = serde_json::from_str(&cli.ok(&["case", "show", &case, "--json"])).unwrap();
    assert_eq!(json["case"]["status"], "completed");
    let digests: Vec<&Value> = json["journal"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["event"].get("plugin"))
        .collect();
    assert_eq!(
        digests.len(),
        3,
        "each automated decision names its plugin's sha256"
    );
    assert!(digests.iter().all(|d| d.as_str().unwrap().len() == 64));
    let mail = cli.mail();
    assert_eq!(mail.len(), 1);
    assert!(mail[0]["subject"].as_str().unwrap().contains("granted"));
}

#[test]
fn a_refused_request_exits_2_and_says_why() {
    let cli = Cli::new();
    let input = cli.write("application.json", COMPLEX);
    let printed = cli.ok(&[
        "run",
        &example(),
        "--input",
        &input,
        "--key",
        "BP-2",
        "--applicant",
        "ada",
    ]);
    let case = field(&printed, "case").to_owned();
    let wrong = cli.run(&[
        "case",
        "approve",
        &case,
        "--step",
        "reviews/fire/fire-safety",
        "--as",
        "zoe",
        "--role",
        "zoning",
    ]);
    assert_eq!(wrong.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&wrong.stderr).trim(),
        "error: step `reviews/fire/fire-safety` is assigned to role `fire-safety`, not `zoning`"
    );
    let duplicate = cli.run(&[
        "start",
        "building-permit",
        "--input",
        &input,
        "--key",
        "BP-2",
    ]);
    assert_eq!(duplicate.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&duplicate.stderr).trim(),
        "error: workflow `building-permit` already has a case with key `BP-2`"
    );
    let unknown = cli.run(&["case", "show", "nope"]);
    assert_eq!(
        String::from_utf8_lossy(&unknown.stderr).trim(),
        "error: no case `nope`"
    );
}

#[test]
fn a_worker_fires_deadlines_that_fell_due_while_nothing_ran() {
    let cli = Cli::new();
    let input = cli.write("application.json", COMPLEX);
    let printed = cli.ok(&["run", &example(), "--input", &input, "--key", "BP-3"]);
    let case = field(&printed, "case").to_owned();
    // Eleven days later by the worker's clock: every review is overdue.
    cli.ok(&["worker", "--until-idle", "--now", "2026-12-04T09:00:00Z"]);
    let shown = cli.ok(&["case", "show", &case]);
    for (title, role) in [
        ("Environmental review", "environment-lead"),
        ("Fire safety review", "fire-safety-lead"),
        ("Zoning review", "zoning-lead"),
    ] {
        assert!(
            shown.lines().any(|line| {
                line.starts_with(&format!("  {title} "))
                    && line.contains(&format!("a decision by role `{role}`"))
                    && line.contains("(overdue)")
            }),
            "an overdue review, reassigned:\n{shown}"
        );
    }
    let escalation = cli.mail();
    assert_eq!(escalation.len(), 1, "{escalation:?}");
    assert_eq!(escalation[0]["to"], "fire-safety-lead@city.example");
}

#[test]
fn a_malformed_workflow_is_not_deployed_and_its_problems_are_shown() {
    let cli = Cli::new();
    let broken = cli.write("broken.yaml", "workflow: broken\nversion: 1\nowner: test\nsteps:\n  - id: a\n    approval: { role: \"\" }\n");
    let output = cli.run(&["deploy", broken.trim_start_matches('@')]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("1 problem"), "{stderr}");
    let listed = cli.ok(&["case", "list", "--json"]);
    assert_eq!(listed.trim(), "[]");
    assert!(Path::new(&cli.dir.path().join("docket.db")).exists());
}
