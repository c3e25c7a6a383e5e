//! The job-ID high-water mark: the highest job ID jobdbctl has seen handed out for each job
//! schema, kept where neither `destroy` (of the schema or of the whole `--cluster`) nor
//! `restore` can take it away, so that after a downgrade jobdbctl can say which IDs a
//! restored (or new) job counter would hand out a second time — and whose log files the
//! engine would append to — and `restore --avoid-id-reuse` can continue above it.
//!
//! What it guarantees:
//! - The mark only rises: every update stores the larger of the stored and the new value,
//!   as one atomic step, so concurrent runs never lower it or lose an update.
//! - Embedded cluster: `<data dir>/job-id-high-water.json` (mode 0600), beside `psql/` and
//!   outside it, so `destroy --cluster` (which removes only `psql/`), cold backups (which
//!   archive only `psql/`) and cold restores (which exchange only `psql/`) leave it alone.
//!   An update takes an flock, writes a temporary file, fsyncs it, renames it over the old
//!   one and fsyncs the directory: a kill -9 leaves the old or the new mark, never a torn
//!   file (at most a temporary file, which the next update replaces).
//! - Any other server: a row per schema in `jobdbctl.job_id_high_water` in the job database
//!   (`db::highwater`), written in the caller's transaction when it has one (restore's swap),
//!   so the mark and the change that needed it commit together.
//! - Commands that only read (`status`, `show-params`) and `backup` record what they learn
//!   but never fail because of it: on a standby, or without the rights, they warn.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::context::Ctx;
use crate::db::{highwater, Db, Profile, Sql};
use crate::error::{failure, Exit};
use crate::target::Target;

/// The mark's file in the embedded cluster's data directory.
pub const FILE_NAME: &str = "job-id-high-water.json";
const LOCK_NAME: &str = ".job-id-high-water.lock";
const FILE_FORMAT: u32 = 1;

/// Where the mark of this run's target is kept.
pub enum Store {
    File(PathBuf),
    Server,
}

impl Store {
    pub fn of(ctx: &Ctx) -> Store {
        match &ctx.target {
            Target::Embedded(cluster) => Store::File(cluster.data_dir.join(FILE_NAME)),
            Target::Remote(_) => Store::Server,
        }
    }

