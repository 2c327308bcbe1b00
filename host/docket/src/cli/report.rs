//! `docket report`: KPIs per workflow version and step, the bottleneck
//! ranking, and `--compare` of two versions, read from the store's
//! journals. Also the store and selection options `docket export` shares.

use anyhow::{Context as _, bail};
use docket_host::engine::{format_offset, to_millis};
use docket_host::insight::{
    self, Change, Comparison, Report, Selection, VersionReport, compare, report,
};
use docket_host::store::{Durability, Millis, Sqlite};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

/// The store to read, and which cases.
#[derive(clap::Args)]
pub struct ReadArgs {
    /// The store: a SQLite file.
    #[arg(long, env = "DOCKET_STORE", default_value = "docket.db")]
    pub store: PathBuf,
    /// Only this workflow (`building-permit`), or one version of it (`building-permit@2`).
    #[arg(long, value_name = "W")]
    pub workflow: Option<String>,
    /// Only cases started on or after this day (`2026-11-01`, UTC) or instant (RFC 3339).
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
}

impl ReadArgs {
    pub fn selection(&self) -> anyhow::Result<Selection> {
        let (workflow, version) = match &self.workflow {
            Some(w) => {
                let (name, version) = parse_version(w)?;
                (Some(name), version)
            }
            None => (None, None),
        };
        Ok(Selection {
            workflow,
            version,
            since: self.since.as_deref().map(parse_since).transpose()?,
        })
    }

    /// The journals of the selected cases, read as visits.
    pub fn load(&self, selection: &Selection) -> anyhow::Result<Vec<insight::CaseVisits>> {
        // Opening would create an empty store; a report on nothing is a typo.
        if !self.store.exists() {
            bail!("there is no store `{}`", self.store.display());
        }
        let store = Sqlite::open(&self.store, Durability::Full)
            .with_context(|| format!("cannot open the store `{}`", self.store.display()))?;
        Ok(insight::load(&store, selection)?)
    }
}

/// `W` or `W@N`.
fn parse_version(text: &str) -> anyhow::Result<(String, Option<u32>)> {
    match text.split_once('@') {
        None => Ok((text.to_owned(), None)),
        Some((name, version)) => {
            let version = version
                .parse()
                .with_context(|| format!("`{text}`: the version after `@` is not a number"))?;
            Ok((name.to_owned(), Some(version)))
        }
    }
}

fn parse_since(text: &str) -> anyhow::Result<Millis> {
    let instant = if text.len() == 10 {
        format!("{text}T00:00:00Z")
    } else {
        text.to_owned()
    };
    let time = humantime::parse_rfc3339_weak(&instant)
        .with_context(|| format!("--since `{text}` is neither a date nor an RFC 3339 time"))?;
    Ok(to_millis(time))
}

#[derive(clap::Args)]
pub struct ReportCommand {
    #[command(flatten)]
    read: ReadArgs,
    /// Compare two versions of a workflow step by step: `--compare W@1 W@2`.
    #[arg(long, num_args = 2, value_names = ["BEFORE", "AFTER"], conflicts_with = "workflow")]
    compare: Option<Vec<String>>,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
}

impl ReportCommand {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let mut out = std::io::stdout().lock();
        if let Some(versions) = &self.compare {
            let comparison = self.comparison(&versions[0], &versions[1])?;
            if self.json {
                serde_json::to_writer_pretty(&mut out, &comparison)?;
                writeln!(out)?;
            } else {
                write!(out, "{}", render_comparison(&comparison))?;
            }
            return Ok(ExitCode::SUCCESS);
        }
        let selection = self.read.selection()?;
        let cases = self.read.load(&selection)?;
        let report = report(&cases, &selection);
        if self.json {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        } else {
            write!(out, "{}", render(&report))?;
        }
        Ok(ExitCode::SUCCESS)
    }

    fn comparison(&self, before: &str, after: &str) -> anyhow::Result<Comparison> {
        let pick = |text: &str| -> anyhow::Result<(String, u32)> {
            match parse_version(text)? {
                (name, Some(version)) => Ok((name, version)),
                (_, None) => bail!("`{text}`: name a version, as in `{text}@1`"),
            }
        };
        let (before, after) = (pick(before)?, pick(after)?);
        if before.0 != after.0 {
            bail!(
                "--compare takes two versions of one workflow, not `{}` and `{}`",
                before.0,
                after.0
            );
        }
        let mut versions = Vec::new();
        for (name, version) in [&before, &after] {
            let selection = Selection {
                workflow: Some(name.clone()),
                version: Some(*version),
                since: self.read.since.as_deref().map(parse_since).transpose()?,
            };
            let cases = self.read.load(&selection)?;
            let report = report(&cases, &selection);
            // A deployed version without cases yet compares as empty.
            versions.push(
                report
                    .workflows
                    .into_iter()
                    .next()
                    .unwrap_or_else(|| empty(name, *version)),
            );
        }
        Ok(compare(&versions[0], &versions[1]))
    }
}

