//! Cold backup: stop the embedded server, archive its data directory file by file, start
//! it again if it was running.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{anyhow, Context as _};

use super::destination::Destination;
use super::{header, threads, Done, Request};
use crate::archive::writer::{ArchiveWriter, Sink};
use crate::archive::{self, Manifest, Mode};
use crate::cluster::{Cluster, ServerState, StopMode};
use crate::context::Ctx;
use crate::db::{counter, status};

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
            let mut source = cluster.open_file(rel)?.with_context(|| {
                format!(
                    "{} disappeared during the backup",
                    cluster.pgdata.join(rel).display()
                )
            })?;
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
