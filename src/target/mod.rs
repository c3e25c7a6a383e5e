//! Which server a run talks to (docs/configuration.md): `--database-url` / `JOBDBCTL_DATABASE_URL` / config,
//! else the libpq environment when it names a server, else the embedded cluster.
//! Passwords are filled from `PGPASSWORD` or the pgpass file, never from argv, and never shown.

pub mod tls;

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use postgres::config::{Host, TargetSessionAttrs};

use crate::cluster::Cluster;
use crate::config::{Config, Source};
use crate::error::{failure, Exit};
use tls::{TlsMode, TlsParams};

// One per run: boxing the cluster would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Target {
    Embedded(Cluster),
    Remote(Box<Remote>),
}

#[derive(Debug, Clone)]
pub struct Remote {
    pub pg: tokio_postgres::Config,
    pub tls: TlsParams,
    /// Where the settings came from, for messages (`--database-url`, `PGHOST`, …).
    pub origin: String,
}

/// libpq variables that, when set, point jobdbctl at a server other than the embedded one.
const SERVER_ENV: [&str; 3] = ["PGHOST", "PGHOSTADDR", "PGPORT"];

impl Target {
    pub fn resolve(config: &Config) -> anyhow::Result<Target> {
        if let Some(url) = &config.database_url {
            let origin = match &url.source {
                Source::Flag => "--database-url".to_string(),
                other => other.to_string(),
            };
            if url.source == Source::Flag && url_has_password(&url.value) {
                eprintln!(
                    "warning: a password in --database-url is visible to other users in `ps`; use PGPASSWORD or a pgpass file"
                );
            }
            let (rest, mode, root_cert) = tls::extract(&url.value)?;
            let pg = tokio_postgres::Config::from_str(&rest).map_err(|e| {
                failure(
                    Exit::Usage,
                    format!("invalid database URL from {origin}: {e}"),
                )
            })?;
            return Ok(Target::Remote(Box::new(Remote::with_env_defaults(
                pg,
                origin,
                config.connect_timeout.value,
                mode,
                root_cert,
            )?)));
        }
        if SERVER_ENV.iter().any(|v| env(v).is_some()) {
            return Ok(Target::Remote(Box::new(Remote::with_env_defaults(
                tokio_postgres::Config::new(),
                "libpq environment (PGHOST/PGPORT)".to_string(),
                config.connect_timeout.value,
                None,
                None,
            )?)));
        }
        Ok(Target::Embedded(Cluster::from_config(config)))
    }

    pub fn pg_config(&self, connect_timeout: Duration) -> tokio_postgres::Config {
        match self {
            Target::Embedded(cluster) => cluster.pg_config(connect_timeout),
            Target::Remote(remote) => remote.pg.clone(),
        }
    }

    /// A description safe to print: never contains a password.
    pub fn describe(&self) -> String {
        match self {
            Target::Embedded(cluster) => cluster.describe(),
            Target::Remote(remote) => {
                format!("{} (from {})", redacted_url(&remote.pg), remote.origin)
            }
        }
    }

