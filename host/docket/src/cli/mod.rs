//! Subcommands, one file each, and what they share: global options, input
//! parsing and the plugin runtime's set-up.

mod audit;
mod case;
mod catalog;
mod deploy;
mod explain;
mod export;
mod graph;
mod host;
mod lint;
mod plugin_build;
mod plugin_inspect;
mod plugin_new;
mod plugin_test;
mod report;
mod retention;
mod schema;
mod start;
mod step_run;
mod track;
mod worker;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use docket_host::Json;
use docket_host::plugin::{Runtime, RuntimeConfig};
use std::path::PathBuf;
use std::process::ExitCode;

/// docket: process automation with sandboxed WebAssembly steps.
#[derive(Parser)]
#[command(version, about)]
pub struct Args {
    /// Log more: -v for what docket does, -vv for everything.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Build, inspect and package plugins.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Run single steps.
    #[command(subcommand)]
    Step(StepCommand),
    /// Check a workflow definition and show every problem in it.
    Lint(lint::LintCommand),
    /// Print a workflow as a Mermaid or Graphviz graph.
    Graph(graph::GraphCommand),
    /// Print the JSON Schema of workflow definitions.
    Schema(schema::SchemaCommand),
    /// Deploy a workflow definition as a new version.
    Deploy(deploy::DeployCommand),
    /// Start a case of a deployed workflow.
    Start(start::StartCommand),
    /// Deploy a workflow file, start a case, and run it until it ends or waits.
    Run(start::RunCommand),
    /// Process due work (steps, timers, deadlines) until stopped.
    Worker(worker::WorkerCommand),
    /// List, show and act on cases.
    #[command(subcommand)]
    Case(case::CaseCommand),
    /// Verify the tamper-evident ledger, sign checkpoints, export a case's record.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// KPIs per workflow version and step, and the bottlenecks.
    Report(report::ReportCommand),
    /// Export cases as an event log for process mining.
    #[command(subcommand)]
    Export(export::ExportCommand),
    /// Archive and purge the personal data of cases kept as long as their workflow's retention says.
    Retention(retention::RetentionCommand),
    /// Publisher keys for signing plugins.
    #[command(subcommand)]
    Key(catalog::KeyCommand),
    /// Publish, list, show, pull, yank and verify plugins in a catalogue.
    #[command(subcommand)]
    Catalog(catalog::CatalogCommand),
    /// Follow a case by its tracking code, as its applicant does: no personal data.
    Track(track::TrackCommand),
}

#[derive(Subcommand)]
pub enum PluginCommand {
    Build(plugin_build::BuildCommand),
    Inspect(plugin_inspect::InspectCommand),
    /// Create a plugin from a template (Rust per kind, Python, JavaScript).
    New(plugin_new::NewCommand),
    /// Pack a component and its manifest into a package directory.
    Pack(catalog::PackCommand),
    /// Sign a package directory with a publisher key.
    Sign(catalog::SignCommand),
    /// Print the JSON Schema of plugin manifests.
    ManifestSchema(catalog::ManifestSchemaCommand),
    /// Run a plugin over input/expected-outcome fixtures.
    Test(plugin_test::TestCommand),
}

#[derive(Subcommand)]
pub enum StepCommand {
    Run(step_run::RunCommand),
}

impl Command {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            Command::Plugin(PluginCommand::Build(cmd)) => cmd.run().map(|()| ExitCode::SUCCESS),
            Command::Plugin(PluginCommand::Inspect(cmd)) => cmd.run().map(|()| ExitCode::SUCCESS),
            Command::Step(StepCommand::Run(cmd)) => cmd.run(),
            Command::Lint(cmd) => cmd.run(),
            Command::Graph(cmd) => cmd.run(),
            Command::Schema(cmd) => cmd.run().map(|()| ExitCode::SUCCESS),
            Command::Deploy(cmd) => cmd.run(),
            Command::Start(cmd) => cmd.run(),
            Command::Run(cmd) => cmd.run(),
            Command::Worker(cmd) => cmd.run(),
            Command::Case(cmd) => cmd.run(),
            Command::Audit(cmd) => cmd.run(),
            Command::Report(cmd) => cmd.run(),
            Command::Export(cmd) => cmd.run(),
            Command::Track(cmd) => cmd.run(),
            Command::Key(cmd) => cmd.run(),
            Command::Catalog(cmd) => cmd.run(),
            Command::Plugin(PluginCommand::New(cmd)) => cmd.run(),
            Command::Plugin(PluginCommand::Pack(cmd)) => cmd.run(),
            Command::Plugin(PluginCommand::Sign(cmd)) => cmd.run(),
            Command::Plugin(PluginCommand::ManifestSchema(cmd)) => cmd.run(),
            Command::Plugin(PluginCommand::Test(cmd)) => cmd.run(),
            Command::Retention(cmd) => cmd.run(),
        }
    }
}

pub fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "docket=debug,docket_host=debug,info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("DOCKET_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

/// Options for the plugin runtime, shared by the subcommands that load plugins.
#[derive(clap::Args)]
pub struct RuntimeArgs {
    /// Where compiled plugins are cached [default: $XDG_CACHE_HOME/docket or ~/.cache/docket].
    #[arg(long, env = "DOCKET_CACHE_DIR", global = true)]
    pub cache_dir: Option<PathBuf>,
}

impl RuntimeArgs {
    pub fn runtime(&self) -> anyhow::Result<Runtime> {
        let cache_dir = self.cache_dir.clone().or_else(default_cache_dir);
        let config = RuntimeConfig {
            cache_dir,
            ..RuntimeConfig::default()
        };
        Ok(Runtime::new(config)?)
    }
}

fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("docket").join("compiled"))
}

/// Reads a JSON argument: the JSON itself, or `@path` for a file's contents.
pub fn json_arg(what: &str, arg: &str) -> anyhow::Result<Json> {
    let (text, source) = match arg.strip_prefix('@') {
        Some(path) => (
            std::fs::read_to_string(path)
                .with_context(|| format!("failed to read the {what} from `{path}`"))?,
            format!("`{path}`"),
        ),
        None => (arg.to_owned(), "the command line".to_owned()),
    };
    Json::parse(text).with_context(|| format!("the {what} from {source} is not JSON"))
}
