//! Cold backup: stop the embedded server, archive its data directory file by file, start
//! it again if it was running.

use std::fs;
use std::io::Read as _;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{anyhow, Context as _};

use super::destination::Destination;
use super::{header, threads, Done, Request};
use crate::archive::writer::{ArchiveWriter, Sink};
use crate::archive::{self, Manifest, Mode};
use crate::cluster::{Cluster, ServerState, StopMode};
use crate::context::Ctx;
use crate::db::{counter, status, Db};

/// What the running server says about the job schema, for a cold or physical archive's
/// header.
pub(super) fn describe_running(ctx: &Ctx, db: &mut Db, head: &mut Manifest) -> anyhow::Result<()> {
    head.server_version = Some(db.server_version()?);
    if let Some(profile) = ctx.detect_profile(db)? {
        head.profile = Some(profile.name().to_string());
        head.schema = Some(profile.schema.clone());
        head.schema_version = status::schema_version(db, &profile)?;
        if let Ok(seq) = counter::sequence_name(db, &profile) {
            head.last_used_job_id = Some(counter::last_used(db, &seq)?);
        }
    }
    Ok(())
}

/// Stops the server, archives `psql/`, and starts the server again if it was running —
/// also when archiving fails.
pub fn backup(ctx: &Ctx, request: &Request) -> anyhow::Result<Done> {
    let cluster = ctx.cluster("backup --mode cold")?;
    // Before the lock, whose file would create a mistyped data directory.
    if cluster.state()? == ServerState::NotInitialized {
        return Err(cluster.no_cluster());
    }
    let _lock = cluster.lock_data_dir()?;
    let mut head = header(ctx, Mode::Cold, crate::cluster::DATABASE.to_string());
    let was_running = match cluster.state()? {
        ServerState::NotInitialized => return Err(cluster.no_cluster()),
        ServerState::Running(_) => {
            describe_running(ctx, &mut ctx.connect()?, &mut head)?;
            ctx.out.info("stopping the server for a cold backup");
            cluster.stop(StopMode::Fast)?;
            true
        }
        ServerState::Stopped => false,
    };
    let result = write_data_dir(ctx, cluster, request, head, Copy::Stopped);
    if was_running {
        cluster
            .start()
            .context("backup done, but the server did not start again")?;
        ctx.out.info("server started again");
    }
    result
}

/// How the data directory is copied.
pub(super) enum Copy<'a> {
    /// The server is stopped: every file as it is.
    Stopped,
    /// The server runs inside `pg_backup_start`/`pg_backup_stop`: files change while they
    /// are read (WAL replay mends them), what the server recreates is left out, and
    /// `finish` ends the backup once the files are read, returning the entries it adds
    /// (`backup_label`).
    Running {
        finish: &'a mut dyn FnMut() -> anyhow::Result<Vec<(String, Vec<u8>)>>,
    },
}

/// Room the header declares beyond the files' sizes for the entries `Copy::Running` adds.
const ADDED_ENTRY_BYTES: u64 = 16 << 10;

