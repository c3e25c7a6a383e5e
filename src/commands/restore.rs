use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use anyhow::{anyhow, Context as _};
use indicatif::ProgressBar;
use serde_json::json;

use crate::archive::reader::{self, Discard, Visitor};
use crate::archive::{self, Manifest, Mode, SchemaDdl};
use crate::cli::Confirmation;
use crate::cluster::{Cluster, ServerState, StopMode};
use crate::commands::backup::{lock_data_dir, DirLock};
use crate::config::running_as_root;
use crate::context::Ctx;
use crate::db::profile::{self, ProfileChoice};
use crate::db::{counter, load, workers, Db, Profile};
use crate::error::{exit_code_of, failure, Exit};
use crate::output::confirm;

/// Restore a backup archive. An online archive is loaded into a staging schema, checked
/// while loading, and swapped for the job schema in one transaction; a cold archive replaces
/// the embedded cluster's data directory. A failed or interrupted restore leaves the
/// database as it was.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The archive, or - to read it from standard input.
    #[arg(value_name = "ARCHIVE")]
    pub archive: PathBuf,
    #[command(flatten)]
    pub confirmation: Confirmation,
    /// Replace a database that has jobs (they are lost; jobs created after the backup are
    /// gone).
    #[arg(long)]
    pub force: bool,
    /// Keep the current job counter when it is higher than the backup's, so job IDs handed
    /// out since the backup are never reused.
    #[arg(long)]
    pub avoid_id_reuse: bool,
}

/// Chunks in flight between the reader and the loaders.
const LOADERS: usize = 2;

pub fn run(args: RestoreArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let started = Instant::now();
    let from_stdin = args.archive == Path::new("-");
    let open = || -> anyhow::Result<(File, u64)> {
        let file = File::open(&args.archive)
            .with_context(|| format!("cannot open archive {}", args.archive.display()))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok((file, size))
    };
    let label = if from_stdin {
        "<stdin>".to_string()
    } else {
        args.archive.display().to_string()
    };
    // A file is checked whole before anything changes, so a bad archive is refused with the
    // database (or data directory) untouched; it is checked again while loading. Standard
    // input can be read only once: it is checked while loading into staging.
    if !from_stdin {
        let (file, size) = open()?;
        let bar = ctx.out.progress(
            size,
            "{spinner} checking the archive {bytes}/{total_bytes} ({binary_bytes_per_sec})",
        );
        let checked = reader::read(
            Counting {
                inner: Box::new(file),
                bar: bar.clone(),
            },
            &label,
            &mut Discard,
        );
        bar.finish_and_clear();
        checked?;
    }
    let (input, size): (Box<dyn Read>, Option<u64>) = if from_stdin {
        (Box::new(std::io::stdin()), None)
    } else {
        let (file, size) = open()?;
        (Box::new(file), Some(size))
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
        args: &args,
        bar: bar.clone(),
        state: State::Start,
    };
    let outcome = reader::read(input, &label, &mut visitor);
    bar.finish_and_clear();
    let state = std::mem::replace(&mut visitor.state, State::Start);
    let result = match (outcome, state) {
        (Ok(summary), State::Online(online)) => online.finish(ctx, &args, &summary.manifest),
        (Ok(summary), State::Cold(cold)) => (*cold).finish(ctx, &summary.manifest),
        (Ok(_), State::Start) => Err(anyhow!("archive {label} has no header")),
        (Err(e), State::Online(online)) => Err(online.abandon(e)),
        (Err(e), State::Cold(cold)) => Err((*cold).abandon(ctx, e)),
        (Err(e), State::Start) => Err(e),
    }?;
    report(ctx, &result, started.elapsed().as_secs_f64())?;
    Ok(Exit::Ok)
}

struct Restored {
    mode: Mode,
    schema: Option<String>,
    created_at: String,
    last_used_job_id: Option<i64>,
    rescheduled: u64,
    rows: u64,
}

