//! Restoring a backup archive (see `crate::archive` for the format).
//!
//! What a restore guarantees:
//! - An archive read from a file is checked whole (structure, every entry's size and
//!   SHA-256, row counts) before anything changes, and again while loading (the file's
//!   bytes must hash as they did, which stands for every entry's checksum); standard input
//!   is checked while loading. A bad archive exits 5 with the database as it was.
//! - Online: the archive is loaded into a staging schema next to the live one; the live
//!   schema is not touched until one transaction re-checks for live workers and new jobs,
//!   swaps the two and drops the old one (and sets the job counter for `--avoid-id-reuse`).
//!   Killed before that COMMIT, the live schema is as it was and the staging schema is left
//!   behind; the next restore drops it. The `backup` operation lock makes a concurrent
//!   backup or restore exit 7.
//! - Cold: the archive is extracted into `psql.restoring` beside the data directory (under
//!   the data-dir lock) and exchanged with `psql/` in one `renameat2(RENAME_EXCHANGE)`, so
//!   `psql/` is at every moment either the old cluster or the new one. A kill -9 before the
//!   exchange leaves the old cluster (with its server stopped, if it was running) and a
//!   `psql.restoring` that the next cold restore removes.

mod cold;
mod online;
pub mod recovery;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use indicatif::ProgressBar;

use self::cold::Cold;
use self::online::Online;
use crate::archive::crypt::Keys;
use crate::archive::reader::{self, Discard, Visitor};
use crate::archive::{Manifest, Mode, SchemaDdl};
use crate::context::Ctx;
use crate::db::workers::{self, Worker};
use crate::db::{counter, Db, Profile};
use crate::job_ids::high_water;

/// Where the archive comes from.
pub enum Archive {
    Stdin,
    File(PathBuf),
}

/// What to restore, and what the operator allowed.
pub struct Request {
    pub archive: Archive,
    /// The operator confirmed replacing the database (`--yes`).
    pub yes: bool,
    /// Replace a database that has jobs.
    pub force: bool,
    /// Raise the restored job counter to the job-ID high-water mark (which includes the
    /// replaced schema's counter), so no job ID is handed out twice.
    pub avoid_id_reuse: bool,
    /// Check everything and say what would be replaced; change nothing (see [`plan`]).
    pub dry_run: bool,
    /// Decrypts an encrypted archive (see `archive::crypt`).
    pub keys: Keys,
    /// Where to recover a physical archive to (`--to-time` and the like); `None`: the end of
    /// the base backup. Only physical archives take one.
    pub to: Option<recovery::Target>,
    /// After a point-in-time restore, remove the replaced cluster instead of keeping it.
    pub remove_old: bool,
}

/// What a restore put back.
pub struct Restored {
    pub mode: Mode,
    pub schema: Option<String>,
    pub created_at: String,
    pub last_used_job_id: Option<i64>,
    /// The job counter as the archive had it, before `--avoid-id-reuse` raised it.
    pub archived_last_used_job_id: Option<i64>,
    /// The job-ID high-water mark after the restore (see `crate::job_ids::high_water`).
    pub high_water: Option<i64>,
    /// Jobs that were running at backup time and are queued again.
    pub rescheduled: u64,
    pub rows: u64,
    pub seconds: f64,
    /// Settings of a cold archive's server configuration that were commented out, as
    /// `file: setting` (see `archive::server_config`).
    pub config_left_out: Vec<String>,
    /// Where the time went, in order: (phase, seconds). For benchmarks and `-v`.
    pub phases: Vec<(String, f64)>,
    /// A physical archive's recovery.
    pub recovery: Option<RecoveryReport>,
}

/// A restored database's job counter, checked against the high-water mark.
pub struct Counter {
    /// The last used job ID now (raised for `--avoid-id-reuse`).
    pub last_used: Option<i64>,
    /// The last used job ID as restored, before any raise.
    pub restored: Option<i64>,
    pub high_water: Option<i64>,
}

impl Counter {
    /// Reads the restored counter of `profile` and the mark; with `avoid_id_reuse` raises the
    /// counter to a higher mark, so no job ID is handed out twice. (An online restore does
    /// the same inside its swap transaction.)
    pub fn against_mark(
        ctx: &Ctx,
        db: &mut Db,
        profile: &Profile,
        avoid_id_reuse: bool,
    ) -> anyhow::Result<Counter> {
        let high_water = high_water::read(ctx, Some(&mut *db), &profile.schema)?;
        let Ok(seq) = counter::sequence_name(db, profile) else {
            return Ok(Counter {
                last_used: None,
                restored: None,
                high_water,
            });
        };
        let restored = counter::last_used(db, &seq)?;
        let mut last = restored;
        if let (true, Some(mark)) = (avoid_id_reuse, high_water) {
            if mark > last {
                counter::set_last_used(db, &seq, mark)?;
                last = counter::last_used(db, &seq)?;
            }
        }
        Ok(Counter {
            last_used: Some(last),
            restored: Some(restored),
            high_water,
        })
    }
}

