//! The building-permit demo, and an example of embedding docket as a
//! library: a host on an embedded SQLite store, a batch of realistic
//! applications, and clerks in four departments working their inboxes over
//! a simulated month. The clock is a manual one, so a month of deadlines
//! takes a second.
//!
//! Run it from the repository root with `cargo xtask demo` (which builds
//! the plugins first).

use anyhow::Context as _;
use docket_host::catalog::{
    About, Catalog as _, CatalogError, CatalogSource, DirectoryCatalog, Package, Refusal,
    TrustPolicy,
};
use docket_host::engine::{
    Decision, Host, HostConfig, Mailbox, ManualClock, StartCase, format_offset,
};
use docket_host::insight;
use docket_host::ledger::{self, SigningKey};
use docket_host::plugin::{Runtime, RuntimeConfig};
use docket_host::store::{
    Backend as _, CaseFilter, CaseStatus, Durability, Ending, Event, Sqlite, Verdict,
};
use docket_host::tracking;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

const DAY: Duration = Duration::from_secs(86_400);

/// The platform team packs and signs the plugins the workflow uses and
/// publishes them to a catalogue directory; the host trusts the team's key
/// and takes its plugins from the catalogue only, each verified, through a
/// local cache. A plugin signed by anyone else is refused.
fn publish_plugins(
    runtime: &Runtime,
    workflow: &str,
    target: &Path,
    work: &Path,
    out: &mut impl std::io::Write,
) -> anyhow::Result<Arc<CatalogSource>> {
    let catalog = DirectoryCatalog::open(work.join("catalog"))?;
    let platform = SigningKey::load_or_create(&work.join("platform.key"))?;
    let about = |changelog: &str| About {
        team: "platform".into(),
        license: "Apache-2.0".into(),
        homepage: None,
        changelog: changelog.into(),
    };
    let used = docket_host::workflow::plugins_used(workflow);
    for name in &used {
        let path = target.join("plugins").join(format!("{name}.wasm"));
        let component = std::fs::read(&path).with_context(|| {
            format!("`{}` is not built: run `cargo xtask demo`", path.display())
        })?;
        let mut package = Package::pack(runtime, component, about("First release."))?;
        package.sign(&platform);
        catalog.publish(&package)?;
    }
    writeln!(
        out,
        "catalogue: the platform team published {} signed plugins ({}) to {}",
        used.len(),
        used.join(", "),
        catalog.root().display()
    )?;
    let policy = TrustPolicy::trusting("platform", platform.public(), &["*"]);

    // Someone else's build of a plugin, signed with their own key.
    let mut stranger = Package::pack(
        runtime,
        std::fs::read(target.join("plugins/validate-documents.wasm"))?,
        about("Unreviewed."),
    )?;
    stranger.sign(&SigningKey::generate()?);
    catalog.publish(&stranger)?;
    match catalog.pull(runtime, "validate-documents", "*", &policy) {
        Err(CatalogError::Refused(refusal @ Refusal::UntrustedKey { .. })) => writeln!(
            out,
            "catalogue: the host trusts key {} only; an unreviewed upload is refused: {refusal}",
            &platform.public().to_string()[..16]
        )?,
        other => anyhow::bail!(
            "a package signed by an unknown key must be refused, not: {:?}",
            other.map(|package| package.id())
        ),
    }
    Ok(Arc::new(CatalogSource::new(
        runtime.clone(),
        Arc::new(catalog),
        policy,
        work.join("plugin-cache"),
    )?))
}

