//! The plugin runtime: loads WebAssembly components that implement the
//! step contract in `wit/`, and runs each execution in a fresh, limited,
//! sandboxed instance.
//!
//! This is the only module that uses wasmtime. What it owns: checking a
//! component before anything runs (the step export, the imports against the
//! deployment's [`Grants`]), compiling it once and caching the result on
//! disk, creating an instance per execution from a pre-instantiated
//! template and a pooling allocator, enforcing [`Limits`], and turning
//! every way a plugin can misbehave into a [`StepFailure`]. What it does
//! not do: decide what happens after an outcome (the engine does), or
//! deliver notifications (it only records them).
//!
//! ```no_run
//! use docket_host::plugin::{Grants, Limits, Runtime, RuntimeConfig, StepContext};
//! use docket_host::Json;
//!
//! let runtime = Runtime::new(RuntimeConfig::default())?;
//! let plugin = runtime.load_file("target/plugins/validate-schema.wasm", Grants::default())?;
//! let ctx = StepContext {
//!     case_id: "BP-1".into(), workflow: "building-permit".into(), workflow_version: 1,
//!     step_id: "check".into(), attempt: 1, actor: None, now: std::time::SystemTime::UNIX_EPOCH,
//! };
//! let config: Json = r#"{"schema": {"required": ["parcel"]}}"#.parse()?;
//! let execution = plugin.run(&ctx, &config, &"{}".parse()?, &Limits::default());
//! println!("{:?}", execution.result);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod bindings;
mod cache;
mod directory;
mod exec;
mod failure;
#[doc(hidden)]
pub mod floor;
mod grants;
mod limits;
#[allow(
    clippy::module_inception,
    reason = "the module's main type is a plugin"
)]
mod plugin;
pub mod preinit;
mod prepared;
mod runtime;
mod sandbox;
mod segments;
mod types;

pub use directory::{Directory, DirectoryError, routes_for};
pub use failure::{StepError, StepFailure};
pub use grants::{Capability, Grants, UnknownCapability};
pub use limits::Limits;
pub use plugin::{ConfigError, Execution, Imports, Inspection, LoadError, Plugin, STEP_INTERFACE};
pub use prepared::PrepareError;
pub use runtime::{PoolReset, PoolResetPolicy, Runtime, RuntimeConfig, RuntimeError, RuntimeStats};
pub use types::{
    Kind, LogLevel, LogLine, Notification, Outcome, PluginDigest, PluginInfo, Problem, StepContext,
};
