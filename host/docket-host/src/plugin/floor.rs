//! The raw-wasmtime floor that `cargo xtask bench` compares docket with:
//! the same engine and the same bindings, without docket's limits, grants,
//! checks or conversions. Not for embedders; public only for the benchmark.

use super::bindings::{self, docket::step as wit};
use super::runtime::Runtime;
use wasmtime::component::{Component, Linker};

/// A component instantiated the way a minimal wasmtime embedding would:
/// `log` is a no-op, every other import traps, no limits apply.
pub struct Floor {
    engine: wasmtime::Engine,
    pre: bindings::PluginPre<()>,
    reused: (wasmtime::Store<()>, bindings::Plugin),
    ctx: wit::types::Context,
}

impl Floor {
    /// Prepares `bytes` on `runtime`'s engine.
    ///
    /// # Errors
    ///
    /// If the component does not compile or link; it must import nothing
    /// but `log` and `types`.
    pub fn new(runtime: &Runtime, bytes: &[u8]) -> wasmtime::Result<Floor> {
        let engine = runtime.inner.engine.clone();
        let component = Component::from_binary(&engine, bytes)?;
        let mut linker = Linker::<()>::new(&engine);
        linker
            .instance("docket:step/log@0.1.0")?
            .func_wrap("log", |_, (_level, _message): (wit::log::Level, String)| {
                Ok(())
            })?;
        linker.define_unknown_imports_as_traps(&component)?;
        let pre = bindings::PluginPre::new(linker.instantiate_pre(&component)?)?;
        let mut store = new_store(&engine);
        let instance = pre.instantiate(&mut store)?;
        let ctx = wit::types::Context {
            case_id: "bench".to_owned(),
            workflow: "bench".to_owned(),
            workflow_version: 1,
            step_id: "bench".to_owned(),
            attempt: 1,
            actor: None,
            now: wit::types::Instant {
                seconds: 0,
                nanoseconds: 0,
            },
        };
        Ok(Floor {
            engine,
            pre,
            reused: (store, instance),
            ctx,
        })
    }

    /// Calls `run` on the one instance made at construction.
    ///
    /// # Errors
    ///
    /// If the call traps.
    pub fn call_reused(&mut self, config: &String, input: &String) -> wasmtime::Result<bool> {
        let (store, instance) = &mut self.reused;
        let result = instance
            .docket_step_step()
            .call_run(store, &self.ctx, config, input)?;
        Ok(result.is_ok())
    }

    /// Calls `run` on a fresh store and instance from the pre-instantiated
    /// template.
    ///
    /// # Errors
    ///
    /// If instantiation fails or the call traps.
    pub fn call_fresh(&self, config: &String, input: &String) -> wasmtime::Result<bool> {
        let mut store = new_store(&self.engine);
        let instance = self.pre.instantiate(&mut store)?;
        let result = instance
            .docket_step_step()
            .call_run(&mut store, &self.ctx, config, input)?;
        Ok(result.is_ok())
    }
}

fn new_store(engine: &wasmtime::Engine) -> wasmtime::Store<()> {
    let mut store = wasmtime::Store::new(engine, ());
    // The engine has epoch interruption on; the floor never stops a call.
    store.set_epoch_deadline(u64::MAX / 2);
    store
}
