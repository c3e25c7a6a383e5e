//! Point-in-time recovery of the embedded cluster from a physical archive and the archived
//! WAL: what runs between laying the base backup down beside the data directory and
//! swapping it in (see `cold` for both).
//!
//! What it guarantees:
//! - Before anything is stopped or extracted: the base backup's end is known (its record in
//!   the WAL archive), the target is not before it, and the archive holds every segment
//!   from the backup's start to the newest one (a gap is exit 5 naming the first missing
//!   segment: recovery would otherwise end early at the gap, silently).
//! - Recovery runs in the staging directory under a server of its own (the server user,
//!   no TCP, its socket in the staging directory), fetching WAL with `jobdbctl wal-fetch`,
//!   `recovery_target_action = promote`, the newest timeline. A target it cannot reach (after
//!   the last archived transaction) is a refusal (exit 3) naming the recoverable window,
//!   before anything is replaced.
//! - Once promoted, the server shuts down cleanly (a checkpoint: the result is durable
//!   before the swap).
//! - The job steps of any restore ([`job_steps`]) run once the recovered cluster is swapped
//!   in and started: running jobs are queued again and job and queue locks cleared (their
//!   workers are gone), the job counter is checked against the high-water mark
//!   (`--avoid-id-reuse` raises it). Run there, the pages they change are written by the
//!   server's own checkpoints later, not by a shutdown checkpoint the restore waits for; a
//!   kill -9 between the start and their end leaves the recovered cluster in place with
//!   jobs still locked by gone workers, which `unlock-stale-jobs` releases.

use std::fs;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{DateTime, FixedOffset, Utc};

use super::Counter;
use crate::archive::BaseBackup;
use crate::cluster::{Cluster, StopMode};
use crate::context::Ctx;
use crate::db::{base_backup, load, Db};
use crate::error::{failure, Exit};
use crate::target::Target as DbTarget;
use crate::wal::{self, bases};

/// How long recovery may take before the restore gives up (the recovered directory is
/// then removed; the old cluster was never touched).
const RECOVERY_LIMIT: Duration = Duration::from_secs(6 * 3600);
/// How long a running server gets to archive the segment a restore's switch ended.
const ARCHIVE_WAIT: Duration = Duration::from_secs(120);

/// Where recovery stops.
#[derive(Debug, Clone)]
pub enum Target {
    /// The moment given (its last transaction committed at or before it is kept).
    Time(DateTime<FixedOffset>),
    /// Just after this LSN; `name` when it is a restore point's.
    Lsn { lsn: String, name: Option<String> },
    /// The end of the archived WAL.
    End,
    /// The end of the base backup itself: a physical archive restored with no target.
    Backup,
}

impl Target {
    pub fn describe(&self) -> String {
        match self {
            Target::Time(t) => t.to_rfc3339(),
            Target::Lsn { lsn, name: None } => format!("LSN {lsn}"),
            Target::Lsn {
                lsn,
                name: Some(name),
            } => format!("restore point {name:?} (LSN {lsn})"),
            Target::End => "the end of the archived WAL".to_string(),
            Target::Backup => "the end of the base backup".to_string(),
        }
    }

    fn settings(&self, timeline: Option<u32>) -> String {
        let target = match self {
            Target::Time(t) => format!(
                "recovery_target_time = '{}'\n",
                t.with_timezone(&Utc).format("%Y-%m-%d %H:%M:%S%.6f+00")
            ),
            Target::Lsn { lsn, .. } => format!("recovery_target_lsn = '{lsn}'\n"),
            Target::End => String::new(),
            Target::Backup => "recovery_target = 'immediate'\n".to_string(),
        };
        let timeline = timeline.map_or("latest".to_string(), |t| t.to_string());
        format!(
            "{target}recovery_target_action = 'promote'\nrecovery_target_timeline = '{timeline}'\n"
        )
    }

    /// Whether a base backup that ended as `base` says can reach this target.
    pub fn after(&self, base: &bases::Base) -> bool {
        match self {
            Target::Time(t) => base.stopped_at <= *t,
            Target::Lsn { lsn, .. } => {
                match (wal::parse_lsn(lsn), wal::parse_lsn(&base.stop_lsn)) {
                    (Some(target), Some(stop)) => stop <= target,
                    _ => false,
                }
            }
            Target::End | Target::Backup => true,
        }
    }
}

/// A recovery prepared before anything is stopped: the target, the WAL archive and the
/// base backup's end, all checked.
pub struct Recovery {
    pub target: Target,
    pub archive: wal::Archive,
    pub base: bases::Base,
    /// The timeline to follow: the replaced cluster's, so a timeline that an abandoned
    /// restore forked off is never followed instead; `None` (no cluster): the newest.
    pub timeline: Option<u32>,
}