pub(super) fn write_data_dir(
    ctx: &Ctx,
    cluster: &Cluster,
    request: &Request,
    mut head: Manifest,
    mut copy: Copy,
) -> anyhow::Result<Done> {
    if head.server_version.is_none() {
        head.server_version = fs::read_to_string(cluster.pgdata.join("PG_VERSION"))
            .ok()
            .map(|v| v.trim().to_string());
    }
    let live = matches!(copy, Copy::Running { .. });
    let files = list_cluster_files(&cluster.pgdata, live)?;
    let total: u64 = files.iter().map(|f| f.size).sum();
    let added = if live { ADDED_ENTRY_BYTES } else { 0 };
    head.total_file_bytes = Some(total + added);
    head.max_entry_bytes = files.iter().map(|f| f.size).max().unwrap_or(0).max(added);
    let dest = Destination::choose(
        ctx,
        request.output.as_deref(),
        "cluster",
        request.pinned,
        request.codec,
        request.seal.is_some(),
    )?;
    head.retention = Some(dest.retention());
    dest.check_space(total / 2, request.space_check)?;
    let out = dest.open()?;
    let writer = ArchiveWriter::new(
        Sink::new(out, request.seal, &head)?,
        request.codec,
        threads(),
    );
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
            // Opened without following a link and only as a plain file of the cluster's
            // owner: a file swapped for a link since the listing is refused, not archived.
            let rel = Path::new(f.relative.trim_start_matches('/'));
            let source = cluster.open_file(rel)?;
            match (source, live) {
                (Some(mut source), false) => {
                    writer.add_stream(&name, f.size, f.mode, &mut source, archive::CHUNK_SIZE)?
                }
                // A running server's file is read as long as it was listed: one that
                // shrank is padded with zeros, as pg_basebackup does; replay rewrites it.
                (Some(source), true) => {
                    let mut padded = source.chain(std::io::repeat(0)).take(f.size);
                    writer.add_stream(&name, f.size, f.mode, &mut padded, archive::CHUNK_SIZE)?
                }
                // Dropped since the listing: replay drops it too.
                (None, true) => {}
                (None, false) => {
                    return Err(anyhow!(
                        "{} disappeared during the backup",
                        cluster.pgdata.join(rel).display()
                    ))
                }
            }
            bar.inc(f.size);
        }
        if let Copy::Running { finish } = &mut copy {
            for (name, bytes) in finish()? {
                writer.add_entry(&format!("{}/{name}", archive::CLUSTER_DIR), bytes)?;
            }
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
    let path = dest.complete().inspect_err(|_| dest.discard())?;
    Ok(Done {
        path,
        bytes,
        manifest: head,
        pruned: Vec::new(),
        damaged: Vec::new(),
        prune_error: None,
        seconds: 0.0,
    })
}

/// What a copy of a running server leaves out, as pg_basebackup does: what the server
/// recreates or rebuilds at start (WAL, which comes from the archive; temporary and
/// statistics files; the pid file), what describes the running server, and its logs.
fn left_out_of_live_copy(relative: &str, dir: bool) -> bool {
    const EMPTIED: [&str; 10] = [
        "/pg_wal",
        "/pg_replslot",
        "/pg_dynshmem",
        "/pg_notify",
        "/pg_serial",
        "/pg_snapshots",
        "/pg_stat_tmp",
        "/pg_subtrans",
        "/log",
        "/pg_wal/archive_status",
    ];
    const FILES: [&str; 8] = [
        // jobdbctl's settings for this host, written again by every start.
        "/jobdbctl.conf",
        "/postmaster.pid",
        "/postmaster.opts",
        "/backup_label",
        "/backup_label.old",
        "/tablespace_map",
        "/recovery.signal",
        "/standby.signal",
    ];
    let name = relative.rsplit('/').next().unwrap_or_default();
    let parent = relative.rsplit_once('/').map_or("", |(p, _)| p);
    if dir {
        return name.starts_with("pgsql_tmp") || (EMPTIED.contains(&parent) && parent != "/pg_wal");
    }
    EMPTIED.contains(&parent)
        || FILES.contains(&relative)
        || relative == format!("/{}", crate::cluster::START_LOG)
        || name == "pg_internal.init"
        || name.starts_with("pgsql_tmp")
        || (name.starts_with(".s.PGSQL.") && name.ends_with(".lock"))
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
/// With `live` (a running server's directory): what [`left_out_of_live_copy`] names is left
/// out, directories with all they hold, and an entry removed since its directory was read
/// is skipped.
fn list_cluster_files(pgdata: &Path, live: bool) -> anyhow::Result<Vec<ClusterFile>> {
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
            let meta = match fs::symlink_metadata(e.path()) {
                Err(e) if live && e.kind() == std::io::ErrorKind::NotFound => continue,
                meta => {
                    meta.with_context(|| format!("cannot stat {}", dir.join(name).display()))?
                }
            };
            if live && left_out_of_live_copy(&relative, meta.is_dir()) {
                continue;
            }
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
