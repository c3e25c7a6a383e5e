use serde_json::json;

use crate::backup;
use crate::cli::destroy::DestroyArgs;
use crate::context::Ctx;
use crate::db::Profile;
use crate::destroy;
use crate::error::Exit;
use crate::job_ids::high_water;
use crate::output::confirm;

pub fn run(args: DestroyArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let request = destroy::Request {
        cluster: args.cluster,
        force: args.force,
        dry_run: args.dry_run,
    };
    // What would be lost is counted only when someone is asked or looks.
    let count_stake = !args.confirmation.yes || args.dry_run;
    let mut plan = destroy::plan(ctx, &request, count_stake)?;
    if plan.is_empty() {
        ctx.out.info(format!(
            "no job schema in {}; nothing to destroy",
            ctx.target.describe()
        ));
        let mark = plan.recorded_mark(ctx)?;
        return print(ctx, None, false, args.dry_run, None, mark);
    }
    let what = describe(
        plan.profile.as_ref(),
        plan.stake.take(),
        plan.cluster_dir().map(|d| d.display().to_string()),
    );
    let (profile, last_used) = (plan.profile.clone(), plan.last_used);
    if args.dry_run {
        ctx.out.info(format!("would {what}"));
        let mark = plan.recorded_mark(ctx)?;
        return print(ctx, profile.as_ref(), args.cluster, true, last_used, mark);
    }
    confirm(&what, args.confirmation.yes)?;
    if let Some(path) = &args.backup_first {
        // Encrypted as the configuration says, as every backup is.
        let seal = crate::cli::keys::SealArgs::default().seal(&ctx.config)?;
        let written = backup::backup(
            ctx,
            &backup::Request {
                seal: seal.as_ref(),
                mode: plan.backup_mode(),
                output: Some(path.clone()),
                keep: None,
                keep_within: None,
                // Never pruned, even when PATH is a directory and jobdbctl picks the name.
                pinned: true,
                space_check: true,
                codec: ctx.config.compression.value,
            },
        )?;
        ctx.out.info(format!(
            "backup written to {}",
            written.path.as_deref().unwrap_or(path).display()
        ));
    }
    let mark = plan.carry_out(ctx)?;
    print(ctx, profile.as_ref(), args.cluster, false, last_used, mark)
}

fn describe(
    profile: Option<&Profile>,
    stake: Option<high_water::AtStake>,
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
    let store = high_water::Store::of(ctx).describe();
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