    /// "file /var/lib/jobdbctl/job-id-high-water.json" or "table jobdbctl.job_id_high_water".
    pub fn describe(&self) -> String {
        match self {
            Store::File(path) => format!("file {}", path.display()),
            Store::Server => format!("table {}", highwater::table_name()),
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MarkFile {
    format: u32,
    schemas: BTreeMap<String, FileMark>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileMark {
    last_used_job_id: i64,
    updated_at: DateTime<Utc>,
}

/// Every recorded mark of this target, by schema name. A server's marks need `db`.
pub fn read_all<D: Sql>(ctx: &Ctx, db: Option<&mut D>) -> anyhow::Result<Vec<(String, i64)>> {
    match (Store::of(ctx), db) {
        (Store::File(path), _) => Ok(read_file(&path)?
            .schemas
            .into_iter()
            .map(|(schema, m)| (schema, m.last_used_job_id))
            .collect()),
        (Store::Server, Some(db)) => highwater::read_all(db),
        (Store::Server, None) => Err(anyhow::anyhow!(
            "the job-ID high-water mark is kept on the server, which was not reached"
        )),
    }
}

/// The mark recorded for `schema`, if any.
pub fn read<D: Sql>(ctx: &Ctx, db: Option<&mut D>, schema: &str) -> anyhow::Result<Option<i64>> {
    Ok(read_all(ctx, db)?
        .into_iter()
        .find_map(|(s, mark)| (s == schema).then_some(mark)))
}

/// Raises the mark for `schema` to `last_used` (creating the store on first use) and returns
/// the mark now recorded. For the server store `db` may be a transaction: the mark then
/// commits with it. Errors are the caller's to report: a destructive command stops.
pub fn raise<D: Sql>(ctx: &Ctx, db: &mut D, schema: &str, last_used: i64) -> anyhow::Result<i64> {
    let recorded = match Store::of(ctx) {
        Store::File(path) => raise_file(&path, schema, last_used),
        Store::Server => highwater::raise(db, schema, last_used, true)
            .map(|m| m.unwrap_or(last_used))
            .map_err(|e| {
                e.context(format!(
                    "cannot record the job-ID high-water mark in {}; the role needs the right to create it (or to update it)",
                    highwater::table_name()
                ))
            }),
    }?;
    Ok(recorded)
}

/// For commands that do not otherwise write: records `last_used` when it is above the mark,
/// where that is possible, and never fails — on a standby or any error it warns. `create`:
/// whether the server store may be created now (`status` only updates an existing one).
/// Returns the mark as it now stands, when it could be read.
pub fn note(ctx: &Ctx, db: &mut Db, schema: &str, last_used: i64, create: bool) -> Option<i64> {
    let mark = match read(ctx, Some(&mut *db), schema) {
        Ok(mark) => mark,
        Err(e) => {
            ctx.out
                .warn(format!("cannot read the job-ID high-water mark: {e:#}"));
            return None;
        }
    };
    if mark.is_some_and(|m| m >= last_used) {
        return mark;
    }
    let outcome = match Store::of(ctx) {
        Store::File(path) => raise_file(&path, schema, last_used).map(Some),
        Store::Server => match db.is_in_recovery() {
            Ok(true) => {
                ctx.out.warn(format!(
                    "last used job ID {last_used} not recorded as the job-ID high-water mark ({}): {} is a standby; any command run against the primary records it",
                    mark.map_or("none yet".to_string(), |m| format!("still {m}")),
                    ctx.target.describe()
                ));
                return mark;
            }
            Ok(false) => highwater::raise(db, schema, last_used, create),
            Err(e) => Err(e),
        },
    };
    match outcome {
        Ok(Some(recorded)) => Some(recorded),
        Ok(None) => mark,
        Err(e) => {
            ctx.out.warn(format!(
                "last used job ID {last_used} not recorded as the job-ID high-water mark: {e:#}"
            ));
            mark
        }
    }
}

/// As [`note`], for a command that holds no connection (`backup` after it finished).
pub fn note_detached(ctx: &Ctx, schema: &str, last_used: i64) -> Option<i64> {
    match Store::of(ctx) {
        Store::File(path) => match raise_file(&path, schema, last_used) {
            Ok(mark) => Some(mark),
            Err(e) => {
                ctx.out.warn(format!(
                    "last used job ID {last_used} not recorded as the job-ID high-water mark: {e:#}"
                ));
                None
            }
        },
        Store::Server => match ctx.connect() {
            Ok(mut db) => note(ctx, &mut db, schema, last_used, true),
            Err(e) => {
                ctx.out.warn(format!(
                    "last used job ID {last_used} not recorded as the job-ID high-water mark: {e:#}"
                ));
                None
            }
        },
    }
}

/// Job IDs that a counter below the mark would hand out again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Reuse {
    pub first: i64,
    pub last: i64,
}

impl Reuse {
    /// The IDs after `counter` up to the mark, if the counter is below it.
    pub fn between(counter: i64, mark: Option<i64>) -> Option<Reuse> {
        mark.filter(|m| *m > counter).map(|m| Reuse {
            first: counter.saturating_add(1),
            last: m,
        })
    }
}

impl fmt::Display for Reuse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::output::id_range(self.first, self.last))
    }
}

/// What replacing or dropping a job schema would lose, for its confirmation prompt.
#[derive(Debug, Clone, Copy)]
pub struct AtStake {
    pub jobs: i64,
    pub newest_age: Option<Duration>,
}

pub fn at_stake(db: &mut impl Sql, profile: &Profile) -> anyhow::Result<AtStake> {
    let (jobs, age) = highwater::jobs_at_stake(db, profile)?;
    Ok(AtStake {
        jobs,
        // A clock step can make the newest job look created in the future; call that "now".
        newest_age: age.map(|s| Duration::from_secs_f64(s.max(0.0))),
    })
}

