//! `Runtime`: the wasmtime engine docket runs plugins on, its instance pool,
//! the epoch ticker behind deadlines, and the caches of compiled components.

use super::cache::ArtifactCache;
use super::types::PluginDigest;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime::component::Component;

/// How a [`Runtime`] is set up. [`RuntimeConfig::default`] suits a host
/// process running a few executions at a time.
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Where compiled components are kept between processes; `None` keeps
    /// them in memory only. The directory must be as trusted as the docket
    /// binary: artifacts in it are loaded as machine code.
    pub cache_dir: Option<PathBuf>,
    /// Executions that can be in flight at once; more fail with
    /// [`super::StepFailure::Instantiate`] until a slot frees up.
    pub max_concurrent_executions: u32,
    /// The largest memory limit any execution may be given, in bytes: the
    /// size of a slot in the instance pool.
    pub max_memory: u64,
    /// How often the deadline clock ticks: the precision of deadlines.
    pub epoch_tick: Duration,
    /// Whether to reset pool slots with the fast, page-map based reset when
    /// it is safe.
    pub pool_reset: PoolResetPolicy,
    /// With the fast reset, how many bytes of a slot's memory an execution
    /// may dirty and still find mapped and restored in place by the next
    /// one; pages beyond are released and fault in again. A warm slot holds
    /// up to this much resident memory.
    pub keep_resident: usize,
    /// After how many executions with one config a step of a plugin that
    /// supports it is prepared for that config: snapshotted after
    /// `check-config`, in the background, and swapped in (see
    /// [`super::Plugin::prepare`]); `None` never prepares.
    pub prepare_after: Option<u32>,
}

impl Default for RuntimeConfig {
    /// No disk cache, 64 concurrent executions, 256 MiB per slot, 1 ms ticks,
    /// fast pool reset where it is safe, 8 MiB kept resident per slot,
    /// steps prepared after 64 executions.
    fn default() -> RuntimeConfig {
        RuntimeConfig {
            cache_dir: None,
            max_concurrent_executions: 64,
            max_memory: 256 * 1024 * 1024,
            epoch_tick: Duration::from_millis(1),
            pool_reset: PoolResetPolicy::Auto,
            keep_resident: 8 * 1024 * 1024,
            prepare_after: Some(64),
        }
    }
}

/// Which reset the instance pool may use for a slot between executions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolResetPolicy {
    /// The fast reset where it is safe, the standard one elsewhere.
    Auto,
    /// Always the standard reset.
    Standard,
}

/// The reset the instance pool uses between executions.
///
/// The fast reset asks the kernel which pages of a slot the last execution
/// wrote (`PAGEMAP_SCAN`) and restores only those, keeping them mapped: no
/// page faults on the next execution and no `madvise` on the hot path. In
/// wasmtime 48 it misses pages that were swapped out, which could show one
/// execution's data to the next, so it is used only where swap is off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PoolReset {
    /// Page-map scan and memset of dirty pages.
    Fast,
    /// wasmtime's default `madvise` reset, and why the fast one is not used.
    Standard {
        /// Why the fast reset is not used here.
        reason: String,
    },
}

/// How a [`Runtime`] got its compiled components so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RuntimeStats {
    /// Components compiled from scratch.
    pub compiled: u64,
    /// Components loaded from the disk cache.
    pub from_disk_cache: u64,
    /// Loads served by a component already in memory.
    pub from_memory: u64,
}

/// The plugin runtime: load plugins with [`Runtime::load`], run them with
/// [`super::Plugin::run`]. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Runtime {
    pub(crate) inner: Arc<RuntimeInner>,
}

pub(crate) struct RuntimeInner {
    pub(crate) engine: wasmtime::Engine,
    pub(crate) config: RuntimeConfig,
    pub(crate) pool_reset: PoolReset,
    disk: Option<ArtifactCache>,
    memory: Mutex<HashMap<PluginDigest, Component>>,
    compiled: AtomicU64,
    from_disk_cache: AtomicU64,
    from_memory: AtomicU64,
    /// Held while a step is prepared in the background: one snapshot at a
    /// time, since each takes a core for about a second.
    pub(crate) preparing: Mutex<()>,
}

/// The runtime could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("failed to set up the plugin runtime: {reason}")]
pub struct RuntimeError {
    reason: String,
}

