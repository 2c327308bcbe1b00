//! `Plugin`: a component that passed every load-time check, ready to run
//! in a fresh instance per execution; and the checks themselves.

use super::bindings::{self, docket::step as wit};
use super::exec::{self, ExecState, Setup};
use super::failure::{StepError, StepFailure};
use super::grants::{Capability, Grants};
use super::limits::Limits;
use super::prepared::{self, PrepareError};
use super::runtime::{Runtime, RuntimeInner};
use super::sandbox;
use super::types::{
    Kind, LogLine, Notification, Outcome, PluginDigest, PluginInfo, Problem, StepContext,
};
use crate::json::Json;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use wasmtime::component::{Component, HasSelf, Linker};

/// The interface every plugin exports, at the version this host runs.
pub const STEP_INTERFACE: &str = "docket:step/step@0.1.0";
const STEP_INTERFACE_PREFIX: &str = "docket:step/step@";
const DOCKET_PREFIX: &str = "docket:step/";
const CONTRACT_VERSION: &str = "0.1.0";

/// Why a component cannot be loaded as a plugin. Nothing is loaded then.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be read.
    #[error("failed to read `{}`", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not WebAssembly at all.
    #[error("not WebAssembly: the bytes do not start with `\\0asm`")]
    NotWasm,
    /// The bytes are a core module, not a component.
    #[error(
        "a core WebAssembly module, not a component: build the plugin with `docket plugin build`, \
         or wrap the module with `wasm-tools component new`"
    )]
    CoreModule,
    /// The component is malformed, truncated, or uses features docket does not enable.
    #[error("invalid component: {reason}")]
    Invalid {
        /// What wasmtime found.
        reason: String,
    },
    /// The component does not export the step interface.
    #[error(
        "the component does not export `{STEP_INTERFACE}`; it exports {}",
        if exports.is_empty() { "nothing".to_owned() } else { format!("`{}`", exports.join("`, `")) }
    )]
    MissingStepExport {
        /// What it exports instead.
        exports: Vec<String>,
    },
    /// The component exports the step interface at a version this host does not run.
    #[error("the component exports `{found}`, but this host runs `{STEP_INTERFACE}`")]
    IncompatibleContract {
        /// The export it has.
        found: String,
    },
    /// The component imports a capability the deployment does not grant.
    #[error(
        "plugin `{plugin}` imports `{import}`, which this deployment does not grant (grant `{capability}` to allow it)"
    )]
    NotGranted {
        /// The plugin's name.
        plugin: String,
        /// The import, as the component names it.
        import: String,
        /// The capability that would allow it.
        capability: Capability,
    },
    /// The component imports something docket never gives a plugin.
    #[error(
        "plugin `{plugin}` imports `{import}`, which docket never grants: a step reaches the \
         outside world only through the host's capabilities"
    )]
    Forbidden {
        /// The plugin's name.
        plugin: String,
        /// The import.
        import: String,
    },
    /// The component's `describe` export failed.
    #[error("plugin's `describe` failed: {0}")]
    Describe(#[source] StepFailure),
    /// The component's `describe` returned something unusable.
    #[error("plugin's `describe` returned {0}")]
    BadInfo(String),
}

/// What a component imports, sorted by what docket does with it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Imports {
    /// docket capabilities: the plugin's permission request.
    pub capabilities: Vec<Capability>,
    /// WASI interfaces, linked to the sandbox (no files, environment or network).
    pub wasi: Vec<String>,
    /// Imports docket never links; a plugin with any cannot be loaded.
    pub forbidden: Vec<String>,
}

/// Everything known about a component without running a step: what
/// `docket plugin inspect` shows.
#[derive(Clone, Debug)]
pub struct Inspection {
    /// What the plugin says about itself.
    pub info: PluginInfo,
    /// The sha256 of the component.
    pub digest: PluginDigest,
    /// The component's size in bytes.
    pub size: usize,
    /// What it imports.
    pub imports: Imports,
}

/// What one execution produced.
#[derive(Clone, Debug)]
pub struct Execution {
    /// The step's outcome, or why there is none.
    pub result: Result<Outcome, StepError>,
    /// The notifications the step asked for, to be delivered once the
    /// outcome is committed; empty when there is no outcome.
    pub notifications: Vec<Notification>,
    /// What the step logged.
    pub logs: Vec<LogLine>,
    /// Wall-clock time of the execution, instantiation included.
    pub elapsed: Duration,
}

