//! Physical backup: a base backup of the running embedded cluster, for point-in-time
//! recovery with the WAL that `wal-push` archives (see `crate::wal`).
//!
//! What it guarantees:
//! - It is taken only while the server archives its WAL into `wal_archive` (exit 3
//!   otherwise), between `pg_backup_start` and `pg_backup_stop` in one session; the server
//!   keeps running and the engine keeps working.
//! - The archive is written like any other (`.partial`, fsync, rename; checksums; retention
//!   classes), holds the data directory with the `backup_label` recovery starts from, and
//!   its header names where its WAL begins. It is complete only once `pg_backup_stop` has
//!   seen the backup's last WAL segment archived (waiting at most `ARCHIVE_WAIT`); a run
//!   that dies earlier ends the session, which aborts the backup on the server.
//! - The data-dir lock makes it exit 7 beside a cold backup or restore.

use std::time::Duration;

use anyhow::Context as _;

use super::cold::{describe_running, write_data_dir, Copy};
use super::{header, Done, Request};
use crate::archive::{BaseBackup, Mode};
use crate::context::Ctx;
use crate::db::base_backup;
use crate::error::{failure, Exit};
use crate::wal::{self, bases, points};
use chrono::Utc;

/// How long the end of a base backup waits for its WAL to be archived.
const ARCHIVE_WAIT: Duration = Duration::from_secs(300);

pub fn backup(ctx: &Ctx, request: &Request) -> anyhow::Result<Done> {
    let cluster = ctx.cluster("backup --mode physical")?;
    let archive = &points::open_archive(&ctx.target, &ctx.places)?;
    let _lock = cluster.lock_data_dir()?;
    let mut db = ctx.connect()?;
    points::check_ready(&mut db, archive)?;
    let mut head = header(ctx, Mode::Physical, crate::cluster::DATABASE.to_string());
    describe_running(ctx, &mut db, &mut head)?;
    let label = format!("jobdbctl-{}", head.created_at.format("%Y%m%dT%H%M%S%.6fZ"));
    let started = base_backup::start(&mut db, &label)?;
    let timeline = u32::from_str_radix(&started.wal[..8], 16)
        .with_context(|| format!("the server named WAL segment {:?}", started.wal))?;
    let base = BaseBackup {
        label,
        timeline,
        start_lsn: started.lsn,
        start_wal: started.wal,
    };
    head.base = Some(base.clone());
    let mut finish = || -> anyhow::Result<Vec<(String, Vec<u8>)>> {
        let stopped = base_backup::stop(&mut db, ARCHIVE_WAIT).map_err(|e| {
            if crate::db::sql_state(&e) == Some(&postgres::error::SqlState::QUERY_CANCELED) {
                failure(
                    Exit::Runtime,
                    format!(
                        "the base backup's WAL was not archived within {}; see `jobdbctl status` for why archiving fails, mend it and back up again",
                        humantime::format_duration(ARCHIVE_WAIT)
                    ),
                )
            } else {
                e
            }
        })?;
        if !stopped.tablespace_map.is_empty() {
            return Err(failure(
                Exit::Refused,
                "the cluster has tablespaces, which a physical backup of the embedded cluster does not archive",
            ));
        }
        let end = wal::parse_lsn(&stopped.lsn)
            .with_context(|| format!("pg_backup_stop returned LSN {:?}", stopped.lsn))?;
        bases::record(
            archive,
            &bases::Base {
                label: base.label.clone(),
                timeline: base.timeline,
                start_lsn: base.start_lsn.clone(),
                start_wal: base.start_wal.clone(),
                stop_wal: wal::segment_name(base.timeline, wal::segment_of(end.saturating_sub(1))),
                stop_lsn: stopped.lsn,
                stopped_at: Utc::now(),
            },
        )?;
        Ok(vec![(
            "backup_label".to_string(),
            stopped.label_file.into_bytes(),
        )])
    };
    write_data_dir(
        ctx,
        cluster,
        request,
        head,
        Copy::Running {
            finish: &mut finish,
        },
    )
}
