//! Retention: `--keep N` and `--keep-within DURATION` delete older archives of the same
//! database and server in the new archive's directory (`backup`), or in the backup
//! directory (`backups prune`).
//!
//! An archive is a candidate only if all of these hold: jobdbctl chose its name
//! (`<stem>-<UTC time>.tar.gz`, see `destination::is_own_name`), its header says
//! `"retention": "managed"` (an archive the operator named, `destroy --backup-first` wrote,
//! or that predates the mark is pinned), it is a regular file owned by this user (another
//! user's files are not ours to count or delete: a forged "newer" archive must not push ours
//! out), and it reads completely like `verify` reads it. A candidate is kept if it is among
//! the newest N (by `created_at`) or newer than DURATION — physical archives (base backups)
//! and logical ones (online, cold) counted apart, N of each; when both are given either rule
//! keeps it, as pgBackRest and restic combine rules. The new archive is always kept. Which
//! files qualify is `catalog::Item::prunable`, so `backups` shows what pruning would do. A
//! damaged archive is neither counted nor deleted; it is reported, and so is one dated in
//! the future. A file that another prune removed first counts as removed: two prunes of one
//! directory at once delete what one would, and neither fails.
//!
//! In a bucket, an archive being written is an incomplete multipart upload: no listing shows
//! it, so it is never counted or deleted; pruning also removes incomplete uploads older than
//! a day (runs killed mid-upload), which no backup still writes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::catalog::{self, Depth, Source, State};
use crate::archive::crypt::Keys;
use crate::archive::{Manifest, Mode, Retention};
use crate::storage::{Identity, Store};

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
    /// Deleted, or with `dry_run` what would be.
    pub removed: Vec<PathBuf>,
    /// Complete candidates that the rules keep (the new archive included).
    pub kept: Vec<PathBuf>,
    /// Archives of ours by name that did not read completely, and why; kept, not counted.
    pub damaged: Vec<(PathBuf, String)>,
    /// Archives of this database without a retention mark (written before it existed).
    pub unmarked: usize,
    /// Archives dated in the future (see `catalog::Item::future_dated`); kept, not counted.
    pub future: Vec<PathBuf>,
    /// Incomplete uploads of killed runs removed (or with `dry_run` that would be).
    pub abandoned: Vec<PathBuf>,
}

struct Candidate {
    created_at: DateTime<Utc>,
    path: PathBuf,
    name: String,
    /// The object read, so a name swapped since is not deleted; `None` for the new archive.
    identity: Option<Identity>,
    /// A base backup, counted apart from online and cold archives.
    physical: bool,
}

/// Prunes the archives of `source` in `store` as `policy` says. `latest` is a new archive
/// (with its manifest), which counts as complete and is never deleted. With `dry_run`
/// nothing is deleted and `removed` says what would be. `confirm` sees the files about to
/// be deleted (when there are any) and may refuse, before anything is deleted.
pub fn prune(
    store: &dyn Store,
    keys: &Keys,
    source: &Source,
    latest: Option<(&Path, &Manifest)>,
    policy: &Policy,
    dry_run: bool,
    confirm: &dyn Fn(&[PathBuf]) -> anyhow::Result<()>,
) -> anyhow::Result<Pruned> {
    let euid = crate::safe_fs::euid();
    let mut pruned = Pruned::default();
    let mut candidates = Vec::new();
    if let Some((path, manifest)) = latest {
        if manifest.retention == Some(Retention::Managed) {
            candidates.push(Candidate {
                created_at: manifest.created_at,
                path: path.to_path_buf(),
                name: String::new(),
                identity: None,
                physical: manifest.mode == Mode::Physical,
            });
        }
    }
    // Only candidates are read in full (as `verify` reads them): only a complete archive
    // counts.
    let depth = |h: &Manifest| {
        if Source::of(h) == *source && h.retention == Some(Retention::Managed) {
            Depth::Full
        } else {
            Depth::Header
        }
    };
    for item in catalog::scan(store, keys, &depth)? {
        if latest.is_some_and(|(p, _)| p == item.path())
            || !item.own_name
            || item.owner != euid
            || item.state == State::Partial
        {
            continue;
        }
        let Some(header) = item.header.as_deref() else {
            // Encrypted with a passphrase, and none given: nothing says whose it is.
            if item.encrypted && keys.is_empty() {
                continue;
            }
            pruned
                .damaged
                .push((item.path(), item.problem.clone().unwrap_or_default()));
            continue;
        };
        if !source.is(header) {
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
        if item.future_dated() {
            pruned.future.push(item.path());
            continue;
        }
        // An encrypted archive read without its key counts by its meta stanza: the writer
        // gives it its final name only once its last chunk is on disk.
        let unread_sealed = item.encrypted && item.state == State::Unverified;
        if item.state == State::Complete || unread_sealed {
            candidates.push(Candidate {
                created_at: header.created_at,
                identity: Some(item.identity),
                path: item.path(),
                name: item.name,
                physical: header.mode == Mode::Physical,
            });
        } else {
            pruned
                .damaged
                .push((item.path(), item.problem.unwrap_or_default()));
        }
    }
    // Newest first; the name breaks ties so the order does not depend on the listing.
    candidates.sort_by(|a, b| (b.created_at, &b.path).cmp(&(a.created_at, &a.path)));
    let now = Utc::now();
    let cutoff = policy
        .within
        .and_then(|d| chrono::Duration::from_std(d).ok())
        .and_then(|d| now.checked_sub_signed(d));
    let mut doomed = Vec::new();
    // Physical archives (base backups) count apart from logical ones: a nightly logical
    // backup's --keep never deletes the base backups point-in-time restore needs.
    let mut ranks = [0usize; 2];
    for c in candidates {
        let rank = ranks[usize::from(c.physical)];
        ranks[usize::from(c.physical)] += 1;
        let kept_by_count = policy.keep.is_some_and(|n| rank < n);
        // A window too long to compute keeps everything rather than nothing.
        let kept_by_age = policy.within.is_some() && cutoff.is_none_or(|t| c.created_at > t);
        match c.identity.filter(|_| !(kept_by_count || kept_by_age)) {
            Some(identity) => doomed.push((c.path, c.name, identity)),
            None => pruned.kept.push(c.path),
        }
    }
    if dry_run || doomed.is_empty() {
        pruned.removed = doomed.into_iter().map(|(p, _, _)| p).collect();
        pruned.abandoned = store.remove_abandoned(dry_run)?;
        return Ok(pruned);
    }
    confirm(&doomed.iter().map(|(p, _, _)| p.clone()).collect::<Vec<_>>())?;
    // Only the very archive that was read goes; one that another prune removed meanwhile
    // counts as removed.
    let names: Vec<(String, Identity)> = doomed
        .iter()
        .map(|(_, name, identity)| (name.clone(), *identity))
        .collect();
    let gone = store.remove_many(&names)?;
    for ((path, _, _), gone) in doomed.into_iter().zip(gone) {
        if gone {
            pruned.removed.push(path);
        }
    }
    pruned.abandoned = store.remove_abandoned(false)?;
    Ok(pruned)
}