fn report(ctx: &Ctx, r: &Restored, seconds: f64) -> anyhow::Result<()> {
    if ctx.out.json {
        return ctx.out.json(&json!({
            "mode": r.mode.name(),
            "schema": r.schema,
            "backup_created_at": r.created_at,
            "last_used_job_id": r.last_used_job_id,
            "next_job_id": r.last_used_job_id.map(|n| n.saturating_add(1)),
            "rescheduled_jobs": r.rescheduled,
            "rows": r.rows,
            "seconds": seconds,
        }));
    }
    let what = match (&r.mode, &r.schema) {
        (Mode::Online, Some(s)) => format!("schema {s:?}"),
        _ => "the embedded cluster".to_string(),
    };
    ctx.out.line(format!(
        "restored {what} from the backup of {} in {seconds:.1} s{}",
        r.created_at,
        if r.mode == Mode::Online {
            format!(
                ", {} rows, {} formerly running job(s) queued again",
                r.rows, r.rescheduled
            )
        } else {
            String::new()
        }
    ))?;
    if let Some(id) = r.last_used_job_id {
        ctx.out.line(format!(
            "last used job ID {id} (the next job gets {})",
            id.saturating_add(1)
        ))?;
    }
    Ok(())
}

/// Counts the compressed bytes read, for the progress bar.
struct Counting {
    inner: Box<dyn Read>,
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
    args: &'a RestoreArgs,
    bar: ProgressBar,
    state: State,
}

impl Visitor for Restore<'_> {
    fn header(&mut self, header: &Manifest) -> anyhow::Result<()> {
        self.state = match header.mode {
            Mode::Online => State::Online(Box::new(Online::prepare(
                self.ctx,
                self.args,
                header,
                self.bar.clone(),
            )?)),
            Mode::Cold => State::Cold(Box::new(Cold::prepare(self.ctx, self.args, header)?)),
        };
        Ok(())
    }

    fn dir(&mut self, name: &str, mode: u32) -> anyhow::Result<()> {
        match &mut self.state {
            State::Cold(cold) => cold.dir(name, mode),
            _ => Err(anyhow!("unexpected directory {name:?}")),
        }
    }

    fn file(&mut self, name: &str, mode: u32, piece: Vec<u8>, last: bool) -> anyhow::Result<()> {
        match &mut self.state {
            State::Online(online) => online.file(self.ctx, name, piece, last),
            State::Cold(cold) => cold.file(name, mode, piece, last),
            State::Start => Err(anyhow!("entry {name:?} before the header")),
        }
    }
}

/// An online restore in progress: the main connection holds the lock and owns the staging
/// schema; loader threads COPY chunks into it.
struct Online {
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
    chunk: Vec<u8>,
    loaders: Option<Loaders>,
    bar: ProgressBar,
}

struct Loaders {
    send: SyncSender<(usize, Vec<u8>)>,
    handles: Vec<JoinHandle<anyhow::Result<Db>>>,
    rows: Arc<Vec<AtomicU64>>,
    failed: Arc<AtomicBool>,
}