impl Recovery {
    /// Checks `header`'s base backup against the WAL archive and `target` (see the module's
    /// guarantees); changes nothing.
    pub fn check(ctx: &Ctx, header: &BaseBackup, target: Target) -> anyhow::Result<Recovery> {
        let archive = crate::wal::points::open_archive(&ctx.target, &ctx.places)?;
        let recorded = bases::list(&archive)?;
        let base = recorded
            .iter()
            .find(|b| b.label == header.label)
            .cloned()
            .ok_or_else(|| {
                failure(
                    Exit::Refused,
                    format!(
                        "the WAL archive {} has no record of base backup {} (was it taken into another wal_archive?); restore it with the wal_archive it was taken with",
                        archive.describe(),
                        header.label
                    ),
                )
            })?;
        let have = bases::segments(&archive)?;
        if let Some(missing) = bases::missing_for(&base, &have) {
            return Err(missing_segment(&archive, &missing));
        }
        if !target.after(&base) {
            return Err(failure(
                Exit::Refused,
                format!(
                    "{} is before the base backup ended ({}, {}); recovery can reach only later points: choose an older base backup, or let restore choose one (no ARCHIVE)",
                    target.describe(),
                    base.stopped_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    base.stop_lsn
                ),
            ));
        }
        if let Some((_, from)) = wal::segment_number(&base.start_wal) {
            if let Some(missing) = bases::first_gap(&have, from, base.timeline) {
                return Err(missing_segment(&archive, &missing));
            }
        }
        Ok(Recovery {
            target,
            archive,
            base,
            timeline: None,
        })
    }

    /// Writes what makes the laid-down base backup recover: `recovery.signal` (and no
    /// `standby.signal`, whatever the archive held).
    pub fn signal(&self, staging: &Path) -> anyhow::Result<()> {
        let standby = staging.join("standby.signal");
        if fs::symlink_metadata(&standby).is_ok() {
            fs::remove_file(&standby)
                .with_context(|| format!("cannot remove {}", standby.display()))?;
        }
        let signal = staging.join("recovery.signal");
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&signal)
            .with_context(|| format!("cannot create {}", signal.display()))
            .map(drop)
    }
}

fn missing_segment(archive: &wal::Archive, missing: &str) -> anyhow::Error {
    failure(
        Exit::BadArchive,
        format!(
            "WAL segment {missing} is missing from {}: recovery cannot pass it; put it back from a copy of the archive, or restore a base backup taken after it",
            archive.describe()
        ),
    )
}

