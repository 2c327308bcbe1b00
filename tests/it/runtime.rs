//! The runtime's own behaviour: the compiled-artifact cache, describing
//! plugins, and the pool reset it chose.

use crate::support::{self, load};
use docket_host::plugin::{
    Grants, Kind, PoolReset, PoolResetPolicy, Runtime, RuntimeConfig, RuntimeStats,
};

fn cached_runtime(dir: &std::path::Path) -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: Some(dir.to_owned()),
        max_concurrent_executions: 4,
        ..RuntimeConfig::default()
    })
    .unwrap()
}

/// `bytes` with a custom section appended: the same code, other bytes.
fn changed(bytes: &[u8]) -> Vec<u8> {
    let name = b"docket-test";
    let mut out = bytes.to_vec();
    out.push(0); // custom section id
    out.push(u8::try_from(1 + name.len() + 1).unwrap()); // section size
    out.push(u8::try_from(name.len()).unwrap());
    out.extend_from_slice(name);
    out.push(42);
    out
}

#[test]
fn a_second_process_loads_from_the_disk_cache_without_compiling() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = support::plugin("route-rules");

    let first = cached_runtime(dir.path());
    load(&first, &bytes, Grants::default());
    load(&first, &bytes, Grants::default());
    assert_eq!(
        first.stats(),
        RuntimeStats {
            compiled: 1,
            from_disk_cache: 0,
            from_memory: 1
        }
    );

    // A new runtime has a new engine and an empty memory: like a new process.
    let second = cached_runtime(dir.path());
    load(&second, &bytes, Grants::default());
    assert_eq!(
        second.stats(),
        RuntimeStats {
            compiled: 0,
            from_disk_cache: 1,
            from_memory: 0
        }
    );

    let other = changed(&bytes);
    let third = cached_runtime(dir.path());
    let plugin = load(&third, &other, Grants::default());
    assert_eq!(
        third.stats().compiled,
        1,
        "a changed component is compiled anew"
    );
    assert_eq!(plugin.info().name, "route-rules");
}

#[test]
fn a_corrupt_cache_entry_is_replaced_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = support::plugin("route-rules");
    load(&cached_runtime(dir.path()), &bytes, Grants::default());
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        std::fs::write(entry.unwrap().path(), b"garbage").unwrap();
    }
    let runtime = cached_runtime(dir.path());
    load(&runtime, &bytes, Grants::default());
    assert_eq!(runtime.stats().compiled, 1);
}

#[test]
fn describe_reports_what_the_plugin_says() {
    let runtime = support::runtime();
    let inspection = runtime
        .inspect(&support::plugin("validate-schema"))
        .unwrap();
    assert_eq!(
        (
            inspection.info.name.as_str(),
            inspection.info.version.as_str()
        ),
        ("validate-schema", "1.0.0")
    );
    assert_eq!(inspection.info.kind, Kind::Validate);
    assert_eq!(
        inspection.info.config_schema.to_value()["required"],
        serde_json::json!(["schema"])
    );
    assert_eq!(inspection.digest.to_hex().len(), 64);
    assert_eq!(inspection.size, support::plugin("validate-schema").len());
}

#[test]
fn the_pool_reset_is_standard_when_asked_and_says_why() {
    let runtime = Runtime::new(RuntimeConfig {
        pool_reset: PoolResetPolicy::Standard,
        max_concurrent_executions: 2,
        ..RuntimeConfig::default()
    })
    .unwrap();
    assert!(
        matches!(runtime.pool_reset(), PoolReset::Standard { reason } if reason.contains("configured"))
    );
    let plugin = load(
        &runtime,
        &support::plugin("validate-schema"),
        Grants::default(),
    );
    let execution = plugin.run(
        &support::ctx(),
        &serde_json::json!({"schema": true}).into(),
        &serde_json::json!({}).into(),
        &docket_host::plugin::Limits::default(),
    );
    assert_eq!(support::summary(&execution), "continue");
}

#[test]
fn a_zero_deadline_tick_is_refused() {
    let err = Runtime::new(RuntimeConfig {
        epoch_tick: std::time::Duration::ZERO,
        ..RuntimeConfig::default()
    })
    .err()
    .expect("refused");
    assert_eq!(
        err.to_string(),
        "failed to set up the plugin runtime: `epoch_tick` of 0ns is shorter than the minimum of 100µs"
    );
}
