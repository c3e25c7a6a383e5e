//! Destroying the job database: the profile's schema, and with `cluster` the embedded
//! cluster too.
//!
//! Guarantees: nothing is dropped unless the last used job ID was first recorded as the
//! job-ID high-water mark (beside the cluster, or on the server), so `restore
//! --avoid-id-reuse` and `set-job-counter` can continue above it afterwards; live workers
//! refuse it (unless forced); `destroy --backup-first` takes its backup (with
//! `Plan::backup_mode`) before `carry_out`, so nothing goes unless it succeeded. The schema
//! is dropped in one transaction: a kill -9 before its commit leaves it whole, after it the
//! mark is already on disk. Removing the cluster happens after the server stopped; a kill -9
//! in the middle of that leaves a partly removed `psql` with the mark already recorded: run
//! `destroy --cluster` again to finish. A stopped cluster is started only for the moment it takes to read the
//! counter, and stopped again however the run ends.

use std::path::Path;

use anyhow::Context as _;

use crate::archive::Mode;
use crate::cluster::{Cluster, ServerState, StopMode};
use crate::context::Ctx;
use crate::db::{self, counter, workers, Db, Profile};
use crate::job_ids::high_water;

pub struct Request {
    pub cluster: bool,
    pub force: bool,
    pub dry_run: bool,
}

/// What a destroy would do, read before anyone is asked: the server reached (a stopped
/// cluster started), live workers refused, the counter read.
pub struct Plan<'a> {
    cluster: Option<&'a Cluster>,
    /// A stopped cluster this run started; stopped again when the plan is dropped.
    started_here: StopOnDrop<'a>,
    conn: Option<Db>,
    pub profile: Option<Profile>,
    pub last_used: Option<i64>,
    /// Jobs that would be lost; read only when someone will see it.
    pub stake: Option<high_water::AtStake>,
}

/// Reaches the database and reads what the destroy is about. `count_stake`: count the jobs
/// at stake (for a prompt or a dry run).
pub fn plan<'a>(ctx: &'a Ctx, req: &Request, count_stake: bool) -> anyhow::Result<Plan<'a>> {
    let cluster = if req.cluster {
        Some(ctx.cluster("destroy --cluster")?)
    } else {
        None
    };
    let mut started_here = StopOnDrop(None);
    let server_up = match cluster {
        Some(c) => match c.state()? {
            ServerState::Running(_) => true,
            ServerState::Stopped if !req.dry_run => {
                ctx.out
                    .info("starting the stopped server to read its last used job ID");
                match c.start() {
                    Ok(_) => {
                        started_here = StopOnDrop(Some(c));
                        true
                    }
                    Err(e) => {
                        ctx.out.warn(format!(
                            "the server did not start ({e:#}); its last used job ID cannot be read, so the job-ID high-water mark keeps what it recorded before"
                        ));
                        false
                    }
                }
            }
            _ => false,
        },
        None => true,
    };
    let mut conn = if server_up {
        Some(ctx.connect()?)
    } else {
        None
    };
    let profile = match conn.as_mut() {
        Some(db) => ctx.detect_profile(db)?,
        None => None,
    };
    // A server this run started had no workers connected.
    if let (Some(db), Some(p), None) = (conn.as_mut(), profile.as_ref(), started_here.0) {
        let stale_after = ctx.config.stale_after.value;
        let live = workers::live(db, p, stale_after)?;
        if !live.is_empty() && !req.force {
            return Err(workers::refusal(
                "destroy",
                &live,
                stale_after,
                "stop the engine and run destroy again after that, pass --stale-after 0s if you know the engine is down, or --force",
            ));
        }
    }
    let last_used = match (conn.as_mut(), profile.as_ref()) {
        (Some(db), Some(p)) => match counter::sequence_name(db, p) {
            Ok(seq) => Some(counter::last_used(db, &seq)?),
            Err(_) => None,
        },
        _ => None,
    };
    let stake = match (conn.as_mut(), profile.as_ref()) {
        (Some(db), Some(p)) if count_stake => Some(high_water::at_stake(db, p)?),
        _ => None,
    };
    Ok(Plan {
        cluster,
        started_here,
        conn,
        profile,
        last_used,
        stake,
    })
}

impl Plan<'_> {
    /// Nothing to destroy: no job schema, and the cluster is not to go.
    pub fn is_empty(&self) -> bool {
        self.profile.is_none() && self.cluster.is_none()
    }

    pub fn cluster_dir(&self) -> Option<&Path> {
        self.cluster.map(|c| c.pgdata.as_path())
    }

    /// The mark recorded for this schema so far, where it can be read.
    pub fn recorded_mark(&mut self, ctx: &Ctx) -> anyhow::Result<Option<(String, i64)>> {
        recorded_mark(ctx, self.conn.as_mut())
    }

    /// How a backup taken before the destroy reads this database: online while the server
    /// was running, cold from a cluster that was stopped (and is only up for this run).
    pub fn backup_mode(&self) -> Mode {
        if self.conn.is_some() && self.started_here.0.is_none() {
            Mode::Online
        } else {
            Mode::Cold
        }
    }

    /// Records the mark, drops the schema, removes the cluster; says each step as it is done.
    /// Returns the mark as recorded.
    pub fn carry_out(mut self, ctx: &Ctx) -> anyhow::Result<Option<(String, i64)>> {
        let mut mark = None;
        if let (Some(db), Some(p)) = (self.conn.as_mut(), self.profile.as_ref()) {
            if let Some(n) = self.last_used {
                let recorded = high_water::raise(ctx, db, &p.schema, n).context(
                    "nothing was destroyed, because the last used job ID could not be recorded first",
                )?;
                mark = Some((p.schema.clone(), recorded));
            }
            db::drop_schema(db, &p.schema)?;
            ctx.out.info(format!("dropped schema {:?}", p.schema));
        }
        if mark.is_none() {
            mark = recorded_mark(ctx, self.conn.as_mut())?;
        }
        drop(self.conn.take());
        if let Some(c) = self.cluster {
            if c.stop(StopMode::Fast)? && self.started_here.0.is_none() {
                ctx.out.info("server stopped");
            }
            self.started_here.0 = None;
            c.remove()?;
            ctx.out.info(format!(
                "removed {} (kept beside it: the backups directory and the job-ID high-water mark)",
                c.pgdata.display()
            ));
        }
        Ok(mark)
    }
}

/// Stops a server this run started, when the run ends before it would have anyway.
struct StopOnDrop<'a>(Option<&'a Cluster>);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.0 {
            let _ = c.stop(StopMode::Fast);
        }
    }
}

/// The mark for the schema this run is about, where it can be read without a job schema.
fn recorded_mark(ctx: &Ctx, db: Option<&mut Db>) -> anyhow::Result<Option<(String, i64)>> {
    let marks = match (high_water::Store::of(ctx), db) {
        (high_water::Store::Server, None) => return Ok(None),
        (_, db) => high_water::read_all(ctx, db)?,
    };
    let schema = ctx.native_schema();
    Ok(marks
        .iter()
        .find(|(s, _)| s == schema)
        .or(marks.first())
        .cloned())
}