impl Runtime {
    /// A runtime with `config`.
    ///
    /// Sandbox defaults that apply to every plugin: a fresh instance per
    /// execution from a pooling allocator; epoch-based deadlines; no
    /// component-model async; WASI without files, environment, network or
    /// inherited stdio (see [`super::Limits`] for the per-execution limits).
    ///
    /// # Errors
    ///
    /// If wasmtime rejects the configuration, for example a `max_memory` the
    /// address space cannot hold, or `epoch_tick` is under 100 µs.
    pub fn new(config: RuntimeConfig) -> Result<Runtime, RuntimeError> {
        if config.epoch_tick < MIN_EPOCH_TICK {
            return Err(RuntimeError {
                reason: format!(
                    "`epoch_tick` of {:?} is shorter than the minimum of {MIN_EPOCH_TICK:?}",
                    config.epoch_tick
                ),
            });
        }
        let pool_reset = match config.pool_reset {
            PoolResetPolicy::Standard => PoolReset::Standard {
                reason: "the standard reset was configured".to_owned(),
            },
            PoolResetPolicy::Auto => choose_pool_reset(
                wasmtime::PoolingAllocationConfig::is_pagemap_scan_available(),
                std::fs::read_to_string("/proc/swaps"),
            ),
        };
        match &pool_reset {
            PoolReset::Fast => tracing::debug!("instance pool: fast reset (pagemap scan)"),
            PoolReset::Standard { reason } => {
                tracing::info!("instance pool: standard reset, because {reason}")
            }
        }

        let n = config.max_concurrent_executions.max(1);
        let mut pool = wasmtime::PoolingAllocationConfig::new();
        // A Rust component built for wasm32-wasip2 holds three core
        // instances, two memories and a few tables; a lean one holds one of
        // each. Size the pool for the former, and cap what one component may
        // take so that no plugin can hold the pool's slots for itself. An
        // interpreter component (componentize-py links CPython as some 38
        // shared libraries, one core instance each) fits under the cap, and
        // the extra core-instance slots make room for one such execution
        // beside a full pool of lean ones; a core-instance slot is cheap,
        // unlike a memory slot.
        pool.total_component_instances(n)
            .total_core_instances(n * 4 + MAX_CORE_INSTANCES_PER_COMPONENT)
            .total_memories(n * 2)
            .total_tables(n * 4)
            .total_stacks(n)
            .max_core_instances_per_component(MAX_CORE_INSTANCES_PER_COMPONENT)
            .max_memories_per_component(4)
            .max_tables_per_component(16)
            .max_memory_size(usize::try_from(config.max_memory).unwrap_or(usize::MAX))
            .table_elements(TABLE_ELEMENTS);
        if pool_reset == PoolReset::Fast {
            pool.pagemap_scan(wasmtime::Enabled::Yes)
                .linear_memory_keep_resident(config.keep_resident)
                .table_keep_resident(config.keep_resident);
        }

        let mut wasm = wasmtime::Config::new();
        wasm.wasm_component_model(true)
            .epoch_interruption(true)
            .allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
        let engine = wasmtime::Engine::new(&wasm).map_err(|err| RuntimeError {
            reason: format!("{err:#}"),
        })?;
        spawn_epoch_ticker(&engine, config.epoch_tick).map_err(|err| RuntimeError {
            reason: format!("failed to start the deadline ticker: {err}"),
        })?;

        let disk = config
            .cache_dir
            .clone()
            .map(|dir| ArtifactCache::new(dir, &engine));
        Ok(Runtime {
            inner: Arc::new(RuntimeInner {
                engine,
                config,
                pool_reset,
                disk,
                memory: Mutex::new(HashMap::new()),
                compiled: AtomicU64::new(0),
                from_disk_cache: AtomicU64::new(0),
                from_memory: AtomicU64::new(0),
                preparing: Mutex::new(()),
            }),
        })
    }

    /// The reset the instance pool uses, and why.
    pub fn pool_reset(&self) -> &PoolReset {
        &self.inner.pool_reset
    }

    /// The configuration the runtime was made with.
    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// How compiled components were obtained so far.
    pub fn stats(&self) -> RuntimeStats {
        RuntimeStats {
            compiled: self.inner.compiled.load(Ordering::Relaxed),
            from_disk_cache: self.inner.from_disk_cache.load(Ordering::Relaxed),
            from_memory: self.inner.from_memory.load(Ordering::Relaxed),
        }
    }
}

/// What [`Runtime::identify`] found out about a component.
pub(crate) enum Identified {
    /// The disk cache recorded an earlier load of the same bytes.
    Recorded {
        /// The plugin's name.
        name: String,
        /// Its version, as `describe` gave it.
        version: String,
    },
    /// Nothing was recorded: the plugin was loaded now.
    Loaded(super::Plugin),
}

impl Runtime {
    /// The name and version of the plugin in `bytes` (whose sha256 is
    /// `digest`) loaded with every capability granted: from the disk
    /// cache's record of an earlier such load when there is one, without
    /// compiling or running anything; otherwise by loading it, and then
    /// recording it.
    ///
    /// # Errors
    ///
    /// A [`super::LoadError`] when the bytes had to be loaded and could not be.
    pub(crate) fn identify(
        &self,
        bytes: &[u8],
        digest: &PluginDigest,
    ) -> Result<Identified, super::LoadError> {
        if let Some((name, version)) = self.inner.disk.as_ref().and_then(|d| d.identity(digest)) {
            return Ok(Identified::Recorded { name, version });
        }
        let all = super::Capability::ALL
            .into_iter()
            .fold(super::Grants::none(), super::Grants::grant);
        let plugin = self.load(bytes, all)?;
        if let Some(disk) = &self.inner.disk {
            disk.store_identity(digest, &plugin.info().name, &plugin.info().version);
        }
        Ok(Identified::Loaded(plugin))
    }

