//! Online restore: the archive's DDL builds a staging schema, loader threads COPY its
//! entries in as they are read, indexes and constraints are built in parallel phases, and one
//! transaction swaps the staging schema for the live one.
//!
//! Memory: an entry is never gathered whole. Its pieces ([`crate::archive::reader::PIECE`] bytes at most) go
//! to one loader, which keeps a COPY open for the entry; the channels are bounded, so at most
//! `1 + LOADERS * (PIECES_AHEAD + 1) + LOADERS * PIECES_AHEAD` pieces (44 MiB) are in flight
//! whatever size the archive declares for its entries. The exception is bounded too: a
//! column-major binary entry is gathered by its loader and regrouped into rows, and the
//! reader refuses one above `columns::MAX_BYTES` (16 MiB), so that adds at most
//! `LOADERS * 2 * 16 MiB`. Before all of this, the reader's decompressing thread holds at
//! most 6 MiB ([`crate::archive::readahead`]).
//!
//! Waits: every wait of the reader on a loader, or of a loader on the reader, ends when the
//! other side stops. The reader waits for room in a channel in slices and gives up when a
//! loader has failed (the other loader may be stuck on its server); a loader waiting for the
//! next piece sees the channel close when the reader stops. Loaders that do not stop after a
//! failure have their sessions ended, so they let go of the staging tables.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use indicatif::ProgressBar;

use super::{live_workers_refusal, Request, Restored};
use crate::archive::{self, columns, CopyFormat, Manifest, Mode, SchemaDdl, Table};
use crate::context::Ctx;
use crate::db::exit_code_of;
use crate::db::profile::{self, ProfileChoice};
use crate::db::{counter, load, workers, Db, Profile};
use crate::error::{failure, Exit};
use crate::job_ids::high_water;
use crate::output::{confirm, printable};

/// Loader connections; see docs/backups.md for the measurements behind two.
const LOADERS: usize = 2;
/// Pieces of one entry queued ahead of its loader.
const PIECES_AHEAD: usize = 2;
/// Rows regrouped from a column-major entry go to the server in parts of this size.
const REGROUPED_PART: usize = 1 << 20;
/// How long the reader waits for room before it looks again whether a loader failed.
const WAIT_SLICE: Duration = Duration::from_secs(1);
/// After a failure, how long loaders get to stop by themselves before their sessions are
/// ended, and then to notice that.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// An online restore in progress: the main connection holds the lock and owns the staging
/// schema; loader threads COPY entries into it.
pub struct Online {
    db: Db,
    schema: String,
    staging: String,
    replaced: String,
    header: Manifest,
    /// The live schema's profile, when there is one to replace.
    old: Option<Profile>,
    old_exists: bool,
    ddl: Option<SchemaDdl>,
    staged: bool,
    /// When the staging schema was created: the load's start, for the phase breakdown.
    staged_at: Option<Instant>,
    loaders: Option<Loaders>,
    bar: ProgressBar,
}

/// What goes through an entry's channel.
enum Piece {
    Data(Vec<u8>),
    /// The entry is complete: the loader ends its COPY.
    End,
}

/// An entry for the next free loader: its table and the channel its pieces come through.
type Work = (usize, Receiver<Piece>);

/// The requeue made to the jobs table's rows as they load ([`load::requeue_on_load`]).
struct RequeueOnLoad {
    table: usize,
    edit: columns::Edit,
    requeued: AtomicU64,
    /// An entry of the table loaded without the edit (not column-major): the UPDATE after
    /// the load still has to run.
    missed: AtomicBool,
}

/// State the reader and the loaders share.
struct Shared {
    failed: AtomicBool,
    requeue: Option<RequeueOnLoad>,
    /// Which loader threads have ended (set just before a thread returns).
    finished: Vec<AtomicBool>,
    /// Bumped whenever a loader takes something from a channel or ends, so a waiting reader
    /// wakes up to look again.
    progress: Mutex<u64>,
    changed: Condvar,
}