fn main() -> anyhow::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()?;
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let work = target.join("demo");
    // A fresh store every run, so the story is the same every time.
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;

    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(target.join("demo-cache")),
        ..RuntimeConfig::default()
    })?;
    let source = std::fs::read_to_string(root.join("examples/building-permit/workflow.yaml"))?;
    let mut out = std::io::stdout().lock();
    let plugins = publish_plugins(&runtime, &source, &target, &work, &mut out)?;
    let clock = Arc::new(ManualClock::new(humantime::parse_rfc3339(
        "2026-11-23T08:00:00Z",
    )?));
    let mailbox = work.join("mailbox.jsonl");
    // The department's signing key; a real one lives apart from the store.
    let key = Arc::new(SigningKey::load_or_create(&work.join("ledger.key"))?);
    let host = Host::open(
        Arc::new(Sqlite::open(work.join("docket.db"), Durability::Full)?),
        plugins,
        clock.clone(),
        Arc::new(Mailbox::open(&mailbox)?),
        HostConfig {
            ledger_key: Some(key.clone()),
            ..HostConfig::default()
        },
    )?;
    let workflow = host.deploy(&source)?;
    writeln!(
        out,
        "deployed {} v{} (owner {}) on {}, its plugins pinned:",
        workflow.name,
        workflow.version,
        workflow.owner,
        work.join("docket.db").display()
    )?;
    let deployment = Sqlite::open(work.join("docket.db"), Durability::Full)?
        .deployment(&workflow.name, Some(workflow.version))?
        .context("the deployment is recorded")?;
    for pin in &deployment.pins {
        writeln!(
            out,
            "  {} {} -> {} (sha256 {})",
            pin.plugin,
            pin.requirement,
            pin.version,
            &pin.sha256[..12]
        )?;
    }

    // Day 0: the single window accepts the batch.
    let applications = applications();
    let mut cases = Vec::new();
    for (key, applicant, input) in &applications {
        let started = host.start(
            "building-permit",
            StartCase {
                input: input.clone(),
                key: Some((*key).to_owned()),
                applicant: Some((*applicant).to_owned()),
            },
        )?;
        cases.push((*key, started.id, started.tracking_code));
    }
    host.run_until_idle()?;
    writeln!(
        out,
        "day 0: {} applications received at the single window",
        cases.len()
    )?;
    report_inboxes(&host, &mut out)?;

    // The departments work their inboxes over the following days. Fire
    // safety refuses one project; environment never gets to BP-0107, whose
    // deadline passes and escalates to the team lead.
    let plan: &[(u32, &str, &str, &str)] = &[
        (1, "fire-safety", "frida.fire", "approve"),
        (2, "zoning", "zeno.zoning", "approve"),
        (3, "environment", "emma.env", "approve"),
    ];
    for &(day, role, person, _) in plan {
        clock.set(humantime::parse_rfc3339("2026-11-23T08:00:00Z")? + DAY * day);
        host.run_until_idle()?;
        for row in host.cases(&CaseFilter {
            role: Some(role.into()),
            ..CaseFilter::default()
        })? {
            if role == "environment" && row.key.as_deref() == Some("BP-0107") {
                continue; // this one waits past its deadline
            }
            let verdict = if role == "fire-safety" && row.key.as_deref() == Some("BP-0105") {
                Verdict::Reject
            } else {
                Verdict::Approve
            };
            decide(
                &host,
                &row.id,
                &open_step(&host, &row.id, role)?,
                verdict,
                person,
                role,
            )?;
        }
    }
    clock.set(humantime::parse_rfc3339("2026-11-23T08:00:00Z")? + DAY * 4);
    host.run_until_idle()?;
    writeln!(out, "day 4: the departments have worked their inboxes")?;
    report_inboxes(&host, &mut out)?;

    // The permit officer decides what is ready; one decision is returned
    // for a corrected parcel number and resubmitted the same day.
    for row in host.cases(&CaseFilter {
        role: Some("permit-officer".into()),
        ..CaseFilter::default()
    })? {
        let verdict = if row.key.as_deref() == Some("BP-0102") {
            Verdict::Return
        } else {
            Verdict::Approve
        };
        decide(
            &host,
            &row.id,
            "decide",
            verdict,
            "paula.permits",
            "permit-officer",
        )?;
        if verdict == Verdict::Return {
            host.resubmit(&row.id, json!({"parcel": "2207-114"}))?;
            host.run_until_idle()?;
            decide(
                &host,
                &row.id,
                "decide",
                Verdict::Approve,
                "peter.permits",
                "permit-officer",
            )?;
        }
    }

    // Day 10: BP-0107's environmental review is overdue and escalates.
    clock.set(humantime::parse_rfc3339("2026-11-23T08:00:00Z")? + DAY * 10);
    host.run_until_idle()?;
    writeln!(out, "day 10: an overdue review escalates")?;
    report_inboxes(&host, &mut out)?;
    report_tracking(&host, &applications, &cases, "BP-0107", &mut out)?;
    for row in host.cases(&CaseFilter {
        role: Some("environment-lead".into()),
        ..CaseFilter::default()
    })? {
        decide(
            &host,
            &row.id,
            &open_step(&host, &row.id, "environment-lead")?,
            Verdict::Approve,
            "elias.envlead",
            "environment-lead",
        )?;
    }
    clock.set(humantime::parse_rfc3339("2026-11-23T08:00:00Z")? + DAY * 11);
    for row in host.cases(&CaseFilter {
        role: Some("permit-officer".into()),
        ..CaseFilter::default()
    })? {
        decide(
            &host,
            &row.id,
            "decide",
            Verdict::Approve,
            "paula.permits",
            "permit-officer",
        )?;
    }
    host.run_until_idle()?;

    writeln!(out)?;
    report_stages(&host, &cases, &mut out)?;
    writeln!(out)?;
    report_outcomes(&host, &cases, &mut out)?;
    let open = host.cases(&CaseFilter {
        status: Some(CaseStatus::Waiting),
        ..CaseFilter::default()
    })?;
    anyhow::ensure!(
        open.is_empty(),
        "{} cases are still open at the end of the story",
        open.len()
    );
    let mail = Mailbox::read(&mailbox)?;
    writeln!(
        out,
        "\n{} notifications delivered (exactly once each, {})",
        mail.len(),
        mailbox.display()
    )?;
    if let Some((key, id, _)) = cases.iter().find(|(key, ..)| *key == "BP-0107") {
        writeln!(
            out,
            "\nthe timeline of {key} (`docket case show {id} --store {}`):\n",
            work.join("docket.db").display()
        )?;
        write!(out, "{}", host.case(id)?.timeline())?;
    }
    report_bottlenecks(&host, &work.join("docket.db"), &mut out)?;
    writeln!(out)?;
    report_audit(&host, &key, &cases, &work, &mut out)?;
    writeln!(out)?;
    // Two years and a day later, the retention policy comes due.
    clock.set(humantime::parse_rfc3339("2026-11-23T08:00:00Z")? + DAY * (730 + 12));
    report_retention(&host, &key, &applications, &work, &mut out)?;
    Ok(())
}

