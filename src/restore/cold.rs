//! Cold restore: the archive's data directory is extracted next to `psql/` and exchanged
//! with it atomically once complete and checked against the installed server version.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context as _};

use super::recovery::{self, Recovery, Target as RecoveryTarget};
use super::{live_workers_refusal, Counter, RecoveryReport, Request, Restored};
use crate::archive::{self, server_config, Manifest, Mode};
use crate::cluster::{Cluster, DirLock, ServerState, StopMode};
use crate::config::running_as_root;
use crate::context::Ctx;
use crate::db::{counter, load, workers};
use crate::error::{failure, Exit};
use crate::job_ids::high_water;
use crate::output::confirm;

/// A cold restore in progress: the archive is extracted next to the data directory and
/// exchanged with it once complete.
pub struct Cold {
    cluster: Cluster,
    _lock: DirLock,
    staging: PathBuf,
    was_running: bool,
    created_at: String,
    /// Writes the extracted files on a thread of its own; `open`: a file is being written.
    writer: FileWriter,
    open: bool,
    uid_gid: Option<(u32, u32)>,
    /// A server configuration file being collected, to be written neutralized.
    config: Option<server_config::Collected>,
    /// The archive's settings that were left out (see `archive::server_config`).
    left_out: Vec<server_config::LeftOut>,
    /// A physical archive: the recovery to run before the swap.
    recovery: Option<Recovery>,
    started: std::time::Instant,
}

/// Marks the staging directory as the restore's own: a `psql.restoring` without it is a
/// cluster a killed restore had swapped out, which is kept, never removed.
const STAGING_MARK: &str = "jobdbctl-restoring";

impl Cold {
    /// Everything that can refuse the restore, changing nothing (no lock file, no stop): the
    /// cluster's state and, when it holds one, what replacing it would lose (`None`: there is
    /// no cluster to replace). `restore --dry-run` stops here.
    pub fn assess(
        ctx: &Ctx,
        request: &Request,
    ) -> anyhow::Result<(Cluster, ServerState, Option<String>)> {
        let cluster = ctx.cluster("restore of a cold archive")?.clone();
        let state = cluster.state()?;
        let mut stake = String::new();
        if let ServerState::Running(_) = state {
            let mut db = ctx.connect()?;
            if let Some(p) = ctx.detect_profile(&mut db)? {
                let stale_after = ctx.config.stale_after.value;
                let live = workers::live(&mut db, &p, stale_after)?;
                if !live.is_empty() {
                    return Err(live_workers_refusal(&live, stale_after));
                }
                if load::has_jobs(&mut db, &p)? && !request.force {
                    return Err(failure(
                        Exit::Refused,
                        "refusing to restore over the embedded cluster: it has jobs, which would be lost; pass --force to replace it",
                    ));
                }
                if !request.yes || request.dry_run {
                    stake = format!(
                        " (schema {:?}: {})",
                        p.schema,
                        high_water::at_stake(&mut db, &p)?
                    );
                }
            }
        } else if state == ServerState::Stopped && !request.force {
            return Err(failure(
                Exit::Refused,
                "refusing to replace a stopped cluster without checking it for jobs; start it (`jobdbctl start`) so restore can check, or pass --force",
            ));
        }
        let replaces = (state != ServerState::NotInitialized).then(|| {
            format!(
                "the embedded cluster at {}{stake}",
                cluster.pgdata.display()
            )
        });
        Ok((cluster, state, replaces))
    }

