//! The effective parameters `show-params` reports: the configuration with where each value
//! came from, then what the database says (server version, profile, schema version, job
//! counter, job-ID high-water mark). Reads only, except that the high-water mark is raised
//! when the counter passed it (as every command that learns a higher ID does). Works without
//! a job schema and, for the embedded cluster's mark file, without a server.

use serde::Serialize;
use serde_json::Value;

use crate::config::{Setting, Source};
use crate::context::Ctx;
use crate::db::{counter, status, Db};
use crate::job_ids::high_water::{self, Reuse, Store};

#[derive(Debug, Serialize)]
pub struct Param {
    pub name: &'static str,
    /// A JSON number for counts, IDs, versions and the port; null when unset or unknown.
    pub value: Value,
    pub source: String,
    /// The schema a high-water mark belongs to, when no job schema says which.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// The value for people (and for `show-params NAME`).
    #[serde(skip)]
    pub shown: String,
}

impl Param {
    fn text(name: &'static str, value: impl ToString, source: impl ToString) -> Param {
        let value = value.to_string();
        Param {
            name,
            shown: value.clone(),
            value: Value::String(value),
            source: source.to_string(),
            schema: None,
        }
    }

    fn number(name: &'static str, value: i64, source: impl ToString) -> Param {
        Param {
            name,
            shown: value.to_string(),
            value: Value::from(value),
            source: source.to_string(),
            schema: None,
        }
    }

    /// No value: null in JSON, `shown` for people.
    fn none(name: &'static str, shown: &str, source: impl ToString) -> Param {
        Param {
            name,
            shown: shown.to_string(),
            value: Value::Null,
            source: source.to_string(),
            schema: None,
        }
    }

    /// What a script gets from `show-params NAME`: the bare value.
    pub fn bare(&self) -> String {
        match &self.value {
            Value::String(s) => s.clone(),
            Value::Null => self.shown.clone(),
            v => v.to_string(),
        }
    }
}