/// Why a config was not accepted by [`Plugin::check_config`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The plugin says the config is invalid.
    #[error("invalid config: {0}")]
    Invalid(String),
    /// The check itself failed.
    #[error(transparent)]
    Failed(#[from] StepFailure),
}

/// A loaded plugin. Cheap to clone; clones share the compiled component.
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<PluginInner>,
}

struct PluginInner {
    runtime: Arc<RuntimeInner>,
    inspection: Inspection,
    grants: Arc<Grants>,
    pre: bindings::PluginPre<ExecState>,
    preparable: Preparable,
    /// Executions so far, and the prepared plugin once there is one.
    tier: Mutex<Tier>,
}

/// Whether a plugin can be prepared for a config (see [`Plugin::prepare`]).
#[derive(Clone)]
enum Preparable {
    /// It carries the marker; the component's bytes, to snapshot.
    Yes(Arc<[u8]>),
    /// No marker.
    No,
    /// A marker this host does not understand, and why.
    Bad(String),
    /// It is a snapshot already, whose memories start with up to this many
    /// bytes.
    Prepared { initial_memory: u64 },
}

/// Where a step is on its way to running prepared.
enum Tier {
    /// Counting executions with the config of the first one.
    Counting { config: String, runs: u32 },
    /// A snapshot is being made in the background.
    Preparing,
    /// Executions with `config` run on `plugin`, its snapshot.
    Ready { config: String, plugin: Plugin },
    /// It runs unprepared.
    Off,
}

impl Runtime {
    /// Checks a component and describes it, without the grant check.
    ///
    /// # Errors
    ///
    /// A [`LoadError`] for anything that is not a component exporting the
    /// step interface, or whose `describe` fails.
    pub fn inspect(&self, bytes: &[u8]) -> Result<Inspection, LoadError> {
        self.prepare(bytes).map(|(inspection, _)| inspection)
    }

    /// Loads a plugin with `grants`: checks it, compiles it (or takes it
    /// from a cache), describes it and prepares its instances.
    ///
    /// # Errors
    ///
    /// A [`LoadError`]; among them, [`LoadError::NotGranted`] and
    /// [`LoadError::Forbidden`] name the first import the grants do not cover.
    pub fn load(&self, bytes: &[u8], grants: Grants) -> Result<Plugin, LoadError> {
        let (inspection, component) = self.prepare(bytes)?;
        let preparable = match prepared::marker(bytes) {
            prepared::Marker::Absent => Preparable::No,
            prepared::Marker::Present => Preparable::Yes(Arc::from(bytes)),
            prepared::Marker::Bad(reason) => {
                tracing::warn!(plugin = %inspection.info.name, "plugin will not be prepared: {reason}");
                Preparable::Bad(reason)
            }
        };
        self.link(inspection, &component, grants, preparable)
    }

    /// The grant check and the pre-instantiation of a checked component.
    fn link(
        &self,
        inspection: Inspection,
        component: &Component,
        grants: Grants,
        preparable: Preparable,
    ) -> Result<Plugin, LoadError> {
        let imports = &inspection.imports;
        if let Some(import) = imports.forbidden.first() {
            return Err(LoadError::Forbidden {
                plugin: inspection.info.name.clone(),
                import: import.clone(),
            });
        }
        if let Some(capability) = imports.capabilities.iter().find(|c| !grants.allows(**c)) {
            return Err(LoadError::NotGranted {
                plugin: inspection.info.name.clone(),
                import: capability_import(*capability),
                capability: *capability,
            });
        }
        let mut linker = Linker::new(&self.inner.engine);
        link_capabilities(&mut linker, &grants).map_err(invalid)?;
        if !imports.wasi.is_empty() {
            sandbox::add_to_linker(&mut linker).map_err(invalid)?;
        }
        let pre = linker
            .instantiate_pre(component)
            .and_then(bindings::PluginPre::new)
            .map_err(invalid)?;
        tracing::debug!(plugin = %inspection.info.name, digest = %inspection.digest, "plugin loaded");
        Ok(Plugin {
            inner: Arc::new(PluginInner {
                runtime: self.inner.clone(),
                inspection,
                grants: Arc::new(grants),
                pre,
                preparable,
                tier: Mutex::new(Tier::Counting {
                    config: String::new(),
                    runs: 0,
                }),
            }),
        })
    }

