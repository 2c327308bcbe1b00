//! A catalogue in a directory (a shared drive, or a folder carried into an
//! air-gapped site):
//!
//! ```text
//! <root>/blobs/sha256/<hex>              manifests and components, by content
//! <root>/plugins/<name>/<version>.json   a Release: digests, signatures, yanked
//! ```

use super::package::parse;
use super::{Catalog, CatalogError, Manifest, Package, Refusal, Release, publishable_version};
use crate::plugin::PluginDigest;
use std::path::{Path, PathBuf};

/// A catalogue in a directory.
#[derive(Clone, Debug)]
pub struct DirectoryCatalog {
    root: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CatalogError + '_ {
    move |source| CatalogError::Io {
        path: path.to_owned(),
        source,
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), CatalogError> {
    crate::files::write_atomically(path, bytes).map_err(io(path))
}

impl DirectoryCatalog {
    /// The catalogue at `root`, created if absent.
    ///
    /// # Errors
    ///
    /// If the directory cannot be created.
    pub fn open(root: impl Into<PathBuf>) -> Result<DirectoryCatalog, CatalogError> {
        let root = root.into();
        for dir in [root.join("blobs/sha256"), root.join("plugins")] {
            std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        }
        Ok(DirectoryCatalog { root })
    }

    /// Where the catalogue is.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob with sha256 `hex` is stored.
    pub fn blob_path(&self, hex: &str) -> PathBuf {
        self.root.join("blobs/sha256").join(hex)
    }

    fn release_path(&self, name: &str, version: &semver::Version) -> PathBuf {
        self.root
            .join("plugins")
            .join(name)
            .join(format!("{version}.json"))
    }

    fn read_release(
        &self,
        name: &str,
        version: &semver::Version,
    ) -> Result<Option<Release>, CatalogError> {
        let path = self.release_path(name, version);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(parse(&path, &bytes)?)),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(CatalogError::Io { path, source }),
        }
    }

    /// The release of `name@version`, which must exist.
    fn release(&self, name: &str, version: &semver::Version) -> Result<Release, CatalogError> {
        self.read_release(name, version)?
            .ok_or_else(|| Refusal::missing_version(name, version).into())
    }

    fn write_release(
        &self,
        name: &str,
        version: &semver::Version,
        release: &Release,
    ) -> Result<(), CatalogError> {
        let mut bytes = serde_json::to_vec_pretty(release).unwrap_or_default();
        bytes.push(b'\n');
        write_atomically(&self.release_path(name, version), &bytes)
    }

    /// Stores `bytes` under their sha256, once.
    fn put_blob(&self, bytes: &[u8]) -> Result<String, CatalogError> {
        let hex = PluginDigest::of(bytes).to_hex();
        let path = self.blob_path(&hex);
        if !path.exists() {
            write_atomically(&path, bytes)?;
        }
        Ok(hex)
    }

    /// The blob `hex`, checked against its name.
    fn get_blob(&self, hex: &str, plugin: &str, what: &str) -> Result<Vec<u8>, CatalogError> {
        let path = self.blob_path(hex);
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        let actual = PluginDigest::of(&bytes).to_hex();
        if actual != hex {
            return Err(Refusal::DigestMismatch {
                plugin: plugin.to_owned(),
                what: what.to_owned(),
                expected: hex.to_owned(),
                actual,
            }
            .into());
        }
        Ok(bytes)
    }
}

impl Catalog for DirectoryCatalog {
    fn publish(&self, package: &Package) -> Result<Release, CatalogError> {
        let manifest = &package.manifest;
        let version = publishable_version(manifest)?;
        let release = Release::published(self.read_release(&manifest.name, &version)?, package)?;
        self.put_blob(&package.component)?;
        self.put_blob(&package.manifest_bytes)?;
        self.write_release(&manifest.name, &version, &release)?;
        Ok(release)
    }

    fn names(&self) -> Result<Vec<String>, CatalogError> {
        let dir = self.root.join("plugins");
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let entry = entry.map_err(io(&dir))?;
            if entry.path().is_dir()
                && let Some(name) = entry.file_name().to_str()
            {
                names.push(name.to_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    fn releases(&self, name: &str) -> Result<Vec<(semver::Version, Release)>, CatalogError> {
        let dir = self.root.join("plugins").join(name);
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(CatalogError::Io { path: dir, source }),
        };
        let mut releases = Vec::new();
        for entry in entries {
            let path = entry.map_err(io(&dir))?.path();
            let Some(version) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(|v| semver::Version::parse(v).ok())
            else {
                continue;
            };
            let bytes = std::fs::read(&path).map_err(io(&path))?;
            releases.push((version, parse(&path, &bytes)?));
        }
        releases.sort_by(|(a, _), (b, _)| a.cmp(b));
        Ok(releases)
    }

    fn manifest(&self, name: &str, version: &semver::Version) -> Result<Manifest, CatalogError> {
        let release = self.release(name, version)?;
        let bytes = self.get_blob(
            &release.manifest,
            &format!("{name}@{version}"),
            "the manifest",
        )?;
        parse(&self.blob_path(&release.manifest), &bytes)
    }

    fn fetch(&self, name: &str, version: &semver::Version) -> Result<Package, CatalogError> {
        let plugin = format!("{name}@{version}");
        let release = self.release(name, version)?;
        let manifest_bytes = self.get_blob(&release.manifest, &plugin, "the manifest")?;
        let manifest = parse(&self.blob_path(&release.manifest), &manifest_bytes)?;
        // The component is checked against the manifest by `verify`; read
        // it as it is, so that a changed byte is reported there.
        let path = self.blob_path(&release.component);
        let component = std::fs::read(&path).map_err(io(&path))?;
        Ok(Package {
            manifest,
            manifest_bytes,
            component,
            signatures: release.signatures,
        })
    }

    fn yank(
        &self,
        name: &str,
        version: &semver::Version,
        reason: &str,
    ) -> Result<(), CatalogError> {
        let mut release = self.release(name, version)?;
        release.yanked = Some(reason.to_owned());
        self.write_release(name, version, &release)
    }
}
