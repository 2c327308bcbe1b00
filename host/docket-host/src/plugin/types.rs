//! The values a plugin and the host exchange, in the host's own types: the
//! generated bindings stay inside `plugin`.

use crate::json::Json;
use std::fmt;
use std::time::SystemTime;

/// What a step is for. It changes nothing in how a step runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Checks case data; rejects it with problems or lets it continue.
    Validate,
    /// Chooses one or more named routes.
    Route,
    /// Tells someone about the case.
    Notify,
    /// Computes new case data from the old.
    Transform,
    /// Anything else.
    Other,
}

impl Kind {
    /// The kind's name, as the contract spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Validate => "validate",
            Kind::Route => "route",
            Kind::Notify => "notify",
            Kind::Transform => "transform",
            Kind::Other => "other",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a plugin says about itself, from its `describe` export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginInfo {
    /// A short, stable name, for example `validate-schema`.
    pub name: String,
    /// The plugin's semantic version.
    pub version: String,
    /// What the step is for.
    pub kind: Kind,
    /// One or two sentences for a catalogue page.
    pub description: String,
    /// JSON Schema of the config `run` accepts.
    pub config_schema: Json,
    /// JSON Schema of the case data `run` accepts.
    pub input_schema: Json,
    /// JSON Schema of the case data `run` returns.
    pub output_schema: Json,
    /// The route names a `route` outcome can name, for steps whose routes do
    /// not depend on their config.
    pub routes: Vec<String>,
}

/// Where and when one execution happens; see the contract's `context`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepContext {
    /// The case the execution belongs to.
    pub case_id: String,
    /// The workflow definition's name.
    pub workflow: String,
    /// The version of the workflow definition the case runs on.
    pub workflow_version: u32,
    /// The step's id within the workflow.
    pub step_id: String,
    /// 1 for the first execution of this step in this case, 2 for the first retry.
    pub attempt: u32,
    /// The person on whose behalf the step runs, if any.
    pub actor: Option<String>,
    /// The engine's clock reading; the step's only source of time.
    pub now: SystemTime,
}

/// What a step decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Go on with this case data.
    Continue(Json),
    /// Take these routes with this case data.
    Route {
        /// The route names the step chose.
        routes: Vec<String>,
        /// The case data to carry along.
        data: Json,
    },
    /// The case data has these problems.
    Reject(Vec<Problem>),
}

impl Outcome {
    /// The outcome's name: `continue`, `route` or `reject`.
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Continue(_) => "continue",
            Outcome::Route { .. } => "route",
            Outcome::Reject(_) => "reject",
        }
    }
}

/// One thing wrong with the case data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// JSON Pointer to the offending value, `""` for the whole document.
    pub pointer: String,
    /// A stable, machine-readable code.
    pub code: String,
    /// A sentence for the person who has to fix it.
    pub message: String,
}

/// A message a step asked the host to deliver. The host only records it:
/// delivery is the caller's business, once the step's outcome is committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    /// The delivery channel, for example `email`.
    pub channel: String,
    /// The recipient's address on that channel, if the step named one.
    pub to: Option<String>,
    /// The subject line.
    pub subject: String,
    /// The body.
    pub body: String,
}

/// How much a log line matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Fine-grained tracing.
    Trace,
    /// For the plugin's developer.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that the step handled.
    Warn,
    /// Something the step could not handle.
    Error,
}

impl LogLevel {
    /// The level's name in lower case.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// One line a step logged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// How much it matters.
    pub level: LogLevel,
    /// The text.
    pub message: String,
}

/// The sha256 of a component's bytes: a plugin's identity. Two plugins with
/// the same digest are the same code.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PluginDigest([u8; 32]);

impl PluginDigest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> PluginDigest {
        use sha2::Digest as _;
        PluginDigest(sha2::Sha256::digest(bytes).into())
    }

    /// The digest as 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for PluginDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for PluginDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.to_hex())
    }
}
