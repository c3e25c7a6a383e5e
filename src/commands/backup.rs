use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::BufRead;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{anyhow, Context as _};
use chrono::Utc;
use serde_json::json;

use crate::archive::writer::{ArchiveWriter, Output};
use crate::archive::{self, Manifest, Mode, Table};
use crate::cluster::{Cluster, ServerState, StopMode};
use crate::context::Ctx;
use crate::db::dump::{self, TableDef};
use crate::db::{counter, snapshot, status, Profile};
use crate::error::{failure, Exit};
use crate::output::human_bytes;
use crate::target::{redacted_url, Target};

/// Back up the job database to a .tar.gz archive: an online, consistent snapshot of the job
/// schema (default), or a cold copy of the embedded cluster's data directory.
#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// online: consistent snapshot through SQL while the engine runs (any server); cold:
    /// stop the embedded server, archive its data directory, start it again if it was running.
    #[arg(long, value_enum, default_value_t = Mode::Online)]
    pub mode: Mode,
    /// Archive to write, or - for standard output. A directory gets a timestamped name
    /// inside it. Default: a timestamped name in backup_dir (config).
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// After a successful backup, delete all but the newest N complete archives of this
    /// database in the destination directory.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub keep: Option<u32>,
    /// Write the archive even when the destination's free space looks too small.
    #[arg(long)]
    pub no_space_check: bool,
}

pub fn run(args: BackupArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let to_stdout = args.output.as_deref() == Some(Path::new("-"));
    if to_stdout && ctx.out.json {
        return Err(failure(
            Exit::Usage,
            "--json cannot be used with --output - (standard output carries the archive)",
        ));
    }
    if to_stdout && args.keep.is_some() {
        return Err(failure(
            Exit::Usage,
            "--keep needs a destination directory; it cannot be used with --output -",
        ));
    }
    let done = backup(
        ctx,
        &Request {
            mode: args.mode,
            output: args.output,
            keep: args.keep,
            space_check: !args.no_space_check,
        },
    )?;
    report(ctx, &done)?;
    Ok(Exit::Ok)
}

pub struct Request {
    pub mode: Mode,
    pub output: Option<PathBuf>,
    pub keep: Option<u32>,
    pub space_check: bool,
}

pub struct Done {
    pub path: Option<PathBuf>,
    pub bytes: u64,
    pub manifest: Manifest,
    pub pruned: Vec<PathBuf>,
    pub seconds: f64,
}

/// Writes one archive as the request says; also the first step of `destroy --backup-first`.
pub fn backup(ctx: &Ctx, request: &Request) -> anyhow::Result<Done> {
    // Archives hold every job's payload: nothing this run creates is readable by others.
    // SAFETY: umask only changes this process's file creation mask.
    unsafe { libc::umask(0o077) };
    let started = Instant::now();
    let mut done = match request.mode {
        Mode::Online => online(ctx, request)?,
        Mode::Cold => cold(ctx, request)?,
    };
    if let (Some(n), Some(path)) = (request.keep, done.path.as_ref()) {
        // Fails the run (cron must hear of it) but says the new archive is there.
        done.pruned = prune(path, &done.manifest, n as usize).with_context(|| {
            format!(
                "backup written to {}, but --keep could not prune",
                path.display()
            )
        })?;
        for p in &done.pruned {
            ctx.out.info(format!("removed old archive {}", p.display()));
        }
    }
    done.seconds = started.elapsed().as_secs_f64();
    Ok(done)
}

