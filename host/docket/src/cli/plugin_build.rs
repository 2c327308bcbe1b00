//! `docket plugin build`: compiles plugin crates to WebAssembly and turns
//! each into a component.
//!
//! The crates are built for `wasm32-unknown-unknown`, not `wasm32-wasip2`:
//! Rust's std for WASI makes every component import a dozen WASI
//! interfaces, even for a pure function, which clutters the plugin's
//! permission request and costs time in every execution. Built this way,
//! a component imports exactly the docket capabilities its code calls.

use super::RuntimeArgs;
use anyhow::{Context as _, bail};
use docket_host::plugin::preinit;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const TARGET: &str = "wasm32-unknown-unknown";
const PROFILE: &str = "docket-plugin";

/// Build plugin crates into components.
///
/// Runs `cargo build` for `wasm32-unknown-unknown` with a size-optimized
/// profile; runs each plugin's `Step::init` and keeps the memory it leaves
/// as the module's initial state (pre-initialization); wraps the module
/// into a component, checks that it loads, and writes
/// `<out-dir>/<package>.wasm`.
#[derive(clap::Args)]
pub struct BuildCommand {
    /// The Cargo.toml of the plugin crate or workspace.
    #[arg(long, default_value = "Cargo.toml")]
    manifest_path: PathBuf,
    /// Which packages to build (repeatable); default: the manifest's package.
    #[arg(short, long = "package", value_name = "NAME")]
    packages: Vec<String>,
    /// Where to write the components.
    #[arg(long, default_value = "target/plugins")]
    out_dir: PathBuf,
    #[command(flatten)]
    runtime: RuntimeArgs,
}

impl BuildCommand {
    pub fn run(self) -> anyhow::Result<()> {
        let components = build_components(&self.manifest_path, &self.packages)?;
        std::fs::create_dir_all(&self.out_dir)
            .with_context(|| format!("failed to create `{}`", self.out_dir.display()))?;
        let runtime = self.runtime.runtime()?;
        for (package, component) in components {
            let out = self.out_dir.join(format!("{package}.wasm"));
            std::fs::write(&out, &component)
                .with_context(|| format!("failed to write `{}`", out.display()))?;
            let inspection = runtime
                .inspect(&component)
                .with_context(|| format!("`{package}` built, but does not load"))?;
            let capabilities: Vec<&str> = inspection
                .imports
                .capabilities
                .iter()
                .map(|c| c.as_str())
                .collect();
            #[allow(clippy::print_stderr, reason = "progress on stderr, like cargo's")]
            {
                eprintln!(
                    "     Plugin {} {} -> {} ({} KiB, imports: {})",
                    inspection.info.name,
                    inspection.info.version,
                    out.display(),
                    component.len() / 1024,
                    if capabilities.is_empty() {
                        "nothing".to_owned()
                    } else {
                        capabilities.join(", ")
                    },
                );
            }
        }
        Ok(())
    }
}

/// Builds the plugin crates of `manifest` (the `packages`, or the
/// manifest's own) into pre-initialized components: each package's name
/// and component bytes.
pub fn build_components(
    manifest: &Path,
    packages: &[String],
) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let modules = cargo_build(manifest, packages)?;
    if modules.is_empty() {
        bail!(
            "cargo built no cdylib: a plugin crate needs `crate-type = [\"cdylib\"]` in its [lib] section"
        );
    }
    let mut components = Vec::new();
    for (package, module) in modules {
        let mut bytes = std::fs::read(&module)
            .with_context(|| format!("failed to read `{}`", module.display()))?;
        if let Some(initialized) = preinit::preinitialize(&bytes)
            .with_context(|| format!("failed to pre-initialize `{package}`"))?
        {
            bytes = initialized;
        }
        let component = componentize(&bytes)
            .with_context(|| format!("failed to make a component of `{package}`"))?;
        components.push((package, component));
    }
    Ok(components)
}

/// Runs cargo and returns each built plugin's package name and module path.
fn cargo_build(manifest: &Path, packages: &[String]) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--target",
        TARGET,
        "--profile",
        PROFILE,
        "--message-format=json-render-diagnostics",
    ])
    .arg("--manifest-path")
    .arg(manifest);
    // The profile is defined here, so any plugin crate builds the same way
    // without adding it to its own manifest.
    for setting in [
        "inherits=\"release\"",
        "opt-level=\"s\"",
        "codegen-units=1",
        "lto=\"thin\"",
        "strip=\"debuginfo\"",
        "panic=\"abort\"",
    ] {
        cmd.arg("--config")
            .arg(format!("profile.{PROFILE}.{setting}"));
    }
    for package in packages {
        cmd.args(["--package", package]);
    }
    // Libraries that seed hash maps through getrandom need a backend on this
    // target; docket-sdk provides a deterministic one.
    cmd.env(
        "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS",
        "--cfg getrandom_backend=\"custom\"",
    );
    cmd.stdout(Stdio::piped());
    let mut child = cmd.spawn().context("failed to run cargo")?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut modules = Vec::new();
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.context("failed to read cargo's output")?;
        let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if message["reason"] != "compiler-artifact" {
            continue;
        }
        let is_cdylib = message["target"]["crate_types"]
            .as_array()
            .is_some_and(|types| types.iter().any(|t| t == "cdylib"));
        if !is_cdylib {
            continue;
        }
        let package = message["target"]["name"]
            .as_str()
            .unwrap_or_default()
            .replace('_', "-");
        let wasm = message["filenames"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f.as_str())
            .find(|f| f.ends_with(".wasm"));
        if let Some(wasm) = wasm {
            modules.push((package, PathBuf::from(wasm)));
        }
    }
    let status = child.wait().context("failed to wait for cargo")?;
    if !status.success() {
        bail!("cargo build failed ({status})");
    }
    Ok(modules)
}

/// Wraps a core module that carries its component type (wit-bindgen puts
/// it in a custom section) into a component.
fn componentize(module: &[u8]) -> anyhow::Result<Vec<u8>> {
    wit_component::ComponentEncoder::default()
        .validate(true)
        .module(module)?
        .encode()
        .context("the module imports something the docket contract does not declare (a dependency that needs wasm-bindgen or WASI?)")
}
