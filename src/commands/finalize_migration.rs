//! `finalize-migration`: run every remaining batch of a batched background migration now,
//! as GitLab's `gitlab:background_migrations:finalize` does, until it is finished.

use serde_json::json;

use crate::background_migrations::finalizer::{self, finalize_by_id, FinalizeOptions, Summary};
use crate::cli::finalize_migration::{FinalizeMigrationArgs, FinalizeOptionsArgs};
use crate::context::Ctx;
use crate::db::backfill;
use crate::db::batched_migrations::{self as bm, Tables};
use crate::db::Db;
use crate::error::{failure, Exit};

impl From<FinalizeOptionsArgs> for FinalizeOptions {
    fn from(a: FinalizeOptionsArgs) -> FinalizeOptions {
        FinalizeOptions {
            batch_size: a.batch_size,
            sub_batch_size: a.sub_batch_size,
            pause_ms: a.pause_ms,
            target_batch_time: a.target_batch_time,
            statement_timeout: a.statement_timeout,
            lock_timeout: a.lock_timeout,
            max_replication_lag: a.max_replication_lag,
        }
    }
}

pub fn run(args: FinalizeMigrationArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let mut db = ctx.connect()?;
    let profile = ctx.writable_profile(&mut db)?;
    profile.require_native("finalize-migration")?;
    let tables = Tables::new(&profile.schema);
    let ids = if args.all {
        bm::unfinished_ids(&mut db, &tables)?
    } else if let Some(id) = args.id {
        vec![id]
    } else {
        vec![find_by_configuration(&mut db, &tables, &args)?]
    };
    if args.all && ids.is_empty() {
        ctx.out.info("no unfinished background migrations");
    }
    let options = FinalizeOptions::from(args.options);
    let mut summaries = Vec::new();
    for id in ids {
        let summary = finalize_by_id(ctx, &mut db, id, &options)?;
        if !ctx.out.json {
            ctx.out.line(describe(&summary))?;
        }
        summaries.push(summary);
    }
    if ctx.out.json {
        if args.all {
            ctx.out.json(&summaries)?;
        } else if let Some(s) = summaries.first() {
            ctx.out.json(s)?;
        }
    }
    Ok(Exit::Ok)
}

/// The migration named on the command line as GitLab names it.
fn find_by_configuration(
    db: &mut Db,
    tables: &Tables,
    args: &FinalizeMigrationArgs,
) -> anyhow::Result<i64> {
    let (Some(class), Some(table), Some(column)) = (&args.job_class, &args.table, &args.column)
    else {
        return Err(failure(
            Exit::Usage,
            "give JOB_CLASS TABLE COLUMN [JOB_ARGUMENTS_JSON], --id N or --all",
        ));
    };
    backfill::check_class_name(class)?;
    let arguments = match &args.job_arguments {
        Some(text) => parse_arguments(text)?,
        None => json!([]),
    };
    finalizer::find_by_configuration(db, tables, class, table, column, &arguments)
}

/// Job arguments as JSON. GitLab's rake task wants commas escaped (`[["id"]\, ["x"]]`);
/// such text is not JSON, so it is accepted with the escapes removed.
fn parse_arguments(text: &str) -> anyhow::Result<serde_json::Value> {
    serde_json::from_str(text)
        .or_else(|e| {
            if text.contains("\\,") {
                serde_json::from_str(&text.replace("\\,", ",")).map_err(|_| e)
            } else {
                Err(e)
            }
        })
        .map_err(|e| {
            failure(
                Exit::Usage,
                format!("JOB_ARGUMENTS_JSON {text:?} is not valid JSON: {e}"),
            )
        })
}

/// One line per finalized migration, with its figures.
fn describe(s: &Summary) -> String {
    let what = format!(
        "background migration {} ({} on {}.{})",
        s.id, s.job_class_name, s.table, s.column_name
    );
    if s.already_finished {
        return format!("{what} is already {}; nothing to do", s.status);
    }
    let mut line = format!(
        "{what} {}: {} rows ({} changed) in {} batches, {:.1} s, {:.0} rows/s",
        s.status, s.stats.rows, s.stats.rows_updated, s.stats.batches, s.elapsed_s, s.rows_per_s
    );
    if let (Some(p99), Some(max)) = (s.stats.batch_ms_p99, s.stats.batch_ms_max) {
        line.push_str(&format!(", batch p99 {p99:.0} ms, max {max:.0} ms"));
    }
    if s.failed_attempts > 0 {
        line.push_str(&format!(", {} failed attempts retried", s.failed_attempts));
    }
    if s.paused_s > 0.0 {
        line.push_str(&format!(
            ", {:.1} s of it pausing between sub-batches for live workers",
            s.paused_s
        ));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_accept_gitlab_escaped_commas() {
        assert_eq!(
            parse_arguments(r#"[["id"]\, ["id_convert_to_bigint"]]"#).unwrap(),
            json!([["id"], ["id_convert_to_bigint"]])
        );
        assert!(parse_arguments("[[\"id\"]").is_err());
    }
}
