//! The WASI a plugin gets: enough for a Rust `std` build to run, nothing
//! that reaches the machine.
//!
//! Linked: `wasi:io`, `wasi:cli` (no arguments, no environment, stdin
//! closed, stdout discarded, stderr kept in a bounded buffer for panic
//! messages), `wasi:clocks` (the wall clock reads the engine's clock
//! reading for the execution; the monotonic clock is virtual, so waiting
//! returns at once), `wasi:filesystem` (no preopened directories, so no
//! file can be named), `wasi:random` (ChaCha seeded from the execution's
//! identity: unpredictable across cases, the same on replay). Never linked: `wasi:sockets`, `wasi:http` and
//! anything else; a plugin importing them is refused at load time.
//!
//! The clocks and the random stream are deterministic so that replaying a
//! recorded execution yields the recorded outcome, and nothing a plugin
//! calls can block the host thread: a step that waits simply runs on until
//! its deadline stops it.

use super::exec::ExecState;
use super::types::StepContext;
use rand::SeedableRng as _;
use rand::rngs::StdRng;
use std::time::{Duration, SystemTime};
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::p2::bindings::{cli, clocks, filesystem, random, sync};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::p2::{DynPollable, Pollable, subscribe};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Resources (streams, pollables) a guest may hold at once.
const RESOURCE_LIMIT: usize = 1024;

/// The WASI packages a plugin may import; anything else is refused.
pub(crate) const PROVIDED_PACKAGES: [&str; 5] = [
    "wasi:cli/",
    "wasi:io/",
    "wasi:clocks/",
    "wasi:filesystem/",
    "wasi:random/",
];

/// The per-execution WASI state, created only for components that import WASI.
pub(crate) struct WasiState {
    ctx: WasiCtx,
    table: ResourceTable,
    stderr: MemoryOutputPipe,
    /// The virtual monotonic clock, in nanoseconds since the execution began.
    monotonic: u64,
}

impl WasiState {
    pub(crate) fn new(ctx: &StepContext, stderr_capacity: usize) -> WasiState {
        let stderr = MemoryOutputPipe::new(stderr_capacity);
        let seed = seed(ctx);
        let wall = ctx
            .now
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let wasi = WasiCtx::builder()
            .stderr(stderr.clone())
            .wall_clock(FixedClock(wall))
            .secure_random(StdRng::from_seed(seed))
            .insecure_random(StdRng::from_seed(seed.map(|byte| !byte)))
            .insecure_random_seed(u128::from_le_bytes(
                seed[..16].try_into().expect("16 bytes"),
            ))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let mut table = ResourceTable::new();
        // Streams, pollables and the like; a guest needs a handful.
        table.set_max_capacity(RESOURCE_LIMIT);
        WasiState {
            ctx: wasi,
            table,
            stderr,
            monotonic: 0,
        }
    }

    /// What the guest wrote to stderr, lossily decoded.
    pub(crate) fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents()).into_owned()
    }
}

impl WasiView for ExecState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let wasi = self.wasi_mut();
        WasiCtxView {
            ctx: &mut wasi.ctx,
            table: &mut wasi.table,
        }
    }
}