    /// [`Runtime::load`] on the contents of a file.
    ///
    /// # Errors
    ///
    /// [`LoadError::Read`] if the file cannot be read, or any error of [`Runtime::load`].
    pub fn load_file(&self, path: impl AsRef<Path>, grants: Grants) -> Result<Plugin, LoadError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.to_owned(),
            source,
        })?;
        self.load(&bytes, grants)
    }

    /// The checks every load goes through, and the compiled component.
    fn prepare(&self, bytes: &[u8]) -> Result<(Inspection, Component), LoadError> {
        check_header(bytes)?;
        let digest = PluginDigest::of(bytes);
        let component = self.inner.component(bytes, &digest).map_err(invalid)?;
        check_exports(&component, &self.inner.engine)?;
        let imports = classify_imports(&component, &self.inner.engine);
        let info = describe(&self.inner, &component, &imports)?;
        Ok((
            Inspection {
                info,
                digest,
                size: bytes.len(),
                imports,
            },
            component,
        ))
    }
}

impl Plugin {
    /// The same plugin under other grants, without compiling or describing
    /// it again: how an engine gives each workflow step its own grants.
    ///
    /// # Errors
    ///
    /// [`LoadError::NotGranted`] or [`LoadError::Forbidden`], as [`Runtime::load`].
    pub fn with_grants(&self, grants: Grants) -> Result<Plugin, LoadError> {
        let runtime = Runtime {
            inner: self.inner.runtime.clone(),
        };
        let component = self.inner.pre.instance_pre().component().clone();
        runtime.link(
            self.inner.inspection.clone(),
            &component,
            grants,
            self.inner.preparable.clone(),
        )
    }

    /// This plugin prepared for `config`: the same plugin (digest, info,
    /// grants), whose executions start from a snapshot of an instance
    /// taken after `check-config(config)`, so that the work a step does on
    /// its config alone is done once, not once per execution.
    ///
    /// Only plugins that say they support it are prepared (the SDK's
    /// `export!(Step, prepared)`); their promise is that a run from the
    /// snapshot gives the same [`Execution`] as a run from scratch, for any
    /// config (a run with another config computes its own state). A
    /// [`Runtime`] prepares busy steps itself after
    /// [`super::RuntimeConfig::prepare_after`] executions; this does it now.
    ///
    /// It costs two compilations of the component (about a second for a
    /// Rust plugin), unless the runtime's disk cache has the snapshot.
    ///
    /// # Errors
    ///
    /// A [`PrepareError`]: the plugin does not support it, refuses the
    /// config, fails in `check-config`, or the snapshot fails.
    pub fn prepare(&self, config: &Json) -> Result<Plugin, PrepareError> {
        let plugin = self.inner.inspection.info.name.clone();
        let bytes = match &self.inner.preparable {
            Preparable::Yes(bytes) => bytes,
            Preparable::No | Preparable::Prepared { .. } => {
                return Err(PrepareError::NotSupported { plugin });
            }
            Preparable::Bad(reason) => {
                return Err(PrepareError::BadMarker {
                    plugin,
                    reason: reason.clone(),
                });
            }
        };
        let runtime = &self.inner.runtime;
        let inspection = &self.inner.inspection;
        let component = prepared::prepared_component(
            runtime,
            bytes,
            &inspection.digest,
            !inspection.imports.wasi.is_empty(),
            config,
        )?;
        // To the host, the snapshot must be the same plugin.
        let unlike = |what: &str| PrepareError::Snapshot {
            reason: format!("the snapshot's {what} differ from the component's"),
        };
        check_exports(&component, &runtime.engine).map_err(|_| unlike("exports"))?;
        if classify_imports(&component, &runtime.engine) != inspection.imports {
            return Err(unlike("imports"));
        }
        // Wasm pages of 64 KiB; an upper bound when there are several memories.
        let initial_memory = component.resources_required().map_or(u64::MAX, |needs| {
            u64::from(needs.num_memories)
                .saturating_mul(needs.max_initial_memory_size.unwrap_or(0))
                .saturating_mul(64 * 1024)
        });
        let runtime = Runtime {
            inner: runtime.clone(),
        };
        runtime
            .link(
                inspection.clone(),
                &component,
                (*self.inner.grants).clone(),
                Preparable::Prepared { initial_memory },
            )
            .map_err(|err| PrepareError::Snapshot {
                reason: err.to_string(),
            })
    }

