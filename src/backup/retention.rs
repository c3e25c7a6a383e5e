//! Retention: `--keep N` and `--keep-within DURATION` delete older archives of the same
//! database and server in the new archive's directory.
//!
//! An archive is a candidate only if all of these hold: jobdbctl chose its name
//! (`<stem>-<UTC time>.tar.gz`, see `destination::is_own_name`), its header says
//! `"retention": "managed"` (an archive the operator named, `destroy --backup-first` wrote,
//! or that predates the mark is pinned), it is a regular file owned by this user (another
//! user's files are not ours to count or delete: a forged "newer" archive must not push ours
//! out), and it reads completely like `verify` reads it. A candidate is kept if it is among
//! the newest N (by `created_at`) or newer than DURATION; when both are given either rule
//! keeps it, as pgBackRest and restic combine rules. The new archive is always kept. A
//! damaged archive is neither counted nor deleted; it is reported.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};

use super::destination::is_own_name;
use crate::archive::reader::{self, Discard};
use crate::archive::{self, Manifest, Retention};

/// Which archives survive; prunes nothing unless at least one rule is set.
pub struct Policy {
    pub keep: Option<usize>,
    pub within: Option<Duration>,
}

impl Policy {
    pub fn prunes(&self) -> bool {
        self.keep.is_some() || self.within.is_some()
    }
}

#[derive(Debug, Default)]
pub struct Pruned {
    pub removed: Vec<PathBuf>,
    /// Archives of ours by name that did not read completely, and why; kept, not counted.
    pub damaged: Vec<(PathBuf, String)>,
    /// Archives of this database without a retention mark (written before it existed).
    pub unmarked: usize,
}

struct Candidate {
    created_at: DateTime<Utc>,
    path: PathBuf,
    /// Device and inode when read, so a name swapped since is not deleted.
    identity: Option<(u64, u64)>,
}

/// Prunes `latest`'s directory as `policy` says; `manifest` is `latest`'s, which counts as
/// complete (it was just written) and is never deleted.
pub fn prune(latest: &Path, manifest: &Manifest, policy: &Policy) -> anyhow::Result<Pruned> {
    let dir = latest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // SAFETY: geteuid cannot fail.
    let euid = unsafe { libc::geteuid() };
    let mut pruned = Pruned::default();
    let mut candidates = Vec::new();
    if manifest.retention == Some(Retention::Managed) {
        candidates.push(Candidate {
            created_at: manifest.created_at,
            path: latest.to_path_buf(),
            identity: None,
        });
    }
    for e in fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let e = e.with_context(|| format!("cannot list {}", dir.display()))?;
        let path = e.path();
        if path == latest || !e.file_name().to_str().is_some_and(is_own_name) {
            continue;
        }
        // DirEntry::metadata does not follow links.
        let Ok(meta) = e.metadata() else { continue };
        if !meta.is_file() || meta.uid() != euid {
            continue;
        }
        let Ok(file) = open_nofollow(&path) else {
            continue;
        };
        let Some(header) = read_header(&file) else {
            pruned.damaged.push((
                path,
                "its header.json cannot be read (not a jobdbctl archive, or damaged)".to_string(),
            ));
            continue;
        };
        if !same_source(&header, manifest) {
            continue;
        }
        match header.retention {
            Some(Retention::Managed) => {}
            Some(Retention::Pinned) => continue,
            None => {
                pruned.unmarked += 1;
                continue;
            }
        }
        // Read it again in full, as `verify` does: only a complete archive counts.
        let file =
            open_nofollow(&path).with_context(|| format!("cannot open {}", path.display()))?;
        let identity = file
            .metadata()
            .map(|m| (m.dev(), m.ino()))
            .with_context(|| format!("cannot stat {}", path.display()))?;
        let label = path.display().to_string();
        match reader::read(file, &label, &mut Discard) {
            Ok(summary)
                if same_source(&summary.manifest, manifest)
                    && summary.manifest.retention == Some(Retention::Managed) =>
            {
                candidates.push(Candidate {
                    created_at: summary.manifest.created_at,
                    path,
                    identity: Some(identity),
                });
            }
            Ok(_) => {}
            Err(e) => pruned.damaged.push((path, format!("{e:#}"))),
        }
    }
    // Newest first; the name breaks ties so the order does not depend on the listing.
    candidates.sort_by(|a, b| (b.created_at, &b.path).cmp(&(a.created_at, &a.path)));
    let now = Utc::now();
    let cutoff = policy
        .within
        .and_then(|d| chrono::Duration::from_std(d).ok())
        .and_then(|d| now.checked_sub_signed(d));
    for (rank, c) in candidates.into_iter().enumerate() {
        let kept_by_count = policy.keep.is_some_and(|n| rank < n);
        let kept_by_age = cutoff.is_some_and(|t| c.created_at > t);
        let Some(identity) = c.identity else {
            continue; // the new archive
        };
        if kept_by_count || kept_by_age {
            continue;
        }
        // The name may have been swapped since it was read (the directory may be shared);
        // delete only the file that was checked.
        let still = fs::symlink_metadata(&c.path)
            .with_context(|| format!("cannot stat {}", c.path.display()))?;
        if (still.dev(), still.ino()) != identity || !still.is_file() {
            continue;
        }
        fs::remove_file(&c.path).with_context(|| format!("cannot remove {}", c.path.display()))?;
        pruned.removed.push(c.path);
    }
    Ok(pruned)
}

fn same_source(a: &Manifest, b: &Manifest) -> bool {
    a.database == b.database && a.server == b.server
}

fn open_nofollow(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
}

/// The header of an archive, if it is one of ours (cheap: the first entry only).
fn read_header(file: &File) -> Option<Manifest> {
    let mut tar = tar::Archive::new(flate2::read::MultiGzDecoder::new(file));
    let mut entry = tar.entries().ok()?.next()?.ok()?;
    if entry.path_bytes().as_ref() != archive::HEADER.as_bytes()
        || entry.header().size().ok()? > archive::MAX_METADATA_BYTES
    {
        return None;
    }
    serde_json::from_reader(&mut entry).ok()
}
