//! Prepared steps: a plugin instance snapshotted after `check-config` for
//! one config, so that a step's executions start with the work that
//! depends on its config alone (a compiled schema, parsed rules) done.
//!
//! Every execution still runs in a fresh instance, now of the snapshot; the
//! snapshot holds no case data, since it is taken before any case is seen.
//! Only components that say they support it are prepared: the SDK's
//! `export!(Step, prepared)` writes a `docket:prepared-config` custom
//! section, and promises with it that `check-config` leaves behind nothing
//! but state keyed by the exact config text (`docket_sdk::prepared`), so a
//! run from the snapshot gives exactly what a run from scratch gives.
//!
//! The snapshot is made with wasmtime-wizer's component support: the
//! component is instrumented (every memory and global exported), compiled,
//! instantiated with imports that trap, `check-config(config)` is called,
//! and the memories and globals it left become the initial state of a new
//! component. That costs two compilations; the compiled snapshot is kept
//! in the runtime's disk cache by component sha256 and config.

use super::bindings;
use super::exec::{self, ExecState, Setup};
use super::failure::StepFailure;
use super::grants::Grants;
use super::limits::Limits;
use super::preinit::block_on;
use super::runtime::RuntimeInner;
use super::sandbox;
use super::segments;
use crate::json::Json;
use std::sync::Arc;
use wasmtime::component::{Component, Instance, Lift, Linker, WasmList};
use wasmtime_wizer::{ComponentInstanceState, Wizer};

/// The custom section by which a component opts in.
pub(crate) const MARKER_SECTION: &str = "docket:prepared-config";

/// The marker contents this host understands: the SDK's promise, version 1.
const MARKER_VERSION: &[u8] = b"1";

/// Why a plugin was not prepared for a config. It then runs unprepared,
/// exactly as it did before.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PrepareError {
    /// The component does not carry the marker: it never said that a
    /// snapshot after `check-config` runs like a fresh instance.
    #[error("plugin `{plugin}` does not support preparation (no `{MARKER_SECTION}` section)")]
    NotSupported {
        /// The plugin's name.
        plugin: String,
    },
    /// The marker holds something this host does not understand.
    #[error(
        "plugin `{plugin}` has a `{MARKER_SECTION}` section this host does not understand: {reason}"
    )]
    BadMarker {
        /// The plugin's name.
        plugin: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The plugin refused the config.
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    /// `check-config` trapped, ran out of a limit, or could not start.
    #[error("`check-config` failed: {0}")]
    CheckConfig(#[source] StepFailure),
    /// Instrumenting, snapshotting or compiling failed.
    #[error("snapshot failed: {reason}")]
    Snapshot {
        /// Why.
        reason: String,
    },
}

impl PrepareError {
    fn snapshot(err: impl std::fmt::Display) -> PrepareError {
        PrepareError::Snapshot {
            reason: format!("{err:#}"),
        }
    }
}

/// Whether a component opted in, as its marker says.
#[derive(Clone, Debug)]
pub(crate) enum Marker {
    /// No marker: the plugin runs as it always did.
    Absent,
    /// A marker of the version this host knows.
    Present,
    /// A marker this host does not understand, and why.
    Bad(String),
}

/// Reads the marker of `bytes`, a component that already compiled: a
/// `docket:prepared-config` custom section anywhere in it, in practice in
/// its main core module.
pub(crate) fn marker(bytes: &[u8]) -> Marker {
    let mut found = Marker::Absent;
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let payload = match payload {
            Ok(payload) => payload,
            Err(err) => return Marker::Bad(format!("the component does not parse: {err}")),
        };
        if let wasmparser::Payload::CustomSection(section) = payload
            && section.name() == MARKER_SECTION
        {
            if section.data() != MARKER_VERSION {
                return Marker::Bad(format!(
                    "it holds `{}`, not `{}`",
                    String::from_utf8_lossy(section.data()).escape_debug(),
                    String::from_utf8_lossy(MARKER_VERSION)
                ));
            }
            found = Marker::Present;
        }
    }
    found
}

