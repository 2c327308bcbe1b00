//! `Directory`: the plugins in one folder of `.wasm` files, indexed by name
//! and version, and what the workflow language needs to know about them.
//!
//! Every plugin is loaded with every capability granted, so that `describe`
//! and `check-config` work whatever it imports; the engine reloads a
//! plugin from [`Directory::bytes`] with a step's own grants before running
//! it.

use super::grants::{Capability, Grants};
use super::limits::Limits;
use super::plugin::{ConfigError, LoadError, Plugin};
use super::runtime::Runtime;
use crate::Json;
use crate::store::Pin;
use crate::workflow::{PluginFacts, PluginProblem};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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

/// The plugins of one directory, by name and version.
#[derive(Clone)]
pub struct Directory {
    dir: PathBuf,
    /// Name -> versions, lowest first.
    plugins: BTreeMap<String, Vec<Entry>>,
}

#[derive(Clone)]
struct Entry {
    version: semver::Version,
    plugin: Plugin,
    path: PathBuf,
    bytes: Arc<[u8]>,
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
    /// Loads every `*.wasm` file in `dir` (not its subdirectories).
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
        let grants = Capability::ALL
            .into_iter()
            .fold(Grants::none(), Grants::grant);
        let mut plugins: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
        for path in paths {
            let bytes: Arc<[u8]> = std::fs::read(&path)
                .map_err(|source| DirectoryError::Load {
                    path: path.clone(),
                    source: LoadError::Read {
                        path: path.clone(),
                        source,
                    },
                })?
                .into();
            let plugin =
                runtime
                    .load(&bytes, grants.clone())
                    .map_err(|source| DirectoryError::Load {
                        path: path.clone(),
                        source,
                    })?;
            let info = plugin.info();
            let version =
                semver::Version::parse(&info.version).map_err(|_| DirectoryError::BadVersion {
                    path: path.clone(),
                    version: info.version.clone(),
                })?;
            let entries = plugins.entry(info.name.clone()).or_default();
            if let Some(other) = entries.iter().find(|e| e.version == version) {
                return Err(DirectoryError::Duplicate {
                    name: info.name.clone(),
                    version: version.to_string(),
                    first: other.path.clone(),
                    second: path,
                });
            }
            entries.push(Entry {
                version,
                plugin,
                path,
                bytes,
            });
            entries.sort_by(|a, b| a.version.cmp(&b.version));
        }
        Ok(Directory {
            dir: dir.to_owned(),
            plugins,
        })
    }

    /// The directory the plugins came from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every plugin, by name, then version.
    pub fn plugins(&self) -> impl Iterator<Item = &Plugin> {
        self.plugins.values().flatten().map(|e| &e.plugin)
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
    /// loaded with every capability granted.
    pub fn find(&self, name: &str, version_req: &str) -> Option<&Plugin> {
        self.entry(name, version_req).map(|e| &e.plugin)
    }

    /// The component bytes of what [`Directory::find`] finds, to load it
    /// again with a step's own grants.
    pub fn bytes(&self, name: &str, version_req: &str) -> Option<&[u8]> {
        self.entry(name, version_req).map(|e| &*e.bytes)
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
    /// [`PluginProblem::Unknown`] or [`PluginProblem::UnknownVersion`].
    pub fn resolve(&self, name: &str, requirement: &str) -> Result<&Plugin, PluginProblem> {
        self.find(name, requirement)
            .ok_or_else(|| self.missing(name, requirement))
    }

    /// Exactly the plugin `pin` names: its version, with its bytes.
    ///
    /// # Errors
    ///
    /// [`PluginProblem::Unavailable`] when the directory no longer has
    /// that version, or its file now has other bytes.
    pub fn pinned(&self, pin: &Pin) -> Result<&Plugin, PluginProblem> {
        let found = self.find(&pin.plugin, &format!("={}", pin.version));
        match found {
            Some(plugin) if plugin.digest().to_hex() == pin.sha256 => Ok(plugin),
            Some(plugin) => Err(PluginProblem::Unavailable(format!(
                "`{}@{}` was deployed with sha256 {}, but its file in `{}` now has sha256 {}; deploy a new version of the workflow to use the new build",
                pin.plugin,
                pin.version,
                pin.sha256,
                self.dir.display(),
                plugin.digest().to_hex()
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