    /// Whether executions of this plugin start from a snapshot: it was made
    /// by [`Plugin::prepare`], or the runtime prepared it for the config it
    /// runs with.
    pub fn is_prepared(&self) -> bool {
        matches!(self.inner.preparable, Preparable::Prepared { .. })
            || matches!(*self.tier(), Tier::Ready { .. })
    }

    fn tier(&self) -> std::sync::MutexGuard<'_, Tier> {
        self.inner
            .tier
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The prepared plugin to run `config` on, if there is one; counts the
    /// execution, and starts preparing once the step has run often enough
    /// with one config.
    fn tiered(&self, config: &Json) -> Option<Plugin> {
        let after = self.inner.runtime.config.prepare_after?;
        if !matches!(self.inner.preparable, Preparable::Yes(_)) {
            return None;
        }
        let config = config.as_string();
        let mut tier = self.tier();
        match &mut *tier {
            Tier::Ready {
                config: prepared,
                plugin,
            } => (prepared.as_str() == config).then(|| plugin.clone()),
            Tier::Counting {
                config: counted,
                runs,
            } => {
                if *runs == 0 {
                    config.clone_into(counted);
                }
                if counted.as_str() != config {
                    return None;
                }
                *runs += 1;
                if *runs >= after {
                    *tier = Tier::Preparing;
                    drop(tier);
                    self.prepare_in_background(config.to_owned());
                }
                None
            }
            Tier::Preparing | Tier::Off => None,
        }
    }