/// The disk-cache key of a snapshot for `config`: it depends on the config
/// text and on how this build of docket makes snapshots.
pub(crate) fn config_key(config: &str) -> String {
    let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
    sha2::Digest::update(&mut hasher, SNAPSHOT_FORMAT.as_bytes());
    sha2::Digest::update(&mut hasher, [0]);
    sha2::Digest::update(&mut hasher, config.as_bytes());
    hex::encode(&sha2::Digest::finalize(hasher)[..16])
}

/// Changes whenever the way snapshots are made may change.
const SNAPSHOT_FORMAT: &str = concat!(
    "docket-prepared/2 docket ",
    env!("CARGO_PKG_VERSION"),
    " wasmtime-wizer 48"
);

/// The compiled snapshot of the component `bytes` after `check-config`
/// with `config`: from the disk cache, or made now (and then cached).
pub(crate) fn prepared_component(
    runtime: &RuntimeInner,
    bytes: &[u8],
    digest: &super::PluginDigest,
    wasi: bool,
    config: &Json,
) -> Result<Component, PrepareError> {
    let key = config_key(config.as_string());
    if let Some(component) = runtime
        .disk_cache()
        .and_then(|disk| disk.load_prepared(&runtime.engine, digest, &key))
    {
        tracing::debug!(%digest, "prepared plugin loaded from the compiled cache");
        return Ok(component);
    }
    let snapshot = snapshot(runtime, bytes, wasi, config)?;
    let component =
        Component::from_binary(&runtime.engine, &snapshot).map_err(PrepareError::snapshot)?;
    if let Some(disk) = runtime.disk_cache() {
        disk.store_prepared(digest, &key, &component);
    }
    Ok(component)
}

/// Instruments `bytes`, calls `check-config(config)` in an instance of it
/// whose imports all trap, and returns the component with the state that
/// call left as its initial state.
fn snapshot(
    runtime: &RuntimeInner,
    bytes: &[u8],
    wasi: bool,
    config: &Json,
) -> Result<Vec<u8>, PrepareError> {
    let wizer = Wizer::new();
    let (cx, instrumented) = wizer
        .instrument_component(bytes)
        .map_err(PrepareError::snapshot)?;
    let component =
        Component::from_binary(&runtime.engine, &instrumented).map_err(PrepareError::snapshot)?;
    let mut linker = Linker::new(&runtime.engine);
    if wasi {
        sandbox::add_to_linker(&mut linker).map_err(PrepareError::snapshot)?;
    }
    linker
        .define_unknown_imports_as_traps(&component)
        .map_err(PrepareError::snapshot)?;
    let pre = linker
        .instantiate_pre(&component)
        .map_err(PrepareError::snapshot)?;

    let memory = usize::try_from(runtime.config.max_memory).unwrap_or(usize::MAX);
    let setup = Setup {
        grants: Arc::new(Grants::none()),
        wasi,
        ctx: &super::plugin::describe_context(),
        // The accessors hand whole memories to the host, so the output
        // limit (the host-call fuel) must cover the largest one.
        limits: Limits {
            memory: runtime.config.max_memory.min(Limits::default().memory),
            output: memory.saturating_add(64 * 1024),
            ..Limits::default()
        },
    };
    let (result, _) = exec::execute_instance(runtime, &pre, setup, |instance, store| {
        let plugin = bindings::Plugin::new(&mut *store, &instance)?;
        if let Err(reason) = plugin
            .docket_step_step()
            .call_check_config(&mut *store, config.as_string())?
        {
            return Ok(Err(PrepareError::InvalidConfig(reason)));
        }
        let mut access = Access {
            store,
            instance,
            error: None,
        };
        let snapshot = block_on(wizer.snapshot_component(&cx, &mut access));
        if let Some(err) = access.error {
            return Ok(Err(PrepareError::snapshot(err)));
        }
        // Fewer data segments: wasmtime pays for each one per instance.
        Ok(snapshot
            .map(|bytes| segments::coalesce(&bytes))
            .map_err(PrepareError::snapshot))
    });
    result.map_err(PrepareError::CheckConfig)?
}

