//! The harness: where built components and fixtures are, a runtime sized
//! for tests, a context, and a summary of an execution for assertions.

use docket_host::plugin::{
    Execution, Grants, Outcome, Plugin, Runtime, RuntimeConfig, StepContext, StepError,
};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the workspace")
        .to_owned()
}

pub fn target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

#[track_caller]
fn built(dir: &str, name: &str) -> Vec<u8> {
    let path = target().join(dir).join(format!("{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|err| {
        panic!(
            "plugin `{name}` is not built ({}: {err}): run `cargo xtask test`",
            path.display()
        )
    })
}

/// A first-party plugin, as `docket plugin build` made it.
#[track_caller]
pub fn plugin(name: &str) -> Vec<u8> {
    built("plugins", name)
}

/// A first-party plugin, as plain `cargo build --target wasm32-wasip2` made it.
#[track_caller]
pub fn plugin_wasip2(name: &str) -> Vec<u8> {
    built("plugins-wasip2", name)
}

/// A test guest from tests/fixtures/guests.
#[track_caller]
pub fn guest(name: &str) -> Vec<u8> {
    built("fixtures", name)
}

/// A WAT component or module from tests/fixtures/components.
#[track_caller]
pub fn wat(name: &str) -> Vec<u8> {
    let path = root()
        .join("tests/fixtures/components")
        .join(format!("{name}.wat"));
    wat::parse_file(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// A runtime with a small pool, so that parallel tests do not each reserve
/// the address space of a production pool, and a compiled-artifact cache
/// shared by the suite, so that each plugin is compiled once per build.
pub fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig {
        max_concurrent_executions: 8,
        cache_dir: Some(target().join("test-cache")),
        ..RuntimeConfig::default()
    })
    .expect("runtime")
}

#[track_caller]
pub fn load(runtime: &Runtime, bytes: &[u8], grants: Grants) -> Plugin {
    runtime
        .load(bytes, grants)
        .unwrap_or_else(|err| panic!("load failed: {err}"))
}

pub fn ctx() -> StepContext {
    StepContext {
        case_id: "BP-2026-0001".to_owned(),
        workflow: "building-permit".to_owned(),
        workflow_version: 3,
        step_id: "check".to_owned(),
        attempt: 1,
        actor: Some("clerk.ada".to_owned()),
        now: SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000),
    }
}

/// One line that says how an execution ended: `continue`, `route a, b`,
/// `reject /x code; /y code`, `transient: ...`, `permanent: ...`, or the
/// failure's message.
pub fn summary(execution: &Execution) -> String {
    match &execution.result {
        Ok(Outcome::Continue(_)) => "continue".to_owned(),
        Ok(Outcome::Route { routes, .. }) => format!("route {}", routes.join(", ")),
        Ok(Outcome::Reject(problems)) => {
            let problems: Vec<String> = problems
                .iter()
                .map(|p| format!("{} {}", p.pointer, p.code))
                .collect();
            format!("reject {}", problems.join("; "))
        }
        Err(StepError::Transient(message)) => format!("transient: {message}"),
        Err(StepError::Permanent(message)) => format!("permanent: {message}"),
        Err(err) => err.to_string(),
    }
}

/// The case data an outcome carries.
#[track_caller]
pub fn data(execution: &Execution) -> serde_json::Value {
    match &execution.result {
        Ok(Outcome::Continue(data) | Outcome::Route { data, .. }) => data.to_value(),
        other => panic!("expected data, got {other:?}"),
    }
}

/// The `docket` binary that `cargo xtask plugins` built.
pub fn docket() -> std::process::Command {
    let path = target().join("debug").join("docket");
    assert!(
        path.exists(),
        "`{}` is not built: run `cargo xtask test`",
        path.display()
    );
    std::process::Command::new(path)
}
