//! One execution: a fresh `wasmtime::Store` and instance, and the
//! capability implementations the plugin calls, each within its limits.

use super::bindings::{self, docket::step as wit};
use super::failure::{self, Evidence, Phase, StepFailure};
use super::grants::Grants;
use super::limits::Limits;
use super::runtime::RuntimeInner;
use super::sandbox::WasiState;
use super::types::{LogLevel, LogLine, Notification, StepContext};
use std::sync::Arc;

/// Panic messages are kept up to this size, whatever the log limit.
const PANIC_MESSAGE_LIMIT: usize = 4096;
/// Tables may grow to this many elements; Rust guests use one small table.
const TABLE_ELEMENT_LIMIT: usize = 100_000;
/// What a kept log line or notification costs beyond its text, so that a
/// flood of empty ones runs into the limits too.
const ENTRY_OVERHEAD: usize = 64;

/// The host side of one execution: the `T` of its `wasmtime::Store`.
pub(crate) struct ExecState {
    limiter: MemoryLimiter,
    grants: Arc<Grants>,
    limits: Limits,
    log_bytes: usize,
    log_truncated: bool,
    /// Bytes of notifications so far; they count against the output limit.
    pub(crate) notification_bytes: usize,
    notify_limit_hit: bool,
    output_limit_hit: bool,
    panic: Option<String>,
    pub(crate) notifications: Vec<Notification>,
    pub(crate) logs: Vec<LogLine>,
    wasi: Option<Box<WasiState>>,
}

impl ExecState {
    fn new(grants: Arc<Grants>, limits: Limits, wasi: Option<WasiState>) -> ExecState {
        ExecState {
            limiter: MemoryLimiter {
                limit: usize::try_from(limits.memory).unwrap_or(usize::MAX),
                total: 0,
                hit: false,
            },
            grants,
            limits,
            log_bytes: 0,
            log_truncated: false,
            notification_bytes: 0,
            notify_limit_hit: false,
            output_limit_hit: false,
            panic: None,
            notifications: Vec::new(),
            logs: Vec::new(),
            wasi: wasi.map(Box::new),
        }
    }

    /// The WASI state. WASI functions are linked only into plugins that
    /// import WASI, and those executions always get a `WasiState`.
    pub(crate) fn wasi_mut(&mut self) -> &mut WasiState {
        self.wasi
            .as_deref_mut()
            .expect("WASI is called only by plugins that import it, and they get WASI state")
    }

    fn evidence(&self) -> Evidence {
        let stderr = self
            .wasi
            .as_ref()
            .map(|wasi| wasi.stderr())
            .filter(|s| !s.trim().is_empty());
        Evidence {
            deadline: self.limits.deadline,
            memory_limit: self.limits.memory,
            memory_limit_hit: self.limiter.hit,
            notify_limit: self.limits.notifications,
            notify_limit_hit: self.notify_limit_hit,
            output_limit: self.limits.output,
            output_limit_hit: self.output_limit_hit,
            panic: self
                .panic
                .clone()
                .or_else(|| stderr.map(|s| tail(s.trim(), PANIC_MESSAGE_LIMIT).to_owned())),
        }
    }
}

/// Caps the linear memory of an execution: the sum over all its memories,
/// so that a component with several core modules gets no more than one.
struct MemoryLimiter {
    limit: usize,
    /// Bytes of all memories of the execution so far.
    total: usize,
    hit: bool,
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = (self.total - current).saturating_add(desired);
        if total > self.limit {
            self.hit = true;
            return Ok(false);
        }
        self.total = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= TABLE_ELEMENT_LIMIT)
    }
}

/// What one execution runs with.
pub(crate) struct Setup<'a> {
    /// The capabilities' settings and secrets.
    pub grants: Arc<Grants>,
    /// Whether the plugin imports WASI, and so needs WASI state.
    pub wasi: bool,
    /// The context; WASI's clock and randomness derive from it.
    pub ctx: &'a StepContext,
    pub limits: Limits,
}

/// Runs `call` on a fresh instance from `pre`, set up as `setup` says, and
/// returns its result with the execution's state (logs, notifications).
pub(crate) fn execute<R>(
    runtime: &RuntimeInner,
    pre: &bindings::PluginPre<ExecState>,
    setup: Setup<'_>,
    call: impl FnOnce(&bindings::Plugin, &mut wasmtime::Store<ExecState>) -> wasmtime::Result<R>,
) -> (Result<R, StepFailure>, ExecState) {
    execute_with(
        runtime,
        setup,
        |store| pre.instantiate(store),
        |plugin, store| call(&plugin, store),
    )
}

/// [`execute`] for a component that need not be a plugin (an instrumented
/// one, for a snapshot): `call` gets the component instance.
pub(crate) fn execute_instance<R>(
    runtime: &RuntimeInner,
    pre: &wasmtime::component::InstancePre<ExecState>,
    setup: Setup<'_>,
    call: impl FnOnce(
        wasmtime::component::Instance,
        &mut wasmtime::Store<ExecState>,
    ) -> wasmtime::Result<R>,
) -> (Result<R, StepFailure>, ExecState) {
    execute_with(runtime, setup, |store| pre.instantiate(store), call)
}