impl Online {
    /// Everything that can refuse the restore happens here, before the staging schema exists.
    fn prepare(
        ctx: &Ctx,
        args: &RestoreArgs,
        header: &Manifest,
        bar: ProgressBar,
    ) -> anyhow::Result<Online> {
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
        let mut db = ctx.connect()?;
        db.try_operation_lock("backup", "backup or restore")?;
        let (staging, replaced) = load::work_schemas(&schema);
        for name in load::drop_leftovers(&mut db, &schema)? {
            ctx.out.info(format!(
                "dropped {name:?}, left behind by an interrupted restore"
            ));
        }
        let old_exists = load::schema_exists(&mut db, &schema)?;
        let old = if old_exists {
            profile::detect(&mut db, choice, Some(&schema))?
        } else {
            None
        };
        let stale_after = ctx.config.stale_after.value;
        match &old {
            Some(p) => {
                let live = workers::live_ids(&mut db, p, stale_after)?;
                if !live.is_empty() {
                    return Err(live_workers_refusal(&live));
                }
                if load::has_jobs(&mut db, p)? && !args.force {
                    return Err(failure(
                        Exit::Refused,
                        format!(
                            "refusing to restore over schema {schema:?}: it has jobs, which would be lost (jobs created after the backup are gone); pass --force to replace it"
                        ),
                    ));
                }
            }
            None if old_exists && !args.force => {
                return Err(failure(
                    Exit::Refused,
                    format!(
                        "refusing to restore over schema {schema:?}: it exists but is not a job schema of the archive's profile; pass --force to replace it"
                    ),
                ))
            }
            None => {}
        }
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
            confirm(
                &format!(
                    "replace schema {schema:?} with the backup taken {}",
                    header.created_at.format("%Y-%m-%d %H:%M:%S UTC")
                ),
                args.confirmation.yes,
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
            chunk: Vec::new(),
            loaders: None,
            bar,
        })
    }

    fn file(&mut self, ctx: &Ctx, name: &str, piece: Vec<u8>, last: bool) -> anyhow::Result<()> {
        if name == archive::SCHEMA {
            self.chunk.extend_from_slice(&piece);
            if last {
                let ddl: SchemaDdl = serde_json::from_slice(&std::mem::take(&mut self.chunk))
                    .map_err(|e| {
                        failure(
                            Exit::BadArchive,
                            format!("{} is not valid: {e}", archive::SCHEMA),
                        )
                    })?;
                self.stage(ctx, &ddl)?;
                self.ddl = Some(ddl);
            }
            return Ok(());
        }
        let Some(table) = archive::parse_data_entry_name(name) else {
            return Ok(());
        };
        let loaders = self.loaders.as_ref().ok_or_else(|| {
            failure(
                Exit::BadArchive,
                format!("data entry {name:?} comes before {}", archive::SCHEMA),
            )
        })?;
        let data = if self.chunk.is_empty() && last {
            piece
        } else {
            self.chunk.extend_from_slice(&piece);
            if !last {
                return Ok(());
            }
            std::mem::take(&mut self.chunk)
        };
        if loaders.send.send((table, data)).is_err() || loaders.failed.load(Ordering::Relaxed) {
            return Err(self.loader_error());
        }
        Ok(())
    }

    /// Creates the staging schema and starts the loaders.
    fn stage(&mut self, ctx: &Ctx, ddl: &SchemaDdl) -> anyhow::Result<()> {
        self.staged = true;
        load::create_staging(&mut self.db, &self.staging, ddl)?;
        let (send, recv) = sync_channel::<(usize, Vec<u8>)>(LOADERS * 2);
        let recv = Arc::new(Mutex::new(recv));
        let rows: Arc<Vec<AtomicU64>> = Arc::new(
            self.header
                .tables
                .iter()
                .map(|_| AtomicU64::new(0))
                .collect(),
        );
        let failed = Arc::new(AtomicBool::new(false));
        let mut handles = Vec::new();
        for _ in 0..LOADERS {
            let mut db = ctx.connect()?;
            load::prepare_worker_session(&mut db, &self.staging)?;
            let (recv, rows, failed, bar) = (
                Arc::clone(&recv),
                Arc::clone(&rows),
                Arc::clone(&failed),
                self.bar.clone(),
            );
            let tables = self.header.tables.clone();
            let staging = self.staging.clone();
            handles.push(std::thread::spawn(move || -> anyhow::Result<Db> {
                let result = (|| loop {
                    let next = recv
                        .lock()
                        .map_err(|_| anyhow!("loader queue poisoned"))?
                        .recv();
                    let Ok((t, data)) = next else { return Ok(()) };
                    let table = &tables[t];
                    let n = load::copy_in(&mut db, &staging, &table.name, &table.columns, &data)
                        .with_context(|| format!("loading table {:?} failed", table.name))?;
                    let total: u64 = rows[t].fetch_add(n, Ordering::Relaxed) + n;
                    bar.set_message(format!("{total} rows into {:?}", table.name));
                })();
                if let Err(e) = result {
                    failed.store(true, Ordering::Relaxed);
                    return Err(e);
                }
                Ok(db)
            }));
        }
        self.loaders = Some(Loaders {
            send,
            handles,
            rows,
            failed,
        });
        Ok(())
    }

    /// Stops the loaders and returns the first loader's error.
    fn loader_error(&mut self) -> anyhow::Error {
        match self.stop_loaders() {
            Ok(_) => anyhow!("a loader connection stopped"),
            Err(e) => e,
        }
    }

    fn stop_loaders(&mut self) -> anyhow::Result<Vec<Db>> {
        let Some(loaders) = self.loaders.take() else {
            return Ok(Vec::new());
        };
        drop(loaders.send);
        let mut dbs = Vec::new();
        let mut first_error = None;
        for h in loaders.handles {
            match h.join() {
                Ok(Ok(db)) => dbs.push(db),
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(_) => {
                    first_error.get_or_insert(anyhow!("a loader thread panicked"));
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(dbs),
        }
    }

    /// After the archive checked out whole: indexes, constraints, triggers, then the swap.
    fn finish(
        mut self: Box<Self>,
        ctx: &Ctx,
        args: &RestoreArgs,
        manifest: &Manifest,
    ) -> anyhow::Result<Restored> {
        match self.complete(ctx, args, manifest) {
            Ok(r) => Ok(r),
            Err(e) => Err(self.abandon(e)),
        }
    }

    fn complete(
        &mut self,
        ctx: &Ctx,
        args: &RestoreArgs,
        manifest: &Manifest,
    ) -> anyhow::Result<Restored> {
        let ddl = self.ddl.take().ok_or_else(|| {
            failure(
                Exit::BadArchive,
                format!("archive has no {}", archive::SCHEMA),
            )
        })?;
        let loaders_rows = self.loaders.as_ref().map(|l| Arc::clone(&l.rows));
        let mut dbs = self.stop_loaders()?;
        let mut rows = 0;
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
        }
        let choice = manifest
            .profile
            .as_deref()
            .map(ProfileChoice::parse)
            .transpose()?;
        let staged = profile::detect(&mut self.db, choice, Some(&self.staging))?;
        let rescheduled = match &staged {
            Some(p) => load::reschedule_locked_jobs(&mut self.db, p)?,
            None => 0,
        };
        self.bar.set_message("building indexes and constraints");
        run_phases(&mut dbs, &ddl.post_data)?;
        drop(dbs);
        let last_used = self.swap(ctx, args)?;
        Ok(Restored {
            mode: Mode::Online,
            schema: Some(self.schema.clone()),
            created_at: manifest.created_at.to_rfc3339(),
            last_used_job_id: last_used,
            rescheduled,
            rows,
        })
    }

    /// One transaction: re-check, swap, set the counter. Killed before COMMIT, nothing of it
    /// happened.
    fn swap(&mut self, ctx: &Ctx, args: &RestoreArgs) -> anyhow::Result<Option<i64>> {
        let (schema, staging, replaced, old_exists) = (
            self.schema.clone(),
            self.staging.clone(),
            self.replaced.clone(),
            self.old_exists,
        );
        let old = self.old.clone();
        let choice = self
            .header
            .profile
            .as_deref()
            .map(ProfileChoice::parse)
            .transpose()?;
        let mut tx = self.db.transaction()?;
        let mut old_counter = None;
        if let Some(p) = &old {
            // Workers or jobs may have appeared while the archive loaded.
            load::lock_live_jobs(&mut tx, p)?;
            let live = workers::live_ids(&mut tx, p, ctx.config.stale_after.value)?;
            if !live.is_empty() {
                return Err(live_workers_refusal(&live));
            }
            if load::has_jobs(&mut tx, p)? && !args.force {
                return Err(failure(
                    Exit::Refused,
                    format!("refusing to restore over schema {schema:?}: jobs were added while the archive loaded; pass --force to replace it"),
                ));
            }
            if let Ok(seq) = counter::sequence_name(&mut tx, p) {
                old_counter = Some(counter::last_used(&mut tx, &seq)?);
            }
        }
        load::swap(&mut tx, &schema, &staging, &replaced, old_exists)?;
        let mut last_used = None;
        if let Some(p) = profile::detect(&mut tx, choice, Some(&schema))? {
            if let Ok(seq) = counter::sequence_name(&mut tx, &p) {
                let mut last = counter::last_used(&mut tx, &seq)?;
                if let (true, Some(current)) = (args.avoid_id_reuse, old_counter) {
                    if current > last {
                        counter::set_last_used(&mut tx, &seq, current)?;
                        last = counter::last_used(&mut tx, &seq)?;
                    }
                }
                last_used = Some(last);
            }
        }
        tx.commit()?;
        self.staged = false;
        Ok(last_used)
    }

    /// Cleans up after a failure: the live schema was never touched; the staging schema goes.
    fn abandon(mut self: Box<Self>, err: anyhow::Error) -> anyhow::Error {
        let loader_err = self.stop_loaders().err();
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

fn live_workers_refusal(live: &[String]) -> anyhow::Error {
    failure(
        Exit::Refused,
        format!(
            "refusing to restore: {} live worker(s) ({}) use this database; stop them first (a worker counts as live until its heartbeat is older than stale_after)",
            live.len(),
            live.join(", ")
        ),
    )
}

/// Runs each phase's statements spread over the connections; a phase starts when the one
/// before has finished.
fn run_phases(dbs: &mut [Db], phases: &[Vec<String>]) -> anyhow::Result<()> {
    if dbs.is_empty() {
        return Err(anyhow!("no connection to build the schema with"));
    }
    for phase in phases {
        let queue = Mutex::new(phase.iter().collect::<VecDeque<_>>());
        let failed = AtomicBool::new(false);
        let results: Vec<anyhow::Result<()>> = std::thread::scope(|s| {
            let handles: Vec<_> = dbs
                .iter_mut()
                .map(|db| {
                    let (queue, failed) = (&queue, &failed);
                    s.spawn(move || -> anyhow::Result<()> {
                        loop {
                            if failed.load(Ordering::Relaxed) {
                                return Ok(());
                            }
                            let next = queue
                                .lock()
                                .map_err(|_| anyhow!("statement queue poisoned"))?
                                .pop_front();
                            let Some(stmt) = next else { return Ok(()) };
                            if let Err(e) = load::run_statement(db, stmt) {
                                failed.store(true, Ordering::Relaxed);
                                return Err(e);
                            }
                        }
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow!("a schema thread panicked")))
                })
                .collect()
        });
        for r in results {
            r?;
        }
    }
    Ok(())
}

/// A cold restore in progress: the archive is extracted next to the data directory and
/// exchanged with it once complete.
struct Cold {
    cluster: Cluster,
    _lock: DirLock,
    staging: PathBuf,
    was_running: bool,
    created_at: String,
    file: Option<File>,
    uid_gid: Option<(u32, u32)>,
}

impl Cold {
    fn prepare(ctx: &Ctx, args: &RestoreArgs, header: &Manifest) -> anyhow::Result<Cold> {
        let cluster = ctx.cluster("restore of a cold archive")?.clone();
        let lock = lock_data_dir(&cluster)?;
        let state = cluster.state()?;
        if let ServerState::Running(_) = state {
            let mut db = ctx.connect()?;
            if let Some(p) = ctx.detect_profile(&mut db)? {
                let live = workers::live_ids(&mut db, &p, ctx.config.stale_after.value)?;
                if !live.is_empty() {
                    return Err(live_workers_refusal(&live));
                }
                if load::has_jobs(&mut db, &p)? && !args.force {
                    return Err(failure(
                        Exit::Refused,
                        "refusing to restore over the embedded cluster: it has jobs, which would be lost; pass --force to replace it",
                    ));
                }
            }
        } else if state == ServerState::Stopped && !args.force {
            return Err(failure(
                Exit::Refused,
                "refusing to replace a stopped cluster without checking it for jobs; start it (`jobdbctl start`) so restore can check, or pass --force",
            ));
        }
        if state != ServerState::NotInitialized {
            confirm(
                &format!(
                    "replace the embedded cluster at {} with the cold backup taken {}",
                    cluster.pgdata.display(),
                    header.created_at.format("%Y-%m-%d %H:%M:%S UTC")
                ),
                args.confirmation.yes,
            )?;
        }
        let staging = staging_dir(&cluster);
        if staging.exists() {
            fs::remove_dir_all(&staging)
                .with_context(|| format!("cannot remove leftover {}", staging.display()))?;
        }
        let uid_gid = match (&cluster.server_user, running_as_root()) {
            (Some(user), true) => Some(crate::cluster::lookup_user(user)?),
            _ => None,
        };
        let was_running = matches!(state, ServerState::Running(_));
        if was_running {
            ctx.out.info("stopping the server for the restore");
            cluster.stop(StopMode::Fast)?;
        }
        Ok(Cold {
            cluster,
            _lock: lock,
            staging,
            was_running,
            created_at: header.created_at.to_rfc3339(),
            file: None,
            uid_gid,
        })
    }

    fn target(&self, name: &str) -> PathBuf {
        match name.strip_prefix(archive::CLUSTER_DIR) {
            Some(rest) => self.staging.join(rest.trim_start_matches('/')),
            None => self.staging.join(name),
        }
    }

    fn own(&self, path: &Path) -> anyhow::Result<()> {
        if let Some((uid, gid)) = self.uid_gid {
            std::os::unix::fs::chown(path, Some(uid), Some(gid))
                .with_context(|| format!("cannot chown {}", path.display()))?;
        }
        Ok(())
    }

    fn dir(&mut self, name: &str, mode: u32) -> anyhow::Result<()> {
        let path = self.target(name);
        fs::create_dir(&path).with_context(|| format!("cannot create {}", path.display()))?;
        // PostgreSQL insists on 0700 or 0750 for its directories.
        fs::set_permissions(&path, fs::Permissions::from_mode(mode & 0o750))
            .with_context(|| format!("cannot chmod {}", path.display()))?;
        self.own(&path)
    }

    fn file(&mut self, name: &str, mode: u32, piece: Vec<u8>, last: bool) -> anyhow::Result<()> {
        let path = self.target(name);
        if self.file.is_none() {
            let f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode & 0o640)
                .open(&path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            self.own(&path)?;
            self.file = Some(f);
        }
        if let Some(f) = self.file.as_mut() {
            f.write_all(&piece)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        if last {
            if let Some(f) = self.file.take() {
                f.sync_all()
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
        }
        Ok(())
    }

    fn finish(self, ctx: &Ctx, manifest: &Manifest) -> anyhow::Result<Restored> {
        let result = self.swap_in();
        let result = match result {
            Ok(()) => Ok(()),
            Err(e) => {
                let _ = fs::remove_dir_all(&self.staging);
                Err(e)
            }
        };
        if self.was_running {
            self.cluster
                .start()
                .context("the server did not start after the restore")?;
            ctx.out.info("server started again");
        }
        result?;
        Ok(Restored {
            mode: Mode::Cold,
            schema: manifest.schema.clone(),
            created_at: self.created_at.clone(),
            last_used_job_id: manifest.last_used_job_id,
            rescheduled: 0,
            rows: 0,
        })
    }

    fn swap_in(&self) -> anyhow::Result<()> {
        let version = fs::read_to_string(self.staging.join("PG_VERSION"))
            .context("the archive's data directory has no PG_VERSION")?;
        let bindir = self.cluster.bindir()?;
        let ours = server_major(&bindir)?;
        if version.trim() != ours {
            return Err(failure(
                Exit::Refused,
                format!(
                    "the archive holds a PostgreSQL {} data directory but the server binaries in {} are version {ours}; restore it with PostgreSQL {} installed",
                    version.trim(),
                    bindir.display(),
                    version.trim()
                ),
            ));
        }
        sync_dir(&self.staging)?;
        let pgdata = &self.cluster.pgdata;
        if pgdata.exists() {
            // Atomic: at every moment psql/ is either the old cluster or the new one.
            exchange(&self.staging, pgdata)?;
            sync_dir(&self.cluster.data_dir)?;
            fs::remove_dir_all(&self.staging).with_context(|| {
                format!(
                    "restored, but cannot remove the old cluster at {}",
                    self.staging.display()
                )
            })?;
        } else {
            fs::rename(&self.staging, pgdata).with_context(|| {
                format!("cannot move the restored cluster to {}", pgdata.display())
            })?;
            sync_dir(&self.cluster.data_dir)?;
        }
        Ok(())
    }

    fn abandon(self, ctx: &Ctx, err: anyhow::Error) -> anyhow::Error {
        drop(self.file);
        let _ = fs::remove_dir_all(&self.staging);
        if self.was_running {
            if let Err(e) = self.cluster.start() {
                ctx.out.warn(format!(
                    "the server did not start again after the failed restore: {e:#}"
                ));
            }
        }
        err
    }
}

fn staging_dir(cluster: &Cluster) -> PathBuf {
    cluster.data_dir.join("psql.restoring")
}

fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync {}", dir.display()))
}

fn exchange(a: &Path, b: &Path) -> anyhow::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let ca = std::ffi::CString::new(a.as_os_str().as_bytes())?;
    let cb = std::ffi::CString::new(b.as_os_str().as_bytes())?;
    // SAFETY: both paths are NUL-terminated; renameat2 only reads them.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("cannot exchange {} and {}", a.display(), b.display()));
    }
    Ok(())
}

/// "15" from `postgres --version` ("postgres (PostgreSQL) 15.4 (Debian …)").
fn server_major(bindir: &Path) -> anyhow::Result<String> {
    let out = std::process::Command::new(bindir.join("postgres"))
        .arg("--version")
        .output()
        .with_context(|| format!("cannot run {}/postgres --version", bindir.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .find_map(|w| {
            let major = w.split('.').next()?;
            (w.contains('.') && major.chars().all(|c| c.is_ascii_digit()))
                .then(|| major.to_string())
        })
        .ok_or_else(|| anyhow!("cannot tell the server version from {text:?}"))
}
