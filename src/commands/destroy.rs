use std::path::PathBuf;

use anyhow::Context as _;
use serde_json::json;

use crate::archive::Mode;
use crate::backup;
use crate::cli::Confirmation;
use crate::cluster::{Cluster, ServerState, StopMode};
use crate::context::Ctx;
use crate::db::{self, counter, workers, Db, Profile};
use crate::error::{failure, Exit};
use crate::highwater;
use crate::output::{confirm, plural};

/// Drop the job database: every object of the profile's schema. With --cluster, also remove
/// the embedded cluster. The last used job ID is printed and recorded first as the job-ID
/// high-water mark, which survives (`restore --avoid-id-reuse` continues above it).
/// Afterwards `init` gives an empty database whose job IDs start at 1.
#[derive(Debug, clap::Args)]
pub struct DestroyArgs {
    #[command(flatten)]
    pub confirmation: Confirmation,
    /// Also stop the embedded server and remove its cluster (<data dir>/psql). Kept beside it:
    /// the backups directory and the job-ID high-water mark. A stopped server is started
    /// briefly to read its last used job ID.
    #[arg(long)]
    pub cluster: bool,
    /// Destroy even while workers are live.
    #[arg(long)]
    pub force: bool,
    /// Show what would be destroyed and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Write a backup archive to PATH first (online; cold when the embedded server is
    /// stopped) and destroy only if it succeeded. backup --keep never deletes this archive.
    #[arg(long, value_name = "PATH")]
    pub backup_first: Option<PathBuf>,
}