    /// Prepares this plugin for `config` on a thread of its own, one at a
    /// time per runtime, and swaps the result in; a failure leaves the step
    /// unprepared, and says why.
    fn prepare_in_background(&self, config: String) {
        let plugin = self.clone();
        let spawned = std::thread::Builder::new()
            .name("docket-prepare".to_owned())
            .spawn(move || {
                let name = plugin.info().name.clone();
                let prepared = {
                    let _turn = plugin
                        .inner
                        .runtime
                        .preparing
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                    let started = Instant::now();
                    // A snapshot is made by code that also meets hostile
                    // components; a panic in it must not end the host.
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        Json::parse(config.clone())
                            .map_err(|err| PrepareError::Snapshot {
                                reason: err.to_string(),
                            })
                            .and_then(|json| plugin.prepare(&json))
                    }))
                    .map(|result| (result, started.elapsed()))
                };
                let next = match prepared {
                    Ok((Ok(prepared), elapsed)) => {
                        tracing::info!(plugin = %name, ?elapsed, "step prepared: its executions start from a snapshot");
                        Tier::Ready {
                            config,
                            plugin: prepared,
                        }
                    }
                    Ok((Err(err), _)) => {
                        tracing::warn!(plugin = %name, "step runs unprepared: {err}");
                        Tier::Off
                    }
                    Err(_) => {
                        tracing::warn!(plugin = %name, "step runs unprepared: preparing it panicked");
                        Tier::Off
                    }
                };
                *plugin.tier() = next;
            });
        if let Err(err) = spawned {
            tracing::warn!(plugin = %self.info().name, "step runs unprepared: no thread to prepare it: {err}");
            *self.tier() = Tier::Off;
        }
    }

    /// What the plugin says about itself.
    pub fn info(&self) -> &PluginInfo {
        &self.inner.inspection.info
    }

    /// The sha256 of the component: exactly which code this is.
    pub fn digest(&self) -> PluginDigest {
        self.inner.inspection.digest
    }

    /// What the component imports.
    pub fn imports(&self) -> &Imports {
        &self.inner.inspection.imports
    }

    /// Everything known about the component.
    pub fn inspection(&self) -> &Inspection {
        &self.inner.inspection
    }

    /// Runs the step once, in a fresh instance, under `limits`.
    ///
    /// Never panics and never hangs because of the plugin: every way a step
    /// can fail ends in [`Execution::result`].
    ///
    /// The call blocks for up to the deadline. Make it from a thread that
    /// may block (a plain thread, or `tokio::task::spawn_blocking`), not
    /// from an async task: for plugins that import WASI, wasmtime-wasi's
    /// synchronous implementation enters a tokio runtime of its own, which
    /// tokio refuses, with a panic, inside another.
    pub fn run(
        &self,
        ctx: &StepContext,
        config: &Json,
        input: &Json,
        limits: &Limits,
    ) -> Execution {
        let Some(prepared) = self.tiered(config) else {
            return self.run_unprepared(ctx, config, input, limits);
        };
        // A snapshot starts with more memory than the component; where that
        // does not fit this execution's limit, the component itself decides,
        // as it always did.
        if let Preparable::Prepared { initial_memory } = prepared.inner.preparable
            && initial_memory > self.clamp(limits).memory
        {
            return self.run_unprepared(ctx, config, input, limits);
        }
        let execution = prepared.run_unprepared(ctx, config, input, limits);
        // Nor may the pool's view of the snapshot fail a case: no guest code
        // has run when instantiating fails.
        if let Err(StepError::Failed(StepFailure::Instantiate { reason })) = &execution.result {
            tracing::debug!(plugin = %self.info().name, "prepared instance failed ({reason}); running unprepared");
            return self.run_unprepared(ctx, config, input, limits);
        }
        execution
    }

    /// [`Plugin::run`] on this plugin's own component, never on a snapshot
    /// the runtime prepared for a busy step, and without counting towards
    /// preparing it: how `explain` replays a recorded decision with exactly
    /// the component whose sha256 the ledger holds.
    pub fn run_unprepared(
        &self,
        ctx: &StepContext,
        config: &Json,
        input: &Json,
        limits: &Limits,
    ) -> Execution {
        let started = Instant::now();
        let limits = self.clamp(limits);
        let wit_ctx = wit::types::Context {
            case_id: ctx.case_id.clone(),
            workflow: ctx.workflow.clone(),
            workflow_version: ctx.workflow_version,
            step_id: ctx.step_id.clone(),
            attempt: ctx.attempt,
            actor: ctx.actor.clone(),
            now: instant(ctx.now),
        };
        let (result, state) = self.execute(ctx, limits, |plugin, store| {
            plugin.docket_step_step().call_run(
                store,
                &wit_ctx,
                config.as_string(),
                input.as_string(),
            )
        });
        let result = match result {
            Ok(Ok(outcome)) => {
                outcome_from(outcome, input, limits.output, state.notification_bytes)
            }
            Ok(Err(err)) => Err(step_error_from(err)),
            Err(failure) => Err(StepError::Failed(failure)),
        };
        let notifications = if result.is_ok() {
            state.notifications
        } else {
            Vec::new()
        };
        Execution {
            result,
            notifications,
            logs: state.logs,
            elapsed: started.elapsed(),
        }
    }

    /// Asks the plugin whether `config` is valid, and which routes it can
    /// take with it.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] with the plugin's reason, or
    /// [`ConfigError::Failed`] if the check itself failed.
    pub fn check_config(&self, config: &Json, limits: &Limits) -> Result<Vec<String>, ConfigError> {
        let limits = self.clamp(limits);
        let ctx = describe_context();
        let (result, _) = self.execute(&ctx, limits, |plugin, store| {
            plugin
                .docket_step_step()
                .call_check_config(store, config.as_string())
        });
        result?.map_err(ConfigError::Invalid)
    }

    fn execute<R>(
        &self,
        ctx: &StepContext,
        limits: Limits,
        call: impl FnOnce(&bindings::Plugin, &mut wasmtime::Store<ExecState>) -> wasmtime::Result<R>,
    ) -> (Result<R, StepFailure>, ExecState) {
        let setup = Setup {
            grants: self.inner.grants.clone(),
            wasi: !self.inner.inspection.imports.wasi.is_empty(),
            ctx,
            limits,
        };
        exec::execute(&self.inner.runtime, &self.inner.pre, setup, call)
    }

    /// `limits` with the memory limit capped at the pool's slot size.
    fn clamp(&self, limits: &Limits) -> Limits {
        Limits {
            memory: limits.memory.min(self.inner.runtime.config.max_memory),
            ..*limits
        }
    }
}

fn invalid(err: wasmtime::Error) -> LoadError {
    LoadError::Invalid {
        reason: format!("{err:#}"),
    }
}