/// Where a point-in-time restore got to.
pub struct RecoveryReport {
    pub target: String,
    /// The commit time of the last transaction replayed.
    pub last_commit: Option<String>,
    /// The timeline the restored cluster writes on.
    pub timeline: u32,
    /// Where the replaced cluster is kept (none: there was none, or `--remove-old`).
    pub kept_aside: Option<PathBuf>,
}

/// Restores one archive as the request says.
pub fn restore(ctx: &Ctx, request: &Request) -> anyhow::Result<Restored> {
    let started = Instant::now();
    let path = match &request.archive {
        Archive::Stdin => None,
        Archive::File(path) => Some(path.as_path()),
    };
    let open = |path: &Path| -> anyhow::Result<(Box<dyn Read + Send>, u64)> {
        let object = ctx.places.open_given(path)?;
        let stream = object
            .stream()
            .with_context(|| format!("cannot read archive {}", path.display()))?;
        Ok((stream, object.bytes()))
    };
    let label = match path {
        Some(path) => path.display().to_string(),
        None => "<stdin>".to_string(),
    };
    // A file is checked whole before anything changes, so a bad archive is refused with the
    // database (or data directory) untouched; it is checked again while loading (the same
    // bytes as stored, then every check but the entries' checksums). Standard input can be
    // read only once: it is checked while loading into staging.
    let mut checked = None;
    // A point-in-time restore extracts beside the running server, changing nothing until
    // the swap, and checks everything on the way: a separate first read would only add time.
    if let Some(path) = path.filter(|_| request.to.is_none()) {
        let (file, size) = open(path)?;
        let bar = ctx.out.progress(
            size,
            "{spinner} checking the archive {bytes}/{total_bytes} ({binary_bytes_per_sec})",
        );
        let read = reader::read(
            Counting {
                inner: file,
                bar: bar.clone(),
            },
            &label,
            &request.keys,
            &mut Discard,
        );
        bar.finish_and_clear();
        checked = Some(read?);
    }
    let checked_at = started.elapsed().as_secs_f64();
    let (input, size): (Box<dyn Read + Send>, Option<u64>) = match path {
        None => (Box::new(std::io::stdin()), None),
        Some(path) => {
            let (file, size) = open(path)?;
            (file, Some(size))
        }
    };
    let bar = match size {
        Some(len) => ctx.out.progress(
            len,
            "{spinner} restore {bytes}/{total_bytes} of the archive ({binary_bytes_per_sec}), {msg}",
        ),
        None => ctx.out.progress(
            0,
            "{spinner} restore {bytes} of the archive read ({binary_bytes_per_sec}), {msg}",
        ),
    };
    let input = Counting {
        inner: input,
        bar: bar.clone(),
    };
    let mut visitor = Restore {
        ctx,
        request,
        bar: bar.clone(),
        state: State::Start,
    };
    let outcome = match &checked {
        Some(checked) => reader::read_again(input, &label, &request.keys, &mut visitor, checked),
        None => reader::read(input, &label, &request.keys, &mut visitor),
    };
    bar.finish_and_clear();
    let state = std::mem::replace(&mut visitor.state, State::Start);
    let result = match (outcome, state) {
        (Ok(summary), State::Online(online)) => online.finish(ctx, request, &summary.manifest),
        (Ok(summary), State::Cold(cold)) => (*cold).finish(ctx, request, &summary.manifest),
        (Ok(_), State::Start) => Err(anyhow!("archive {label} has no header")),
        (Err(e), State::Online(online)) => Err(online.abandon(e)),
        (Err(e), State::Cold(cold)) => Err((*cold).abandon(ctx, e)),
        (Err(e), State::Start) => Err(e),
    };
    let mut restored = result?;
    restored.seconds = started.elapsed().as_secs_f64();
    if checked.is_some() {
        restored.phases.insert(0, ("check".to_string(), checked_at));
    }
    Ok(restored)
}