impl fmt::Display for AtStake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.jobs, self.newest_age) {
            (0, _) => f.write_str("no jobs"),
            (1, Some(age)) => write!(f, "1 job, created {}", ago(age)),
            (n, Some(age)) => write!(f, "{} jobs, newest created {}", thousands(n), ago(age)),
            (n, None) => write!(f, "{} jobs", thousands(n)),
        }
    }
}

/// 12345 → "12,345".
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// "3 minutes ago", rounded down to the largest whole unit.
fn ago(age: Duration) -> String {
    let secs = age.as_secs();
    let (n, unit) = match secs {
        0..=59 => (secs, "second"),
        60..=3599 => (secs / 60, "minute"),
        3600..=172_799 => (secs / 3600, "hour"),
        _ => (secs / 86_400, "day"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

fn damaged(path: &Path, why: impl fmt::Display) -> anyhow::Error {
    failure(
        Exit::Runtime,
        format!(
            "the job-ID high-water file {} is damaged ({why}); restore it from your notes or move it away (it records only the highest job ID handed out)",
            path.display()
        ),
    )
}

fn read_file(path: &Path) -> anyhow::Result<MarkFile> {
    let text = match fs::read(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(MarkFile::default()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let marks: MarkFile = serde_json::from_slice(&text).map_err(|e| damaged(path, e))?;
    if marks.format != FILE_FORMAT {
        return Err(damaged(
            path,
            format!("format {} is not {FILE_FORMAT}", marks.format),
        ));
    }
    if let Some((schema, _)) = marks.schemas.iter().find(|(_, m)| m.last_used_job_id < 0) {
        return Err(damaged(
            path,
            format!("negative mark for schema {schema:?}"),
        ));
    }
    Ok(marks)
}

fn raise_file(path: &Path, schema: &str, last_used: i64) -> anyhow::Result<i64> {
    let dir = path
        .parent()
        .ok_or_else(|| anyhow::anyhow!("{} has no directory", path.display()))?;
    if !dir.exists() {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot chmod {}", dir.display()))?;
    }
    let _lock = lock(&dir.join(LOCK_NAME))?;
    let mut marks = read_file(path)?;
    marks.format = FILE_FORMAT;
    if let Some(m) = marks.schemas.get(schema) {
        if m.last_used_job_id >= last_used {
            return Ok(m.last_used_job_id);
        }
    }
    marks.schemas.insert(
        schema.to_string(),
        FileMark {
            last_used_job_id: last_used,
            updated_at: Utc::now(),
        },
    );
    let mut text = serde_json::to_vec_pretty(&marks).context("cannot encode the mark")?;
    text.push(b'\n');
    let tmp = dir.join(format!("{FILE_NAME}.tmp"));
    match fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("cannot remove {}", tmp.display()))
        }
        _ => {}
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    file.write_all(&text)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    drop(file);
    fs::rename(&tmp, path)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync {}", dir.display()))?;
    Ok(last_used)
}

/// Waits for the mark's lock: updates are rare and short, so two runs simply take turns.
fn lock(path: &Path) -> anyhow::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    // SAFETY: flock on a descriptor we own; released when the file closes (or we die).
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("cannot lock {}", path.display()));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuse_is_said_in_words() {
        assert_eq!(
            Reuse::between(1000, Some(5000)).map(|r| r.to_string()),
            Some("IDs 1001 to 5000".to_string())
        );
        assert_eq!(
            Reuse::between(4999, Some(5000)).map(|r| r.to_string()),
            Some("ID 5000".to_string())
        );
        assert_eq!(Reuse::between(5000, Some(5000)), None);
        assert_eq!(Reuse::between(0, None), None);
    }

    #[test]
    fn figures_read_like_english() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(12_345), "12,345");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(ago(Duration::from_secs(1)), "1 second ago");
        assert_eq!(ago(Duration::from_secs(200)), "3 minutes ago");
        assert_eq!(ago(Duration::from_secs(7500)), "2 hours ago");
        assert_eq!(ago(Duration::from_secs(3 * 86_400 + 5)), "3 days ago");
        let s = AtStake {
            jobs: 12_345,
            newest_age: Some(Duration::from_secs(180)),
        };
        assert_eq!(s.to_string(), "12,345 jobs, newest created 3 minutes ago");
    }
}