/// Every name show-params can print, for `show-params NAME`.
pub const NAMES: &[&str] = &[
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
    "compression",
    "encrypt_recipients",
    "encrypt_recipients_file",
    "passphrase_file",
    "identity_file",
    "wal_archive",
    "s3_endpoint",
    "s3_region",
    "s3_addressing",
    "s3_ca_file",
    "s3_retry_for",
    "s3_profile",
    "s3_credentials_file",
    "s3_access_key_id",
    "s3_secret_access_key",
    "s3_session_token",
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

/// The configuration, then what the database says. A failure to reach the database is
/// returned beside what was learned before it, so the configuration is always shown.
pub fn gather(ctx: &Ctx) -> (Vec<Param>, Option<anyhow::Error>) {
    let mut params = config_params(ctx);
    let error = database_params(ctx, &mut params).err();
    (params, error)
}

fn setting<T: std::fmt::Display>(name: &'static str, s: &Setting<T>) -> Param {
    Param::text(name, &s.value, &s.source)
}

fn config_params(ctx: &Ctx) -> Vec<Param> {
    let c = &ctx.config;
    let path =
        |name, s: &Setting<std::path::PathBuf>| Param::text(name, s.value.display(), &s.source);
    let duration = |name, s: &Setting<std::time::Duration>| {
        Param::text(name, humantime::format_duration(s.value), &s.source)
    };
    let unset = |name| Param::none(name, "(unset)", Source::Default);
    let mut out = vec![
        path("configdir", &c.configdir),
        Param::text("target", ctx.target.describe(), "resolved"),
        match &c.database_url {
            // The resolved target above shows the URL without its password; the raw value
            // may hold one, so it is never printed.
            Some(s) => Param::text("database_url", "******** (see target)", &s.source),
            None => unset("database_url"),
        },
        path("data_dir", &c.data_dir),
        path("backup_dir", &c.backup_dir),
        Param::number("port", i64::from(c.port.value), &c.port.source),
        setting("listen_addresses", &c.listen_addresses),
        duration("stale_after", &c.stale_after),
        duration("max_migration_wait", &c.max_migration_wait),
        duration("connect_timeout", &c.connect_timeout),
        c.job_logs_dir
            .as_ref()
            .map_or_else(|| unset("job_logs_dir"), |s| path("job_logs_dir", s)),
        setting("job_logs_pattern", &c.job_logs_pattern),
        setting("compression", &c.compression),
        // Public keys: shown as given. The files hold secrets: only their paths are shown.
        c.encrypt_recipients.as_ref().map_or_else(
            || unset("encrypt_recipients"),
            |s| Param::text("encrypt_recipients", s.value.join(", "), &s.source),
        ),
    ];
    for (name, s) in [
        ("encrypt_recipients_file", &c.encrypt_recipients_file),
        ("passphrase_file", &c.passphrase_file),
        ("identity_file", &c.identity_file),
        ("wal_archive", &c.wal_archive),
    ] {
        out.push(s.as_ref().map_or_else(|| unset(name), |s| path(name, s)));
    }
    s3_params(&c.s3, &mut out);
    for (name, s) in [
        ("profile", &c.profile),
        ("schema", &c.schema),
        ("server_user", &c.server_user),
    ] {
        out.push(s.as_ref().map_or_else(|| unset(name), |s| setting(name, s)));
    }
    if let Some(cluster) = ctx.target.cluster() {
        out.push(Param::text(
            "server_user (effective)",
            cluster
                .server_user
                .clone()
                .unwrap_or_else(|| "(current user)".into()),
            "resolved",
        ));
        out.push(Param::text(
            "server_data_dir",
            cluster.pgdata.display(),
            "resolved",
        ));
        out.push(Param::text(
            "server_bindir",
            cluster
                .bindir()
                .map_or_else(|e| format!("not found: {e}"), |d| d.display().to_string()),
            "resolved",
        ));
    }
    out
}

/// Object-storage settings; the credentials only as where they come from and a masked key ID
/// (secrets print as `********`).
fn s3_params(s3: &crate::config::s3::S3Config, out: &mut Vec<Param>) {
    let unset = |name| Param::none(name, "(unset)", Source::Default);
    out.push(match &s3.endpoint {
        Some(e) => setting("s3_endpoint", e),
        None => Param::text("s3_endpoint", s3.endpoint_url(), "default (AWS, by region)"),
    });
    out.push(setting("s3_region", &s3.region));
    out.push(setting("s3_addressing", &s3.addressing));
    out.push(s3.ca_file.as_ref().map_or_else(
        || unset("s3_ca_file"),
        |s| Param::text("s3_ca_file", s.value.display(), &s.source),
    ));
    out.push(Param::text(
        "s3_retry_for",
        humantime::format_duration(s3.retry_for.value),
        &s3.retry_for.source,
    ));
    out.push(setting("s3_profile", &s3.profile));
    out.push(Param::text(
        "s3_credentials_file",
        s3.credentials_file.value.display(),
        &s3.credentials_file.source,
    ));
    match s3.credentials() {
        Ok(Some(c)) => {
            out.push(Param::text(
                "s3_access_key_id",
                c.value.masked_key_id(),
                &c.source,
            ));
            let from_env = |name| match &c.source {
                Source::Env(_) => Source::Env(name),
                other => other.clone(),
            };
            out.push(Param::text(
                "s3_secret_access_key",
                "********",
                from_env("AWS_SECRET_ACCESS_KEY"),
            ));
            out.push(match &c.value.session_token {
                Some(_) => Param::text(
                    "s3_session_token",
                    "********",
                    from_env("AWS_SESSION_TOKEN"),
                ),
                None => unset("s3_session_token"),
            });
        }
        Ok(None) => {
            for name in [
                "s3_access_key_id",
                "s3_secret_access_key",
                "s3_session_token",
            ] {
                out.push(unset(name));
            }
        }
        Err(e) => {
            let why = format!("not usable: {e:#}");
            for name in [
                "s3_access_key_id",
                "s3_secret_access_key",
                "s3_session_token",
            ] {
                out.push(Param::none(name, &why, "error"));
            }
        }
    }
}

const DATABASE: &str = "database";

fn mark_param(ctx: &Ctx, mark: Option<i64>) -> Param {
    let source = Store::of(ctx).describe();
    match mark {
        Some(m) => Param::number("job_id_high_water", m, source),
        None => Param::none("job_id_high_water", "none recorded", source),
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
    out.push(Param::text(
        "server_version",
        db.server_version()?,
        DATABASE,
    ));
    let Some(profile) = ctx.detect_profile(&mut db)? else {
        out.push(Param::text(
            "profile (detected)",
            "none (no job schema; `jobdbctl init` creates one)",
            DATABASE,
        ));
        return marks_without_schema(ctx, Some(&mut db), out);
    };
    let sequence = counter::sequence_name(&mut db, &profile)?;
    out.push(Param::text("profile (detected)", profile.name(), DATABASE));
    out.push(Param::text("schema (detected)", &profile.schema, DATABASE));
    out.push(match status::schema_version(&mut db, &profile)? {
        Some(v) => Param::number("schema_version", i64::from(v), DATABASE),
        None => Param::none("schema_version", "none", DATABASE),
    });
    out.push(Param::text("job_id_sequence", &sequence, DATABASE));
    let last = counter::last_used(&mut db, &sequence)?;
    out.push(Param::number("last_used_job_id", last, DATABASE));
    let mark = high_water::note(ctx, &mut db, &profile.schema, last, true);
    out.push(mark_param(ctx, mark));
    if let Some(reuse) = Reuse::between(last, mark) {
        out.push(Param::text("reused_job_ids", reuse, DATABASE));
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
    let marks = high_water::read_all(ctx, db)?;
    let wanted: Vec<&(String, i64)> = marks
        .iter()
        .filter(|(s, _)| ctx.schema_override().is_none_or(|o| o == s))
        .collect();
    if wanted.is_empty() {
        out.push(mark_param(ctx, None));
    }
    for (schema, mark) in wanted {
        let mut p = mark_param(ctx, Some(*mark));
        p.shown = format!("{mark} (schema {schema:?})");
        p.schema = Some(schema.clone());
        out.push(p);
        if let Some(reuse) = Reuse::between(0, Some(*mark)) {
            let mut p = Param::text(
                "reused_job_ids",
                format!("{reuse} if a new schema {schema:?} starts at 1"),
                DATABASE,
            );
            p.schema = Some(schema.clone());
            out.push(p);
        }
    }
    Ok(())
}