    pub fn prepare(ctx: &Ctx, request: &Request, header: &Manifest) -> anyhow::Result<Cold> {
        let lock = ctx.cluster("restore of a cold archive")?.lock_data_dir()?;
        let (cluster, state, replaces) = Self::assess(ctx, request)?;
        let mut recovery = match (&header.base, header.mode) {
            (Some(base), Mode::Physical) => Some(Recovery::check(
                ctx,
                base,
                request.to.clone().unwrap_or(RecoveryTarget::Backup),
            )?),
            _ => None,
        };
        if let Some(recovery) = &mut recovery {
            recovery.timeline = cluster.timeline()?;
            if state == ServerState::Stopped {
                ctx.out.warn(
                    "the server is stopped, so what it wrote after its last archived segment is not in the WAL archive and cannot be recovered; to include it, start the server and restore again",
                );
            }
        }
        if let ServerState::Running(_) = state {
            let mut db = ctx.connect()?;
            if let Some(recovery) = &recovery {
                crate::restore::recovery::flush_archive(&mut db, &recovery.archive)?;
            }
            note_counter(ctx, &mut db)?;
        }
        if let Some(replaces) = &replaces {
            let with = match &recovery {
                Some(r) => format!(
                    "the base backup taken {} recovered to {}",
                    header.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
                    r.target.describe()
                ),
                None => format!(
                    "the cold backup taken {}",
                    header.created_at.format("%Y-%m-%d %H:%M:%S UTC")
                ),
            };
            confirm(&format!("replace {replaces} with {with}"), request.yes)?;
        }
        let staging = staging_dir(&cluster);
        clear_leftover(ctx, &cluster, &staging)?;
        let uid_gid = match (&cluster.server_user, running_as_root()) {
            (Some(user), true) => Some(crate::cluster::lookup_user(user)?),
            _ => None,
        };
        let was_running = matches!(state, ServerState::Running(_));
        // A point-in-time restore recovers beside the running server, which it stops only
        // to swap: until then the old cluster serves. Only a recovery to the end of the WAL
        // needs the server stopped first, so that it writes nothing after what is recovered.
        let stop_now = match &recovery {
            Some(r) => matches!(r.target, RecoveryTarget::End),
            None => true,
        };
        if was_running && stop_now {
            ctx.out.info("stopping the server for the restore");
            cluster.stop(StopMode::Fast)?;
        }
        Ok(Cold {
            cluster,
            _lock: lock,
            staging,
            was_running,
            created_at: header.created_at.to_rfc3339(),
            writer: FileWriter::start(),
            open: false,
            uid_gid,
            config: None,
            left_out: Vec::new(),
            recovery,
            started: std::time::Instant::now(),
        })
    }

    fn target(&self, name: &str) -> PathBuf {
        match name.strip_prefix(archive::CLUSTER_DIR) {
            Some(rest) => self.staging.join(rest.trim_start_matches('/')),
            None => self.staging.join(name),
        }
    }