pub fn run(args: DestroyArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let cluster = if args.cluster {
        Some(ctx.cluster("destroy --cluster")?)
    } else {
        None
    };
    // A stopped cluster is started for the moment it takes to read its job counter, so the
    // high-water mark records it before the data goes. It had no workers connected, so its
    // live-worker check is skipped; `started_here` stops it again if we give up early.
    let mut started_here = StopOnDrop(None);
    let server_up = match cluster {
        Some(c) => match c.state()? {
            ServerState::Running(_) => true,
            ServerState::Stopped if !args.dry_run => {
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
    let profile: Option<Profile> = match conn.as_mut() {
        Some(db) => ctx.detect_profile(db)?,
        None => None,
    };
    if let (Some(db), Some(p), None) = (conn.as_mut(), profile.as_ref(), started_here.0) {
        let stale_after = ctx.config.stale_after.value;
        let live = workers::live(db, p, stale_after)?;
        if !live.is_empty() && !args.force {
            return Err(failure(
                Exit::Refused,
                format!(
                    "refusing to destroy: {} still use this database: {}; stop the engine and run destroy again after that, pass --stale-after 0s if you know the engine is down, or --force",
                    plural(live.len() as i64, "live worker", "live workers"),
                    workers::describe_live(&live, stale_after)
                ),
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
    if profile.is_none() && cluster.is_none() {
        ctx.out.info(format!(
            "no job schema in {}; nothing to destroy",
            ctx.target.describe()
        ));
        let mark = recorded_mark(ctx, conn.as_mut())?;
        return print(ctx, None, false, args.dry_run, None, mark);
    }
    // What would be lost, counted only when someone is asked or looks.
    let stake = match (conn.as_mut(), profile.as_ref()) {
        (Some(db), Some(p)) if !args.confirmation.yes || args.dry_run => {
            Some(highwater::at_stake(db, p)?)
        }
        _ => None,
    };
    let what = describe(
        profile.as_ref(),
        stake,
        cluster.map(|c| c.pgdata.display().to_string()),
    );
    if args.dry_run {
        ctx.out.info(format!("would {what}"));
        let mark = recorded_mark(ctx, conn.as_mut())?;
        return print(ctx, profile.as_ref(), args.cluster, true, last_used, mark);
    }
    confirm(&what, args.confirmation.yes)?;

    if let Some(path) = &args.backup_first {
        let was_running = server_up && started_here.0.is_none();
        let done = backup::backup(
            ctx,
            &backup::Request {
                mode: if was_running {
                    Mode::Online
                } else {
                    Mode::Cold
                },
                output: Some(path.clone()),
                keep: None,
                keep_within: None,
                // Never pruned, even when PATH is a directory and jobdbctl picks the name.
                pinned: true,
                space_check: true,
            },
        )?;
        ctx.out.info(format!(
            "backup written to {}",
            done.path.as_deref().unwrap_or(path).display()
        ));
    }

    let mut mark = None;
    if let (Some(db), Some(p)) = (conn.as_mut(), profile.as_ref()) {
        if let Some(n) = last_used {
            // Recorded before the drop: if it cannot be, nothing is dropped.
            let recorded = highwater::raise(ctx, db, &p.schema, n).context(
                "nothing was destroyed, because the last used job ID could not be recorded first",
            )?;
            mark = Some((p.schema.clone(), recorded));
        }
        db::drop_schema(db, &p.schema)?;
        ctx.out.info(format!("dropped schema {:?}", p.schema));
    }
    if mark.is_none() {
        mark = recorded_mark(ctx, conn.as_mut())?;
    }
    drop(conn);
    if let Some(c) = cluster {
        if c.stop(StopMode::Fast)? && started_here.0.is_none() {
            ctx.out.info("server stopped");
        }
        started_here.0 = None;
        c.remove()?;
        ctx.out.info(format!(
            "removed {} (kept beside it: the backups directory and the job-ID high-water mark)",
            c.pgdata.display()
        ));
    }
    print(ctx, profile.as_ref(), args.cluster, false, last_used, mark)
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
    let marks = match (highwater::Store::of(ctx), db) {
        (highwater::Store::Server, None) => return Ok(None),
        (_, db) => highwater::read_all(ctx, db)?,
    };
    let schema = ctx.native_schema();
    Ok(marks
        .iter()
        .find(|(s, _)| s == schema)
        .or(marks.first())
        .cloned())
}

fn describe(
    profile: Option<&Profile>,
    stake: Option<highwater::AtStake>,
    data_dir: Option<String>,
) -> String {
    let stake = stake.map(|s| format!("; {s}")).unwrap_or_default();
    match (profile, data_dir) {
        (Some(p), Some(dir)) => format!(
            "drop schema {:?} ({} profile{stake}) and remove {dir}",
            p.schema,
            p.name()
        ),
        (Some(p), None) => format!(
            "drop schema {:?} ({} profile{stake}) with all its jobs",
            p.schema,
            p.name()
        ),
        (None, Some(dir)) => format!("remove {dir}"),
        (None, None) => "do nothing".to_string(),
    }
}

fn print(
    ctx: &Ctx,
    profile: Option<&Profile>,
    cluster: bool,
    dry_run: bool,
    last_used: Option<i64>,
    mark: Option<(String, i64)>,
) -> anyhow::Result<Exit> {
    let store = highwater::Store::of(ctx).describe();
    if ctx.out.json {
        ctx.out.json(&json!({
            "dropped_schema": profile.map(|p| p.schema.clone()),
            "removed_cluster": cluster,
            "dry_run": dry_run,
            "last_used_job_id": last_used,
            "job_id_high_water": mark.as_ref().map(|(_, m)| *m),
            "high_water_recorded": !dry_run && last_used.is_some(),
            "high_water_store": store,
        }))?;
        return Ok(Exit::Ok);
    }
    let mark_text = match &mark {
        Some((schema, m)) => format!("job-ID high-water mark {m} for schema {schema:?}"),
        None => "no job-ID high-water mark recorded".to_string(),
    };
    match (last_used, dry_run) {
        (Some(n), false) => ctx.out.line(format!(
            "last used job ID {n}, recorded: {mark_text} ({store}); `restore --avoid-id-reuse` and `set-job-counter` continue above it"
        )),
        (Some(n), true) => ctx.out.line(format!(
            "last used job ID {n} (would be recorded; {mark_text} now, in {store})"
        )),
        (None, _) => ctx.out.line(format!("{mark_text} ({store})")),
    }?;
    Ok(Exit::Ok)
}