/// The retention policy: every case is archived and purged, the ledger
/// still verifies, and no applicant's name is left in the store's file.
fn report_retention(
    host: &Host,
    key: &SigningKey,
    applications: &[(&str, &str, Value)],
    work: &Path,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    let archive = work.join("archive");
    let retained = host.apply_retention(&archive)?;
    let events: usize = retained.iter().map(|r| r.purged.events).sum();
    writeln!(
        out,
        "retention: two years on, {} cases archived to {} and purged of personal data ({events} events)",
        retained.len(),
        archive.display()
    )?;
    let report = ledger::verify(host.store().as_ref(), Some(&key.public()), None)?;
    anyhow::ensure!(
        report.is_ok(),
        "the ledger does not verify after the purge: {:?}",
        report.problem
    );
    let file = std::fs::read(work.join("docket.db"))?;
    for (_, _, input) in applications {
        let name = input["applicant"]["name"].as_str().unwrap_or_default();
        anyhow::ensure!(
            !file.windows(name.len()).any(|w| w == name.as_bytes()),
            "`{name}` is still in the store after the purge"
        );
    }
    writeln!(
        out,
        "retention: the ledger still verifies ({} purged events match their purge entries); no applicant's name is left in docket.db",
        report.purged
    )?;
    Ok(())
}

/// What an applicant sees by tracking code: stages, dates, the expected
/// completion, and nothing of what they entered but the public fields.
fn report_tracking(
    host: &Host,
    applications: &[(&str, &str, Value)],
    cases: &[(&str, String, String)],
    key: &str,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    let (_, _, code) = cases
        .iter()
        .find(|(k, ..)| *k == key)
        .context("no such case in the batch")?;
    let view = host.track(code)?;
    writeln!(
        out,
        "  what the applicant of {key} sees (`docket track {code}`): {}, expected by {}",
        view.phase.describe(),
        view.expected_completion
            .map_or("-".into(), tracking::date_text)
    )?;
    for stage in &view.current {
        writeln!(
            out,
            "    now: {} ({}), waiting for {}, deadline {}",
            stage.title,
            stage.department,
            stage.waiting_for,
            stage.deadline.map_or("-".into(), tracking::date_text)
        )?;
    }
    let done: Vec<String> = view
        .history
        .iter()
        .map(|s| format!("{} {}", s.title, s.outcome))
        .collect();
    writeln!(out, "    so far: {}", done.join(", "))?;
    // The demo fails if anything the applicant entered, outside the public
    // fields, shows up in the public view.
    let shown = serde_json::to_string(&view)?;
    let (_, applicant, input) = applications
        .iter()
        .find(|(k, ..)| *k == key)
        .context("no such application")?;
    let private = [
        input["applicant"]["name"].as_str(),
        input["applicant"]["email"].as_str(),
        input["parcel"].as_str(),
        Some(*applicant),
        Some(key),
    ];
    for value in private.into_iter().flatten() {
        anyhow::ensure!(
            !shown.contains(value),
            "`{value}` leaks into the public view of {key}"
        );
    }
    Ok(())
}