    /// Hands the extracted tree to the server user once it is complete. Until then the
    /// staging directory is root's and mode 0700, so no other user can enter it, plant a
    /// link in it or swap a directory of it while root writes there; the chown goes
    /// bottom-up by name without following links, the staging directory itself last.
    fn hand_over(&self) -> anyhow::Result<()> {
        let Some((uid, gid)) = self.uid_gid else {
            return Ok(());
        };
        fn walk(dir: &Path, uid: u32, gid: u32) -> anyhow::Result<()> {
            for e in fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
                let e = e.with_context(|| format!("cannot list {}", dir.display()))?;
                if e.file_type()?.is_dir() {
                    walk(&e.path(), uid, gid)?;
                }
                std::os::unix::fs::lchown(e.path(), Some(uid), Some(gid))
                    .with_context(|| format!("cannot chown {}", e.path().display()))?;
            }
            Ok(())
        }
        walk(&self.staging, uid, gid)?;
        std::os::unix::fs::lchown(&self.staging, Some(uid), Some(gid))
            .with_context(|| format!("cannot chown {}", self.staging.display()))
    }

    pub fn dir(&mut self, name: &str, mode: u32) -> anyhow::Result<()> {
        let path = self.target(name);
        fs::create_dir(&path).with_context(|| format!("cannot create {}", path.display()))?;
        // PostgreSQL insists on 0700 or 0750 for its directories; the staging directory
        // stays 0700 while root extracts into it (see hand_over).
        let mode = if path == self.staging {
            0o700
        } else {
            mode & 0o750
        };
        fs::set_permissions(&path, fs::Permissions::from_mode(mode))
            .with_context(|| format!("cannot chmod {}", path.display()))?;
        if path == self.staging {
            create(&path.join(STAGING_MARK), 0o600)?;
        }
        Ok(())
    }

    pub fn file(
        &mut self,
        name: &str,
        mode: u32,
        piece: Vec<u8>,
        last: bool,
    ) -> anyhow::Result<()> {
        // The archive's server configuration is data: collected whole, written with the
        // settings that run commands or load code commented out.
        if let Some(rel) = server_config::config_file(name) {
            let collected = self.config.get_or_insert_with(Default::default);
            collected.push(rel, &piece)?;
            if !last {
                return Ok(());
            }
            let (body, left_out) = self.config.take().unwrap_or_default().finish(rel);
            self.left_out.extend(left_out);
            return self.write_whole(name, mode, body);
        }
        if !self.open {
            self.writer.send(Op::Open(self.target(name), mode))?;
            self.open = true;
        }
        self.writer.send(Op::Piece(piece))?;
        if last {
            // A base backup's server makes its data directory durable itself before
            // recovery starts (its control file says it was not shut down); a cold
            // archive's files are synced one by one.
            self.writer.send(Op::Close {
                sync: self.recovery.is_none(),
            })?;
            self.open = false;
        }
        Ok(())
    }

    /// A piece buffer the writer is done with.
    pub fn spare(&mut self) -> Vec<u8> {
        self.writer.spent.try_recv().unwrap_or_default()
    }

    fn write_whole(&mut self, name: &str, mode: u32, body: Vec<u8>) -> anyhow::Result<()> {
        self.writer.send(Op::Open(self.target(name), mode))?;
        self.writer.send(Op::Piece(body))?;
        self.writer.send(Op::Close { sync: true })
    }

    pub fn finish(
        mut self,
        ctx: &Ctx,
        request: &Request,
        manifest: &Manifest,
    ) -> anyhow::Result<Restored> {
        if let Err(e) = self.writer.finish() {
            return Err(self.abandon(ctx, e));
        }
        if self.recovery.is_some() {
            return self.finish_recovery(ctx, request, manifest);
        }
        let result = self.swap_in();
        let result = match result {
            Ok(()) => Ok(()),
            Err(e) => {
                let _ = fs::remove_dir_all(&self.staging);
                Err(e)
            }
        };
        // --avoid-id-reuse needs the server to set the counter: a stopped one is started for
        // that and stopped again.
        if self.was_running || (result.is_ok() && request.avoid_id_reuse) {
            self.cluster
                .start()
                .context("the server did not start after the restore")?;
            if self.was_running {
                ctx.out.info("server started again");
            }
        }
        result?;
        let counter = if self.was_running || request.avoid_id_reuse {
            let outcome = restored_counter(ctx, manifest, request.avoid_id_reuse);
            if !self.was_running {
                self.cluster.stop(StopMode::Fast)?;
            }
            outcome?
        } else {
            let schema = manifest.schema.as_deref().unwrap_or(ctx.native_schema());
            Counter {
                last_used: manifest.last_used_job_id,
                restored: manifest.last_used_job_id,
                high_water: high_water::read(ctx, None::<&mut crate::db::Db>, schema)?,
            }
        };
        Ok(Restored {
            mode: Mode::Cold,
            schema: manifest.schema.clone(),
            created_at: self.created_at.clone(),
            last_used_job_id: counter.last_used,
            archived_last_used_job_id: counter.restored,
            high_water: counter.high_water,
            rescheduled: 0,
            rows: 0,
            seconds: 0.0,
            config_left_out: self.left_out.iter().map(ToString::to_string).collect(),
            phases: Vec::new(),
            recovery: None,
        })
    }

    /// A physical archive: recovers the laid-down base backup to the target, swaps it in
    /// keeping the replaced cluster aside, starts it and runs the job steps on it (stopping
    /// it again when the old one was not running).
    fn finish_recovery(
        self,
        ctx: &Ctx,
        request: &Request,
        manifest: &Manifest,
    ) -> anyhow::Result<Restored> {
        let Some(recovery) = &self.recovery else {
            return Err(anyhow!("no recovery prepared"));
        };
        let extracted_at = self.started.elapsed().as_secs_f64();
        let recovered = (|| {
            self.check_version()?;
            recovery.signal(&self.staging)?;
            self.hand_over()?;
            sync_dir(&self.staging)?;
            recovery::recover(ctx, &self.cluster, &self.staging, recovery)
        })();
        let recovered = match recovered {
            Ok(r) => r,
            Err(e) => return Err(self.abandon(ctx, e)),
        };
        let recovered_at = self.started.elapsed().as_secs_f64();
        if let ServerState::Running(_) = self.cluster.state()? {
            // Jobs since the restore began are gone with the old cluster; their IDs are not.
            let stopped = ctx
                .connect()
                .and_then(|mut db| note_counter(ctx, &mut db))
                .and_then(|()| {
                    ctx.out
                        .info("stopping the server to swap in the recovered cluster");
                    self.cluster.stop(StopMode::Fast)
                });
            if let Err(e) = stopped {
                return Err(self.abandon(ctx, e));
            }
        }
        let stopped_at = self.started.elapsed().as_secs_f64();
        let aside = if self.move_in()? {
            let aside = aside_dir(&self.cluster);
            fs::rename(&self.staging, &aside).with_context(|| {
                format!(
                    "restored, but cannot move the replaced cluster from {} to {}",
                    self.staging.display(),
                    aside.display()
                )
            })?;
            sync_dir(&self.cluster.data_dir)?;
            Some(aside)
        } else {
            None
        };
        let kept = aside.as_ref().map_or(String::new(), |a| {
            format!("; the replaced cluster is kept at {}", a.display())
        });
        self.cluster
            .start()
            .with_context(|| format!("the restored cluster did not start{kept}"))?;
        let started_at = self.started.elapsed().as_secs_f64();
        let steps = ctx
            .connect()
            .and_then(|mut db| recovery::job_steps(ctx, &mut db, request.avoid_id_reuse))
            .with_context(|| {
                format!(
                    "the recovered cluster is in place and running{kept}, but its job steps failed: \
                     queue its running jobs again with `jobdbctl unlock-stale-jobs` and check its job \
                     counter with `jobdbctl show-params last_used_job_id job_id_high_water`"
                )
            })?;
        if !self.was_running {
            self.cluster.stop(StopMode::Fast)?;
        }
        let steps_at = self.started.elapsed().as_secs_f64();
        let kept_aside = match (aside, request.remove_old) {
            (Some(aside), true) => {
                fs::remove_dir_all(&aside).with_context(|| {
                    format!(
                        "restored, but cannot remove the replaced cluster at {}",
                        aside.display()
                    )
                })?;
                None
            }
            (aside, _) => aside,
        };
        Ok(Restored {
            mode: Mode::Physical,
            schema: steps.schema.clone().or(manifest.schema.clone()),
            created_at: self.created_at.clone(),
            last_used_job_id: steps.counter.as_ref().and_then(|c| c.last_used),
            archived_last_used_job_id: steps.counter.as_ref().and_then(|c| c.restored),
            high_water: steps.counter.as_ref().and_then(|c| c.high_water),
            rescheduled: steps.requeued,
            rows: 0,
            seconds: 0.0,
            config_left_out: self.left_out.iter().map(ToString::to_string).collect(),
            phases: std::iter::once(("extract".to_string(), extracted_at))
                .chain(recovered.phases.iter().cloned())
                .chain([
                    ("old server stop".to_string(), stopped_at - recovered_at),
                    ("swap and start".to_string(), started_at - stopped_at),
                    ("job steps".to_string(), steps_at - started_at),
                    (
                        "old cluster removed".to_string(),
                        self.started.elapsed().as_secs_f64() - steps_at,
                    ),
                ])
                .collect(),
            recovery: Some(RecoveryReport {
                target: recovery.target.describe(),
                last_commit: recovered.last_commit,
                timeline: recovered.timeline,
                kept_aside,
            }),
        })
    }

    fn check_version(&self) -> anyhow::Result<()> {
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
        Ok(())
    }

    fn swap_in(&self) -> anyhow::Result<()> {
        self.check_version()?;
        self.hand_over()?;
        sync_dir(&self.staging)?;
        if self.move_in()? {
            fs::remove_dir_all(&self.staging).with_context(|| {
                format!(
                    "restored, but cannot remove the old cluster at {}",
                    self.staging.display()
                )
            })?;
        }
        Ok(())
    }

    /// Puts the complete staging directory at `psql/`: exchanged with the cluster there in
    /// one `renameat2`, so `psql/` is at every moment either the old cluster or the new one,
    /// or renamed into place when there is none. `true` when the old cluster now sits at the
    /// staging directory's name (for the caller to remove or set aside).
    fn move_in(&self) -> anyhow::Result<bool> {
        let pgdata = &self.cluster.pgdata;
        let replaced = pgdata.exists();
        if replaced {
            exchange(&self.staging, pgdata)?;
        } else {
            fs::rename(&self.staging, pgdata).with_context(|| {
                format!("cannot move the restored cluster to {}", pgdata.display())
            })?;
        }
        sync_dir(&self.cluster.data_dir)?;
        let _ = fs::remove_file(pgdata.join(STAGING_MARK));
        Ok(replaced)
    }

    pub fn abandon(mut self, ctx: &Ctx, err: anyhow::Error) -> anyhow::Error {
        let _ = self.writer.finish();
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

/// What the writer thread is asked to do, in order.
enum Op {
    /// Create a new file (exclusively, no link followed).
    Open(PathBuf, u32),
    /// Append to it.
    Piece(Vec<u8>),
    /// Close it: fsync it (`sync`), or leave it to the server's sync before recovery.
    Close { sync: bool },
}

/// Writes extracted files on a thread of its own, so the reader thread (hashing, parsing)
/// and the decompression thread do not wait on write system calls. The first error stops
/// it; it is returned by the next `send` or by `finish`.
struct FileWriter {
    ops: Option<std::sync::mpsc::SyncSender<Op>>,
    /// Piece buffers written out, for the reader to fill again.
    spent: std::sync::mpsc::Receiver<Vec<u8>>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
}

impl FileWriter {
    fn start() -> FileWriter {
        let (ops, queue) = std::sync::mpsc::sync_channel::<Op>(16);
        let (spend, spent) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
        let thread = std::thread::spawn(move || -> anyhow::Result<()> {
            // The open file, its path, and how much of it is written.
            let mut current: Option<(File, PathBuf, u64)> = None;
            for op in queue {
                match op {
                    Op::Open(path, mode) => current = Some((create(&path, mode)?, path, 0)),
                    Op::Piece(data) => {
                        if let Some((f, path, written)) = current.as_mut() {
                            f.write_all(&data)
                                .with_context(|| format!("cannot write {}", path.display()))?;
                            start_writeback(f, *written, data.len() as u64);
                            *written += data.len() as u64;
                            let _ = spend.try_send(data);
                        }
                    }
                    Op::Close { sync } => {
                        if let Some((f, path, _)) = current.take() {
                            if sync {
                                f.sync_all()
                                    .with_context(|| format!("cannot write {}", path.display()))?;
                            }
                        }
                    }
                }
            }
            Ok(())
        });
        FileWriter {
            ops: Some(ops),
            spent,
            thread: Some(thread),
        }
    }

    fn send(&mut self, op: Op) -> anyhow::Result<()> {
        let sent = self.ops.as_ref().map(|ops| ops.send(op).is_ok());
        if sent == Some(true) {
            return Ok(());
        }
        // The thread stopped at an error: that error.
        self.finish()
            .and_then(|()| Err(anyhow!("the file writer stopped")))
    }

    /// Waits until everything sent is written; the first error.
    fn finish(&mut self) -> anyhow::Result<()> {
        self.ops = None;
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .map_err(|_| anyhow!("the file writer panicked"))?,
            None => Ok(()),
        }
    }
}