impl Shared {
    fn new(loaders: usize, requeue: Option<(usize, columns::Edit)>) -> Shared {
        Shared {
            failed: AtomicBool::new(false),
            requeue: requeue.map(|(table, edit)| RequeueOnLoad {
                table,
                edit,
                requeued: AtomicU64::new(0),
                missed: AtomicBool::new(false),
            }),
            finished: (0..loaders).map(|_| AtomicBool::new(false)).collect(),
            progress: Mutex::new(0),
            changed: Condvar::new(),
        }
    }

    fn all_finished(&self) -> bool {
        self.finished.iter().all(|f| f.load(Ordering::SeqCst))
    }

    fn bump(&self) {
        if let Ok(mut n) = self.progress.lock() {
            *n = n.wrapping_add(1);
        }
        self.changed.notify_all();
    }

    fn seen(&self) -> u64 {
        self.progress.lock().map(|n| *n).unwrap_or(0)
    }

    /// Waits until something changed since `seen`, or `timeout`.
    fn wait(&self, seen: u64, timeout: Duration) {
        if let Ok(guard) = self.progress.lock() {
            let _ = self
                .changed
                .wait_timeout_while(guard, timeout, |n| *n == seen);
        }
    }
}

/// Marks loader `.1` as finished however its thread ends (a panic too).
struct Finished(Arc<Shared>, usize);

impl Drop for Finished {
    fn drop(&mut self) {
        if let Some(f) = self.0.finished.get(self.1) {
            f.store(true, Ordering::SeqCst);
        }
        self.0.bump();
    }
}

/// How a loader thread ended, when it did not fail.
enum Ended {
    /// Its queue closed after the last entry: the connection is free for the next phases.
    Done(Box<Db>),
    /// The reader stopped in the middle of an entry; that COPY was aborted.
    CutOff,
}

struct Loaders {
    entries: Option<SyncSender<Work>>,
    /// The pieces of the entry being read, while one is.
    current: Option<SyncSender<Piece>>,
    handles: Vec<JoinHandle<anyhow::Result<Ended>>>,
    /// Backend pid of each loader's session, in the order of `handles`.
    pids: Vec<i32>,
    rows: Arc<Vec<AtomicU64>>,
    shared: Arc<Shared>,
}

impl Loaders {
    /// Sends without ever blocking for good: gives up when the receiving loader is gone or
    /// any loader failed. `false`: the loaders are stopping.
    fn send<T>(&self, tx: &SyncSender<T>, mut item: T) -> bool {
        loop {
            let seen = self.shared.seen();
            if self.shared.failed.load(Ordering::SeqCst) {
                return false;
            }
            match tx.try_send(item) {
                Ok(()) => return true,
                Err(TrySendError::Disconnected(_)) => return false,
                Err(TrySendError::Full(back)) => {
                    item = back;
                    self.shared.wait(seen, WAIT_SLICE);
                }
            }
        }
    }

    /// Hands on one piece of data entry `table`; `false`: the loaders are stopping.
    fn piece(&mut self, table: usize, piece: Vec<u8>, last: bool) -> bool {
        if self.current.is_none() {
            if piece.is_empty() && last {
                return true;
            }
            let (tx, rx) = sync_channel::<Piece>(PIECES_AHEAD);
            let Some(entries) = &self.entries else {
                return false;
            };
            if !self.send(entries, (table, rx)) {
                return false;
            }
            self.current = Some(tx);
        }
        let Some(tx) = &self.current else {
            return false;
        };
        if !piece.is_empty() && !self.send(tx, Piece::Data(piece)) {
            return false;
        }
        if last {
            if !self.send(tx, Piece::End) {
                return false;
            }
            self.current = None;
        }
        true
    }
}

