//! The WebAssembly side: the generated bindings and the glue between them
//! and the SDK's documented types. Compiled only for `wasm32` targets.

use crate::{Context, Outcome, Step, StepError, log::Level, notify::Notification};

#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

/// Bindings generated from `wit/`, the one source of the contract.
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "plugin",
        pub_export_macro: true,
        default_bindings_module: "docket_sdk::guest::bindings",
        runtime_path: "docket_sdk::guest::__wit_bindgen::rt",
    });
}

use bindings::docket::step::{log as wit_log, notify as wit_notify, secrets, settings, types};

/// A panic aborts the instance; its message reaches the host through the
/// log just before the trap, so the host can say what went wrong.
fn report_panics() {
    std::panic::set_hook(Box::new(|info| {
        wit_log::log(wit_log::Level::Error, &info.to_string());
    }));
}

pub fn describe<S: Step>() -> types::Info {
    report_panics();
    let info = S::describe();
    types::Info {
        name: info.name,
        version: info.version,
        kind: match info.kind {
            crate::Kind::Validate => types::Kind::Validate,
            crate::Kind::Route => types::Kind::Route,
            crate::Kind::Notify => types::Kind::Notify,
            crate::Kind::Transform => types::Kind::Transform,
            crate::Kind::Other => types::Kind::Other,
        },
        description: info.description,
        config_schema: info.config_schema.to_string(),
        input_schema: info.input_schema.to_string(),
        output_schema: info.output_schema.to_string(),
        routes: info.routes,
    }
}

pub fn run<S: Step>(
    ctx: types::Context,
    config: &str,
    input: &str,
) -> Result<types::Outcome, types::StepError> {
    report_panics();
    let ctx = Context {
        case_id: ctx.case_id,
        workflow: ctx.workflow,
        workflow_version: ctx.workflow_version,
        step_id: ctx.step_id,
        attempt: ctx.attempt,
        actor: ctx.actor,
        now: Context::from_unix(ctx.now.seconds, ctx.now.nanoseconds),
    };
    random::seed(&ctx);
    match crate::run::run_json::<S>(&ctx, config, input) {
        Ok(Outcome::Continue(data)) => Ok(types::Outcome::Continue(data)),
        Ok(Outcome::Route { routes, data }) => {
            Ok(types::Outcome::Route(types::Routing { routes, data }))
        }
        Ok(Outcome::Reject(problems)) => Ok(types::Outcome::Reject(
            problems
                .into_iter()
                .map(|p| types::Problem {
                    pointer: p.pointer,
                    code: p.code,
                    message: p.message,
                })
                .collect(),
        )),
        Err(StepError::Transient(message)) => Err(types::StepError::Transient(message)),
        Err(StepError::Permanent(message)) => Err(types::StepError::Permanent(message)),
    }
}

/// Build-time initialization, run by `docket plugin build` before it
/// snapshots the instance's memory into the component.
pub fn pre_initialize<S: Step>() {
    // Grow the heap now, so that a typical execution allocates from memory
    // that the component already has instead of growing it, which costs a
    // few microseconds in a fresh instance.
    let blocks: Vec<Vec<u8>> = (0..HEAP_WARM_BLOCKS)
        .map(|_| Vec::with_capacity(64 * 1024))
        .collect();
    drop(blocks);
    crate::run::ensure_init::<S>();
}

/// 64 KiB blocks the heap is grown by at build time: 1 MiB.
const HEAP_WARM_BLOCKS: usize = 16;

pub fn check_config<S: Step>(config: &str) -> Result<Vec<String>, String> {
    report_panics();
    crate::run::routes_json::<S>(config)
}

pub fn log(level: Level, message: &str) {
    let level = match level {
        Level::Trace => wit_log::Level::Trace,
        Level::Debug => wit_log::Level::Debug,
        Level::Info => wit_log::Level::Info,
        Level::Warn => wit_log::Level::Warn,
        Level::Error => wit_log::Level::Error,
    };
    wit_log::log(level, message);
}

pub fn send(notification: Notification) {
    wit_notify::send(&wit_notify::Notification {
        channel: notification.channel,
        to: notification.to,
        subject: notification.subject,
        body: notification.body,
    });
}

pub fn setting(key: &str) -> Option<String> {
    settings::get(key)
}

pub fn secret(name: &str) -> Option<String> {
    secrets::get(name)
}

/// A deterministic source for `getrandom`, selected by
/// `--cfg getrandom_backend="custom"`.
///
/// Libraries seed hash maps through `getrandom` (ahash, for one) and panic
/// without a source, and `wasm32-unknown-unknown` has none. A step must be
/// replayable, so the stream is derived from the execution's case, step and
/// attempt: different per execution, the same on replay. It is not a
/// source of secrets.
mod random {
    use std::sync::atomic::{AtomicU64, Ordering};

    static STATE: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);

    pub fn seed(ctx: &crate::Context) {
        // FNV-1a over the execution's identity.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let attempt = ctx.attempt.to_le_bytes();
        for part in [ctx.case_id.as_bytes(), ctx.step_id.as_bytes(), &attempt] {
            for byte in part {
                hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        STATE.store(hash, Ordering::Relaxed);
    }

    fn next() -> u64 {
        // splitmix64.
        let mut z = STATE
            .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
            .wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    #[allow(
        unsafe_code,
        reason = "getrandom's custom backend is an unmangled extern function"
    )]
    #[unsafe(no_mangle)]
    unsafe extern "Rust" fn __getrandom_v03_custom(
        dest: *mut u8,
        len: usize,
    ) -> Result<(), getrandom::Error> {
        for offset in (0..len).step_by(8) {
            let bytes = next().to_le_bytes();
            let n = (len - offset).min(8);
            // SAFETY: getrandom passes a buffer of `len` writable bytes, and
            // `offset + n <= len`.
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), dest.add(offset), n) };
        }
        Ok(())
    }
}