fn check_header(bytes: &[u8]) -> Result<(), LoadError> {
    const CORE_VERSION: [u8; 4] = [1, 0, 0, 0];
    const COMPONENT_VERSION: [u8; 4] = [0x0d, 0, 1, 0];
    if !bytes.starts_with(b"\0asm") {
        return Err(LoadError::NotWasm);
    }
    match bytes.get(4..8) {
        Some(version) if version == CORE_VERSION => Err(LoadError::CoreModule),
        Some(version) if version == COMPONENT_VERSION => Ok(()),
        Some(version) => Err(LoadError::Invalid {
            reason: format!("unknown WebAssembly version {version:02x?}"),
        }),
        None => Err(LoadError::Invalid {
            reason: "truncated: the header is incomplete".to_owned(),
        }),
    }
}

fn check_exports(component: &Component, engine: &wasmtime::Engine) -> Result<(), LoadError> {
    let ty = component.component_type();
    let exports: Vec<String> = ty
        .exports(engine)
        .map(|(name, _)| name.to_owned())
        .collect();
    if exports.iter().any(|name| name == STEP_INTERFACE) {
        return Ok(());
    }
    match exports
        .iter()
        .find(|name| name.starts_with(STEP_INTERFACE_PREFIX))
    {
        Some(found) => Err(LoadError::IncompatibleContract {
            found: found.clone(),
        }),
        None => Err(LoadError::MissingStepExport { exports }),
    }
}

fn capability_import(capability: Capability) -> String {
    format!("{DOCKET_PREFIX}{capability}@{CONTRACT_VERSION}")
}

fn classify_imports(component: &Component, engine: &wasmtime::Engine) -> Imports {
    let mut imports = Imports::default();
    for (name, _) in component.component_type().imports(engine) {
        if let Some(rest) = name.strip_prefix(DOCKET_PREFIX) {
            let (interface, version) = rest.split_once('@').unwrap_or((rest, ""));
            let compatible = version.starts_with("0.1.");
            match interface.parse::<Capability>() {
                Ok(capability) if compatible => imports.capabilities.push(capability),
                // `types` holds only types; every plugin may use them.
                _ if interface == "types" && compatible => {}
                _ => imports.forbidden.push(name.to_owned()),
            }
        } else if sandbox::PROVIDED_PACKAGES
            .iter()
            .any(|package| name.starts_with(package))
            && name.contains("@0.2.")
        {
            imports.wasi.push(name.to_owned());
        } else {
            imports.forbidden.push(name.to_owned());
        }
    }
    imports.capabilities.sort();
    imports.capabilities.dedup();
    imports
}

/// Links the granted capabilities, and `types`, into `linker`.
fn link_capabilities(linker: &mut Linker<ExecState>, grants: &Grants) -> wasmtime::Result<()> {
    type T = ExecState;
    wit::types::add_to_linker::<T, HasSelf<T>>(linker, |t| t)?;
    for capability in grants.capabilities() {
        match capability {
            Capability::Log => wit::log::add_to_linker::<T, HasSelf<T>>(linker, |t| t)?,
            Capability::Notify => wit::notify::add_to_linker::<T, HasSelf<T>>(linker, |t| t)?,
            Capability::Settings => wit::settings::add_to_linker::<T, HasSelf<T>>(linker, |t| t)?,
            Capability::Secrets => wit::secrets::add_to_linker::<T, HasSelf<T>>(linker, |t| t)?,
        }
    }
    Ok(())
}

/// The context of executions that belong to no case: `describe` and
/// `check-config`.
pub(super) fn describe_context() -> StepContext {
    StepContext {
        case_id: String::new(),
        workflow: String::new(),
        workflow_version: 0,
        step_id: String::new(),
        attempt: 1,
        actor: None,
        now: SystemTime::UNIX_EPOCH,
    }
}

