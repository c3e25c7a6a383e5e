use serde::Serialize;

use crate::config::{Setting, Source};
use crate::context::Ctx;
use crate::db::{counter, status, Db};
use crate::error::{exit_code_of, failure, Exit};
use crate::highwater::{self, Reuse, Store};
use crate::output::table;

/// Show the last used job ID, the job-ID high-water mark, schema version, server and data
/// paths, and the effective configuration with where each value came from. Works without a
/// job schema. Passwords are shown as ********.
#[derive(Debug, clap::Args)]
pub struct ShowParamsArgs {
    /// Print only these parameters' values, one per line, for scripts (e.g.
    /// `jobdbctl show-params last_used_job_id`).
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Param {
    name: &'static str,
    value: String,
    source: String,
}

pub fn run(args: ShowParamsArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let mut params = config_params(ctx);
    let mut exit = Exit::Ok;
    let mut error = None;
    if let Err(e) = database_params(ctx, &mut params) {
        exit = exit_code_of(&e);
        error = Some(format!("{e:#}"));
    }
    if !args.names.is_empty() {
        return print_values(ctx, &args.names, &params, error);
    }
    if ctx.out.json {
        ctx.out
            .json(&serde_json::json!({ "params": params, "error": error }))?;
    } else {
        let mut t = table(&["parameter", "value", "source"]);
        for p in &params {
            t.add_row(vec![p.name, &p.value, &p.source]);
        }
        ctx.out.line(t.to_string())?;
    }
    if let Some(error) = error {
        eprintln!("jobdbctl: error: {error}");
    }
    Ok(exit)
}

fn param<T: ToString>(name: &'static str, s: &Setting<T>) -> Param {
    Param {
        name,
        value: s.value.to_string(),
        source: s.source.to_string(),
    }
}

fn derived(name: &'static str, value: impl ToString) -> Param {
    Param {
        name,
        value: value.to_string(),
        source: "database".to_string(),
    }
}

fn config_params(ctx: &Ctx) -> Vec<Param> {
    let c = &ctx.config;
    let path = |s: &Setting<std::path::PathBuf>| Setting {
        value: s.value.display().to_string(),
        source: s.source.clone(),
    };
    let duration = |s: &Setting<std::time::Duration>| Setting {
        value: humantime::format_duration(s.value).to_string(),
        source: s.source.clone(),
    };
    let unset = |name| Param {
        name,
        value: "(unset)".to_string(),
        source: Source::Default.to_string(),
    };
    let mut out = vec![
        param("configdir", &path(&c.configdir)),
        Param {
            name: "target",
            value: ctx.target.describe(),
            source: "resolved".to_string(),
        },
        match &c.database_url {
            // The resolved target above shows the URL without its password; the raw value
            // may hold one, so it is never printed.
            Some(s) => Param {
                name: "database_url",
                value: "******** (see target)".to_string(),
                source: s.source.to_string(),
            },
            None => unset("database_url"),
        },
        param("data_dir", &path(&c.data_dir)),
        param("backup_dir", &path(&c.backup_dir)),
        param("port", &c.port),
        param("listen_addresses", &c.listen_addresses),
        param("stale_after", &duration(&c.stale_after)),
        param("max_migration_wait", &duration(&c.max_migration_wait)),
        param("connect_timeout", &duration(&c.connect_timeout)),
        c.job_logs_dir.as_ref().map_or_else(
            || unset("job_logs_dir"),
            |s| param("job_logs_dir", &path(s)),
        ),
        param("job_logs_pattern", &c.job_logs_pattern),
    ];
    for (name, s) in [
        ("profile", &c.profile),
        ("schema", &c.schema),
        ("server_user", &c.server_user),
    ] {
        out.push(s.as_ref().map_or_else(|| unset(name), |s| param(name, s)));
    }
    if let Some(cluster) = ctx.target.cluster() {
        out.push(derived_local(
            "server_user (effective)",
            cluster
                .server_user
                .clone()
                .unwrap_or_else(|| "(current user)".into()),
        ));
        out.push(derived_local("server_data_dir", cluster.pgdata.display()));
        out.push(derived_local(
            "server_bindir",
            cluster
                .bindir()
                .map_or_else(|e| format!("not found: {e}"), |d| d.display().to_string()),
        ));
    }
    out
}

fn derived_local(name: &'static str, value: impl ToString) -> Param {
    Param {
        name,
        value: value.to_string(),
        source: "resolved".to_string(),
    }
}

/// Every name show-params can print, for `show-params NAME`.
const NAMES: &[&str] = &[
    "configdir",
    "target",
    "database_url",
    "data_dir",
    "backup_dir",
    "port",
    "listen_addresses",
    "stale_after",
    "max_migration_wait",
    "connect_timeout",
    "job_logs_dir",
    "job_logs_pattern",
    "profile",
    "schema",
    "server_user",
    "server_user (effective)",
    "server_data_dir",
    "server_bindir",
    "server_version",
    "profile (detected)",
    "schema (detected)",
    "schema_version",
    "job_id_sequence",
    "last_used_job_id",
    "job_id_high_water",
    "reused_job_ids",
];

fn print_values(
    ctx: &Ctx,
    names: &[String],
    params: &[Param],
    error: Option<String>,
) -> anyhow::Result<Exit> {
    if let Some(unknown) = names.iter().find(|n| !NAMES.contains(&n.as_str())) {
        return Err(failure(
            Exit::Usage,
            format!("unknown parameter {unknown:?}; known: {}", NAMES.join(", ")),
        ));
    }
    let mut chosen = Vec::new();
    for name in names {
        let found: Vec<&Param> = params.iter().filter(|p| p.name == name).collect();
        if found.is_empty() {
            let why = error
                .clone()
                .unwrap_or_else(|| "not known here".to_string());
            return Err(failure(
                if error.is_some() {
                    Exit::Connect
                } else {
                    Exit::Runtime
                },
                format!("{name}: {why}"),
            ));
        }
        chosen.extend(found);
    }
    if ctx.out.json {
        ctx.out.json(&serde_json::json!({ "params": chosen }))?;
    } else {
        for p in chosen {
            ctx.out.line(&p.value)?;
        }
    }
    Ok(Exit::Ok)
}

fn mark_param(value: String, ctx: &Ctx) -> Param {
    Param {
        name: "job_id_high_water",
        value,
        source: Store::of(ctx).describe(),
    }
}

/// What the database says, appended to `out` as it is learned, so a failure half-way still
/// shows what came before. The embedded cluster's high-water mark is a file, shown even
/// when its server is down.
fn database_params(ctx: &Ctx, out: &mut Vec<Param>) -> anyhow::Result<()> {
    let mut db = match ctx.connect() {
        Ok(db) => db,
        Err(e) => {
            if let Store::File(_) = Store::of(ctx) {
                marks_without_schema(ctx, None, out)?;
            }
            return Err(e);
        }
    };
    out.push(derived("server_version", db.server_version()?));
    let Some(profile) = ctx.detect_profile(&mut db)? else {
        out.push(derived(
            "profile (detected)",
            "none (no job schema; `jobdbctl init` creates one)",
        ));
        return marks_without_schema(ctx, Some(&mut db), out);
    };
    let sequence = counter::sequence_name(&mut db, &profile)?;
    out.push(derived("profile (detected)", profile.name()));
    out.push(derived("schema (detected)", &profile.schema));
    out.push(derived(
        "schema_version",
        status::schema_version(&mut db, &profile)?.map_or("none".to_string(), |v| v.to_string()),
    ));
    out.push(derived("job_id_sequence", &sequence));
    let last = counter::last_used(&mut db, &sequence)?;
    out.push(derived("last_used_job_id", last));
    let mark = highwater::note(ctx, &mut db, &profile.schema, last, true);
    out.push(mark_param(
        mark.map_or("none recorded".to_string(), |m| m.to_string()),
        ctx,
    ));
    if let Some(reuse) = Reuse::between(last, mark) {
        out.push(derived("reused_job_ids", reuse));
        ctx.out.warn(format!(
            "the next job gets {}, but {reuse} were handed out before: the engine would hand them out again and append to their old log files; \
             run `jobdbctl set-job-counter {}`, or remove their logs with `jobdbctl job-logs --dir LOG_DIR --above {last} --delete`",
            last.saturating_add(1),
            reuse.last
        ));
    }
    Ok(())
}

/// Without a job schema there is no counter: the marks recorded for this target (the
/// `--schema` one, else all), and the IDs a new schema starting at 1 would reuse.
fn marks_without_schema(
    ctx: &Ctx,
    db: Option<&mut Db>,
    out: &mut Vec<Param>,
) -> anyhow::Result<()> {
    let marks = highwater::read_all(ctx, db)?;
    let wanted: Vec<&(String, i64)> = marks
        .iter()
        .filter(|(s, _)| ctx.schema_override().map_or(true, |o| o == s))
        .collect();
    if wanted.is_empty() {
        out.push(mark_param("none recorded".to_string(), ctx));
    }
    for (schema, mark) in wanted {
        out.push(mark_param(format!("{mark} (schema {schema:?})"), ctx));
        if let Some(reuse) = Reuse::between(0, Some(*mark)) {
            out.push(derived(
                "reused_job_ids",
                format!("{reuse} if a new schema {schema:?} starts at 1"),
            ));
        }
    }
    Ok(())
}
