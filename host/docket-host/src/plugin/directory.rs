//! `Directory`: the plugins in one folder of `.wasm` files, indexed by name
//! and version, and what the workflow language needs to know about them.
//!
//! Every plugin is loaded with every capability granted, so that `describe`
//! and `check-config` work whatever it imports; the engine reloads a
//! plugin from [`Directory::bytes`] with a step's own grants before running
//! it.
//!
//! Plugins are loaded when first asked for, not when the directory is
//! opened: a directory may hold interpreter plugins (Python, JavaScript)
//! whose compiled code and memory image take tens of MiB, which a host
//! whose workflows do not use them should not pay for. Opening reads and
//! hashes every file and takes its name and version from the runtime's disk
//! cache, which records them after the first successful load of the same
//! bytes; a file with no such record is loaded then, so a broken file is
//! still refused when the directory is opened.

use super::grants::{Capability, Grants};
use super::limits::Limits;
use super::plugin::{ConfigError, LoadError, Plugin};
use super::runtime::{Identified, Runtime};
use super::types::PluginDigest;
use crate::Json;
use crate::store::Pin;
use crate::workflow::{PluginFacts, PluginProblem};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// Why a plugin directory cannot be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DirectoryError {
    /// The directory could not be listed.
    #[error("failed to read the plugin directory `{}`", path.display())]
    Read {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file in it is not a loadable plugin.
    #[error("failed to load plugin `{}`", path.display())]
    Load {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: LoadError,
    },
    /// A plugin's `describe` gives a version that is not semver.
    #[error("plugin `{}` gives its version as `{version}`, which is not semver", path.display())]
    BadVersion {
        /// The file.
        path: PathBuf,
        /// The version it gave.
        version: String,
    },
    /// Two files hold the same plugin name and version.
    #[error(
        "`{}` and `{}` are both plugin `{name}` version `{version}`",
        first.display(),
        second.display()
    )]
    Duplicate {
        /// The plugin's name.
        name: String,
        /// Its version.
        version: String,
        /// The first file.
        first: PathBuf,
        /// The other file.
        second: PathBuf,
    },
}

/// The plugins of one directory, by name and version. Clones share the
/// plugins loaded so far.
#[derive(Clone)]
pub struct Directory {
    dir: PathBuf,
    runtime: Runtime,
    /// Name -> versions, lowest first.
    plugins: BTreeMap<String, Vec<Entry>>,
}

#[derive(Clone)]
struct Entry {
    name: String,
    version: semver::Version,
    path: PathBuf,
    /// The sha256 of the file when the directory was opened.
    digest: PluginDigest,
    /// The file's bytes, read again on first use and checked against
    /// `digest`.
    bytes: Arc<OnceLock<Result<Arc<[u8]>, String>>>,
    /// The plugin, loaded on first use; the error says why it could not be.
    plugin: Arc<OnceLock<Result<Plugin, String>>>,
}

impl Entry {
    fn bytes(&self) -> Result<&[u8], &str> {
        let read = || {
            let bytes = std::fs::read(&self.path)
                .map_err(|err| format!("failed to read `{}`: {err}", self.path.display()))?;
            if PluginDigest::of(&bytes) != self.digest {
                return Err(format!(
                    "`{}` changed since the plugin directory was opened (it had sha256 {})",
                    self.path.display(),
                    self.digest
                ));
            }
            Ok(bytes.into())
        };
        match self.bytes.get_or_init(read) {
            Ok(bytes) => Ok(bytes),
            Err(reason) => Err(reason),
        }
    }

    fn plugin(&self, runtime: &Runtime) -> Result<&Plugin, &str> {
        let load = || {
            let bytes = self.bytes().map_err(str::to_owned)?;
            let all = Capability::ALL
                .into_iter()
                .fold(Grants::none(), Grants::grant);
            let plugin = runtime
                .load(bytes, all)
                .map_err(|err| format!("failed to load plugin `{}`: {err}", self.path.display()))?;
            if plugin.info().name != self.name || plugin.info().version != self.version.to_string()
            {
                return Err(format!(
                    "`{}` was indexed as `{}@{}` but describes itself as `{}@{}`",
                    self.path.display(),
                    self.name,
                    self.version,
                    plugin.info().name,
                    plugin.info().version
                ));
            }
            Ok(plugin)
        };
        let res = self
            .plugin
            .get_or_init(|| load().inspect_err(|reason| tracing::error!("{reason}")));
        match res {
            Ok(plugin) => Ok(plugin),
            Err(reason) => Err(reason),
        }
    }
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plugins: Vec<String> = self
            .plugins
            .iter()
            .flat_map(|(name, entries)| {
                entries.iter().map(move |e| format!("{name}@{}", e.version))
            })
            .collect();
        f.debug_struct("Directory")
            .field("dir", &self.dir)
            .field("plugins", &plugins)
            .finish()
    }
}