/// What `restore --dry-run` found: the archive is good, nothing refuses it, and this is what
/// a restore would replace.
pub struct Plan {
    pub mode: Mode,
    pub schema: Option<String>,
    pub created_at: String,
    /// What would be replaced (with what it holds), or `None` when there is nothing there.
    pub replaces: Option<String>,
    pub last_used_job_id: Option<i64>,
    pub rows: u64,
}

/// Every check a restore makes before it changes anything — the whole archive read and
/// checked, the target's refusals (live workers, jobs without `--force`, the schema, the
/// lock) — and nothing changed.
pub fn plan(ctx: &Ctx, request: &Request) -> anyhow::Result<Plan> {
    let (input, label): (Box<dyn Read + Send>, String) = match &request.archive {
        Archive::Stdin => (Box::new(std::io::stdin()), "<stdin>".to_string()),
        Archive::File(path) => (
            ctx.places
                .open_given(path)?
                .stream()
                .with_context(|| format!("cannot read archive {}", path.display()))?,
            path.display().to_string(),
        ),
    };
    let summary = reader::read(input, &label, &request.keys, &mut Discard)?;
    let m = &summary.manifest;
    let replaces = match m.mode {
        Mode::Online => {
            let assessed = Online::assess(ctx, request, m)?;
            assessed
                .stake
                .map(|stake| format!("schema {:?}{stake}", assessed.schema))
        }
        Mode::Cold => Cold::assess(ctx, request)?.2,
        Mode::Physical => {
            let base = m
                .base
                .as_ref()
                .ok_or_else(|| anyhow!("archive {label} names no WAL start"))?;
            let target = request.to.clone().unwrap_or(recovery::Target::Backup);
            recovery::Recovery::check(ctx, base, target)?;
            Cold::assess(ctx, request)?.2
        }
    };
    Ok(Plan {
        mode: m.mode,
        schema: m.schema.clone(),
        created_at: m.created_at.to_rfc3339(),
        replaces,
        last_used_job_id: m.last_used_job_id,
        rows: m.tables.iter().filter_map(|t| t.rows).sum(),
    })
}

/// Counts the compressed bytes read, for the progress bar.
struct Counting {
    inner: Box<dyn Read + Send>,
    bar: ProgressBar,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

enum State {
    Start,
    Online(Box<Online>),
    Cold(Box<Cold>),
}

struct Restore<'a> {
    ctx: &'a Ctx,
    request: &'a Request,
    bar: ProgressBar,
    state: State,
}

impl Visitor for Restore<'_> {
    fn header(&mut self, header: &Manifest) -> anyhow::Result<()> {
        if self.request.to.is_some() && header.mode != Mode::Physical {
            return Err(crate::error::failure(
                crate::error::Exit::Usage,
                format!(
                    "a point-in-time restore needs a physical archive (backup --mode physical); this one is {}",
                    header.mode.name()
                ),
            ));
        }
        self.state = match header.mode {
            Mode::Online => State::Online(Box::new(Online::prepare(
                self.ctx,
                self.request,
                header,
                self.bar.clone(),
            )?)),
            Mode::Cold | Mode::Physical => {
                State::Cold(Box::new(Cold::prepare(self.ctx, self.request, header)?))
            }
        };
        Ok(())
    }

    fn schema(&mut self, ddl: SchemaDdl) -> anyhow::Result<()> {
        match &mut self.state {
            State::Online(online) => online.schema(self.ctx, ddl),
            _ => Err(anyhow!("unexpected {}", crate::archive::SCHEMA)),
        }
    }

    fn dir(&mut self, name: &str, mode: u32) -> anyhow::Result<()> {
        match &mut self.state {
            State::Cold(cold) => cold.dir(name, mode),
            _ => Err(anyhow!("unexpected directory {name:?}")),
        }
    }

    fn file(&mut self, name: &str, mode: u32, piece: Vec<u8>, last: bool) -> anyhow::Result<()> {
        match &mut self.state {
            State::Online(online) => online.file(name, piece, last),
            State::Cold(cold) => cold.file(name, mode, piece, last),
            State::Start => Err(anyhow!("entry {name:?} before the header")),
        }
    }

    fn spare(&mut self) -> Vec<u8> {
        match &mut self.state {
            State::Cold(cold) => cold.spare(),
            _ => Vec::new(),
        }
    }
}

fn live_workers_refusal(live: &[Worker], stale_after: Duration) -> anyhow::Error {
    workers::refusal(
        "restore",
        live,
        stale_after,
        "stop the engine and run the restore again after that, or pass --stale-after 0s if you know the engine is down",
    )
}
