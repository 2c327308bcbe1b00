//! Plugins and test guests written in Python and JavaScript: their
//! toolchains (componentize-py in a virtualenv, componentize-js from npm,
//! both under `target/lang`) and their builds into components.
//!
//! A plugin is a directory with its source (`app.py` or `app.js`) and a
//! `wit/world.wit` that narrows the `docket:step` plugin world to the
//! capabilities the step uses: these toolchains import every interface the
//! world names, and the import list is the plugin's permission request.
//! Both builds leave WASI out entirely (componentize-py `--stub-wasi`,
//! componentize-js `--disable` of every feature), so the components import
//! only `docket:step` interfaces.
//!
//! What it does not do: install Python itself or anything but Debian's
//! `nodejs` and `npm`; a build is skipped while its output is newer than
//! its inputs.

use crate::run;
use anyhow::{Context as _, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// The languages and where their sources live, relative to the workspace root.
#[derive(Clone, Copy)]
pub enum Lang {
    Python,
    Js,
}

impl Lang {
    fn source(self) -> &'static str {
        match self {
            Lang::Python => "app.py",
            Lang::Js => "app.js",
        }
    }
}

/// The directories under `dir` that hold a plugin in `lang`.
pub fn plugins_in(dir: &Path, lang: Lang) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    if !dir.exists() {
        return Ok(found);
    }
    for entry in
        std::fs::read_dir(dir).with_context(|| format!("failed to list `{}`", dir.display()))?
    {
        let path = entry?.path();
        if path.join(lang.source()).exists() {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

/// The installed toolchains.
pub struct Toolchains {
    componentize_py: PathBuf,
    componentize_js: PathBuf,
}

/// Installs what is missing or out of date: the virtualenv with
/// componentize-py (`plugins/python/requirements.txt`), and componentize-js
/// (`plugins/js/package.json` and its lock file), with node and npm from
/// Debian's packages when the machine has none.
pub fn toolchains(root: &Path, target: &Path) -> anyhow::Result<Toolchains> {
    let lang = target.join("lang");
    std::fs::create_dir_all(&lang)?;

    let venv = lang.join("venv");
    let requirements = root.join("plugins/python/requirements.txt");
    let stamp = venv.join("docket-requirements.txt");
    if !same_contents(&requirements, &stamp) {
        if !venv.join("bin/python").exists() {
            let created = Command::new("python3")
                .args(["-m", "venv"])
                .arg(&venv)
                .status();
            if !created.is_ok_and(|status| status.success()) {
                // Debian's python3 lacks the venv module until python3-venv
                // is installed.
                apt_install(&["python3", "python3-venv"])?;
                let _ = std::fs::remove_dir_all(&venv);
                run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
            }
        }
        run(Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(&requirements))?;
        std::fs::copy(&requirements, &stamp)?;
    }

    let node = lang.join("node");
    std::fs::create_dir_all(&node)?;
    let manifest = root.join("plugins/js/package.json");
    let lock = root.join("plugins/js/package-lock.json");
    if !same_contents(&manifest, &node.join("package.json"))
        || !same_contents(&lock, &node.join("package-lock.json"))
        || !node.join("node_modules/.bin/componentize-js").exists()
    {
        if !found("npm") || !found("node") {
            apt_install(&["nodejs", "npm"])?;
        }
        std::fs::copy(&manifest, node.join("package.json"))?;
        std::fs::copy(&lock, node.join("package-lock.json"))?;
        // `npm install` rather than `npm ci`: npm 9 to 11 find a lock file
        // "out of sync" when it lists platform-specific optional packages of
        // other platforms, as componentize-js's dependencies do; with the
        // lock present, install still takes the versions it pins.
        run(Command::new("npm")
            .current_dir(&node)
            .args(["install", "--no-audit", "--no-fund"]))?;
    }
    Ok(Toolchains {
        componentize_py: venv.join("bin/componentize-py"),
        componentize_js: node.join("node_modules/.bin/componentize-js"),
    })
}

/// Builds the plugin in `dir` into `out/<dir name>.wasm`, unless that file
/// is newer than the plugin's files, the contract and the toolchain.
pub fn build(
    tools: &Toolchains,
    lang: Lang,
    root: &Path,
    target: &Path,
    dir: &Path,
    out: &Path,
) -> anyhow::Result<()> {
    let name = dir
        .file_name()
        .expect("a plugin directory has a name")
        .to_string_lossy()
        .into_owned();
    std::fs::create_dir_all(out)?;
    let wasm = out.join(format!("{name}.wasm"));
    let contract = root.join("wit");
    let tool = match lang {
        Lang::Python => &tools.componentize_py,
        Lang::Js => &tools.componentize_js,
    };
    if is_fresh(&wasm, &[dir, &contract, tool])? {
        eprintln!("{} is up to date", wasm.display());
        return Ok(());
    }
    let world = format!("docket-plugins:{name}/{name}");
    match lang {
        Lang::Python => run(Command::new(tool)
            .current_dir(dir)
            .arg("-d")
            .arg(&contract)
            .args([
                "-d",
                "wit",
                "-w",
                &world,
                "componentize",
                "--stub-wasi",
                "app",
                "-o",
            ])
            .arg(&wasm)),
        Lang::Js => {
            // componentize-js takes one WIT directory: the plugin's world
            // with the contract beside it as a dependency, assembled here
            // rather than kept as a copy (or a symlink, which its WIT reader
            // does not follow) in the source tree.
            let staged = target.join("lang/wit").join(&name);
            let _ = std::fs::remove_dir_all(&staged);
            let deps = staged.join("deps/docket-step");
            std::fs::create_dir_all(&deps)?;
            std::fs::copy(dir.join("wit/world.wit"), staged.join("world.wit"))?;
            for entry in std::fs::read_dir(&contract)? {
                let path = entry?.path();
                if path.extension().is_some_and(|ext| ext == "wit") {
                    std::fs::copy(&path, deps.join(path.file_name().expect("a file name")))?;
                }
            }
            run(Command::new(tool)
                .current_dir(dir)
                .arg("app.js")
                .arg("--wit")
                .arg(&staged)
                .args(["--world-name", &world, "--disable"])
                .args(["stdio", "random", "clocks", "http", "fetch-event"])
                .arg("--out")
                .arg(&wasm))
        }
    }
}

fn same_contents(a: &Path, b: &Path) -> bool {
    match (std::fs::read(a), std::fs::read(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn found(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success())
}

pub(crate) fn apt_install(packages: &[&str]) -> anyhow::Result<()> {
    if !found("apt-get") {
        bail!(
            "`{}` missing and there is no apt-get to install them: install them and run again",
            packages.join("`, `")
        );
    }
    run(Command::new("apt-get").arg("update"))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends"])
        .args(packages))
}

/// Whether `output` exists and is newer than every file under `inputs`.
fn is_fresh(output: &Path, inputs: &[&Path]) -> anyhow::Result<bool> {
    let Ok(built) = std::fs::metadata(output).and_then(|m| m.modified()) else {
        return Ok(false);
    };
    let mut newest = SystemTime::UNIX_EPOCH;
    for input in inputs {
        newest = newest.max(newest_in(input)?);
    }
    Ok(built > newest)
}

fn newest_in(path: &Path) -> anyhow::Result<SystemTime> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("failed to read `{}`", path.display()))?;
    let mut newest = meta.modified()?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            let path = entry?.path();
            // Python's byte-code cache changes on every import.
            if path.file_name().is_some_and(|name| name == "__pycache__") {
                continue;
            }
            newest = newest.max(newest_in(&path)?);
        }
    }
    Ok(newest)
}
