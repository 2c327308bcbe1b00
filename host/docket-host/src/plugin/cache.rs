//! The on-disk cache of compiled components.
//!
//! Compiling a component takes about a hundred milliseconds; loading the
//! compiled artifact takes a fraction of one. Artifacts are files named by
//! the component's sha256 and a hash of the engine configuration, so a
//! changed component or a changed engine never meets a stale artifact.
//!
//! Beside each artifact the cache keeps the plugin's identity (name and
//! version) once a load with every capability granted succeeded, so that a
//! plugin directory can index its files without loading the plugins no
//! workflow uses.

use super::types::PluginDigest;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

pub(crate) struct ArtifactCache {
    dir: PathBuf,
    engine_key: String,
}

impl ArtifactCache {
    pub(crate) fn new(dir: PathBuf, engine: &wasmtime::Engine) -> ArtifactCache {
        let mut hasher = Sha256Hasher(sha2::Sha256::default());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let digest = sha2::Digest::finalize(hasher.0);
        ArtifactCache {
            dir,
            engine_key: hex::encode(&digest[..8]),
        }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, digest: &PluginDigest) -> PathBuf {
        self.dir
            .join(format!("{}-{}.cwasm", digest.to_hex(), self.engine_key))
    }

    /// The cached artifact of `digest`, if there is a usable one.
    pub(crate) fn load(
        &self,
        engine: &wasmtime::Engine,
        digest: &PluginDigest,
    ) -> Option<wasmtime::component::Component> {
        self.load_path(engine, self.path(digest))
    }

    /// Writes the artifact of `digest`; a failure only costs a later compile.
    pub(crate) fn store(&self, digest: &PluginDigest, component: &wasmtime::component::Component) {
        self.store_path(self.path(digest), component);
    }

    /// Where the snapshot of `digest` prepared for a config is kept;
    /// `config_key` is a hash of the config text (see `super::prepared`).
    fn prepared_path(&self, digest: &PluginDigest, config_key: &str) -> PathBuf {
        self.dir.join(format!(
            "{}-{}-{}.prepared.cwasm",
            digest.to_hex(),
            config_key,
            self.engine_key
        ))
    }

    /// The compiled snapshot of `digest` prepared for a config, if cached.
    pub(crate) fn load_prepared(
        &self,
        engine: &wasmtime::Engine,
        digest: &PluginDigest,
        config_key: &str,
    ) -> Option<wasmtime::component::Component> {
        self.load_path(engine, self.prepared_path(digest, config_key))
    }

    /// Keeps the compiled snapshot of `digest` prepared for a config.
    pub(crate) fn store_prepared(
        &self,
        digest: &PluginDigest,
        config_key: &str,
        component: &wasmtime::component::Component,
    ) {
        self.store_path(self.prepared_path(digest, config_key), component);
    }

    fn load_path(
        &self,
        engine: &wasmtime::Engine,
        path: PathBuf,
    ) -> Option<wasmtime::component::Component> {
        if !path.exists() {
            return None;
        }
        #[allow(
            unsafe_code,
            reason = "loading a precompiled artifact is unsafe in wasmtime's API"
        )]
        // SAFETY: `deserialize_file` trusts the file to be an artifact that
        // wasmtime produced. Only this cache writes into its directory, by
        // an atomic rename, under a name derived from the source's sha256
        // and the engine configuration; wasmtime checks the artifact's
        // header (version and configuration) before using it. The directory
        // must be as trusted as the docket binary itself.
        let loaded = unsafe { wasmtime::component::Component::deserialize_file(engine, &path) };
        match loaded {
            Ok(component) => Some(component),
            Err(err) => {
                tracing::warn!(path = %path.display(), "ignoring unusable compiled artifact: {err:#}");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    fn store_path(&self, path: PathBuf, component: &wasmtime::component::Component) {
        let write = || -> std::io::Result<()> {
            let bytes = component.serialize().map_err(std::io::Error::other)?;
            std::fs::create_dir_all(&self.dir)?;
            let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
            std::io::Write::write_all(&mut tmp, &bytes)?;
            // Durable before it gets its final name: a crash never leaves a
            // truncated artifact where a whole one is expected.
            tmp.as_file().sync_all()?;
            tmp.persist(&path).map_err(|err| err.error)?;
            Ok(())
        };
        if let Err(err) = write() {
            tracing::warn!(dir = %self.dir.display(), "could not cache a compiled plugin: {err}");
        }
    }
}

impl ArtifactCache {
    fn identity_path(&self, digest: &PluginDigest) -> PathBuf {
        self.dir
            .join(format!("{}-{}.identity", digest.to_hex(), self.engine_key))
    }

    /// The name and version a load of `digest` gave before, if one was
    /// recorded by this build of docket on this engine configuration.
    pub(crate) fn identity(&self, digest: &PluginDigest) -> Option<(String, String)> {
        let text = std::fs::read_to_string(self.identity_path(digest)).ok()?;
        let mut lines = text.lines();
        let (format, name, version) = (lines.next()?, lines.next()?, lines.next()?);
        (format == IDENTITY_FORMAT && lines.next().is_none())
            .then(|| (name.to_owned(), version.to_owned()))
    }

    /// Records that `digest` loads, with every capability granted, as
    /// plugin `name` at `version`; a failure only costs a later load.
    pub(crate) fn store_identity(&self, digest: &PluginDigest, name: &str, version: &str) {
        if name.contains('\n') || version.contains('\n') {
            return;
        }
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(&self.dir)?;
            let mut tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
            std::io::Write::write_all(
                &mut tmp,
                format!("{IDENTITY_FORMAT}\n{name}\n{version}\n").as_bytes(),
            )?;
            tmp.persist(self.identity_path(digest))
                .map_err(|err| err.error)?;
            Ok(())
        };
        if let Err(err) = write() {
            tracing::warn!(dir = %self.dir.display(), "could not record a plugin's identity: {err}");
        }
    }
}

/// The first line of an identity record: the docket build that wrote it,
/// since what a load accepts may change between builds even on the same
/// engine.
const IDENTITY_FORMAT: &str = concat!(
    "docket-plugin-identity/1 docket ",
    env!("CARGO_PKG_VERSION")
);

/// Feeds `Hash` output into sha256, for a key that is stable across runs.
struct Sha256Hasher(sha2::Sha256);

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        sha2::Digest::update(&mut self.0, bytes);
    }

    fn finish(&self) -> u64 {
        unreachable!("only the sha256 of the written bytes is used")
    }
}