/// Proves the record: the ledger verifies against the published key, an
/// automated decision replays to what was recorded, and a copy of the
/// store with one approval forged is caught.
fn report_audit(
    host: &Host,
    key: &SigningKey,
    cases: &[(&str, String, String)],
    work: &Path,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    host.checkpoint()?;
    let public = key.public();
    let report = ledger::verify(host.store().as_ref(), Some(&public), None)?;
    anyhow::ensure!(
        report.is_ok(),
        "the ledger does not verify: {:?}",
        report.problem
    );
    writeln!(
        out,
        "audit: the ledger verifies: {} entries chained, signed up to entry {} by key {}",
        report.entries,
        report.signed_up_to.unwrap_or_default(),
        &public.to_string()[..16]
    )?;

    if let Some((key_no, id, _)) = cases.iter().find(|(key, ..)| *key == "BP-0107") {
        let explained = host.explain(id, "triage")?;
        anyhow::ensure!(
            explained.confirms(),
            "triage of {key_no} does not replay: {explained:?}"
        );
        writeln!(
            out,
            "audit: triage of {key_no} replayed (plugin sha256 {}…, same input, same clock): {} -> {}, as recorded",
            &explained.sha256[..12],
            explained.recorded.outcome,
            explained.recorded.routes.join(", ")
        )?;
    }

    // Somebody with access to the database rewrites who approved a permit.
    let copy = work.join("tampered.db");
    let conn = rusqlite::Connection::open(work.join("docket.db"))?;
    conn.execute("VACUUM INTO ?1", [copy.to_string_lossy()])?;
    let forged = rusqlite::Connection::open(&copy)?;
    let (case, seq, by): (String, i64, String) = forged.query_row(
        "SELECT case_id, seq, event ->> '$.by' FROM journal \
         WHERE event ->> '$.type' = 'approval_decided' AND event ->> '$.verdict' = 'approve' LIMIT 1",
        [],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
    )?;
    forged.execute(
        "UPDATE journal SET event = json_set(event, '$.by', 'mallory') WHERE case_id = ?1 AND seq = ?2",
        rusqlite::params![case, seq],
    )?;
    drop(forged);
    let tampered = Sqlite::open(&copy, Durability::Full)?;
    let report = ledger::verify(&tampered, Some(&public), None)?;
    let Some(problem) = report.problem else {
        anyhow::bail!("a forged approval went unnoticed");
    };
    writeln!(
        out,
        "audit: a copy of the store where {by}'s approval now says mallory: TAMPERED: {problem}"
    )?;
    Ok(())
}

/// The KPI report's bottleneck ranking: where the month went.
fn report_bottlenecks(
    host: &Host,
    store: &Path,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    let all = insight::Selection::default();
    let report = insight::report(&insight::load(host.store().as_ref(), &all)?, &all);
    for version in &report.workflows {
        writeln!(
            out,
            "\nbottlenecks of {} v{} (`docket report --store {}`):",
            version.workflow,
            version.version,
            store.display()
        )?;
        for (rank, b) in version.bottlenecks.iter().take(5).enumerate() {
            writeln!(
                out,
                "{:>3}. {:<34} {:>4.0}% of lead time  {:>8}  waiting {:.0}%",
                rank + 1,
                b.step,
                b.share_of_lead_time * 100.0,
                format_offset(b.total_time),
                b.waiting_share * 100.0
            )?;
        }
    }
    Ok(())
}