/// wizer's view of the instrumented instance, by synchronous calls: the
/// runtime's engine has no async support, and these futures are ready when
/// made. The first failed call is kept, and the rest are skipped.
struct Access<'a> {
    store: &'a mut wasmtime::Store<ExecState>,
    instance: Instance,
    error: Option<wasmtime::Error>,
}

impl Access<'_> {
    fn call<R: Lift + 'static, O: Default>(
        &mut self,
        interface: &str,
        func: &str,
        use_ret: impl FnOnce(&wasmtime::Store<ExecState>, R) -> O,
    ) -> O {
        if self.error.is_some() {
            return O::default();
        }
        let call = || -> wasmtime::Result<O> {
            let (_, exported) = self
                .instance
                .get_export(&mut *self.store, None, interface)
                .ok_or_else(|| wasmtime::format_err!("no export `{interface}`"))?;
            let (_, func_index) = self
                .instance
                .get_export(&mut *self.store, Some(&exported), func)
                .ok_or_else(|| wasmtime::format_err!("no export `{interface}#{func}`"))?;
            let typed = self
                .instance
                .get_typed_func::<(), (R,)>(&mut *self.store, func_index)?;
            let (ret,) = typed.call(&mut *self.store, ())?;
            Ok(use_ret(self.store, ret))
        };
        match call() {
            Ok(value) => value,
            Err(err) => {
                self.error = Some(err);
                O::default()
            }
        }
    }
}

impl ComponentInstanceState for Access<'_> {
    fn call_func_ret_list_u8(
        &mut self,
        instance: &str,
        func: &str,
        contents: impl FnOnce(&[u8]) + Send,
    ) -> impl Future<Output = ()> + Send {
        let mut contents = Some(contents);
        self.call(instance, func, |store, list: WasmList<u8>| {
            if let Some(contents) = contents.take() {
                contents(list.as_le_slice(store));
            }
        });
        // wizer expects the contents in every case; a failed call is
        // reported by `error` before its snapshot is used.
        if let Some(contents) = contents {
            contents(&[]);
        }
        std::future::ready(())
    }

    fn call_func_ret_s32(
        &mut self,
        instance: &str,
        func: &str,
    ) -> impl Future<Output = i32> + Send {
        std::future::ready(self.call(instance, func, |_, value: i32| value))
    }

    fn call_func_ret_s64(
        &mut self,
        instance: &str,
        func: &str,
    ) -> impl Future<Output = i64> + Send {
        std::future::ready(self.call(instance, func, |_, value: i64| value))
    }

    fn call_func_ret_f32(
        &mut self,
        instance: &str,
        func: &str,
    ) -> impl Future<Output = u32> + Send {
        std::future::ready(self.call(instance, func, |_, value: f32| value.to_bits()))
    }

    fn call_func_ret_f64(
        &mut self,
        instance: &str,
        func: &str,
    ) -> impl Future<Output = u64> + Send {
        std::future::ready(self.call(instance, func, |_, value: f64| value.to_bits()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn component_with_section(name: &str, data: &str) -> Vec<u8> {
        wat::parse_str(format!(
            r#"(component (core module (@custom "{name}" "{data}")))"#
        ))
        .unwrap()
    }

    #[test]
    fn the_marker_is_read_from_a_core_module() {
        let marked = component_with_section(MARKER_SECTION, "1");
        assert!(matches!(marker(&marked), Marker::Present));
        let other = component_with_section("something-else", "1");
        assert!(matches!(marker(&other), Marker::Absent));
        let future = component_with_section(MARKER_SECTION, "2");
        assert!(matches!(marker(&future), Marker::Bad(reason) if reason.contains("`2`")));
    }

    #[test]
    fn the_cache_key_depends_on_every_byte_of_the_config() {
        assert_eq!(config_key("{\"a\":1}"), config_key("{\"a\":1}"));
        assert_ne!(config_key("{\"a\":1}"), config_key("{\"a\": 1}"));
    }
}