fn report(ctx: &Ctx, done: &Done) -> anyhow::Result<()> {
    let rows: u64 = done.manifest.tables.iter().filter_map(|t| t.rows).sum();
    let path = done.path.as_ref().map(|p| p.display().to_string());
    if ctx.out.json {
        return ctx.out.json(&json!({
            "archive": path,
            "bytes": done.bytes,
            "mode": done.manifest.mode.name(),
            "database": done.manifest.database,
            "schema": done.manifest.schema,
            "schema_version": done.manifest.schema_version,
            "last_used_job_id": done.manifest.last_used_job_id,
            "tables": done.manifest.tables.iter().map(|t| json!({"name": t.name, "rows": t.rows})).collect::<Vec<_>>(),
            "seconds": done.seconds,
            "pruned": done.pruned.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        }));
    }
    let mut text = format!(
        "{} backup of {} written{}: {} in {:.1} s",
        done.manifest.mode.name(),
        done.manifest
            .schema
            .as_deref()
            .map(|s| format!("schema {s:?} of database {:?}", done.manifest.database))
            .unwrap_or_else(|| format!("the cluster's data directory ({})", done.manifest.server)),
        path.map(|p| format!(" to {p}")).unwrap_or_default(),
        human_bytes(done.bytes as i64),
        done.seconds
    );
    if done.manifest.mode == Mode::Online {
        text.push_str(&format!(
            ", {} tables, {rows} rows",
            done.manifest.tables.len()
        ));
    }
    if let Some(id) = done.manifest.last_used_job_id {
        text.push_str(&format!(", last used job ID {id}"));
    }
    if done.path.is_some() {
        ctx.out.line(text)
    } else {
        // stdout carries the archive.
        ctx.out.info(text);
        Ok(())
    }
}

/// Names the server without credentials, so `--keep` can tell archives of this database
/// from others in the same directory.
fn server_label(target: &Target) -> String {
    match target {
        Target::Embedded(c) => format!("embedded cluster {}", c.pgdata.display()),
        Target::Remote(r) => {
            let url = redacted_url(&r.pg);
            match url.split_once('@') {
                Some((_, rest)) => format!("postgresql://{rest}"),
                None => url,
            }
        }
    }
}

fn header(ctx: &Ctx, mode: Mode, database: String) -> Manifest {
    Manifest {
        format_version: archive::FORMAT_VERSION,
        jobdbctl_version: env!("CARGO_PKG_VERSION").to_string(),
        mode,
        created_at: Utc::now(),
        server_version: None,
        server: server_label(&ctx.target),
        database,
        profile: None,
        schema: None,
        schema_version: None,
        last_used_job_id: None,
        max_entry_bytes: 0,
        total_file_bytes: None,
        tables: Vec::new(),
        entries: Vec::new(),
    }
}

/// Where the archive goes: a file written as `PATH.partial` and renamed when complete, or
/// standard output.
enum Destination {
    Stdout,
    File { path: PathBuf, partial: PathBuf },
}

impl Destination {
    fn choose(ctx: &Ctx, output: Option<&Path>, stem: &str) -> anyhow::Result<Destination> {
        let default_name = || {
            format!(
                "{}-{}.tar.gz",
                sanitize(stem),
                Utc::now().format("%Y%m%dT%H%M%S%.3fZ")
            )
        };
        let path = match output {
            Some(p) if p == Path::new("-") => return Ok(Destination::Stdout),
            Some(p) if p.is_dir() => p.join(default_name()),
            Some(p) => p.to_path_buf(),
            None => {
                let dir = &ctx.config.backup_dir.value;
                fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create backup directory {}", dir.display()))?;
                dir.join(default_name())
            }
        };
        let mut partial = path.clone().into_os_string();
        partial.push(".partial");
        Ok(Destination::File {
            path,
            partial: PathBuf::from(partial),
        })
    }

    fn dir(&self) -> Option<PathBuf> {
        match self {
            Destination::Stdout => None,
            Destination::File { path, .. } => Some(
                path.parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."))
                    .to_path_buf(),
            ),
        }
    }

    /// Refuses (exit 3) when the estimate does not fit in the destination's free space.
    fn check_space(&self, estimate: u64, enabled: bool) -> anyhow::Result<()> {
        let Some(dir) = self.dir().filter(|_| enabled) else {
            return Ok(());
        };
        let free = free_bytes(&dir)?;
        if free < estimate {
            return Err(failure(
                Exit::Refused,
                format!(
                    "not enough free space in {}: the archive needs about {} ({estimate} bytes), {} ({free} bytes) are free; \
                     free some space, choose another --output, or pass --no-space-check",
                    dir.display(),
                    human_bytes(estimate as i64),
                    human_bytes(free as i64)
                ),
            ));
        }
        Ok(())
    }

