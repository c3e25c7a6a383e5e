//! What jobdbctl records of each physical base backup beside the archived WAL
//! (`base-backup.LABEL.json`), and what it reads of the archive to tell whether a backup
//! can be recovered: the WAL range it needs and the segments there are.
//!
//! A base backup's archive cannot say where its WAL ends (its header is written before the
//! copy, and the manifest repeats the header), so the end is recorded here once
//! `pg_backup_stop` returned; `stopped_at` is jobdbctl's clock after that, never earlier
//! than the server's end of the backup, so a backup chosen for a time ends before it.

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{is_lsn, records, segment_number, Archive};
use crate::error::{failure, Exit};

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

pub fn record(archive: &Archive, base: &Base) -> anyhow::Result<()> {
    records::put(
        archive,
        &format!("{PREFIX}{}.json", base.label),
        base,
        "base backup",
    )
}

/// The base backups recorded in `archive`, oldest end first.
pub fn list(archive: &Archive) -> anyhow::Result<Vec<Base>> {
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
pub fn segments(archive: &Archive) -> anyhow::Result<Segments> {
    let mut out = Segments::new();
    for listed in archive.store.list()? {
        if let Some(name) = listed.name.strip_suffix(".zst") {
            if let Some((_, number)) = segment_number(name) {
                // The newest timeline's segment of a number (names sort by timeline first).
                if out
                    .get(&number)
                    .is_none_or(|kept| name > kept.name.as_str())
                {
                    let at = listed.modified;
                    out.insert(
                        number,
                        Archived {
                            name: name.to_string(),
                            at,
                        },
                    );
                }
            }
        }
    }
    Ok(out)
}

/// The archived segments by number.
pub type Segments = BTreeMap<u64, Archived>;

#[derive(Debug, Clone)]
pub struct Archived {
    pub name: String,
    /// When it was archived, where the store says.
    pub at: Option<SystemTime>,
}

/// The first segment missing between `from` and the newest segment in `have`, by name on
/// `timeline`; `None` when the range is whole.
pub fn first_gap(have: &Segments, from: u64, timeline: u32) -> Option<String> {
    let newest = *have.keys().next_back()?;
    (from..=newest)
        .find(|n| !have.contains_key(n))
        .map(|n| super::segment_name(timeline, n))
}

/// The segments recovery of `base` needs to reach consistency, and the first of them
/// missing from `have`.
pub fn missing_for(base: &Base, have: &Segments) -> Option<String> {
    let (_, from) = segment_number(&base.start_wal)?;
    let (_, to) = segment_number(&base.stop_wal)?;
    (from..=to)
        .find(|n| !have.contains_key(n))
        .map(|n| super::segment_name(base.timeline, n))
}

/// The recorded end of the base backup labelled `label` in `archive`, once every segment
/// from its start to its end is there: what `verify` checks of a physical archive. A
/// missing record or segment is exit 5 naming it (the backup cannot be recovered).
pub fn check_range(archive: &Archive, label: &str) -> anyhow::Result<Base> {
    let base = list(archive)?
        .into_iter()
        .find(|b| b.label == label)
        .ok_or_else(|| {
            failure(
                Exit::BadArchive,
                format!(
                    "the WAL archive {} has no record of base backup {label}, so its WAL cannot be found; was it taken into another wal_archive?",
                    archive.describe()
                ),
            )
        })?;
    if let Some(missing) = missing_for(&base, &segments(archive)?) {
        return Err(failure(
            Exit::BadArchive,
            format!(
                "WAL segment {missing}, which base backup {label} needs, is missing from {}; the backup cannot be recovered without it",
                archive.describe()
            ),
        ));
    }
    Ok(base)
}

/// What [`prune`] removed (or with `dry_run` would remove).
#[derive(Debug, Default)]
pub struct Pruned {
    /// The first segment kept: the oldest kept base backup's first.
    pub from: String,
    /// WAL files removed: segments and backup history files before `from`.
    pub files: Vec<String>,
    /// Records of restore points and base backups before it.
    pub records: Vec<String>,
}

/// Removes from `archive` what no kept base backup needs: segments and backup history files
/// before the first segment of the oldest base backup in `kept` (labels of the physical
/// archives retention kept), and the records of restore points and of other base backups
/// before it. Timeline history files are never removed (recovery reads every one). `None`,
/// removing nothing, when no base backup is kept: without one there is no window to keep WAL
/// for, and deleting it would make the next base backup the only way back.
pub fn prune(archive: &Archive, kept: &[String], dry_run: bool) -> anyhow::Result<Option<Pruned>> {
    let bases = list(archive)?;
    let Some(from) = bases
        .iter()
        .filter(|b| kept.contains(&b.label))
        .filter_map(|b| segment_number(&b.start_wal).map(|(_, n)| (n, b.start_wal.clone())))
        .min()
    else {
        return Ok(None);
    };
    let before = |segment: &str| segment_number(segment).is_some_and(|(_, n)| n < from.0);
    let listing: HashMap<String, crate::storage::Identity> = archive
        .store
        .list()?
        .into_iter()
        .map(|l| (l.name, l.identity))
        .collect();
    let mut pruned = Pruned {
        from: from.1,
        ..Pruned::default()
    };
    for name in listing.keys() {
        let Some(wal) = name.strip_suffix(".zst") else {
            continue;
        };
        // Segments, .partial segments and backup history files start with their segment.
        if super::is_wal_name(wal) && !wal.ends_with(".history") && before(&wal[..24]) {
            pruned.files.push(name.clone());
        }
    }
    pruned.files.sort();
    for b in bases
        .iter()
        .filter(|b| !kept.contains(&b.label) && before(&b.start_wal))
    {
        pruned.records.push(format!("{PREFIX}{}.json", b.label));
    }
    for p in super::points::list(archive)?
        .iter()
        .filter(|p| before(&p.segment))
    {
        pruned.records.push(super::points::file_name(p));
    }
    if !dry_run {
        // Each removal is of the object listed: one replaced meanwhile is kept.
        let doomed: Vec<(String, crate::storage::Identity)> = pruned
            .files
            .iter()
            .chain(&pruned.records)
            .filter_map(|name| Some((name.clone(), *listing.get(name)?)))
            .collect();
        archive.store.remove_many(&doomed)?;
    }
    Ok(Some(pruned))
}

/// The recoverable window of the archive: from the end of the oldest kept base backup to the
/// newest archived segment, and the first segment missing in between.
pub struct Window {
    pub oldest: Base,
    /// The newest archived segment and when it was archived.
    pub newest: Option<(String, DateTime<Utc>)>,
    /// The first segment missing between the oldest base backup's start and the newest.
    pub gap: Option<String>,
}

/// The window of the base backups in `kept` (labels); `None` when none of them is recorded.
/// A gap before a kept base backup's start only moves the window's start to that backup;
/// a gap after every kept backup's start breaks the window (`gap`).
pub fn window(archive: &Archive, kept: &[String]) -> anyhow::Result<Option<Window>> {
    let start = |b: &Base| segment_number(&b.start_wal).map_or(0, |(_, n)| n);
    let mut bases: Vec<Base> = list(archive)?
        .into_iter()
        .filter(|b| kept.contains(&b.label))
        .collect();
    bases.sort_by_key(start);
    let Some(first) = bases.first() else {
        return Ok(None);
    };
    let have = segments(archive)?;
    let newest_number = have.keys().next_back().copied().unwrap_or(0);
    let missing: Vec<u64> = (start(first)..=newest_number)
        .filter(|n| !have.contains_key(n))
        .collect();
    let (oldest, gap) = match missing.last() {
        None => (first.clone(), None),
        Some(last) => match bases.iter().find(|b| start(b) > *last) {
            Some(after) => (after.clone(), None),
            None => (
                first.clone(),
                Some(super::segment_name(first.timeline, missing[0])),
            ),
        },
    };
    let newest = have.values().next_back().map(|seg| {
        let at = seg.at.map_or_else(Utc::now, DateTime::<Utc>::from);
        (seg.name.clone(), at)
    });
    Ok(Some(Window {
        oldest,
        newest,
        gap,
    }))
}
