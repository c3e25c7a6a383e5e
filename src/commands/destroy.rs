use std::path::PathBuf;

use serde_json::json;

use crate::archive::Mode;
use crate::backup;
use crate::cli::Confirmation;
use crate::cluster::{ServerState, StopMode};
use crate::context::Ctx;
use crate::db::{self, workers, Profile};
use crate::error::{failure, Exit};
use crate::output::{confirm, plural};

/// Drop the job database: every object of the profile's schema. With --cluster, also remove
/// the embedded cluster's data directory. Afterwards `init` gives an empty database whose
/// job IDs start at 1.
#[derive(Debug, clap::Args)]
pub struct DestroyArgs {
    #[command(flatten)]
    pub confirmation: Confirmation,
    /// Also stop the embedded server and remove its data directory.
    #[arg(long)]
    pub cluster: bool,
    /// Destroy even while workers are live.
    #[arg(long)]
    pub force: bool,
    /// Show what would be destroyed and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Write a backup archive to PATH first (online; cold when the embedded server is
    /// stopped) and destroy only if it succeeded.
    #[arg(long, value_name = "PATH")]
    pub backup_first: Option<PathBuf>,
}

pub fn run(args: DestroyArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let cluster = if args.cluster {
        Some(ctx.cluster("destroy --cluster")?)
    } else {
        None
    };
    // A stopped embedded server has no connected workers; only --cluster can proceed then.
    let server_up = match cluster {
        Some(c) => matches!(c.state()?, ServerState::Running(_)),
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
    if let (Some(db), Some(p)) = (conn.as_mut(), profile.as_ref()) {
        let live = workers::live_ids(db, p, ctx.config.stale_after.value)?;
        if !live.is_empty() && !args.force {
            return Err(failure(
                Exit::Refused,
                format!(
                    "refusing to destroy: {} ({}) still use this database; stop them, or pass --force",
                    plural(live.len() as i64, "live worker", "live workers"),
                    live.join(", ")
                ),
            ));
        }
    }
    if profile.is_none() && cluster.is_none() {
        ctx.out.info(format!(
            "no job schema in {}; nothing to destroy",
            ctx.target.describe()
        ));
        return print(ctx, None, false, args.dry_run);
    }
    let what = describe(
        profile.as_ref(),
        cluster.map(|c| c.pgdata.display().to_string()),
    );
    if args.dry_run {
        ctx.out.info(format!("would {what}"));
        return print(ctx, profile.as_ref(), args.cluster, true);
    }
    confirm(&what, args.confirmation.yes)?;

    if let Some(path) = &args.backup_first {
        let done = backup::backup(
            ctx,
            &backup::Request {
                mode: if server_up { Mode::Online } else { Mode::Cold },
                output: Some(path.clone()),
                keep: None,
                space_check: true,
            },
        )?;
        ctx.out.info(format!(
            "backup written to {}",
            done.path.as_deref().unwrap_or(path).display()
        ));
    }

    if let (Some(db), Some(p)) = (conn.as_mut(), profile.as_ref()) {
        db::drop_schema(db, &p.schema)?;
        ctx.out.info(format!("dropped schema {:?}", p.schema));
    }
    drop(conn);
    if let Some(c) = cluster {
        if c.stop(StopMode::Fast)? {
            ctx.out.info("server stopped");
        }
        c.remove()?;
        ctx.out.info(format!("removed {}", c.pgdata.display()));
    }
    print(ctx, profile.as_ref(), args.cluster, false)
}

fn describe(profile: Option<&Profile>, data_dir: Option<String>) -> String {
    match (profile, data_dir) {
        (Some(p), Some(dir)) => format!(
            "drop schema {:?} ({} profile) and remove {dir}",
            p.schema,
            p.name()
        ),
        (Some(p), None) => format!(
            "drop schema {:?} ({} profile) with all its jobs",
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
) -> anyhow::Result<Exit> {
    if ctx.out.json {
        ctx.out.json(&json!({
            "dropped_schema": profile.map(|p| p.schema.clone()),
            "removed_cluster": cluster,
            "dry_run": dry_run,
        }))?;
    }
    Ok(Exit::Ok)
}