impl Directory {
    /// Indexes every `*.wasm` file in `dir` (not its subdirectories) by
    /// plugin name and version. A plugin is loaded when it is first asked
    /// for; one whose name and version the runtime's disk cache does not
    /// know yet is loaded now, to learn them.
    ///
    /// # Errors
    ///
    /// A [`DirectoryError`] if the directory cannot be read, a file is not
    /// a plugin, gives a version that is not semver, or repeats another's
    /// name and version.
    pub fn open(runtime: &Runtime, dir: impl AsRef<Path>) -> Result<Directory, DirectoryError> {
        let dir = dir.as_ref();
        let read = |source| DirectoryError::Read {
            path: dir.to_owned(),
            source,
        };
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(read)? {
            let path = entry.map_err(read)?.path();
            if path.extension().is_some_and(|ext| ext == "wasm") && path.is_file() {
                paths.push(path);
            }
        }
        paths.sort();
        let mut plugins: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
        for path in paths {
            let load_error = |source| DirectoryError::Load {
                path: path.clone(),
                source,
            };
            let bytes = std::fs::read(&path).map_err(|source| {
                load_error(LoadError::Read {
                    path: path.clone(),
                    source,
                })
            })?;
            let digest = PluginDigest::of(&bytes);
            let (name, version, loaded) =
                match runtime.identify(&bytes, &digest).map_err(load_error)? {
                    Identified::Recorded { name, version } => (name, version, None),
                    Identified::Loaded(plugin) => (
                        plugin.info().name.clone(),
                        plugin.info().version.clone(),
                        Some(plugin),
                    ),
                };
            let version =
                semver::Version::parse(&version).map_err(|_| DirectoryError::BadVersion {
                    path: path.clone(),
                    version: version.clone(),
                })?;
            let entries = plugins.entry(name.clone()).or_default();
            if let Some(other) = entries.iter().find(|e| e.version == version) {
                return Err(DirectoryError::Duplicate {
                    name,
                    version: version.to_string(),
                    first: other.path.clone(),
                    second: path,
                });
            }
            let entry = Entry {
                name,
                version,
                path,
                digest,
                bytes: Arc::new(OnceLock::new()),
                plugin: Arc::new(OnceLock::new()),
            };
            match loaded {
                // Loading it again from the disk cache takes milliseconds:
                // let go of it until a workflow needs it.
                Some(_) if runtime.has_disk_cache() => runtime.forget(&digest),
                // Without a disk cache a second load compiles again: keep it.
                Some(plugin) => {
                    let _ = entry.bytes.set(Ok(bytes.into()));
                    let _ = entry.plugin.set(Ok(plugin));
                }
                None => {}
            }
            entries.push(entry);
            entries.sort_by(|a, b| a.version.cmp(&b.version));
        }
        Ok(Directory {
            dir: dir.to_owned(),
            runtime: runtime.clone(),
            plugins,
        })
    }

    /// The directory the plugins came from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every plugin, by name, then version, loading each; one that cannot
    /// be loaded any more (its file changed) is left out.
    pub fn plugins(&self) -> impl Iterator<Item = &Plugin> {
        self.plugins
            .values()
            .flatten()
            .filter_map(|e| e.plugin(&self.runtime).ok())
    }

    /// The versions of plugin `name`, lowest first.
    pub fn versions(&self, name: &str) -> Vec<semver::Version> {
        self.plugins
            .get(name)
            .map(|entries| entries.iter().map(|e| e.version.clone()).collect())
            .unwrap_or_default()
    }

    fn entry(&self, name: &str, version_req: &str) -> Option<&Entry> {
        let req = match version_req.trim() {
            "" | "*" => semver::VersionReq::STAR,
            req => semver::VersionReq::parse(req).ok()?,
        };
        self.plugins
            .get(name)?
            .iter()
            .rev()
            .find(|e| req.matches(&e.version))
    }

