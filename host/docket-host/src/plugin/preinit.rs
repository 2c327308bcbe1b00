//! Build-time pre-initialization: runs a plugin module's `docket-init`
//! export once and stores the memory it leaves behind in the module, so
//! that every execution starts initialized (wasmtime-wizer).
//!
//! This is tooling for `docket plugin build`, not part of running steps.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use wasmtime_wizer::{InstanceState, SnapshotVal, ValType, Wizer};

/// The core-module export the SDK provides for build-time initialization.
pub const INIT_EXPORT: &str = "docket-init";

/// Pre-initialization failed.
#[derive(Debug, thiserror::Error)]
#[error("pre-initialization failed: {reason}")]
pub struct PreinitError {
    reason: String,
}

impl From<wasmtime::Error> for PreinitError {
    fn from(err: wasmtime::Error) -> PreinitError {
        PreinitError {
            reason: format!("{err:#}"),
        }
    }
}

/// Runs `module`'s [`INIT_EXPORT`] and returns the module with the
/// resulting memory and globals as its initial state, without the export;
/// `None` if the module has no such export.
///
/// Imports trap during initialization: `Step::init` may not call a
/// capability.
///
/// # Errors
///
/// If the module is not valid, or the export has the wrong type or traps.
pub fn preinitialize(module: &[u8]) -> Result<Option<Vec<u8>>, PreinitError> {
    let mut wizer = Wizer::new();
    wizer.init_func(INIT_EXPORT).keep_init_func(false);
    let (cx, instrumented) = wizer.instrument(module)?;

    let engine = wasmtime::Engine::default();
    let compiled = wasmtime::Module::new(&engine, &instrumented)?;
    if compiled.get_export(INIT_EXPORT).is_none() {
        return Ok(None);
    }
    let mut store = wasmtime::Store::new(&engine, ());
    let mut linker = wasmtime::Linker::new(&engine);
    linker.define_unknown_imports_as_traps(&compiled)?;
    let instance = linker.instantiate(&mut store, &compiled)?;
    let init = instance
        .get_typed_func::<(), ()>(&mut store, INIT_EXPORT)
        .map_err(|err| PreinitError {
            reason: format!("`{INIT_EXPORT}` is not a function of type [] -> []: {err:#}"),
        })?;
    init.call(&mut store, ()).map_err(|err| PreinitError {
        reason: format!("`Step::init` failed: {err:#}"),
    })?;

    let mut state = Snapshot { store, instance };
    let snapshot = block_on(wizer.snapshot(&cx, &mut state))?;
    // Fewer data segments: wasmtime pays for each one per instance.
    Ok(Some(super::segments::coalesce(&snapshot)))
}

struct Snapshot {
    store: wasmtime::Store<()>,
    instance: wasmtime::Instance,
}

impl InstanceState for Snapshot {
    fn global_get(
        &mut self,
        name: &str,
        _type_hint: ValType,
    ) -> impl Future<Output = SnapshotVal> + Send {
        let global = self
            .instance
            .get_global(&mut self.store, name)
            .expect("wizer exports every global");
        let value = match global.get(&mut self.store) {
            wasmtime::Val::I32(x) => SnapshotVal::I32(x),
            wasmtime::Val::I64(x) => SnapshotVal::I64(x),
            wasmtime::Val::F32(x) => SnapshotVal::F32(x),
            wasmtime::Val::F64(x) => SnapshotVal::F64(x),
            wasmtime::Val::V128(x) => SnapshotVal::V128(x.as_u128()),
            other => {
                panic!("global `{name}` holds a reference ({other:?}), which wizer cannot snapshot")
            }
        };
        std::future::ready(value)
    }

    fn memory_contents(
        &mut self,
        name: &str,
        contents: impl FnOnce(&[u8]) + Send,
    ) -> impl Future<Output = ()> + Send {
        let memory = self
            .instance
            .get_memory(&mut self.store, name)
            .expect("wizer exports every memory");
        contents(memory.data(&self.store));
        std::future::ready(())
    }
}

/// Drives a future whose every await is already ready, as wizer's are here
/// and in `super::prepared`.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODULE: &str = r#"
        (module
          (import "docket:step/log@0.1.0" "log" (func $log (param i32 i32 i32)))
          (memory (export "memory") 1)
          (global $ready (export "ready") (mut i32) (i32.const 0))
          (func (export "docket-init")
            (i32.store (i32.const 16) (i32.const 42))
            (global.set $ready (i32.const 7)))
          (func (export "read") (result i32) (i32.load (i32.const 16))))
    "#;

    /// Instantiates `module` with traps for imports, without running any init.
    fn instantiate(module: &[u8]) -> (wasmtime::Store<()>, wasmtime::Instance) {
        let engine = wasmtime::Engine::default();
        let module = wasmtime::Module::new(&engine, module).unwrap();
        let mut store = wasmtime::Store::new(&engine, ());
        let mut linker = wasmtime::Linker::new(&engine);
        linker.define_unknown_imports_as_traps(&module).unwrap();
        let instance = linker.instantiate(&mut store, &module).unwrap();
        (store, instance)
    }

    #[test]
    fn the_init_state_becomes_the_initial_state() {
        let module = wat::parse_str(MODULE).unwrap();
        let initialized = preinitialize(&module)
            .unwrap()
            .expect("the module has an init export");
        assert_eq!(
            preinitialize(&initialized).unwrap(),
            None,
            "the init export is gone"
        );

        let (mut store, instance) = instantiate(&initialized);
        let read = instance
            .get_typed_func::<(), i32>(&mut store, "read")
            .unwrap();
        assert_eq!(read.call(&mut store, ()).unwrap(), 42);
        let ready = instance.get_global(&mut store, "ready").unwrap();
        assert_eq!(ready.get(&mut store).i32(), Some(7));
    }

    #[test]
    fn an_init_that_calls_a_capability_fails_clearly() {
        let module = wat::parse_str(MODULE.replace(
            "(global.set $ready (i32.const 7)))",
            "(global.set $ready (i32.const 7)) (call $log (i32.const 0) (i32.const 0) (i32.const 0)))",
        ))
        .unwrap();
        let err = preinitialize(&module).unwrap_err().to_string();
        assert!(
            err.starts_with("pre-initialization failed: `Step::init` failed"),
            "{err}"
        );
    }
}