/// Calls `describe` in an instance whose imports all trap, so any
/// component can describe itself, whatever it imports and whatever is
/// granted: describing runs none of the plugin's capabilities.
fn describe(
    runtime: &RuntimeInner,
    component: &Component,
    imports: &Imports,
) -> Result<PluginInfo, LoadError> {
    let mut linker = Linker::new(&runtime.engine);
    if !imports.wasi.is_empty() {
        sandbox::add_to_linker(&mut linker).map_err(invalid)?;
    }
    linker
        .define_unknown_imports_as_traps(component)
        .map_err(invalid)?;
    let pre = linker
        .instantiate_pre(component)
        .and_then(bindings::PluginPre::new)
        .map_err(invalid)?;
    let setup = Setup {
        grants: Arc::new(Grants::none()),
        wasi: !imports.wasi.is_empty(),
        ctx: &describe_context(),
        limits: Limits::default(),
    };
    let (result, _) = exec::execute(runtime, &pre, setup, |plugin, store| {
        plugin.docket_step_step().call_describe(store)
    });
    let info = result.map_err(LoadError::Describe)?;
    let schema = |what: &str, text: String| {
        Json::parse(text)
            .map_err(|err| LoadError::BadInfo(format!("an invalid {what} schema: {err}")))
    };
    if info.name.trim().is_empty() {
        return Err(LoadError::BadInfo("an empty name".to_owned()));
    }
    Ok(PluginInfo {
        kind: match info.kind {
            wit::types::Kind::Validate => Kind::Validate,
            wit::types::Kind::Route => Kind::Route,
            wit::types::Kind::Notify => Kind::Notify,
            wit::types::Kind::Transform => Kind::Transform,
            wit::types::Kind::Other => Kind::Other,
        },
        config_schema: schema("config", info.config_schema)?,
        input_schema: schema("input", info.input_schema)?,
        output_schema: schema("output", info.output_schema)?,
        name: info.name,
        version: info.version,
        description: info.description,
        routes: info.routes,
    })
}

fn instant(time: SystemTime) -> wit::types::Instant {
    match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => wit::types::Instant {
            seconds: i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
            nanoseconds: after.subsec_nanos(),
        },
        Err(before) => {
            let before = before.duration();
            let (mut seconds, mut nanoseconds) =
                (-i64::try_from(before.as_secs()).unwrap_or(i64::MAX), 0);
            if before.subsec_nanos() > 0 {
                seconds -= 1;
                nanoseconds = 1_000_000_000 - before.subsec_nanos();
            }
            wit::types::Instant {
                seconds,
                nanoseconds,
            }
        }
    }
}

/// Checks what a step returned: that it fits the output limit together with
/// the notifications it sent, and that its data is JSON (data that is the
/// step's `input` again, as most steps return it, is known to be). wasmtime
/// has already refused to copy more than the limit out of the guest.
fn outcome_from(
    outcome: wit::types::Outcome,
    input: &Json,
    limit: usize,
    notification_bytes: usize,
) -> Result<Outcome, StepError> {
    let size = match &outcome {
        wit::types::Outcome::Continue(data) => data.len(),
        wit::types::Outcome::Route(routing) => {
            routing.data.len() + routing.routes.iter().map(String::len).sum::<usize>()
        }
        wit::types::Outcome::Reject(problems) => problems
            .iter()
            .map(|p| p.pointer.len() + p.code.len() + p.message.len())
            .sum(),
    };
    if size + notification_bytes > limit {
        return Err(StepFailure::OutputTooLarge { limit }.into());
    }
    let json = |what: &str, text: String| {
        if text == input.as_str() {
            return Ok(input.clone());
        }
        Json::parse(text).map_err(|err| StepFailure::BadOutput {
            what: what.to_owned(),
            reason: err.to_string(),
        })
    };
    Ok(match outcome {
        wit::types::Outcome::Continue(data) => Outcome::Continue(json("`continue` data", data)?),
        wit::types::Outcome::Route(routing) => {
            if routing.routes.is_empty() {
                return Err(StepFailure::BadOutput {
                    what: "`route` outcome".to_owned(),
                    reason: "it names no route".to_owned(),
                }
                .into());
            }
            Outcome::Route {
                routes: routing.routes,
                data: json("`route` data", routing.data)?,
            }
        }
        wit::types::Outcome::Reject(problems) => Outcome::Reject(
            problems
                .into_iter()
                .map(|p| Problem {
                    pointer: p.pointer,
                    code: p.code,
                    message: p.message,
                })
                .collect(),
        ),
    })
}

fn step_error_from(err: wit::types::StepError) -> StepError {
    match err {
        wit::types::StepError::Transient(message) => StepError::Transient(message),
        wit::types::StepError::Permanent(message) => StepError::Permanent(message),
    }
}