    /// The highest version of plugin `name` that matches the semver
    /// requirement `version_req` (`*` for any; `0.1` means `^0.1`),
    /// loaded with every capability granted. `None` also when its file
    /// changed since the directory was opened ([`Directory::resolve`] says so).
    pub fn find(&self, name: &str, version_req: &str) -> Option<&Plugin> {
        self.entry(name, version_req)?.plugin(&self.runtime).ok()
    }

    /// The component bytes of what [`Directory::find`] finds, to load it
    /// again with a step's own grants.
    pub fn bytes(&self, name: &str, version_req: &str) -> Option<&[u8]> {
        self.entry(name, version_req)?.bytes().ok()
    }

    /// The file of what [`Directory::find`] finds.
    pub fn path(&self, name: &str, version_req: &str) -> Option<&Path> {
        self.entry(name, version_req).map(|e| e.path.as_path())
    }
}

impl Directory {
    /// Why nothing matches `name` at `requirement`, naming what there is.
    fn missing(&self, name: &str, requirement: &str) -> PluginProblem {
        let versions = self.versions(name);
        if versions.is_empty() {
            let known: Vec<String> = self.plugins.keys().map(|k| format!("`{k}`")).collect();
            return PluginProblem::Unknown(if known.is_empty() {
                "there is no plugin of that name (there are no plugins at all)".to_owned()
            } else {
                format!(
                    "there is no plugin of that name (there are {})",
                    known.join(", ")
                )
            });
        }
        let versions: Vec<String> = versions.iter().map(|v| format!("`{v}`")).collect();
        PluginProblem::UnknownVersion(format!(
            "no version of plugin `{name}` matches `{requirement}` (there {} {})",
            if versions.len() == 1 { "is" } else { "are" },
            versions.join(", ")
        ))
    }

    /// The plugin `name` matching `requirement`, or why there is none.
    ///
    /// # Errors
    ///
    /// [`PluginProblem::Unknown`] or [`PluginProblem::UnknownVersion`];
    /// [`PluginProblem::Unavailable`] if its file changed since the
    /// directory was opened.
    pub fn resolve(&self, name: &str, requirement: &str) -> Result<&Plugin, PluginProblem> {
        let entry = self
            .entry(name, requirement)
            .ok_or_else(|| self.missing(name, requirement))?;
        entry
            .plugin(&self.runtime)
            .map_err(|reason| PluginProblem::Unavailable(reason.to_owned()))
    }

    /// Exactly the plugin `pin` names: its version, with its bytes.
    ///
    /// # Errors
    ///
    /// [`PluginProblem::Unavailable`] when the directory no longer has
    /// that version, or its file now has other bytes.
    pub fn pinned(&self, pin: &Pin) -> Result<&Plugin, PluginProblem> {
        let found = self.entry(&pin.plugin, &format!("={}", pin.version));
        match found {
            Some(entry) if entry.digest.to_hex() == pin.sha256 => entry
                .plugin(&self.runtime)
                .map_err(|reason| PluginProblem::Unavailable(reason.to_owned())),
            Some(entry) => Err(PluginProblem::Unavailable(format!(
                "`{}@{}` was deployed with sha256 {}, but its file in `{}` now has sha256 {}; deploy a new version of the workflow to use the new build",
                pin.plugin,
                pin.version,
                pin.sha256,
                self.dir.display(),
                entry.digest
            ))),
            None => Err(PluginProblem::Unavailable(format!(
                "`{}@{}` (sha256 {}) was deployed, but `{}` no longer has that version",
                pin.plugin,
                pin.version,
                pin.sha256,
                self.dir.display()
            ))),
        }
    }
}

/// The routes `plugin` can take with `config`, or why the config is wrong.
///
/// # Errors
///
/// [`PluginProblem::BadConfig`].
pub fn routes_for(plugin: &Plugin, config: &Json) -> Result<Vec<String>, PluginProblem> {
    plugin
        .check_config(config, &Limits::default())
        .map_err(|err| match err {
            ConfigError::Invalid(reason) => PluginProblem::BadConfig(reason),
            ConfigError::Failed(failure) => {
                PluginProblem::BadConfig(format!("checking it failed: {failure}"))
            }
        })
}

impl PluginFacts for Directory {
    fn routes(
        &self,
        name: &str,
        version: &str,
        config: &Json,
    ) -> Result<Vec<String>, PluginProblem> {
        routes_for(self.resolve(name, version)?, config)
    }
}