    fn open(&self) -> anyhow::Result<(Output, Option<File>)> {
        match self {
            Destination::Stdout => Ok((Box::new(std::io::stdout()), None)),
            Destination::File { partial, .. } => {
                let file = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(partial)
                    .with_context(|| format!("cannot create {}", partial.display()))?;
                // A .partial left by a killed run may have had other permissions.
                file.set_permissions(fs::Permissions::from_mode(0o600))
                    .with_context(|| format!("cannot chmod {}", partial.display()))?;
                let writer = file
                    .try_clone()
                    .with_context(|| format!("cannot open {}", partial.display()))?;
                Ok((
                    Box::new(std::io::BufWriter::with_capacity(1 << 20, writer)),
                    Some(file),
                ))
            }
        }
    }

    /// Makes the archive durable under its final name: fsync the data, rename, fsync the
    /// directory.
    fn complete(&self, file: Option<File>) -> anyhow::Result<Option<PathBuf>> {
        let Destination::File { path, partial } = self else {
            return Ok(None);
        };
        if let Some(f) = file {
            f.sync_all()
                .with_context(|| format!("cannot write {}", partial.display()))?;
        }
        fs::rename(partial, path).with_context(|| {
            format!("cannot rename {} to {}", partial.display(), path.display())
        })?;
        if let Some(dir) = self.dir() {
            File::open(&dir)
                .and_then(|d| d.sync_all())
                .with_context(|| format!("cannot sync directory {}", dir.display()))?;
        }
        Ok(Some(path.clone()))
    }

    fn discard(&self) {
        if let Destination::File { partial, .. } = self {
            let _ = fs::remove_file(partial);
        }
    }
}

fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn free_bytes(dir: &Path) -> anyhow::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .with_context(|| format!("bad path {}", dir.display()))?;
    // SAFETY: statvfs writes into the zeroed struct we pass; the path is NUL-terminated.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("cannot read free space of {}", dir.display()));
    }
    Ok(st.f_bavail as u64 * st.f_frsize as u64)
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Table data goes through this many COPY streams at once (each its own connection in the
/// same snapshot); see README for the measurements behind it.
const COPY_STREAMS: usize = 2;
/// Tables smaller than this are copied whole by one stream.
const SPLIT_PAGES: i64 = 1024;
/// Compressed size as a fraction of the heap, for the free-space estimate. Job tables
/// compress to about an eighth; a quarter leaves room for less compressible payloads.
const ESTIMATE_RATIO: f64 = 0.25;

struct Work {
    table: usize,
    pages: Option<(i64, Option<i64>)>,
}

fn plan(tables: &[TableDef], split: bool) -> VecDeque<Work> {
    let mut order: Vec<usize> = (0..tables.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(tables[i].pages));
    let mut work = VecDeque::new();
    for i in order {
        let pages = tables[i].pages;
        let parts = (pages / SPLIT_PAGES).min(COPY_STREAMS as i64 * 2);
        if !split || parts < 2 {
            work.push_back(Work {
                table: i,
                pages: None,
            });
            continue;
        }
        let step = pages / parts;
        for p in 0..parts {
            let from = p * step;
            let to = (p + 1 < parts).then_some((p + 1) * step);
            work.push_back(Work {
                table: i,
                pages: Some((if p == 0 { 0 } else { from }, to)),
            });
        }
    }
    work
}

fn online(ctx: &Ctx, request: &Request) -> anyhow::Result<Done> {
    let mut db = ctx.connect()?;
    let profile = ctx.profile(&mut db)?;
    db.try_operation_lock("backup", "backup or restore")?;
    let mut head = header(ctx, Mode::Online, db.database_name()?);
    head.server_version = Some(db.server_version()?);
    let split = snapshot::server_version_num(&mut db)? >= 140000;
    let (mut tx, snapshot_id) = snapshot::begin(&mut db)?;
    snapshot::lock_relations(&mut tx, &profile.schema)?;
    dump::set_search_path(&mut tx, &profile.schema)?;
    let schema = dump::read_schema(&mut tx, &profile.schema, ctx.target.cluster().is_some())?;
    head.profile = Some(profile.name().to_string());
    head.schema = Some(profile.schema.clone());
    head.schema_version = status::schema_version(&mut tx, &profile)?;
    head.last_used_job_id = match counter::sequence_name(&mut tx, &profile) {
        Ok(seq) => Some(counter::last_used(&mut tx, &seq)?),
        Err(_) => None,
    };
    // A chunk ends at the first row end past CHUNK_SIZE; one row can be up to 1 GB.
    head.max_entry_bytes = (archive::CHUNK_SIZE as u64) + (1 << 30);
    head.tables = schema
        .tables
        .iter()
        .map(|t| Table {
            name: t.name.clone(),
            columns: t.columns.clone(),
            rows: None,
        })
        .collect();

    let heap: i64 = schema.tables.iter().map(|t| t.bytes).sum();
    let stem = format!("{}-{}", head.database, profile.schema);
    let dest = Destination::choose(ctx, request.output.as_deref(), &stem)?;
    dest.check_space((heap as f64 * ESTIMATE_RATIO) as u64, request.space_check)?;
    let (out, file) = dest.open()?;
    let writer = ArchiveWriter::new(out, archive::COMPRESSION_LEVEL, threads());
    let result = write_online(
        ctx,
        &writer,
        &head,
        &Source {
            schema: &schema,
            profile: &profile,
            snapshot_id: &snapshot_id,
            split,
            heap,
        },
    );
    let rows = match result {
        Ok(rows) => rows,
        Err(e) => {
            let e = writer.abandon(e);
            dest.discard();
            return Err(e);
        }
    };
    let mut manifest = head.clone();
    for (t, n) in manifest.tables.iter_mut().zip(&rows) {
        t.rows = Some(n.load(Ordering::Relaxed));
    }
    let finished = writer.finish(|entries| {
        let mut m = manifest.clone();
        m.entries = entries;
        let bytes = serde_json::to_vec_pretty(&m).context("cannot encode the manifest")?;
        Ok((archive::MANIFEST.to_string(), bytes))
    });
    let (_, bytes) = match finished {
        Ok(done) => done,
        Err(e) => {
            dest.discard();
            return Err(e);
        }
    };
    tx.commit()?;
    let path = match dest.complete(file) {
        Ok(p) => p,
        Err(e) => {
            dest.discard();
            return Err(e);
        }
    };
    Ok(Done {
        path,
        bytes,
        manifest,
        pruned: Vec::new(),
        seconds: 0.0,
    })
}

/// What the COPY streams read: the schema in the exported snapshot.
struct Source<'a> {
    schema: &'a dump::SchemaDump,
    profile: &'a Profile,
    snapshot_id: &'a str,
    /// Whether big tables may be split into page ranges (TID range scans).
    split: bool,
    /// Heap bytes of all tables, for the progress bar.
    heap: i64,
}

