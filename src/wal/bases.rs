//! What jobdbctl records of each physical base backup beside the archived WAL
//! (`base-backup.LABEL.json`), and what it reads of the archive to tell whether a backup
//! can be recovered: the WAL range it needs and the segments there are.
//!
//! A base backup's archive cannot say where its WAL ends (its header is written before the
//! copy, and the manifest repeats the header), so the end is recorded here once
//! `pg_backup_stop` returned; `stopped_at` is jobdbctl's clock after that, never earlier
//! than the server's end of the backup, so a backup chosen for a time ends before it.

use std::collections::BTreeSet;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{is_lsn, records, segment_number};
use crate::error::{failure, Exit};
use crate::storage::{LocalDir, Store};

const PREFIX: &str = "base-backup.";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Base {
    /// The label of the archive's header (`archive::BaseBackup`).
    pub label: String,
    pub timeline: u32,
    pub start_lsn: String,
    pub start_wal: String,
    pub stop_lsn: String,
    /// The segment holding `stop_lsn`: the last one recovery needs to reach consistency.
    pub stop_wal: String,
    pub stopped_at: DateTime<Utc>,
}

pub fn record(archive: &Path, base: &Base) -> anyhow::Result<()> {
    records::put(
        archive,
        &format!("{PREFIX}{}.json", base.label),
        base,
        "base backup",
    )
}

/// The base backups recorded in `archive`, oldest end first.
pub fn list(archive: &Path) -> anyhow::Result<Vec<Base>> {
    let mut bases: Vec<Base> = records::all(archive, PREFIX, "base backup", |b: &Base| {
        is_lsn(&b.start_lsn)
            && is_lsn(&b.stop_lsn)
            && segment_number(&b.start_wal).is_some()
            && segment_number(&b.stop_wal).is_some()
            && b.label
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"-_.:".contains(&c))
    })?;
    bases.sort_by_key(|b| b.stopped_at);
    Ok(bases)
}

/// The numbers of the segments in `archive` (on any timeline: after a point-in-time
/// restore the new timeline continues the old one's numbering).
pub fn segments(archive: &Path) -> anyhow::Result<BTreeSet<u64>> {
    let mut out = BTreeSet::new();
    for listed in LocalDir::new(archive).list()? {
        if let Some(name) = listed.name.strip_suffix(".zst") {
            if let Some((_, number)) = segment_number(name) {
                out.insert(number);
            }
        }
    }
    Ok(out)
}

/// The first segment missing between `from` and the newest segment in `have`, by name on
/// `timeline`; `None` when the range is whole.
pub fn first_gap(have: &BTreeSet<u64>, from: u64, timeline: u32) -> Option<String> {
    let newest = *have.iter().next_back()?;
    (from..=newest)
        .find(|n| !have.contains(n))
        .map(|n| super::segment_name(timeline, n))
}

/// The segments recovery of `base` needs to reach consistency, and the first of them
/// missing from `have`.
pub fn missing_for(base: &Base, have: &BTreeSet<u64>) -> Option<String> {
    let (_, from) = segment_number(&base.start_wal)?;
    let (_, to) = segment_number(&base.stop_wal)?;
    (from..=to)
        .find(|n| !have.contains(n))
        .map(|n| super::segment_name(base.timeline, n))
}

/// The recorded end of the base backup labelled `label` in `archive`, once every segment
/// from its start to its end is there: what `verify` checks of a physical archive. A
/// missing record or segment is exit 5 naming it (the backup cannot be recovered).
pub fn check_range(archive: &Path, label: &str) -> anyhow::Result<Base> {
    let base = list(archive)?
        .into_iter()
        .find(|b| b.label == label)
        .ok_or_else(|| {
            failure(
                Exit::BadArchive,
                format!(
                    "the WAL archive {} has no record of base backup {label}, so its WAL cannot be found; was it taken into another wal_archive?",
                    archive.display()
                ),
            )
        })?;
    if let Some(missing) = missing_for(&base, &segments(archive)?) {
        return Err(failure(
            Exit::BadArchive,
            format!(
                "WAL segment {missing}, which base backup {label} needs, is missing from {}; the backup cannot be recovered without it",
                archive.display()
            ),
        ));
    }
    Ok(base)
}
