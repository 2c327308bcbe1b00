//! One execution: a fresh `wasmtime::Store` and instance, the capability
//! implementations the plugin calls, and the conversion of what came back.

use super::bindings::{self, docket::step as wit};
use super::failure::{self, Evidence, Phase, StepFailure};
use super::grants::Grants;
use super::limits::Limits;
use super::sandbox::WasiState;
use super::types::{LogLevel, LogLine, Notification};
use std::sync::Arc;
use std::time::Duration;

/// Panic messages are kept up to this size, whatever the log limit.
const PANIC_MESSAGE_LIMIT: usize = 4096;
/// Tables may grow to this many elements; Rust guests use one small table.
const TABLE_ELEMENT_LIMIT: usize = 100_000;

/// The host side of one execution: the `T` of its `wasmtime::Store`.
pub(crate) struct ExecState {
    limiter: MemoryLimiter,
    grants: Arc<Grants>,
    notify_limit: u32,
    log_limit: usize,
    log_bytes: usize,
    log_truncated: bool,
    notify_limit_hit: bool,
    panic: Option<String>,
    pub(crate) notifications: Vec<Notification>,
    pub(crate) logs: Vec<LogLine>,
    wasi: Option<Box<WasiState>>,
}

impl ExecState {
    pub(crate) fn new(grants: Arc<Grants>, limits: &Limits, wasi: Option<WasiState>) -> ExecState {
        ExecState {
            limiter: MemoryLimiter {
                limit: usize::try_from(limits.memory).unwrap_or(usize::MAX),
                hit: false,
            },
            grants,
            notify_limit: limits.notifications,
            log_limit: limits.log,
            log_bytes: 0,
            log_truncated: false,
            notify_limit_hit: false,
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

    fn evidence(&self, limits: &Limits) -> Evidence {
        let stderr = self
            .wasi
            .as_ref()
            .map(|wasi| wasi.stderr())
            .filter(|s| !s.trim().is_empty());
        Evidence {
            deadline: limits.deadline,
            memory_limit: limits.memory,
            memory_limit_hit: self.limiter.hit,
            notify_limit: limits.notifications,
            notify_limit_hit: self.notify_limit_hit,
            panic: self
                .panic
                .clone()
                .or_else(|| stderr.map(|s| tail(s.trim(), PANIC_MESSAGE_LIMIT).to_owned())),
        }
    }
}

struct MemoryLimiter {
    limit: usize,
    hit: bool,
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.hit = true;
            return Ok(false);
        }
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

/// The engine-wide pieces an execution needs.
pub(crate) struct Env<'a> {
    pub engine: &'a wasmtime::Engine,
    pub epoch_tick: Duration,
}

/// Runs `call` on a fresh instance from `pre` under `limits`, and returns
/// its result with the execution's state (logs, notifications).
pub(crate) fn execute<R>(
    env: &Env<'_>,
    pre: &bindings::PluginPre<ExecState>,
    state: ExecState,
    limits: &Limits,
    call: impl FnOnce(&bindings::Plugin, &mut wasmtime::Store<ExecState>) -> wasmtime::Result<R>,
) -> (Result<R, StepFailure>, ExecState) {
    let mut store = wasmtime::Store::new(env.engine, state);
    store.limiter(|state| &mut state.limiter);
    // The deadline is counted in epoch ticks; one more tick than the
    // quotient makes sure the step gets at least its whole deadline.
    let tick_nanos = env.epoch_tick.as_nanos().max(1);
    let ticks = limits.deadline.as_nanos().div_ceil(tick_nanos) + 1;
    store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX));
    store.epoch_deadline_trap();

    let result = match pre.instantiate(&mut store) {
        Err(err) => Err(failure::classify(
            &err,
            Phase::Instantiate,
            store.data().evidence(limits),
        )),
        Ok(instance) => call(&instance, &mut store)
            .map_err(|err| failure::classify(&err, Phase::Call, store.data().evidence(limits))),
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
            let mut end = message.len().min(PANIC_MESSAGE_LIMIT);
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            self.panic = Some(message[..end].to_owned());
        }
        if self.log_truncated {
            return Ok(());
        }
        if self.log_bytes + message.len() > self.log_limit {
            self.log_truncated = true;
            self.logs.push(LogLine {
                level: LogLevel::Warn,
                message: format!(
                    "log truncated: the step wrote more than {} bytes",
                    self.log_limit
                ),
            });
            return Ok(());
        }
        self.log_bytes += message.len();
        self.logs.push(LogLine { level, message });
        Ok(())
    }
}

impl wit::notify::Host for ExecState {
    fn send(&mut self, message: wit::notify::Notification) -> wasmtime::Result<()> {
        if self.notifications.len() >= self.notify_limit as usize {
            self.notify_limit_hit = true;
            return Err(wasmtime::format_err!(
                "notification limit of {} reached",
                self.notify_limit
            ));
        }
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
