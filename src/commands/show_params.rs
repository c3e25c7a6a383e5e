use serde::Serialize;

use crate::config::{Setting, Source};
use crate::context::Ctx;
use crate::db::{counter, status};
use crate::error::{exit_code_of, Exit};
use crate::output::table;

/// Show the last used job ID, schema version, server and data paths, and the effective
/// configuration with where each value came from. Passwords are shown as ********.
#[derive(Debug, clap::Args)]
pub struct ShowParamsArgs {}

#[derive(Debug, Serialize)]
struct Param {
    name: &'static str,
    value: String,
    source: String,
}

pub fn run(_args: ShowParamsArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let mut params = config_params(ctx);
    let mut exit = Exit::Ok;
    let mut error = None;
    match database_params(ctx) {
        Ok(mut db_params) => params.append(&mut db_params),
        Err(e) => {
            exit = exit_code_of(&e);
            error = Some(format!("{e:#}"));
        }
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

fn database_params(ctx: &Ctx) -> anyhow::Result<Vec<Param>> {
    let mut db = ctx.connect()?;
    let profile = ctx.profile(&mut db)?;
    let sequence = counter::sequence_name(&mut db, &profile)?;
    Ok(vec![
        derived("server_version", db.server_version()?),
        derived("profile (detected)", profile.name()),
        derived("schema (detected)", &profile.schema),
        derived(
            "schema_version",
            status::schema_version(&mut db, &profile)?
                .map_or("none".to_string(), |v| v.to_string()),
        ),
        derived("job_id_sequence", &sequence),
        derived("last_used_job_id", counter::last_used(&mut db, &sequence)?),
    ])
}