fn write_online(
    ctx: &Ctx,
    writer: &ArchiveWriter,
    head: &Manifest,
    source: &Source<'_>,
) -> anyhow::Result<Vec<AtomicU64>> {
    let Source {
        schema,
        profile,
        snapshot_id,
        split,
        heap,
    } = *source;
    writer.add_entry(
        archive::HEADER,
        serde_json::to_vec_pretty(head).context("cannot encode the header")?,
    )?;
    writer.add_entry(
        archive::SCHEMA,
        serde_json::to_vec_pretty(&schema.ddl).context("cannot encode the schema")?,
    )?;
    let work = Mutex::new(plan(&schema.tables, split));
    let rows: Vec<AtomicU64> = schema.tables.iter().map(|_| AtomicU64::new(0)).collect();
    let chunks: Vec<AtomicU32> = schema.tables.iter().map(|_| AtomicU32::new(0)).collect();
    let failed = AtomicBool::new(false);
    let bar = ctx.out.progress(
        heap.max(0) as u64,
        "{spinner} backup {bytes} of ~{total_bytes} read ({binary_bytes_per_sec}), {msg}",
    );
    let total_rows = AtomicU64::new(0);
    // Connect every stream before the first COPY: the snapshot must be imported while the
    // exporting transaction is still open, which it is for the whole backup.
    let mut conns = Vec::new();
    for _ in 0..COPY_STREAMS {
        conns.push(ctx.connect()?);
    }
    let results: Vec<anyhow::Result<()>> = std::thread::scope(|s| {
        let handles: Vec<_> = conns
            .iter_mut()
            .map(|conn| {
                let (work, rows, chunks, failed, bar, total_rows) =
                    (&work, &rows, &chunks, &failed, &bar, &total_rows);
                s.spawn(move || -> anyhow::Result<()> {
                    let result = (|| {
                        let mut tx = snapshot::import(conn, snapshot_id)?;
                        loop {
                            if failed.load(Ordering::Relaxed) {
                                return Ok(());
                            }
                            let next = work
                                .lock()
                                .map_err(|_| anyhow!("work queue poisoned"))?
                                .pop_front();
                            let Some(item) = next else { break };
                            let table = &schema.tables[item.table];
                            let mut reader =
                                snapshot::copy_out(&mut tx, &profile.schema, table, item.pages)?;
                            let mut chunk = Vec::with_capacity(archive::CHUNK_SIZE + (64 << 10));
                            let emit = |data: Vec<u8>| -> anyhow::Result<()> {
                                // Per chunk, not per row: the bar reads the clock on every update.
                                bar.inc(data.len() as u64);
                                let lines = archive::count_lines(&data);
                                rows[item.table].fetch_add(lines, Ordering::Relaxed);
                                let n = total_rows.fetch_add(lines, Ordering::Relaxed) + lines;
                                bar.set_message(format!("{n} rows"));
                                let seq = chunks[item.table].fetch_add(1, Ordering::Relaxed);
                                writer.add_entry(&archive::data_entry_name(item.table, seq), data)
                            };
                            loop {
                                let buf = reader.fill_buf().with_context(|| {
                                    format!("COPY of table {:?} failed", table.name)
                                })?;
                                if buf.is_empty() {
                                    break;
                                }
                                let n = buf.len();
                                chunk.extend_from_slice(buf);
                                reader.consume(n);
                                if chunk.len() >= archive::CHUNK_SIZE {
                                    // Cut at the last row end; the rest starts the next chunk.
                                    if let Some(end) = chunk.iter().rposition(|b| *b == b'\n') {
                                        let rest = chunk.split_off(end + 1);
                                        let full = std::mem::replace(&mut chunk, rest);
                                        chunk.reserve(archive::CHUNK_SIZE + (64 << 10));
                                        emit(full)?;
                                    }
                                }
                            }
                            drop(reader);
                            if !chunk.is_empty() {
                                emit(chunk)?;
                            }
                        }
                        tx.commit()
                    })();
                    if result.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    result
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow!("a COPY thread panicked")))
            })
            .collect()
    });
    bar.finish_and_clear();
    for r in results {
        r?;
    }
    Ok(rows)
}

/// A lock file in the data directory: cold backup and restore run with the server stopped,
/// so there is no server to hold an advisory lock.
pub struct DirLock {
    _file: File,
}

pub fn lock_data_dir(cluster: &Cluster) -> anyhow::Result<DirLock> {
    fs::create_dir_all(&cluster.data_dir)
        .with_context(|| format!("cannot create {}", cluster.data_dir.display()))?;
    let path = cluster.data_dir.join(".jobdbctl-backup.lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor we own; released when the file closes (or we die).
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(failure(
            Exit::Locked,
            format!(
                "another jobdbctl backup or restore is running on {} (lock {}); wait for it to finish",
                cluster.pgdata.display(),
                path.display()
            ),
        ));
    }
    Ok(DirLock { _file: file })
}