/// Links the sandboxed WASI interfaces into `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<ExecState>) -> wasmtime::Result<()> {
    use wasmtime_wasi::cli::WasiCli;
    use wasmtime_wasi::clocks::WasiClocks;
    use wasmtime_wasi::filesystem::WasiFilesystem;
    use wasmtime_wasi::random::WasiRandom;
    type T = ExecState;

    let l = linker;
    wasmtime_wasi::p2::bindings::io::error::add_to_linker::<T, HasTable>(l, |t| {
        &mut t.wasi_mut().table
    })?;
    sync::io::poll::add_to_linker::<T, HasTable>(l, |t| &mut t.wasi_mut().table)?;
    sync::io::streams::add_to_linker::<T, HasTable>(l, |t| &mut t.wasi_mut().table)?;
    clocks::wall_clock::add_to_linker::<T, WasiClocks>(l, |t| {
        wasmtime_wasi::clocks::WasiClocksView::clocks(t)
    })?;
    clocks::monotonic_clock::add_to_linker::<T, VirtualClock>(l, |t| {
        let wasi = t.wasi_mut();
        VirtualClockView {
            table: &mut wasi.table,
            nanos: &mut wasi.monotonic,
        }
    })?;
    filesystem::preopens::add_to_linker::<T, WasiFilesystem>(l, |t| {
        wasmtime_wasi::filesystem::WasiFilesystemView::filesystem(t)
    })?;
    sync::filesystem::types::add_to_linker::<T, WasiFilesystem>(l, |t| {
        wasmtime_wasi::filesystem::WasiFilesystemView::filesystem(t)
    })?;
    random::random::add_to_linker::<T, WasiRandom>(l, |t| t.wasi_mut().ctx.random())?;
    random::insecure::add_to_linker::<T, WasiRandom>(l, |t| t.wasi_mut().ctx.random())?;
    random::insecure_seed::add_to_linker::<T, WasiRandom>(l, |t| t.wasi_mut().ctx.random())?;
    fn cli(t: &mut ExecState) -> wasmtime_wasi::cli::WasiCliCtxView<'_> {
        wasmtime_wasi::cli::WasiCliView::cli(t)
    }
    cli::exit::add_to_linker::<T, WasiCli>(l, cli)?;
    cli::environment::add_to_linker::<T, WasiCli>(l, cli)?;
    cli::stdin::add_to_linker::<T, WasiCli>(l, cli)?;
    cli::stdout::add_to_linker::<T, WasiCli>(l, cli)?;
    cli::stderr::add_to_linker::<T, WasiCli>(l, cli)?;
    cli::terminal_input::add_to_linker::<T, WasiCli>(l, cli)?;
    cli::terminal_output::add_to_linker::<T, WasiCli>(l, cli)?;
    cli::terminal_stdin::add_to_linker::<T, WasiCli>(l, cli)?;
    cli::terminal_stdout::add_to_linker::<T, WasiCli>(l, cli)?;
    cli::terminal_stderr::add_to_linker::<T, WasiCli>(l, cli)?;
    Ok(())
}

struct HasTable;

impl HasData for HasTable {
    type Data<'a> = &'a mut ResourceTable;
}

/// A wall clock that always reads the execution's clock reading.
struct FixedClock(Duration);

impl wasmtime_wasi::HostWallClock for FixedClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }

    fn now(&self) -> Duration {
        self.0
    }
}

/// A monotonic clock on which every wait has already elapsed.
///
/// wasmtime-wasi's own clock sleeps on the host thread, which the epoch
/// deadline cannot interrupt; a plugin that slept would hold the thread for
/// as long as it liked. Here a wait returns at once and the clock jumps
/// forward by the time waited, so a step that waits in a loop simply runs
/// until its deadline stops it.
struct VirtualClock;

impl HasData for VirtualClock {
    type Data<'a> = VirtualClockView<'a>;
}

struct VirtualClockView<'a> {
    table: &'a mut ResourceTable,
    nanos: &'a mut u64,
}

/// A pollable that is always ready.
struct Elapsed;

#[wasmtime_wasi::async_trait]
impl Pollable for Elapsed {
    async fn ready(&mut self) {}
}

impl VirtualClockView<'_> {
    fn elapsed(&mut self) -> wasmtime::Result<Resource<DynPollable>> {
        let elapsed = self.table.push(Elapsed)?;
        subscribe(self.table, elapsed)
    }
}

impl clocks::monotonic_clock::Host for VirtualClockView<'_> {
    fn now(&mut self) -> wasmtime::Result<u64> {
        Ok(*self.nanos)
    }

    fn resolution(&mut self) -> wasmtime::Result<u64> {
        Ok(1)
    }

    fn subscribe_instant(&mut self, when: u64) -> wasmtime::Result<Resource<DynPollable>> {
        *self.nanos = (*self.nanos).max(when);
        self.elapsed()
    }

    fn subscribe_duration(&mut self, duration: u64) -> wasmtime::Result<Resource<DynPollable>> {
        *self.nanos = self.nanos.saturating_add(duration);
        self.elapsed()
    }
}

/// 32 bytes derived from the execution's identity: the same on replay,
/// different for every case, step and attempt.
fn seed(ctx: &StepContext) -> [u8; 32] {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    for part in [
        ctx.case_id.as_bytes(),
        ctx.step_id.as_bytes(),
        &ctx.attempt.to_le_bytes(),
    ] {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hasher.finalize().into()
}
