//! Named restore points: `migrate` makes one before it changes anything, `backup --mark` on
//! demand. PostgreSQL keeps a restore point only as a record in the WAL and recovery stops at
//! the *first* one of a name, while runbooks reuse names across upgrade and downgrade cycles;
//! so each point is also recorded beside the WAL it lives in, with its LSN, which a recovery
//! to the name resolves to the newest.
//!
//! What it guarantees:
//! - A point is made only while the server archives its WAL, into a `wal_archive` that
//!   exists; the segment holding it is switched away from at once, so it is archived now.
//! - Its record (`restore-point.NAME.LSN.json`, beside the segments; never a WAL file name,
//!   so `wal-fetch` never serves it) is created exclusively, never replacing another, and
//!   fsynced with its directory.
//! - Names are 1–63 characters of letters, digits, `.`, `_` and `-`, not starting with `.`:
//!   PostgreSQL's limit, safe in a file name and in recovery settings.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{records, Archive};
use crate::db::{restore_point, Db};
use crate::error::{failure, Exit};
use crate::storage::Places;
use crate::target::Target;

const PREFIX: &str = "restore-point.";
const SUFFIX: &str = ".json";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Point {
    pub name: String,
    pub lsn: String,
    /// The archived segment holding the point; its first 8 hex digits are the timeline.
    pub segment: String,
    pub created_at: DateTime<Utc>,
    /// Who made it and why, e.g. "migrate 1 -> 3".
    pub reason: String,
}

pub fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = (1..=63).contains(&name.len())
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        return Ok(());
    }
    Err(failure(
        Exit::Usage,
        format!(
            "restore point name {:?} is not allowed; use 1-63 letters, digits, '.', '_' or '-' (not starting with '.')",
            crate::output::printable(name, 80)
        ),
    ))
}

/// The WAL archive of the embedded cluster, when `wal_archive` is set; restore points are
/// made only there (jobdbctl archives no other server's WAL).
pub fn archive_of(target: &Target) -> Option<&Path> {
    match target {
        Target::Embedded(cluster) => cluster.wal_archive.as_deref(),
        Target::Remote(_) => None,
    }
}

/// `archive_of`, or a refusal saying what to set.
pub fn require_archive(target: &Target) -> anyhow::Result<&Path> {
    archive_of(target).ok_or_else(|| {
        failure(
            Exit::Usage,
            "restore points need WAL archiving of the embedded cluster; set wal_archive in jobdbctl.toml and run `jobdbctl restart`",
        )
    })
}

/// The WAL archive `require_archive` names, opened.
pub fn open_archive(target: &Target, places: &Places) -> anyhow::Result<Archive> {
    Archive::open(require_archive(target)?, places)
}

/// Makes the restore point `name` on the server and records it in `archive`.
pub fn mark(db: &mut Db, archive: &Archive, name: &str, reason: &str) -> anyhow::Result<Point> {
    check_name(name)?;
    check_ready(db, archive)?;
    let made = restore_point::create(db, name)?;
    let point = Point {
        name: name.to_string(),
        lsn: made.lsn,
        segment: made.segment,
        created_at: Utc::now(),
        reason: reason.to_string(),
    };
    record(archive, &point)?;
    Ok(point)
}

/// Refuses, before anything is done, what would make `mark` fail: an archive directory
/// that is not there, a server that does not archive its WAL.
pub fn check_ready(db: &mut Db, archive: &Archive) -> anyhow::Result<()> {
    if !archive.store.exists() {
        return Err(failure(
            Exit::Refused,
            format!(
                "WAL archive {} does not exist; start the server with wal_archive set (jobdbctl restart) first",
                archive.describe()
            ),
        ));
    }
    if !db.server_facts()?.archiving {
        return Err(failure(
            Exit::Refused,
            "the server does not archive its WAL, so a restore point could never be recovered to; run `jobdbctl restart` to apply wal_archive",
        ));
    }
    // wal_archive changed since the server started: its WAL goes elsewhere.
    let command = restore_point::archive_command(db)?;
    if !crate::cluster::archives_into(&command, &archive.location) {
        return Err(failure(
            Exit::Refused,
            format!(
                "the server archives its WAL with {}, not into {}; run `jobdbctl restart` to apply wal_archive",
                crate::output::printable(&command, 200),
                archive.describe()
            ),
        ));
    }
    Ok(())
}

/// The record's file name beside the segments.
pub fn file_name(point: &Point) -> String {
    format!(
        "{PREFIX}{}.{}{SUFFIX}",
        point.name,
        point.lsn.replace('/', "-")
    )
}

fn record(archive: &Archive, point: &Point) -> anyhow::Result<()> {
    records::put(archive, &file_name(point), point, "restore point")
}

/// The restore points recorded in `archive`, oldest first. A record that cannot be read is
/// an error naming it: a point silently missing would send a recovery to an older one.
pub fn list(archive: &Archive) -> anyhow::Result<Vec<Point>> {
    let mut points: Vec<Point> = records::all(archive, PREFIX, "restore point", |p: &Point| {
        check_name(&p.name).is_ok() && super::is_lsn(&p.lsn)
    })?;
    points.sort_by_key(|p| p.created_at);
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for good in ["before-migrate-3", "a", "v1.2_rc", &"x".repeat(63)] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", ".hidden", "a b", "a/b", "a'b", "é", &"x".repeat(64)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