/// What the running server says about the job schema, for a cold archive's header.
fn describe_running(ctx: &Ctx, head: &mut Manifest) -> anyhow::Result<()> {
    let mut db = ctx.connect()?;
    head.server_version = Some(db.server_version()?);
    if let Some(profile) = ctx.detect_profile(&mut db)? {
        head.profile = Some(profile.name().to_string());
        head.schema = Some(profile.schema.clone());
        head.schema_version = status::schema_version(&mut db, &profile)?;
        if let Ok(seq) = counter::sequence_name(&mut db, &profile) {
            head.last_used_job_id = Some(counter::last_used(&mut db, &seq)?);
        }
    }
    Ok(())
}

/// Stops the server, archives `psql/`, and starts the server again if it was running —
/// also when archiving fails.
fn cold(ctx: &Ctx, request: &Request) -> anyhow::Result<Done> {
    let cluster = ctx.cluster("backup --mode cold")?;
    let _lock = lock_data_dir(cluster)?;
    let mut head = header(ctx, Mode::Cold, crate::cluster::DATABASE.to_string());
    let was_running = match cluster.state()? {
        ServerState::NotInitialized => {
            return Err(failure(
                Exit::Runtime,
                format!(
                    "no cluster at {} to back up; run `jobdbctl init` first",
                    cluster.pgdata.display()
                ),
            ))
        }
        ServerState::Running(_) => {
            describe_running(ctx, &mut head)?;
            ctx.out.info("stopping the server for a cold backup");
            cluster.stop(StopMode::Fast)?;
            true
        }
        ServerState::Stopped => false,
    };
    let result = write_cold(ctx, cluster, request, head);
    if was_running {
        cluster
            .start()
            .context("backup done, but the server did not start again")?;
        ctx.out.info("server started again");
    }
    result
}

fn write_cold(
    ctx: &Ctx,
    cluster: &Cluster,
    request: &Request,
    mut head: Manifest,
) -> anyhow::Result<Done> {
    if head.server_version.is_none() {
        head.server_version = fs::read_to_string(cluster.pgdata.join("PG_VERSION"))
            .ok()
            .map(|v| v.trim().to_string());
    }
    let files = list_cluster_files(&cluster.pgdata)?;
    let total: u64 = files.iter().map(|f| f.size).sum();
    head.total_file_bytes = Some(total);
    head.max_entry_bytes = files.iter().map(|f| f.size).max().unwrap_or(0);
    let dest = Destination::choose(ctx, request.output.as_deref(), "cluster")?;
    dest.check_space(total / 2, request.space_check)?;
    let (out, file) = dest.open()?;
    let writer = ArchiveWriter::new(out, archive::COMPRESSION_LEVEL, threads());
    let bar = ctx.out.progress(
        total,
        "{spinner} cold backup {bytes}/{total_bytes} ({binary_bytes_per_sec})",
    );
    let written = (|| -> anyhow::Result<()> {
        writer.add_entry(
            archive::HEADER,
            serde_json::to_vec_pretty(&head).context("cannot encode the header")?,
        )?;
        for f in &files {
            let name = format!("{}{}", archive::CLUSTER_DIR, f.relative);
            if f.dir {
                writer.add_dir(&name)?;
                continue;
            }
            let path = cluster.pgdata.join(f.relative.trim_start_matches('/'));
            let mut source =
                File::open(&path).with_context(|| format!("cannot read {}", path.display()))?;
            writer.add_stream(&name, f.size, f.mode, &mut source, archive::CHUNK_SIZE)?;
            bar.inc(f.size);
        }
        Ok(())
    })();
    bar.finish_and_clear();
    if let Err(e) = written {
        let e = writer.abandon(e);
        dest.discard();
        return Err(e);
    }
    let manifest = head.clone();
    let (_, bytes) = match writer.finish(|entries| {
        let mut m = manifest;
        m.entries = entries;
        let bytes = serde_json::to_vec_pretty(&m).context("cannot encode the manifest")?;
        Ok((archive::MANIFEST.to_string(), bytes))
    }) {
        Ok(done) => done,
        Err(e) => {
            dest.discard();
            return Err(e);
        }
    };
    let path = dest.complete(file).inspect_err(|_| dest.discard())?;
    Ok(Done {
        path,
        bytes,
        manifest: head,
        pruned: Vec::new(),
        seconds: 0.0,
    })
}