fn execute_with<I, R>(
    runtime: &RuntimeInner,
    setup: Setup<'_>,
    instantiate: impl FnOnce(&mut wasmtime::Store<ExecState>) -> wasmtime::Result<I>,
    call: impl FnOnce(I, &mut wasmtime::Store<ExecState>) -> wasmtime::Result<R>,
) -> (Result<R, StepFailure>, ExecState) {
    let wasi = setup
        .wasi
        .then(|| WasiState::new(setup.ctx, setup.limits.log));
    let state = ExecState::new(setup.grants, setup.limits, wasi);
    let deadline = state.limits.deadline;
    let output_limit = state.limits.output;
    let mut store = wasmtime::Store::new(&runtime.engine, state);
    store.limiter(|state| &mut state.limiter);
    // The data the host copies out of the guest in one call (a returned
    // outcome, a log line) is capped at the output limit before it is
    // allocated, so aliased strings cannot make the host allocate more.
    store.set_hostcall_fuel(output_limit);
    // The deadline is counted in epoch ticks; one more tick than the
    // quotient makes sure the step gets at least its whole deadline. Half
    // the range keeps wasmtime's `current + ticks` from overflowing.
    let tick_nanos = runtime.config.epoch_tick.as_nanos().max(1);
    let ticks = deadline.as_nanos().div_ceil(tick_nanos).saturating_add(1);
    store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX).min(u64::MAX / 2));
    store.epoch_deadline_trap();

    let result = match instantiate(&mut store) {
        Err(err) => Err(failure::classify(
            &err,
            Phase::Instantiate,
            store.data().evidence(),
        )),
        Ok(instance) => call(instance, &mut store)
            .map_err(|err| failure::classify(&err, Phase::Call, store.data().evidence())),
    };
    (result, store.into_data())
}

/// The last `max` bytes of `text`, cut at a character boundary.
fn tail(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// The first `max` bytes of `text`, cut at a character boundary.
fn head(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

impl wit::types::Host for ExecState {}

impl wit::log::Host for ExecState {
    fn log(&mut self, level: wit::log::Level, message: String) -> wasmtime::Result<()> {
        let level = match level {
            wit::log::Level::Trace => LogLevel::Trace,
            wit::log::Level::Debug => LogLevel::Debug,
            wit::log::Level::Info => LogLevel::Info,
            wit::log::Level::Warn => LogLevel::Warn,
            wit::log::Level::Error => LogLevel::Error,
        };
        // The SDK reports a panic here just before the trap; keep it apart
        // from the log so that a full log cannot hide it.
        if level == LogLevel::Error && message.starts_with("panicked at ") {
            self.panic = Some(head(&message, PANIC_MESSAGE_LIMIT).to_owned());
        }
        if self.log_truncated {
            return Ok(());
        }
        let cost = message.len() + ENTRY_OVERHEAD;
        if self.log_bytes + cost > self.limits.log {
            self.log_truncated = true;
            self.logs.push(LogLine {
                level: LogLevel::Warn,
                message: format!(
                    "log truncated: the step wrote more than {} bytes",
                    self.limits.log
                ),
            });
            return Ok(());
        }
        self.log_bytes += cost;
        self.logs.push(LogLine { level, message });
        Ok(())
    }
}

impl wit::notify::Host for ExecState {
    fn send(&mut self, message: wit::notify::Notification) -> wasmtime::Result<()> {
        if self.notifications.len() >= self.limits.notifications as usize {
            self.notify_limit_hit = true;
            return Err(wasmtime::format_err!(
                "notification limit of {} reached",
                self.limits.notifications
            ));
        }
        let size = message.channel.len()
            + message.to.as_ref().map_or(0, String::len)
            + message.subject.len()
            + message.body.len()
            + ENTRY_OVERHEAD;
        if self.notification_bytes + size > self.limits.output {
            self.output_limit_hit = true;
            return Err(wasmtime::format_err!(
                "output limit of {} bytes reached",
                self.limits.output
            ));
        }
        self.notification_bytes += size;
        self.notifications.push(Notification {
            channel: message.channel,
            to: message.to,
            subject: message.subject,
            body: message.body,
        });
        Ok(())
    }
}

impl wit::settings::Host for ExecState {
    fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self.grants.setting_value(&key).map(str::to_owned))
    }
}

impl wit::secrets::Host for ExecState {
    fn get(&mut self, name: String) -> wasmtime::Result<Option<String>> {
        Ok(self.grants.secret_value(&name).map(str::to_owned))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter as _;

    #[test]
    fn the_memory_limit_covers_all_memories_together() {
        let mut limiter = MemoryLimiter {
            limit: 100,
            total: 0,
            hit: false,
        };
        assert!(limiter.memory_growing(0, 60, None).unwrap(), "first memory");
        assert!(
            !limiter.memory_growing(0, 60, None).unwrap(),
            "a second memory may not add another 60"
        );
        assert!(limiter.hit);
        assert!(
            limiter.memory_growing(60, 100, None).unwrap(),
            "the first may grow to the whole limit"
        );
        assert!(!limiter.memory_growing(100, 101, None).unwrap());
    }

    #[test]
    fn failures_name_sizes_plainly() {
        assert_eq!(
            StepFailure::MemoryLimit { limit: 512 * 1024 }.to_string(),
            "the step needed more than its memory limit of 524288 bytes"
        );
        assert_eq!(
            StepFailure::MemoryLimit {
                limit: 64 * 1024 * 1024
            }
            .to_string(),
            "the step needed more than its memory limit of 64 MiB"
        );
    }
}
