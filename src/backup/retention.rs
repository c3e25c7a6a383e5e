//! Retention: `--keep N` deletes older complete archives of the same database and server in
//! the new archive's directory. It reads only each archive's header, and deletes nothing it
//! cannot positively identify as one of ours.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::archive::{self, Manifest};

/// Deletes all but the newest `keep` complete archives of the same database in `latest`'s
/// directory. Only files whose header says they are of this database and server count;
/// `.partial` files and anything unreadable are never touched.
pub fn prune(latest: &Path, manifest: &Manifest, keep: usize) -> anyhow::Result<Vec<PathBuf>> {
    let dir = latest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut same = Vec::new();
    for e in fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let e = e.with_context(|| format!("cannot list {}", dir.display()))?;
        let path = e.path();
        let is_archive = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(".tar.gz"));
        if !is_archive || !e.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        if let Some(h) = read_header(&path) {
            if h.database == manifest.database && h.server == manifest.server {
                same.push((h.created_at, path));
            }
        }
    }
    same.sort();
    let excess = same.len().saturating_sub(keep);
    let mut removed = Vec::new();
    for (_, path) in same.into_iter().take(excess) {
        if path == latest {
            continue;
        }
        fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
        removed.push(path);
    }
    Ok(removed)
}

/// The header of an archive, if it is one of ours.
pub fn read_header(path: &Path) -> Option<Manifest> {
    let file = File::open(path).ok()?;
    let mut tar = tar::Archive::new(flate2::read::MultiGzDecoder::new(file));
    let mut entry = tar.entries().ok()?.next()?.ok()?;
    if entry.path_bytes().as_ref() != archive::HEADER.as_bytes()
        || entry.header().size().ok()? > archive::MAX_METADATA_BYTES
    {
        return None;
    }
    serde_json::from_reader(&mut entry).ok()
}