struct ClusterFile {
    /// Path under the data directory, starting with `/` (empty for the directory itself).
    relative: String,
    dir: bool,
    size: u64,
    mode: u32,
}

/// Every directory and regular file of the data directory, parents first. Anything else
/// (a symlinked pg_wal, tablespaces, sockets) is refused: the archive could not restore it.
fn list_cluster_files(pgdata: &Path) -> anyhow::Result<Vec<ClusterFile>> {
    let mut out = vec![ClusterFile {
        relative: String::new(),
        dir: true,
        size: 0,
        mode: 0o700,
    }];
    let mut stack = vec![String::new()];
    while let Some(rel) = stack.pop() {
        let dir = pgdata.join(rel.trim_start_matches('/'));
        let mut names: Vec<_> = fs::read_dir(&dir)
            .with_context(|| format!("cannot list {}", dir.display()))?
            .collect::<Result<_, _>>()
            .with_context(|| format!("cannot list {}", dir.display()))?;
        names.sort_by_key(|e| e.file_name());
        for e in names {
            let name = e.file_name();
            let name = name
                .to_str()
                .ok_or_else(|| anyhow!("file name {:?} in {} is not UTF-8", name, dir.display()))?;
            let relative = format!("{rel}/{name}");
            let meta = fs::symlink_metadata(e.path())
                .with_context(|| format!("cannot stat {}", e.path().display()))?;
            if meta.is_dir() {
                out.push(ClusterFile {
                    relative: relative.clone(),
                    dir: true,
                    size: 0,
                    mode: meta.mode() & 0o7777,
                });
                stack.push(relative);
            } else if meta.is_file() {
                out.push(ClusterFile {
                    relative,
                    dir: false,
                    size: meta.len(),
                    mode: meta.mode() & 0o7777,
                });
            } else if name == ".s.PGSQL.5432" || name.starts_with(".s.PGSQL.") {
                // A socket of a server that did not clean up; nothing to archive.
            } else {
                return Err(anyhow!(
                    "{} is neither a file nor a directory (symlinked pg_wal or tablespace?); cold backup archives plain data directories only",
                    e.path().display()
                ));
            }
        }
    }
    // Directories were pushed depth-first; the tar needs each directory before its files,
    // which the walk order already gives (a directory is listed before it is entered).
    Ok(out)
}

/// Deletes all but the newest `keep` complete archives of the same database in `latest`'s
/// directory. Only files whose header says they are of this database and server count;
/// `.partial` files and anything unreadable are never touched.
fn prune(latest: &Path, manifest: &Manifest, keep: usize) -> anyhow::Result<Vec<PathBuf>> {
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
fn read_header(path: &Path) -> Option<Manifest> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn table(pages: i64) -> TableDef {
        TableDef {
            name: "t".into(),
            columns: vec!["a".into()],
            pages,
            bytes: pages * 8192,
        }
    }

    #[test]
    fn big_tables_split_into_page_ranges_that_cover_everything() {
        let work = plan(&[table(10), table(100_000)], true);
        let ranges: Vec<_> = work
            .iter()
            .filter(|w| w.table == 1)
            .map(|w| w.pages)
            .collect();
        assert_eq!(ranges.len(), COPY_STREAMS * 2);
        assert_eq!(ranges[0].map(|r| r.0), Some(0));
        assert_eq!(ranges.last().and_then(|r| r.map(|r| r.1)), Some(None));
        for pair in ranges.windows(2) {
            assert_eq!(pair[0].and_then(|r| r.1), pair[1].map(|r| r.0));
        }
        assert!(work.iter().any(|w| w.table == 0 && w.pages.is_none()));
        assert!(plan(&[table(100_000)], false)
            .iter()
            .all(|w| w.pages.is_none()));
    }
}