/// Asks the kernel to start writing the piece of `f` just written out now, without waiting
/// for it: the disk streams while the rest is decompressed (a 1 GB relation segment would
/// otherwise sit in memory until its end, the disk idle), and the sync at the end (the
/// server's before recovery, or the file's own) finds little left to do.
fn start_writeback(f: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid descriptor; the call only schedules writeback (a failure is harmless:
    // the sync at the end writes the piece anyway).
    unsafe {
        libc::sync_file_range(
            f.as_raw_fd(),
            offset as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

/// The job counter of the cluster about to be replaced joins the high-water mark.
fn note_counter(ctx: &Ctx, db: &mut crate::db::Db) -> anyhow::Result<()> {
    if let Some(p) = ctx.detect_profile(db)? {
        if let Ok(seq) = counter::sequence_name(db, &p) {
            let last = counter::last_used(db, &seq)?;
            high_water::raise(ctx, db, &p.schema, last)?;
        }
    }
    Ok(())
}

/// The restored cluster's job counter against the high-water mark (see
/// [`Counter::against_mark`]), from the server the restore started.
fn restored_counter(
    ctx: &Ctx,
    manifest: &Manifest,
    avoid_id_reuse: bool,
) -> anyhow::Result<Counter> {
    let mut db = ctx.connect()?;
    match ctx.detect_profile(&mut db)? {
        Some(p) => Counter::against_mark(ctx, &mut db, &p, avoid_id_reuse),
        None => {
            let schema = manifest.schema.as_deref().unwrap_or(ctx.native_schema());
            Ok(Counter {
                last_used: None,
                restored: None,
                high_water: high_water::read(ctx, Some(&mut db), schema)?,
            })
        }
    }
}

/// A new file of the staging directory, created exclusively; modes limited to 0640.
fn create(path: &Path, mode: u32) -> anyhow::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode & 0o640)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

fn staging_dir(cluster: &Cluster) -> PathBuf {
    cluster.data_dir.join("psql.restoring")
}

/// Where a point-in-time restore keeps the cluster it replaced.
fn aside_dir(cluster: &Cluster) -> PathBuf {
    cluster.data_dir.join(format!(
        "psql.replaced-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ")
    ))
}

/// What a killed restore left in `staging`: its own directory (marked) is removed, after
/// stopping a recovery server it may have left running there; a cluster it had swapped
/// out but not yet set aside is set aside now, never removed.
fn clear_leftover(ctx: &Ctx, cluster: &Cluster, staging: &Path) -> anyhow::Result<()> {
    if fs::symlink_metadata(staging).is_err() {
        return Ok(());
    }
    let server = recovery::staging_server(cluster, staging, None)?;
    if let Err(e) = server.stop(StopMode::Immediate) {
        ctx.out.warn(format!(
            "cannot stop a server left in {}: {e:#}",
            staging.display()
        ));
    }
    if fs::symlink_metadata(staging.join(STAGING_MARK)).is_ok() {
        return fs::remove_dir_all(staging)
            .with_context(|| format!("cannot remove leftover {}", staging.display()));
    }
    let aside = aside_dir(cluster);
    fs::rename(staging, &aside).with_context(|| {
        format!(
            "cannot move leftover {} to {}",
            staging.display(),
            aside.display()
        )
    })?;
    ctx.out.warn(format!(
        "{} held the cluster a killed restore had replaced; kept it at {} (remove it once the restored cluster is right)",
        staging.display(),
        aside.display()
    ));
    Ok(())
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