/// Twelve applications: simple houses, commercial and tall buildings that
/// need three departments, a heritage-zone extension, and two incomplete ones.
fn applications() -> Vec<(&'static str, &'static str, Value)> {
    let app = |name: &str, email: &str, parcel: &str, kind: &str, floors: u32| {
        json!({
            "applicant": {"name": name, "email": email},
            "parcel": parcel,
            "project": {"kind": kind, "floors": floors}
        })
    };
    let mut heritage = app(
        "Hugo Brandt",
        "hugo.brandt@example.org",
        "3310-021",
        "residential",
        2,
    );
    heritage["project"]["heritage_zone"] = json!(true);
    vec![
        (
            "BP-0101",
            "anna.berg",
            app(
                "Anna Berg",
                "anna.berg@example.org",
                "1204-331",
                "residential",
                2,
            ),
        ),
        (
            "BP-0102",
            "jonas.weber",
            app(
                "Jonas Weber",
                "jonas.weber@example.org",
                "2207-113",
                "residential",
                1,
            ),
        ),
        (
            "BP-0103",
            "lea.koch",
            app(
                "Lea Koch",
                "lea.koch@example.org",
                "1451-090",
                "residential",
                3,
            ),
        ),
        (
            "BP-0104",
            "mira.schulz",
            app(
                "Mira Schulz",
                "mira@schulz-bau.example",
                "4120-007",
                "commercial",
                4,
            ),
        ),
        (
            "BP-0105",
            "tom.richter",
            app(
                "Tom Richter",
                "t.richter@example.org",
                "5003-410",
                "industrial",
                2,
            ),
        ),
        (
            "BP-0106",
            "sara.lang",
            app(
                "Sara Lang",
                "sara.lang@example.org",
                "1890-552",
                "residential",
                8,
            ),
        ),
        (
            "BP-0107",
            "noah.fischer",
            app(
                "Noah Fischer",
                "noah@fischer-logistik.example",
                "6021-300",
                "commercial",
                3,
            ),
        ),
        ("BP-0108", "hugo.brandt", heritage),
        (
            "BP-0109",
            "ida.wolf",
            app(
                "Ida Wolf",
                "ida.wolf@example.org",
                "2310-877",
                "residential",
                2,
            ),
        ),
        (
            "BP-0110",
            "karl.neumann",
            app(
                "Karl Neumann",
                "karl.neumann@example.org",
                "1777-402",
                "residential",
                1,
            ),
        ),
        // Incomplete: a parcel number in the wrong format, no floor count.
        (
            "BP-0111",
            "eva.hahn",
            json!({"applicant": {"name": "Eva Hahn", "email": "eva.hahn@example.org"}, "parcel": "17-4", "project": {"kind": "residential"}}),
        ),
        // Incomplete: no project at all.
        (
            "BP-0112",
            "ben.vogel",
            json!({"applicant": {"name": "Ben Vogel", "email": "ben.vogel@example.org"}, "parcel": "3001-118"}),
        ),
    ]
}

fn decide(
    host: &Host,
    case: &str,
    step: &str,
    verdict: Verdict,
    person: &str,
    role: &str,
) -> anyhow::Result<()> {
    host.decide(
        case,
        Decision {
            step: step.to_owned(),
            verdict,
            person: person.to_owned(),
            role: role.to_owned(),
            comment: (verdict != Verdict::Approve).then(|| match verdict {
                Verdict::Reject => {
                    "storage of flammable goods too close to the neighbouring school".to_owned()
                }
                _ => "the parcel number does not match the land register".to_owned(),
            }),
        },
    )?;
    host.run_until_idle()?;
    Ok(())
}

/// The step of `case` that waits for `role`.
fn open_step(host: &Host, case: &str, role: &str) -> anyhow::Result<String> {
    host.case(case)?
        .open
        .into_iter()
        .find(|open| open.role.as_deref() == Some(role))
        .map(|open| open.step)
        .with_context(|| format!("case {case} has no task for {role}"))
}

fn report_inboxes(host: &Host, out: &mut impl std::io::Write) -> anyhow::Result<()> {
    let mut inboxes: BTreeMap<String, usize> = BTreeMap::new();
    for row in host.cases(&CaseFilter {
        status: Some(CaseStatus::Waiting),
        ..CaseFilter::default()
    })? {
        for role in row.waiting_roles {
            *inboxes.entry(role).or_default() += 1;
        }
    }
    let list: Vec<String> = inboxes
        .iter()
        .map(|(role, n)| format!("{role} {n}"))
        .collect();
    writeln!(
        out,
        "  open tasks: {}",
        if list.is_empty() {
            "none".into()
        } else {
            list.join(", ")
        }
    )?;
    Ok(())
}