    pub fn cluster(&self) -> Option<&Cluster> {
        match self {
            Target::Embedded(c) => Some(c),
            Target::Remote(_) => None,
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn url_has_password(url: &str) -> bool {
    if url.contains("password=") {
        return true;
    }
    // postgresql://user:secret@host/…
    let rest = url
        .strip_prefix("postgresql://")
        .or_else(|| url.strip_prefix("postgres://"));
    match rest.and_then(|r| r.split(['/', '?']).next()) {
        Some(authority) => authority
            .rsplit_once('@')
            .is_some_and(|(userinfo, _)| userinfo.contains(':')),
        None => false,
    }
}

impl Remote {
    /// Fills what the URL left out from the libpq environment and pgpass, as libpq would.
    fn with_env_defaults(
        mut pg: tokio_postgres::Config,
        origin: String,
        timeout: Duration,
        mode: Option<TlsMode>,
        root_cert: Option<PathBuf>,
    ) -> anyhow::Result<Remote> {
        if pg.get_hosts().is_empty() {
            match env("PGHOST") {
                Some(hosts) => {
                    for h in hosts.split(',') {
                        pg.host(h);
                    }
                }
                None => {
                    pg.host_path("/var/run/postgresql");
                }
            }
        }
        if pg.get_ports().is_empty() {
            if let Some(port) = env("PGPORT").and_then(|p| p.parse::<u16>().ok()) {
                pg.port(port);
            }
        }
        if pg.get_user().is_none() {
            let user = env("PGUSER")
                .or_else(|| env("USER"))
                .unwrap_or_else(|| "postgres".to_string());
            pg.user(&user);
        }
        if pg.get_dbname().is_none() {
            let db = env("PGDATABASE")
                .unwrap_or_else(|| pg.get_user().unwrap_or("postgres").to_string());
            pg.dbname(&db);
        }
        if pg.get_password().is_none() {
            if let Some(pw) = env("PGPASSWORD").or_else(|| pgpass_lookup(&pg)) {
                pg.password(pw);
            }
        }
        let mode = match (mode, env("PGSSLMODE")) {
            (Some(mode), _) => mode,
            (None, Some(text)) => TlsMode::parse(&text)?,
            (None, None) => TlsMode::Prefer,
        };
        pg.ssl_mode(mode.wire());
        let tls = TlsParams {
            mode,
            root_cert: root_cert.or_else(|| env("PGSSLROOTCERT").map(PathBuf::from)),
        };
        if pg.get_target_session_attrs() == TargetSessionAttrs::Any
            && env("PGTARGETSESSIONATTRS").as_deref() == Some("read-write")
        {
            pg.target_session_attrs(TargetSessionAttrs::ReadWrite);
        }
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(timeout);
        }
        if pg.get_application_name().is_none() {
            pg.application_name("jobdbctl");
        }
        Ok(Remote { pg, tls, origin })
    }
}

fn host_string(host: &Host) -> String {
    match host {
        Host::Tcp(h) => h.clone(),
        Host::Unix(p) => p.display().to_string(),
    }
}

/// `postgresql://user@host:port,host2:port/db`: what we connect to, with no password.
pub fn redacted_url(pg: &tokio_postgres::Config) -> String {
    let ports = pg.get_ports();
    let hosts: Vec<String> = pg
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            format!("{}:{port}", host_string(h))
        })
        .collect();
    format!(
        "postgresql://{}@{}/{}",
        pg.get_user().unwrap_or(""),
        hosts.join(","),
        pg.get_dbname().unwrap_or("")
    )
}

/// The password for the first host from `PGPASSFILE` or `~/.pgpass`, as libpq reads it:
/// `host:port:database:user:password`, `*` matches anything, `\` escapes `:` and `\`.
fn pgpass_lookup(pg: &tokio_postgres::Config) -> Option<String> {
    let path = env("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| directories::BaseDirs::new().map(|d| d.home_dir().join(".pgpass")))?;
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).ok()?.permissions().mode();
        if mode & 0o077 != 0 {
            eprintln!(
                "warning: password file {} has group or world access; ignoring it (chmod 0600 it)",
                path.display()
            );
            return None;
        }
    }
    let text = std::fs::read_to_string(&path).ok()?;
    let host = pg.get_hosts().first().map(|h| match h {
        Host::Unix(_) => "localhost".to_string(),
        Host::Tcp(h) => h.clone(),
    })?;
    let port = pg.get_ports().first().copied().unwrap_or(5432).to_string();
    let wanted = [
        host.as_str(),
        port.as_str(),
        pg.get_dbname().unwrap_or(""),
        pg.get_user().unwrap_or(""),
    ];
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(split_pgpass_line)
        .find(|fields| {
            fields.len() == 5
                && fields[..4]
                    .iter()
                    .zip(wanted)
                    .all(|(f, w)| f == "*" || f == w)
        })
        .map(|mut fields| fields.remove(4))
}

fn split_pgpass_line(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let (Some(next), Some(f)) = (chars.next(), fields.last_mut()) {
                    f.push(next);
                }
            }
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => {
                if let Some(f) = fields.last_mut() {
                    f.push(c)
                }
            }
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgpass_fields_unescape() {
        assert_eq!(
            split_pgpass_line(r"db\:host:5432:*:bob:p\:w\\d"),
            vec!["db:host", "5432", "*", "bob", r"p:w\d"]
        );
    }

    #[test]
    fn password_in_url_is_detected() {
        assert!(url_has_password("postgresql://u:secret@h/db"));
        assert!(url_has_password("host=h password=x"));
        assert!(!url_has_password("postgresql://u@h/db"));
        assert!(!url_has_password("postgresql://h:5432/db"));
    }

    #[test]
    fn redacted_url_has_no_password() {
        let pg = tokio_postgres::Config::from_str("postgresql://u:secret@h1:1,h2:2/db").unwrap();
        let shown = redacted_url(&pg);
        assert_eq!(shown, "postgresql://u@h1:1,h2:2/db");
    }
}
