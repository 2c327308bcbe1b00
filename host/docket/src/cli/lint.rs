//! `docket lint`: checks a workflow definition and shows every problem as
//! a frame of its source; and what `docket graph` shares with it (reading
//! and compiling a definition against a plugin directory).

use super::RuntimeArgs;
use anyhow::Context as _;
use docket_host::Json;
use docket_host::plugin::Directory;
use docket_host::workflow::{self, Diagnostic, PluginFacts, PluginProblem, Workflow};
use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceSpan};
use std::fmt;
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

/// Check a workflow definition and show every problem in it.
///
/// Exit code 0 when the definition is clean, 1 when it has problems, 2 when
/// it cannot be checked (unreadable file, broken plugin directory, usage).
#[derive(clap::Args)]
pub struct LintCommand {
    /// The workflow definition (YAML).
    workflow: PathBuf,
    #[command(flatten)]
    plugins: PluginArgs,
}

/// Where the plugins a workflow uses are.
#[derive(clap::Args)]
pub struct PluginArgs {
    /// The directory of plugin components (*.wasm) that `uses:` names
    /// [default: target/plugins, where `cargo xtask plugins` puts them, if it exists].
    #[arg(long, env = "DOCKET_PLUGINS")]
    plugins: Option<PathBuf>,
    /// Check against the plugins of this catalogue (a directory, or a
    /// registry) that `--trust` accepts, as a host deploying from it would.
    #[arg(long, env = "DOCKET_PLUGIN_CATALOG", value_name = "LOCATION")]
    catalog: Option<String>,
    /// The trust policy (YAML) for `--catalog`.
    #[arg(long, env = "DOCKET_TRUST", value_name = "FILE")]
    trust: Option<PathBuf>,
    /// Where plugins pulled from `--catalog` are kept [default: `docket-plugin-cache` in the system's temporary directory].
    #[arg(long, env = "DOCKET_PLUGIN_CACHE", value_name = "DIR")]
    plugin_cache: Option<PathBuf>,
    #[command(flatten)]
    runtime: RuntimeArgs,
}

const DEFAULT_PLUGINS: &str = "target/plugins";

/// What a workflow is checked against when there is no plugin directory.
struct NoPlugins;

impl PluginFacts for NoPlugins {
    fn routes(&self, _: &str, _: &str, _: &Json) -> Result<Vec<String>, PluginProblem> {
        Err(PluginProblem::Unknown(format!(
            "there is no plugin directory (pass `--plugins DIR`, or build the first-party plugins into `{DEFAULT_PLUGINS}` with `cargo xtask plugins`)"
        )))
    }
}

/// A definition that was read, and what compiling it gave.
pub struct Compiled {
    /// The file, as the user named it.
    pub path: String,
    /// Its text.
    pub source: String,
    /// The workflow, or every problem in it.
    pub result: Result<Workflow, Vec<Diagnostic>>,
}

impl PluginArgs {
    /// Reads `path` and compiles it against the plugin directory.
    pub fn compile(&self, path: &std::path::Path) -> anyhow::Result<Compiled> {
        let source = std::fs::read_to_string(path)
            .with_context(|| format!("failed to read `{}`", path.display()))?;
        let dir = match &self.plugins {
            Some(dir) => Some(dir.clone()),
            None => Some(PathBuf::from(DEFAULT_PLUGINS)).filter(|dir| dir.is_dir()),
        };
        let result = match (&self.catalog, dir) {
            (Some(location), _) => {
                let cache = self
                    .plugin_cache
                    .clone()
                    .unwrap_or_else(|| std::env::temp_dir().join("docket-plugin-cache"));
                let plugins = super::host::catalog_source(
                    self.runtime.runtime()?,
                    location,
                    self.trust.as_deref(),
                    &cache,
                )?;
                workflow::compile(&source, &plugins)
            }
            (None, Some(dir)) => {
                let runtime = self.runtime.runtime()?;
                let directory = Directory::open(&runtime, &dir).with_context(|| {
                    format!("failed to open the plugin directory `{}`", dir.display())
                })?;
                workflow::compile(&source, &directory)
            }
            (None, None) => workflow::compile(&source, &NoPlugins),
        };
        Ok(Compiled {
            path: path.display().to_string(),
            source,
            result,
        })
    }
}

impl Compiled {
    /// Writes every diagnostic to stderr, as a source frame, and a summary line.
    pub fn report(&self, diagnostics: &[Diagnostic]) {
        let handler = if std::io::stderr().is_terminal() {
            GraphicalReportHandler::new()
        } else {
            GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor())
        };
        let source = NamedSource::new(&self.path, self.source.clone()).with_language("yaml");
        let mut out = String::new();
        for diagnostic in diagnostics {
            let report = Report {
                diagnostic,
                source: &source,
                len: self.source.len(),
            };
            if handler.render_report(&mut out, &report).is_err() {
                out.push_str(&format!("{diagnostic}\n"));
            }
        }
        let n = diagnostics.len();
        out.push_str(&format!(
            "{}: {n} problem{}\n",
            self.path,
            if n == 1 { "" } else { "s" }
        ));
        #[allow(clippy::print_stderr, reason = "the report is the command's output")]
        {
            eprint!("{out}");
        }
    }
}

impl LintCommand {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let compiled = self.plugins.compile(&self.workflow)?;
        match &compiled.result {
            Ok(workflow) => {
                #[allow(clippy::print_stderr, reason = "the verdict goes where problems go")]
                {
                    eprintln!(
                        "{}: ok (workflow `{}` version {})",
                        compiled.path, workflow.name, workflow.version
                    );
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(diagnostics) => {
                compiled.report(diagnostics);
                Ok(ExitCode::from(1))
            }
        }
    }
}

/// A diagnostic with its source, as miette renders it.
struct Report<'a> {
    diagnostic: &'a Diagnostic,
    source: &'a NamedSource<String>,
    len: usize,
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.diagnostic, f)
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diagnostic.message)
    }
}

impl std::error::Error for Report<'_> {}

impl miette::Diagnostic for Report<'_> {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.diagnostic.code))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.diagnostic
            .help
            .as_ref()
            .map(|help| Box::new(help) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.diagnostic
            .span
            .map(|_| self.source as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let span = self.diagnostic.span?;
        let offset = span.offset.min(self.len);
        let len = span.len.min(self.len - offset);
        let label = LabeledSpan::new_with_span(None, SourceSpan::new(offset.into(), len));
        Some(Box::new(std::iter::once(label)))
    }
}