/// Waits until every loader has finished, at most until `deadline`. Whether they all have.
fn wait_finished(shared: &Shared, deadline: Instant) -> bool {
    loop {
        let seen = shared.seen();
        if shared.all_finished() {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        shared.wait(seen, (deadline - now).min(WAIT_SLICE));
    }
}

/// One loader: takes entries off the queue and COPYs each one's pieces as they arrive.
fn load_entries(
    db: &mut Db,
    queue: &Mutex<Receiver<Work>>,
    tables: &[Table],
    staging: &str,
    rows: &[AtomicU64],
    shared: &Shared,
    bar: &ProgressBar,
) -> anyhow::Result<bool> {
    loop {
        let next = queue
            .lock()
            .map_err(|_| anyhow!("loader queue poisoned"))?
            .recv();
        shared.bump();
        let Ok((t, pieces)) = next else {
            return Ok(true);
        };
        let table = &tables[t];
        let failed = || format!("loading table {:?} failed", table.name);
        let mut copy = load::copy_in(db, staging, &table.name, &table.columns, table.format)
            .with_context(failed)?;
        // A column-major entry (at most `columns::MAX_BYTES`, the reader saw to it) is
        // gathered and regrouped into rows; everything else streams through.
        let mut regroup: Option<Vec<u8>> = None;
        let mut first = true;
        loop {
            let piece = pieces.recv();
            shared.bump();
            match piece {
                Ok(Piece::Data(data)) => {
                    if first && table.format == CopyFormat::Binary {
                        regroup = data.starts_with(&columns::MAGIC).then(Vec::new);
                    }
                    first = false;
                    match &mut regroup {
                        Some(entry) => entry.extend_from_slice(&data),
                        None => copy.write(&data).with_context(failed)?,
                    }
                }
                Ok(Piece::End) => break,
                // The reader stopped; dropping the COPY aborts it.
                Err(_) => return Ok(false),
            }
        }
        let requeue = shared.requeue.as_ref().filter(|r| r.table == t);
        match (regroup, requeue) {
            (Some(entry), _) => {
                let rows = columns::Rows::of(&entry, table.columns.len())
                    .map_err(|m| anyhow!("a data entry of table {:?}: {m}", table.name))?;
                // In parts, so the server starts on the first rows while the rest are
                // regrouped.
                let edit = requeue.map(|r| &r.edit);
                let requeued = rows.write(REGROUPED_PART, edit, |part| {
                    copy.write(part).with_context(failed)
                })?;
                if let Some(r) = requeue {
                    r.requeued.fetch_add(requeued, Ordering::Relaxed);
                }
            }
            (None, Some(r)) => r.missed.store(true, Ordering::Relaxed),
            (None, None) => {}
        }
        let n = copy.finish().with_context(failed)?;
        let total: u64 = rows[t].fetch_add(n, Ordering::Relaxed) + n;
        bar.set_message(format!("{total} rows into {:?}", table.name));
    }
}

/// What [`Online::assess`] found: the connection to restore through and what would be
/// replaced.
pub struct Assessed {
    pub db: Db,
    pub schema: String,
    pub old: Option<Profile>,
    /// `None` when no schema of that name exists; else what replacing it loses, for people.
    pub stake: Option<String>,
}

impl Online {
    /// Everything that can refuse the restore, changing nothing: the connection (holding
    /// the `backup` operation lock), the schema to replace and what replacing it would lose.
    /// `restore --dry-run` stops here.
    pub fn assess(ctx: &Ctx, request: &Request, header: &Manifest) -> anyhow::Result<Assessed> {
        let schema = header
            .schema
            .clone()
            .ok_or_else(|| failure(Exit::BadArchive, "online archive header names no schema"))?;
        if let Some(wanted) = ctx.schema_override() {
            if wanted != schema {
                return Err(failure(
                    Exit::Usage,
                    format!(
                        "the archive holds schema {schema:?}, not {wanted:?}; restore puts it back under its own name (drop --schema)"
                    ),
                ));
            }
        }
        let choice = header
            .profile
            .as_deref()
            .map(ProfileChoice::parse)
            .transpose()
            .map_err(|e| failure(Exit::BadArchive, format!("archive header: {e}")))?;
        // The header is the archive's word, not the operator's: restore replaces only the
        // job schema, the one the operator named (--schema, or schema in jobdbctl.toml) or
        // else the profile's own (jobdb, graphile_worker).
        let expected = ctx
            .schema_override()
            .unwrap_or(choice.unwrap_or(ProfileChoice::Jobdb).default_schema());
        if schema != expected {
            return Err(failure(
                Exit::Refused,
                format!(
                    "the archive's header names schema {:?}, not the job schema {expected:?}; restore replaces no other schema unless you name it: add --schema {:?} if that schema is the one to replace",
                    printable(&schema, 80),
                    printable(&schema, 80)
                ),
            ));
        }
        let mut db = ctx.connect()?;
        db.try_operation_lock("backup", "backup or restore")?;
        let old_exists = load::schema_exists(&mut db, &schema)?;
        let old = if old_exists {
            profile::detect(&mut db, choice, Some(&schema))?
        } else {
            None
        };
        let stale_after = ctx.config.stale_after.value;
        match &old {
            Some(p) => {
                let live = workers::live(&mut db, p, stale_after)?;
                if !live.is_empty() {
                    return Err(live_workers_refusal(&live, stale_after));
                }
                if load::has_jobs(&mut db, p)? && !request.force {
                    return Err(failure(
                        Exit::Refused,
                        format!(
                            "refusing to restore over schema {schema:?}: it has jobs, which would be lost (jobs created after the backup are gone); pass --force to replace it"
                        ),
                    ));
                }
            }
            None if old_exists && !request.force => {
                return Err(failure(
                    Exit::Refused,
                    format!(
                        "refusing to restore over schema {schema:?}: it exists but is not a job schema of the archive's profile; pass --force to replace it"
                    ),
                ))
            }
            None => {}
        }
        let mut stake = None;
        if old_exists {
            let outside = load::outside_dependents(&mut db, &schema)?;
            if !outside.is_empty() {
                return Err(failure(
                    Exit::Refused,
                    format!(
                        "refusing to restore over schema {schema:?}: objects outside it depend on it and would be dropped with it ({}); drop them first and recreate them after the restore",
                        outside.join(", ")
                    ),
                ));
            }
            // What would be lost, counted only when someone is asked or shown.
            stake = Some(match (&old, request.yes && !request.dry_run) {
                (Some(p), false) => format!(" ({})", high_water::at_stake(&mut db, p)?),
                (None, false) => " (not a job schema)".to_string(),
                (_, true) => String::new(),
            });
        }
        Ok(Assessed {
            db,
            schema,
            old,
            stake,
        })
    }

    /// Everything that can refuse the restore happens here, before the staging schema exists.
    pub fn prepare(
        ctx: &Ctx,
        request: &Request,
        header: &Manifest,
        bar: ProgressBar,
    ) -> anyhow::Result<Online> {
        let Assessed {
            mut db,
            schema,
            old,
            stake,
        } = Self::assess(ctx, request, header)?;
        let old_exists = stake.is_some();
        let (staging, replaced) = load::work_schemas(&schema);
        for name in load::drop_leftovers(&mut db, &schema)? {
            ctx.out.info(format!(
                "dropped {name:?}, left behind by an interrupted restore"
            ));
        }
        if let Some(stake) = &stake {
            confirm(
                &format!(
                    "replace schema {schema:?}{stake} with the backup taken {}",
                    header.created_at.format("%Y-%m-%d %H:%M:%S UTC")
                ),
                request.yes,
            )?;
        }
        Ok(Online {
            db,
            schema,
            staging,
            replaced,
            header: header.clone(),
            old,
            old_exists,
            ddl: None,
            staged: false,
            staged_at: None,
            loaders: None,
            bar,
        })
    }

    /// The archive's DDL (checked by the reader): creates the staging schema and starts the
    /// loaders.
    pub fn schema(&mut self, ctx: &Ctx, ddl: SchemaDdl) -> anyhow::Result<()> {
        self.stage(ctx, &ddl)?;
        self.ddl = Some(ddl);
        Ok(())
    }

    pub fn file(&mut self, name: &str, piece: Vec<u8>, last: bool) -> anyhow::Result<()> {
        let Some(table) = archive::parse_data_entry_name(name) else {
            return Ok(());
        };
        let loaders = self.loaders.as_mut().ok_or_else(|| {
            failure(
                Exit::BadArchive,
                format!("data entry {name:?} comes before {}", archive::SCHEMA),
            )
        })?;
        if loaders.piece(table, piece, last) {
            return Ok(());
        }
        Err(self.loader_error())
    }

    /// Creates the staging schema and starts the loaders.
    fn stage(&mut self, ctx: &Ctx, ddl: &SchemaDdl) -> anyhow::Result<()> {
        self.staged = true;
        self.staged_at = Some(Instant::now());
        load::create_staging(&mut self.db, &self.staging, ddl)?;
        let choice = profile_choice(&self.header)?;
        let requeue =
            load::requeue_on_load(&mut self.db, &self.staging, choice, &self.header.tables)?;
        let (entries, queue) = sync_channel::<Work>(LOADERS);
        let queue = Arc::new(Mutex::new(queue));
        let rows: Arc<Vec<AtomicU64>> = Arc::new(
            self.header
                .tables
                .iter()
                .map(|_| AtomicU64::new(0))
                .collect(),
        );
        let tables: Arc<Vec<Table>> = Arc::new(self.header.tables.clone());
        let shared = Arc::new(Shared::new(LOADERS, requeue));
        let mut loaders = Loaders {
            entries: Some(entries),
            current: None,
            handles: Vec::new(),
            pids: Vec::new(),
            rows,
            shared,
        };
        for i in 0..LOADERS {
            let mut db = ctx.connect()?;
            load::prepare_worker_session(&mut db, &self.staging)?;
            loaders.pids.push(load::backend_pid(&mut db)?);
            let (queue, tables, rows, shared, bar) = (
                Arc::clone(&queue),
                Arc::clone(&tables),
                Arc::clone(&loaders.rows),
                Arc::clone(&loaders.shared),
                self.bar.clone(),
            );
            let staging = self.staging.clone();
            loaders
                .handles
                .push(std::thread::spawn(move || -> anyhow::Result<Ended> {
                    let _finished = Finished(Arc::clone(&shared), i);
                    let loaded =
                        load_entries(&mut db, &queue, &tables, &staging, &rows, &shared, &bar);
                    // Drop the queue before saying so, so the reader's next send fails.
                    drop(queue);
                    match loaded {
                        Ok(true) => Ok(Ended::Done(Box::new(db))),
                        Ok(false) => Ok(Ended::CutOff),
                        Err(e) => {
                            shared.failed.store(true, Ordering::SeqCst);
                            Err(e)
                        }
                    }
                }));
        }
        self.loaders = Some(loaders);
        Ok(())
    }

    /// Stops the loaders after one of them failed; returns its error.
    fn loader_error(&mut self) -> anyhow::Error {
        match self.stop_loaders(true) {
            Err(e) => e,
            Ok(_) => anyhow!("a loader connection stopped"),
        }
    }

    /// Closes the loaders' queue and collects them. After a failure (`failing`), loaders get
    /// [`STOP_GRACE`] to stop and then have their sessions ended, and any still running after
    /// that are left behind (the process is about to exit). Otherwise it waits for them to
    /// finish their last entries, unless one fails. Returns the first loader failure.
    fn stop_loaders(&mut self, failing: bool) -> anyhow::Result<Vec<Db>> {
        let Some(mut loaders) = self.loaders.take() else {
            return Ok(Vec::new());
        };
        loaders.current = None;
        loaders.entries = None;
        let shared = Arc::clone(&loaders.shared);
        let mut failing = failing;
        if !failing {
            // Wait for the last entries to load, but not past a loader failure: the other
            // loader could be stuck on its server.
            loop {
                let seen = shared.seen();
                if shared.all_finished() {
                    break;
                }
                if shared.failed.load(Ordering::SeqCst) {
                    failing = true;
                    break;
                }
                shared.wait(seen, WAIT_SLICE);
            }
        }
        if failing && !wait_finished(&shared, Instant::now() + STOP_GRACE) {
            let stuck: Vec<i32> = shared
                .finished
                .iter()
                .zip(&loaders.pids)
                .filter(|(f, _)| !f.load(Ordering::SeqCst))
                .map(|(_, pid)| *pid)
                .collect();
            let _ = load::end_sessions(&mut self.db, &stuck);
            wait_finished(&shared, Instant::now() + STOP_GRACE);
        }
        let mut dbs = Vec::new();
        let mut first_error = None;
        let mut cut_off = false;
        for (i, h) in loaders.handles.into_iter().enumerate() {
            // A thread still running now is left behind rather than waited for.
            if !shared.finished[i].load(Ordering::SeqCst) {
                first_error.get_or_insert_with(|| anyhow!("a loader did not stop"));
                continue;
            }
            match h.join() {
                Ok(Ok(Ended::Done(db))) => dbs.push(*db),
                Ok(Ok(Ended::CutOff)) => cut_off = true,
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(_) => {
                    first_error.get_or_insert_with(|| anyhow!("a loader thread panicked"));
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None if cut_off && !failing => Err(anyhow!("loading was interrupted")),
            None => Ok(dbs),
        }
    }

    /// After the archive checked out whole: indexes, constraints, triggers, then the swap.
    pub fn finish(
        mut self: Box<Self>,
        ctx: &Ctx,
        request: &Request,
        manifest: &Manifest,
    ) -> anyhow::Result<Restored> {
        match self.complete(ctx, request, manifest) {
            Ok(r) => Ok(r),
            Err(e) => Err(self.abandon(e)),
        }
    }

    fn complete(
        &mut self,
        ctx: &Ctx,
        request: &Request,
        manifest: &Manifest,
    ) -> anyhow::Result<Restored> {
        let ddl = self.ddl.take().ok_or_else(|| {
            failure(
                Exit::BadArchive,
                format!("archive has no {}", archive::SCHEMA),
            )
        })?;
        let loaders_rows = self.loaders.as_ref().map(|l| Arc::clone(&l.rows));
        let shared = self.loaders.as_ref().map(|l| Arc::clone(&l.shared));
        let requeued_on_load = shared.as_ref().and_then(|s| s.requeue.as_ref());
        let mut dbs = self.stop_loaders(false)?;
        let mut phases = Vec::new();
        let mut clock = Instant::now();
        let mut lap = |name: String, phases: &mut Vec<(String, f64)>| {
            phases.push((name, clock.elapsed().as_secs_f64()));
            clock = Instant::now();
        };
        // From the staging schema's creation to the last row: the archive's second read.
        phases.push((
            "load".to_string(),
            self.staged_at.map_or(0.0, |t| t.elapsed().as_secs_f64()),
        ));
        let mut rows = 0;
        let mut largest = 0;
        for (i, t) in manifest.tables.iter().enumerate() {
            let loaded = loaders_rows
                .as_ref()
                .and_then(|r| r.get(i))
                .map_or(0, |n| n.load(Ordering::Relaxed));
            if Some(loaded) != t.rows {
                return Err(failure(
                    Exit::BadArchive,
                    format!(
                        "table {:?}: loaded {loaded} rows but the manifest declares {:?}",
                        t.name, t.rows
                    ),
                ));
            }
            rows += loaded;
            largest = largest.max(loaded);
        }
        let choice = profile_choice(manifest)?;
        let staged = profile::detect(&mut self.db, choice, Some(&self.staging))?;
        let mut rescheduled = requeued_on_load.map_or(0, |r| r.requeued.load(Ordering::Relaxed));
        if let Some(p) = &staged {
            let jobs_done = requeued_on_load.is_some_and(|r| !r.missed.load(Ordering::Relaxed));
            let requeue = load::requeue_plan(&mut self.db, p, dbs.len(), jobs_done)?;
            rescheduled += spread(&mut dbs, &requeue.jobs, load::run_requeue)?;
            if let Some(queues) = &requeue.queues {
                load::run_requeue(&mut self.db, queues)?;
            }
        }
        lap("requeue".to_string(), &mut phases);
        self.bar.set_message("building indexes and constraints");
        for db in &mut dbs {
            load::size_index_memory(db, largest)?;
        }
        for phase in &ddl.post_data {
            spread(&mut dbs, phase, |db, s| {
                load::run_statement(db, s).map(|()| 0)
            })?;
            lap(post_data_phase(phase), &mut phases);
        }
        drop(dbs);
        let (last_used, archived, high_water) =
            self.swap(ctx, request, manifest.last_used_job_id)?;
        lap("swap".to_string(), &mut phases);
        Ok(Restored {
            mode: Mode::Online,
            schema: Some(self.schema.clone()),
            created_at: manifest.created_at.to_rfc3339(),
            last_used_job_id: last_used,
            archived_last_used_job_id: archived,
            high_water,
            rescheduled,
            rows,
            seconds: 0.0,
            config_left_out: Vec::new(),
            phases,
            recovery: None,
        })
    }

    /// One transaction: re-check, record the replaced counter in the high-water mark, swap,
    /// set the counter. Killed before COMMIT, nothing of it happened (but a mark kept in a
    /// file may already be raised, which only ever records a counter that was real).
    /// Returns the last used job ID, the archive's, and the high-water mark.
    #[allow(clippy::type_complexity)]
    fn swap(
        &mut self,
        ctx: &Ctx,
        request: &Request,
        archived_last_used: Option<i64>,
    ) -> anyhow::Result<(Option<i64>, Option<i64>, Option<i64>)> {
        let choice = profile_choice(&self.header)?;
        let step = Swap {
            schema: &self.schema,
            staging: &self.staging,
            replaced: &self.replaced,
            old_exists: self.old_exists,
            old: self.old.as_ref(),
            choice,
            archived_last_used,
            ctx,
            request,
        };
        let mut tx = self.db.transaction()?;
        match step.run(&mut tx) {
            Ok(outcome) => {
                tx.commit()?;
                self.staged = false;
                Ok(outcome)
            }
            Err(e) => {
                drop(tx);
                if load::is_lock_timeout(&e) {
                    return Err(self.lock_timeout_error(e));
                }
                Err(e)
            }
        }
    }

    /// The swap gave up waiting for a lock on the live schema: says who holds it and what
    /// to do, keeping the server's message.
    fn lock_timeout_error(&mut self, err: anyhow::Error) -> anyhow::Error {
        let holders = load::lock_holders(&mut self.db, &self.schema).unwrap_or_default();
        let held_by = if holders.is_empty() {
            "held by a session that has ended since".to_string()
        } else {
            format!("held by {}", holders.join("; "))
        };
        err.context(format!(
            "the swap waited {} for a lock on schema {:?} and gave up, {held_by}; stop the workers (or end that session) and run the restore again — the live schema is unchanged",
            load::SWAP_LOCK_TIMEOUT,
            self.schema
        ))
    }

    /// Cleans up after a failure: the live schema was never touched; the staging schema goes.
    pub fn abandon(mut self: Box<Self>, err: anyhow::Error) -> anyhow::Error {
        let loader_err = self.stop_loaders(true).err();
        // A loader error (e.g. a COPY rejecting a row) explains more than "stopped", unless
        // the archive itself was found bad.
        let err = match loader_err {
            Some(le) if exit_code_of(&err) != Exit::BadArchive => le,
            _ => err,
        };
        if self.staged {
            let _ = load::drop_leftovers(&mut self.db, &self.schema);
        }
        err
    }
}

/// The swap transaction's inputs.
struct Swap<'a> {
    schema: &'a str,
    staging: &'a str,
    replaced: &'a str,
    old_exists: bool,
    old: Option<&'a Profile>,
    choice: Option<ProfileChoice>,
    /// The header's last used job ID: the counter may have moved past the archived
    /// sequence's value while the backup ran, and IDs up to it may be in use elsewhere.
    archived_last_used: Option<i64>,
    ctx: &'a Ctx,
    request: &'a Request,
}

impl Swap<'_> {
    /// The last used job ID after the swap, the archive's, and the high-water mark.
    #[allow(clippy::type_complexity)]
    fn run(
        &self,
        tx: &mut crate::db::Tx<'_>,
    ) -> anyhow::Result<(Option<i64>, Option<i64>, Option<i64>)> {
        let (schema, ctx) = (self.schema, self.ctx);
        let stale_after = ctx.config.stale_after.value;
        let mut old_counter = None;
        if let Some(p) = self.old {
            // Workers or jobs may have appeared while the archive loaded.
            load::lock_live_jobs(tx, p)?;
            let live = workers::live(tx, p, stale_after)?;
            if !live.is_empty() {
                return Err(live_workers_refusal(&live, stale_after));
            }
            if load::has_jobs(tx, p)? && !self.request.force {
                return Err(failure(
                    Exit::Refused,
                    format!("refusing to restore over schema {schema:?}: jobs were added while the archive loaded; pass --force to replace it"),
                ));
            }
            if let Ok(seq) = counter::sequence_name(tx, p) {
                old_counter = Some(counter::last_used(tx, &seq)?);
            }
        }
        let high_water = match old_counter {
            Some(current) => Some(high_water::raise(ctx, tx, schema, current)?),
            None => high_water::read(ctx, Some(&mut *tx), schema)?,
        };
        load::swap(tx, schema, self.staging, self.replaced, self.old_exists)?;
        let Some(p) = profile::detect(tx, self.choice, Some(schema))? else {
            return Ok((None, None, high_water));
        };
        let Ok(seq) = counter::sequence_name(tx, &p) else {
            return Ok((None, None, high_water));
        };
        let restored = counter::last_used(tx, &seq)?;
        // Never below what the backup recorded; with --avoid-id-reuse never below the mark,
        // which holds the replaced counter and every counter seen before a destroy.
        let archived = restored.max(self.archived_last_used.unwrap_or(restored));
        let mut wanted = archived;
        if let (true, Some(mark)) = (self.request.avoid_id_reuse, high_water) {
            wanted = wanted.max(mark);
        }
        if wanted > restored {
            counter::set_last_used(tx, &seq, wanted)?;
        }
        Ok((
            Some(counter::last_used(tx, &seq)?),
            Some(archived),
            high_water,
        ))
    }
}

/// The profile the archive names, if it names one.
fn profile_choice(m: &Manifest) -> anyhow::Result<Option<ProfileChoice>> {
    m.profile.as_deref().map(ProfileChoice::parse).transpose()
}

/// Runs `statements` spread over the connections, each taking the next one as it is free;
/// stops handing them out at the first failure, which it returns. The sum of what `run`
/// returned.
/// A post-data phase named by what its statements do, for the phase breakdown.
fn post_data_phase(statements: &[String]) -> String {
    let kind = |s: &String| {
        let upper = s.trim_start().to_ascii_uppercase();
        if upper.starts_with("CREATE UNIQUE INDEX") || upper.starts_with("CREATE INDEX") {
            "indexes"
        } else if upper.contains("FOREIGN KEY") {
            "foreign keys"
        } else if upper.contains("PRIMARY KEY") || upper.contains(" UNIQUE") {
            "keys"
        } else if upper.starts_with("CREATE TRIGGER") || upper.contains("RULE") {
            "triggers"
        } else {
            "other"
        }
    };
    let mut kinds: Vec<&str> = statements.iter().map(kind).collect();
    kinds.dedup();
    format!("{} ({})", kinds.join(", "), statements.len())
}

fn spread(
    dbs: &mut [Db],
    statements: &[String],
    run: impl Fn(&mut Db, &str) -> anyhow::Result<u64> + Sync,
) -> anyhow::Result<u64> {
    if statements.is_empty() {
        return Ok(0);
    }
    if dbs.is_empty() {
        return Err(anyhow!("no connection to run the statements on"));
    }
    let queue = Mutex::new(statements.iter().collect::<VecDeque<_>>());
    let failed = AtomicBool::new(false);
    let results: Vec<anyhow::Result<u64>> = std::thread::scope(|s| {
        let handles: Vec<_> = dbs
            .iter_mut()
            .map(|db| {
                let (queue, failed, run) = (&queue, &failed, &run);
                s.spawn(move || -> anyhow::Result<u64> {
                    let mut total = 0;
                    loop {
                        if failed.load(Ordering::Relaxed) {
                            return Ok(total);
                        }
                        let next = queue
                            .lock()
                            .map_err(|_| anyhow!("statement queue poisoned"))?
                            .pop_front();
                        let Some(stmt) = next else { return Ok(total) };
                        match run(db, stmt) {
                            Ok(n) => total += n,
                            Err(e) => {
                                failed.store(true, Ordering::Relaxed);
                                return Err(e);
                            }
                        }
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow!("a statement thread panicked")))
            })
            .collect()
    });
    let mut total = 0;
    for r in results {
        total += r?;
    }
    Ok(total)
}