/// Per stage: how many cases reached it, how it decided, how long cases
/// waited there, and how often its deadline passed.
fn report_stages(
    host: &Host,
    cases: &[(&str, String, String)],
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    #[derive(Default)]
    struct Stage {
        reached: usize,
        passed: usize,
        rejected: usize,
        returned: usize,
        waits: Vec<i64>,
        escalations: usize,
    }
    let mut stages: BTreeMap<String, Stage> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for (_, id, _) in cases {
        let journal = host.case(id)?.journal;
        let mut began: BTreeMap<String, i64> = BTreeMap::new();
        for recorded in &journal {
            let stage_of = |step: &str| step.rsplit('/').next().unwrap_or(step).to_owned();
            let stage = |step: &str, order: &mut Vec<String>| {
                let name = stage_of(step);
                if !order.contains(&name) {
                    order.push(name.clone());
                }
                name
            };
            match &recorded.event {
                Event::StepScheduled { step, .. } => {
                    let name = stage(step, &mut order);
                    stages.entry(name).or_default().reached += 1;
                    began.insert(step.clone(), recorded.at);
                }
                Event::StepFinished { step, outcome, .. } => {
                    let entry = stages.entry(stage(step, &mut order)).or_default();
                    if outcome == "reject" {
                        entry.rejected += 1
                    } else {
                        entry.passed += 1
                    }
                    if let Some(at) = began.remove(step) {
                        entry.waits.push(recorded.at - at);
                    }
                }
                Event::ApprovalDecided { step, verdict, .. } => {
                    let entry = stages.entry(stage(step, &mut order)).or_default();
                    match verdict {
                        Verdict::Approve => entry.passed += 1,
                        Verdict::Reject => entry.rejected += 1,
                        Verdict::Return => entry.returned += 1,
                    }
                    if let Some(at) = began.remove(step) {
                        entry.waits.push(recorded.at - at);
                    }
                }
                Event::DeadlinePassed { step, .. } => {
                    stages
                        .entry(stage(step, &mut order))
                        .or_default()
                        .escalations += 1;
                }
                _ => {}
            }
        }
    }
    writeln!(
        out,
        "{:<18} {:>7} {:>7} {:>8} {:>8} {:>11} {:>9} {:>11}",
        "stage",
        "reached",
        "passed",
        "rejected",
        "returned",
        "median wait",
        "max wait",
        "escalations"
    )?;
    for name in order {
        let stage = &stages[&name];
        let mut waits = stage.waits.clone();
        waits.sort_unstable();
        let median = waits
            .get(waits.len() / 2)
            .map_or("-".into(), |w| format_offset(*w));
        let max = waits.last().map_or("-".into(), |w| format_offset(*w));
        writeln!(
            out,
            "{:<18} {:>7} {:>7} {:>8} {:>8} {:>11} {:>9} {:>11}",
            name,
            stage.reached,
            stage.passed,
            stage.rejected,
            stage.returned,
            median,
            max,
            stage.escalations
        )?;
    }
    Ok(())
}

fn report_outcomes(
    host: &Host,
    cases: &[(&str, String, String)],
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    writeln!(
        out,
        "{:<8} {:<10} {:<10} {:>9}  path",
        "key", "tracking", "outcome", "lead time"
    )?;
    for (key, id, tracking) in cases {
        let view = host.case(id)?;
        let lead = view.journal.last().map_or(0, |r| r.at) - view.row.created_at;
        let outcome = match view.row.status {
            CaseStatus::Ended(Ending::Completed) => "granted",
            CaseStatus::Ended(Ending::Rejected) => "refused",
            CaseStatus::Ended(Ending::Failed) => "failed",
            _ => "open",
        };
        let path: Vec<String> = view
            .journal
            .iter()
            .filter_map(|r| match &r.event {
                Event::Moved { reason, .. } if reason.starts_with("route ") => {
                    Some(reason[6..].to_owned())
                }
                Event::Moved { reason, .. } if reason == "deadline" => Some("escalated".into()),
                Event::DeadlinePassed { .. } => Some("escalated".into()),
                Event::Returned { .. } => Some("returned".into()),
                Event::StepFinished { outcome, step, .. } if outcome == "reject" => {
                    Some(format!("{step} rejected"))
                }
                Event::ApprovalDecided {
                    verdict: Verdict::Reject,
                    step,
                    ..
                } => Some(format!(
                    "{} refused",
                    step.rsplit('/').next().unwrap_or(step)
                )),
                _ => None,
            })
            .collect();
        writeln!(
            out,
            "{key:<8} {tracking:<10} {outcome:<10} {:>9}  {}",
            format_offset(lead),
            path.join(" → ")
        )?;
    }
    Ok(())
}