    /// Whether compiled components are kept on disk, so that loading one
    /// again costs milliseconds, not a compilation.
    pub(crate) fn has_disk_cache(&self) -> bool {
        self.inner.disk.is_some()
    }

    /// Drops the in-memory copy of a compiled component; plugins loaded
    /// from it keep theirs.
    pub(crate) fn forget(&self, digest: &PluginDigest) {
        self.inner.memory.lock().expect("cache lock").remove(digest);
    }
}

/// The shortest deadline tick: the ticker thread wakes once per tick.
const MIN_EPOCH_TICK: Duration = Duration::from_micros(100);

/// Core instances one component may hold: room for a Python component.
const MAX_CORE_INSTANCES_PER_COMPONENT: u32 = 64;

/// Elements a table may have in a pool slot; Rust guests with many trait
/// objects need a few thousand.
const TABLE_ELEMENTS: usize = 100_000;

impl RuntimeInner {
    /// The disk cache of compiled components, if there is one.
    pub(crate) fn disk_cache(&self) -> Option<&ArtifactCache> {
        self.disk.as_ref()
    }

    /// The compiled component for `bytes`: from memory, from the disk
    /// cache, or compiled now (and then cached).
    pub(crate) fn component(
        &self,
        bytes: &[u8],
        digest: &PluginDigest,
    ) -> wasmtime::Result<Component> {
        if let Some(component) = self.memory.lock().expect("cache lock").get(digest) {
            self.from_memory.fetch_add(1, Ordering::Relaxed);
            return Ok(component.clone());
        }
        let component = match self
            .disk
            .as_ref()
            .and_then(|disk| disk.load(&self.engine, digest))
        {
            Some(component) => {
                self.from_disk_cache.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%digest, "plugin loaded from the compiled cache");
                component
            }
            None => {
                let component = Component::from_binary(&self.engine, bytes)?;
                self.compiled.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%digest, "plugin compiled");
                if let Some(disk) = &self.disk {
                    disk.store(digest, &component);
                    tracing::debug!(%digest, dir = %disk.dir().display(), "compiled plugin cached");
                }
                component
            }
        };
        self.memory
            .lock()
            .expect("cache lock")
            .insert(*digest, component.clone());
        Ok(component)
    }
}

/// Decides whether the fast pool reset is safe, from whether the kernel
/// has `PAGEMAP_SCAN` and from the contents of `/proc/swaps`.
fn choose_pool_reset(pagemap_scan: bool, swaps: std::io::Result<String>) -> PoolReset {
    if !pagemap_scan {
        return PoolReset::Standard {
            reason: "the kernel lacks PAGEMAP_SCAN (Linux 6.7 or later)".to_owned(),
        };
    }
    match swaps {
        // The first line is a header; any other line is an active swap area.
        Ok(swaps) if swaps.lines().skip(1).all(|line| line.trim().is_empty()) => PoolReset::Fast,
        Ok(_) => PoolReset::Standard {
            reason: "swap is enabled, and wasmtime 48's fast reset misses swapped-out pages"
                .to_owned(),
        },
        Err(err) => PoolReset::Standard {
            reason: format!("/proc/swaps is unreadable ({err})"),
        },
    }
}

/// Advances the engine's epoch every `tick` until the engine is dropped.
fn spawn_epoch_ticker(engine: &wasmtime::Engine, tick: Duration) -> std::io::Result<()> {
    let engine = engine.weak();
    std::thread::Builder::new()
        .name("docket-epoch".to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(tick);
                match engine.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => return,
                }
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n";

    #[test]
    fn fast_reset_only_without_swap_and_with_pagemap_scan() {
        assert_eq!(
            choose_pool_reset(true, Ok(HEADER.to_owned())),
            PoolReset::Fast
        );
        let swap = format!("{HEADER}/dev/zram0\tpartition\t4194300\t0\t100\n");
        assert!(
            matches!(choose_pool_reset(true, Ok(swap)), PoolReset::Standard { reason } if reason.contains("swap"))
        );
        assert!(matches!(
            choose_pool_reset(false, Ok(HEADER.to_owned())),
            PoolReset::Standard { reason } if reason.contains("PAGEMAP_SCAN")
        ));
        let unreadable = Err(std::io::Error::from(std::io::ErrorKind::NotFound));
        assert!(matches!(
            choose_pool_reset(true, unreadable),
            PoolReset::Standard { .. }
        ));
    }
}