/// Makes the running server archive everything it wrote so far: a recovery to the end, or
/// to a moment just past, needs the WAL still in its current segment.
pub fn flush_archive(db: &mut Db, archive: &wal::Archive) -> anyhow::Result<()> {
    let segment = base_backup::switch_wal(db)?;
    let started = Instant::now();
    while !archive.has(&segment)? {
        if started.elapsed() > ARCHIVE_WAIT {
            return Err(failure(
                Exit::Runtime,
                format!(
                    "the server did not archive WAL segment {segment} within {}; see `jobdbctl status` for why archiving fails; nothing was changed",
                    humantime::format_duration(ARCHIVE_WAIT)
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// What recovery and the job steps did.
pub struct Recovered {
    /// The commit time of the last transaction replayed (none: no transaction after the
    /// base backup).
    pub last_commit: Option<String>,
    pub timeline: u32,
    /// Where recovery's time went: (phase, seconds).
    pub phases: Vec<(String, f64)>,
}

/// What the job steps did.
pub struct JobSteps {
    pub schema: Option<String>,
    pub requeued: u64,
    /// `None` when the recovered database holds no job schema.
    pub counter: Option<Counter>,
}

/// Recovers the base backup laid down (and handed to the server user) in `staging` and
/// shuts its server down cleanly. On error its server is stopped; the caller removes the
/// directory.
pub fn recover(
    ctx: &Ctx,
    cluster: &Cluster,
    staging: &Path,
    recovery: &Recovery,
) -> anyhow::Result<Recovered> {
    let server = staging_server(cluster, staging, Some(recovery))?;
    ctx.out.info(format!(
        "recovering to {} from the WAL archive {}",
        recovery.target.describe(),
        recovery.archive.describe()
    ));
    let mut laps = Laps {
        clock: Instant::now(),
        phases: Vec::new(),
    };
    let result = (|| {
        if let Err(e) = server.start_within(RECOVERY_LIMIT) {
            return Err(failed(&server, recovery, e));
        }
        laps.lap("recovery server start");
        let mut db = connect(ctx, &server).map_err(|e| failed(&server, recovery, e))?;
        let started = Instant::now();
        loop {
            match base_backup::in_recovery(&mut db) {
                Ok(false) => break,
                Ok(true) => {}
                // The server ends recovery that cannot reach its target with a FATAL.
                Err(e) => return Err(failed(&server, recovery, e)),
            }
            if started.elapsed() > RECOVERY_LIMIT {
                return Err(failure(
                    Exit::Runtime,
                    format!(
                        "recovery did not finish within {}; nothing was replaced",
                        humantime::format_duration(RECOVERY_LIMIT)
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        laps.lap("replay");
        let last_commit = base_backup::last_replayed_commit(&mut db)?;
        let timeline = base_backup::timeline(&mut db)?;
        drop(db);
        server.stop(StopMode::Fast)?;
        laps.lap("recovery server stop");
        Ok(Recovered {
            last_commit,
            timeline,
            phases: std::mem::take(&mut laps.phases),
        })
    })();
    if result.is_err() {
        let _ = server.stop(StopMode::Immediate);
    }
    result
}

/// Where the time went, phase by phase.
struct Laps {
    clock: Instant,
    phases: Vec<(String, f64)>,
}

impl Laps {
    /// Ends the phase `name`: the time since the previous one ended.
    fn lap(&mut self, name: &str) {
        let done: f64 = self.phases.iter().map(|(_, s)| s).sum();
        self.phases
            .push((name.to_string(), self.clock.elapsed().as_secs_f64() - done));
    }
}

/// A server over `staging`: the cluster's settings, no TCP, its socket in `staging`.
pub fn staging_server(
    cluster: &Cluster,
    staging: &Path,
    recovery: Option<&Recovery>,
) -> anyhow::Result<Cluster> {
    let mut server = cluster.clone();
    server.pgdata = staging.to_path_buf();
    server.listen_addresses = String::new();
    if let Some(recovery) = recovery {
        let exe = std::env::current_exe().context("cannot find jobdbctl's own path")?;
        // Both paths passed the checks archive_command's did (`Cluster::start`).
        server.recovery_settings = Some(format!(
            "# Point-in-time restore in progress (removed when the restored cluster starts).\n\
             restore_command = '{} wal-fetch --from {} %f %p'\n{}",
            exe.display(),
            recovery.archive.location.display(),
            recovery.target.settings(recovery.timeline)
        ));
    }
    Ok(server)
}

fn connect(ctx: &Ctx, server: &Cluster) -> anyhow::Result<Db> {
    Db::connect(
        &DbTarget::Embedded(server.clone()),
        ctx.config.connect_timeout.value,
        ctx.verbose,
        &|_| {},
    )
}

/// Why the recovery server went away: once it has exited (its log complete), the refusal
/// naming the window when it could not reach the target, else `err`.
fn failed(server: &Cluster, recovery: &Recovery, err: anyhow::Error) -> anyhow::Error {
    let waited = Instant::now();
    while matches!(server.state(), Ok(crate::cluster::ServerState::Running(_)))
        && waited.elapsed() < Duration::from_secs(30)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    unreached(server, recovery).unwrap_or(err)
}

/// The refusal for a recovery that ended before its target, naming the recoverable window
/// from the server's log; `None` when the log says nothing of the kind.
fn unreached(server: &Cluster, recovery: &Recovery) -> Option<anyhow::Error> {
    let log = server_log(server);
    let before_target =
        log.contains("recovery ended before configured recovery target was reached");
    let before_consistent =
        log.contains("requested recovery stop point is before consistent recovery point");
    if !(before_target || before_consistent) {
        return None;
    }
    let last = log
        .lines()
        .rev()
        .find_map(|l| {
            l.split("last completed transaction was at log time ")
                .nth(1)
        })
        .map(|t| t.trim().to_string());
    let window_end = match &last {
        Some(t) => format!("the last archived transaction, committed {t}"),
        None => {
            "the end of the archived WAL, with no transaction after the base backup".to_string()
        }
    };
    Some(failure(
        Exit::Refused,
        format!(
            "{} cannot be reached: the recoverable window runs from the base backup's end ({}) to {window_end}; nothing was replaced (choose a target inside it, or --to-end)",
            recovery.target.describe(),
            recovery.base.stopped_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ),
    ))
}

/// The server's own log files in its data directory, concatenated oldest first. The
/// directory is the server user's: files are opened as `Cluster::open_file` opens them,
/// following no link and only the server user's own.
fn server_log(server: &Cluster) -> String {
    let mut names: Vec<PathBuf> = fs::read_dir(server.log_dir())
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| Path::new(crate::cluster::LOG_DIR).join(e.file_name()))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names.push(PathBuf::from(crate::cluster::START_LOG));
    let mut log = String::new();
    for name in names {
        let mut text = Vec::new();
        if let Ok(Some(mut f)) = server.open_file(&name) {
            if std::io::Read::read_to_end(&mut f, &mut text).is_ok() {
                log.push_str(&String::from_utf8_lossy(&text));
                log.push('\n');
            }
        }
    }
    log
}

/// The job steps of any restore, on the recovered database once it runs in place.
pub fn job_steps(ctx: &Ctx, db: &mut Db, avoid_id_reuse: bool) -> anyhow::Result<JobSteps> {
    let mut steps = JobSteps {
        schema: None,
        requeued: 0,
        counter: None,
    };
    let Some(profile) = ctx.detect_profile(db)? else {
        return Ok(steps);
    };
    steps.requeued = load::requeue_in_place(db, &profile)?;
    steps.counter = Some(Counter::against_mark(ctx, db, &profile, avoid_id_reuse)?);
    steps.schema = Some(profile.schema);
    Ok(steps)
}
