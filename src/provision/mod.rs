//! Bringing the embedded cluster up for use, for `start`, `restart` and `init`: created if
//! absent (when that is safe), started if stopped, its job database present. Each step is
//! skipped when already done, so running it again is harmless.
//!
//! A cluster is created unasked only in the default data directory, so the README's first
//! command works on a fresh machine. A data directory someone named (`--data-dir`,
//! `$JOBDBCTL_DATA_DIR`, `data_dir` in the config file) that holds no cluster is refused
//! unless creating was asked for (`init`, `start --create`): a typo there must not give an
//! empty job database whose IDs restart at 1 while the real one sits elsewhere.
//!
//! A kill -9 during initdb leaves a partial `psql/` the server will not start from (remove it
//! and run again); during the start, a server that goes on starting by itself.

use std::time::Duration;

use crate::cluster::{Cluster, ServerState, START_TIMEOUT};
use crate::context::Ctx;
use crate::db;
use crate::error::{failure, Exit};

/// How to bring the cluster up.
#[derive(Debug, Clone, Copy)]
pub struct Request {
    /// Create the cluster if absent, even in a data directory that was named explicitly.
    pub create: bool,
    /// How long to wait for the server to accept connections.
    pub timeout: Duration,
    /// Say "server started" on stderr (`start` reports it with the rest, on stdout).
    pub announce: bool,
}

impl Default for Request {
    fn default() -> Request {
        Request {
            create: false,
            timeout: START_TIMEOUT,
            announce: true,
        }
    }
}

/// What bringing up did.
#[derive(Debug, Clone, Copy)]
pub struct BroughtUp {
    /// The cluster was created now (it then needs its job schema).
    pub created: bool,
    /// The server was started now (false: it was already running).
    pub started: bool,
}

/// Creates the cluster if absent (and allowed), starts it if stopped, and makes sure the job
/// database exists.
pub fn bring_up(cluster: &Cluster, ctx: &Ctx, request: Request) -> anyhow::Result<BroughtUp> {
    let state = cluster.state()?;
    if !matches!(state, ServerState::Running(_)) {
        check_wal_bucket(cluster, ctx)?;
    }
    let created = state == ServerState::NotInitialized;
    if created {
        refuse_unasked_creation(cluster, request)?;
        ctx.out.info(format!(
            "creating embedded cluster in {}",
            cluster.pgdata.display()
        ));
        cluster.initdb()?;
    }
    let started = cluster.start_within(request.timeout)?;
    if started && request.announce {
        ctx.out
            .info(format!("server started ({})", cluster.describe()));
    }
    db::ensure_database(cluster, ctx.config.connect_timeout.value, ctx.verbose)?;
    Ok(BroughtUp { created, started })
}

/// A WAL archive in a bucket must answer to its credentials before the server starts: a
/// wrong endpoint or key would otherwise show only as archiving failures while `pg_wal`
/// grows.
fn check_wal_bucket(cluster: &Cluster, ctx: &Ctx) -> anyhow::Result<()> {
    match &cluster.wal_archive {
        Some(location) if crate::storage::is_url(location) => {
            ctx.places.at(location)?.prepare().map_err(|e| {
                e.context(format!(
                    "cannot reach the WAL archive {}",
                    location.display()
                ))
            })
        }
        _ => Ok(()),
    }
}

/// Refuses (exit 3) to create a cluster in a data directory that was named explicitly,
/// unless creating was asked for.
pub fn refuse_unasked_creation(cluster: &Cluster, request: Request) -> anyhow::Result<()> {
    match &cluster.data_dir_origin {
        Some(origin) if !request.create => Err(failure(
            Exit::Refused,
            format!(
                "no cluster in {} (data directory from {origin}); a wrong path would give an empty \
                 job database whose IDs restart at 1: check the path, or create a cluster there \
                 with `jobdbctl init` (or `jobdbctl start --create`)",
                cluster.pgdata.display()
            ),
        )),
        _ => Ok(()),
    }
}
