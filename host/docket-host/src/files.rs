//! Writing files so that readers see the old content or the new, never a
//! part: archives, catalogue entries.

use std::io::Write as _;
use std::path::Path;

/// Writes `bytes` to `path` whole or not at all: to a temporary file beside
/// it, synced, then renamed over it. Creates the directory if needed.
///
/// # Errors
///
/// If the directory cannot be created or the file written.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|err| err.error)?;
    Ok(())
}
