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

const REGISTRY: &str = "/usr/bin/docker-registry";

/// A throwaway OCI registry: Debian's `docker-registry` (Distribution) on
/// a free loopback port, storing into a temporary directory, killed on drop.
pub struct Registry {
    child: std::process::Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Registry {
    #[track_caller]
    pub fn start() -> Registry {
        assert!(
            Path::new(REGISTRY).exists(),
            "`{REGISTRY}` is missing: run `cargo xtask test`, which installs Debian's \
             `docker-registry`, or `apt-get install docker-registry`"
        );
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.yml");
        let log = dir.path().join("registry.log");
        // A free port can be taken between asking and binding: try a few.
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .unwrap()
                .port();
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n\
                     storage:\n  filesystem:\n    rootdirectory: {}\n\
                     http:\n  addr: 127.0.0.1:{port}\n",
                    dir.path().join("storage").display()
                ),
            )
            .unwrap();
            let mut child = std::process::Command::new(REGISTRY)
                .arg("serve")
                .arg(&config)
                .stdout(std::process::Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap_or_else(|err| panic!("cannot start `{REGISTRY}`: {err}"));
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            while std::time::Instant::now() < deadline && child.try_wait().unwrap().is_none() {
                if get(port, "/v2/", "application/json").0 == 200 {
                    return Registry { child, port, dir };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "`{REGISTRY}` did not answer on `/v2/`: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    }

    /// The catalogue location of `namespace` in this registry.
    pub fn location(&self, namespace: &str) -> String {
        format!("oci+http://127.0.0.1:{}/{namespace}", self.port)
    }

    /// Where the registry keeps the blob with sha256 `hex`.
    pub fn blob_path(&self, hex: &str) -> PathBuf {
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// `GET path` from the registry's HTTP API: the status and the body.
    pub fn get(&self, path: &str, accept: &str) -> (u16, Vec<u8>) {
        get(self.port, path, accept)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP/1.0 `GET`, so that the harness needs no HTTP client; the
/// status is 0 if nothing answered.
fn get(port: u16, path: &str, accept: &str) -> (u16, Vec<u8>) {
    use std::io::{Read as _, Write as _};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return (0, Vec::new());
    };
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept: {accept}\r\n\r\n");
    let mut response = Vec::new();
    if stream.write_all(request.as_bytes()).is_err() || stream.read_to_end(&mut response).is_err() {
        return (0, Vec::new());
    }
    let Some(end) = response.windows(4).position(|w| w == b"\r\n\r\n") else {
        return (0, Vec::new());
    };
    let status = String::from_utf8_lossy(&response[..end])
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (status, response[end + 4..].to_vec())
}

/// A building-permit application's schema, for validate-schema's config.
pub fn permit_schema() -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "required": ["applicant", "parcel"],
        "properties": {
            "applicant": {
                "type": "object",
                "required": ["name", "email"],
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "email": {"type": "string", "format": "email"}
                }
            },
            "parcel": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{3}$"},
            "floors": {"type": "integer", "minimum": 1, "maximum": 20}
        }
    })
}