fn empty(workflow: &str, version: u32) -> VersionReport {
    VersionReport {
        workflow: workflow.to_owned(),
        version,
        cases: insight::CaseKpis {
            started: 0,
            completed: 0,
            rejected: 0,
            failed: 0,
            open: 0,
            lead_time: None,
            days: 0,
            throughput_per_day: 0.0,
            per_day: Vec::new(),
        },
        steps: Vec::new(),
        bottlenecks: Vec::new(),
    }
}

fn duration(millis: Millis) -> String {
    format_offset(millis)
}

fn percent(fraction: f64) -> String {
    format!("{:.0}%", fraction * 100.0)
}

/// The report as tables, one block per workflow version.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    if report.workflows.is_empty() {
        out.push_str("no cases\n");
    }
    for version in &report.workflows {
        let cases = &version.cases;
        out.push_str(&format!(
            "{} v{}: {} cases ({} completed, {} rejected, {} failed, {} open) over {} days, {:.2} ended per day\n",
            version.workflow,
            version.version,
            cases.started,
            cases.completed,
            cases.rejected,
            cases.failed,
            cases.open,
            cases.days,
            cases.throughput_per_day
        ));
        if let Some(lead) = cases.lead_time {
            out.push_str(&format!(
                "case lead time: p50 {}, p90 {}, p99 {}\n",
                duration(lead.p50),
                duration(lead.p90),
                duration(lead.p99)
            ));
        }
        let width = version
            .steps
            .iter()
            .map(|s| s.step.len())
            .max()
            .unwrap_or(4)
            .max(4);
        out.push_str(&format!(
            "\n{:<width$}  {:<8} {:>6} {:>7} {:>7} {:>7} {:>8} {:>8} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>7}\n",
            "step",
            "kind",
            "visits",
            "p50",
            "p90",
            "p99",
            "waiting",
            "working",
            "reject",
            "return",
            "retry",
            "error",
            "escal",
            "breach",
            "per day"
        ));
        for step in &version.steps {
            let lead = |f: fn(&insight::Percentiles) -> Millis| {
                step.lead_time
                    .as_ref()
                    .map_or("-".into(), |p| duration(f(p)))
            };
            out.push_str(&format!(
                "{:<width$}  {:<8} {:>6} {:>7} {:>7} {:>7} {:>8} {:>8} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>7.2}\n",
                step.step,
                step.kind.map_or("-", |k| k.as_str()),
                step.visits,
                lead(|p| p.p50),
                lead(|p| p.p90),
                lead(|p| p.p99),
                duration(step.waiting_time),
                duration(step.working_time),
                percent(step.rejection_rate),
                percent(step.return_rate),
                percent(step.retry_rate),
                percent(step.error_rate),
                percent(step.escalation_rate),
                step.deadline_breaches,
                step.throughput_per_day
            ));
        }
        out.push_str(
            "\nbottlenecks (share of case lead time; waiting share of the step's time):\n",
        );
        for (rank, bottleneck) in version.bottlenecks.iter().enumerate() {
            out.push_str(&format!(
                "{:>3}. {:<width$} {:>5} of lead time  {:>9}  waiting {}\n",
                rank + 1,
                bottleneck.step,
                percent(bottleneck.share_of_lead_time),
                duration(bottleneck.total_time),
                percent(bottleneck.waiting_share),
            ));
        }
        out.push('\n');
    }
    out
}

fn change<T>(change: &Change<T>, show: impl Fn(&T) -> String) -> String {
    let side = |v: &Option<T>| v.as_ref().map_or("-".to_owned(), &show);
    format!("{} → {}", side(&change.before), side(&change.after))
}

/// A comparison as a table.
pub fn render_comparison(comparison: &Comparison) -> String {
    let mut out = format!(
        "{} v{} → v{}\n",
        comparison.workflow, comparison.before, comparison.after
    );
    out.push_str(&format!(
        "cases: {}; lead time p50: {}; p90: {}; ended per day: {}\n\n",
        change(&comparison.started, |n| n.to_string()),
        change(&comparison.lead_time_p50, |m| duration(*m)),
        change(&comparison.lead_time_p90, |m| duration(*m)),
        change(&comparison.throughput_per_day, |f| format!("{f:.2}")),
    ));
    let width = comparison
        .steps
        .iter()
        .map(|s| s.step.len())
        .max()
        .unwrap_or(4)
        .max(4);
    out.push_str(&format!(
        "{:<width$}  {:>10} {:>15} {:>15} {:>13} {:>13} {:>13} {:>8}\n",
        "step", "visits", "p50", "p90", "share", "waiting", "reject", "breach"
    ));
    for step in &comparison.steps {
        out.push_str(&format!(
            "{:<width$}  {:>10} {:>15} {:>15} {:>13} {:>13} {:>13} {:>8}\n",
            step.step,
            change(&step.visits, |n| n.to_string()),
            change(&step.lead_time_p50, |m| duration(*m)),
            change(&step.lead_time_p90, |m| duration(*m)),
            change(&step.share_of_lead_time, |f| percent(*f)),
            change(&step.waiting_share, |f| percent(*f)),
            change(&step.rejection_rate, |f| percent(*f)),
            change(&step.deadline_breaches, |n| n.to_string()),
        ));
    }
    out
}
