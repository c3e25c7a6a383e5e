use serde_json::json;

use crate::cli::conninfo::ConninfoArgs;
use crate::cluster::{Cluster, DATABASE, SUPERUSER};
use crate::config::running_as_root;
use crate::context::Ctx;
use crate::error::Exit;
use crate::output::kv_table;
use crate::target::{redacted_url, Target};

pub fn run(_args: ConninfoArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let lines = match &ctx.target {
        Target::Embedded(cluster) => embedded(cluster),
        Target::Remote(remote) => vec![("url", redacted_url(&remote.pg))],
    };
    if ctx.out.json {
        let map: serde_json::Map<String, serde_json::Value> = lines
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        ctx.out.json(&map)?;
        return Ok(Exit::Ok);
    }
    let mut t = kv_table();
    for (k, v) in &lines {
        t.add_row(vec![k.to_string(), v.clone()]);
    }
    ctx.out.line(t.to_string())?;
    Ok(Exit::Ok)
}

/// A value for a libpq keyword/value string, quoted only when it must be.
fn conn_value(s: &str) -> String {
    if !s.is_empty() && !s.contains([' ', '\'', '\\']) {
        return s.to_string();
    }
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Quoted for a POSIX shell.
fn shell(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn embedded(cluster: &Cluster) -> Vec<(&'static str, String)> {
    let socket = cluster.socket_dir().display().to_string();
    let keywords = format!(
        "host={} port={} dbname={DATABASE} user={SUPERUSER}",
        conn_value(&socket),
        cluster.port
    );
    let psql = match (&cluster.server_user, running_as_root()) {
        (Some(user), true) => format!("runuser -u {user} -- psql {}", shell(&keywords)),
        _ => format!("psql {}", shell(&keywords)),
    };
    let mut lines = vec![
        (
            "socket_url",
            format!(
                "postgresql:///{DATABASE}?host={}&port={}&user={SUPERUSER}",
                percent(&socket),
                cluster.port
            ),
        ),
        ("socket_conninfo", keywords),
        ("psql", psql),
    ];
    let addresses: Vec<&str> = cluster
        .listen_addresses
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .collect();
    if let Some(first) = addresses.first() {
        let host = match *first {
            "*" | "0.0.0.0" => "127.0.0.1",
            "::" => "[::1]",
            other if other.contains(':') => return with_tcp(lines, &format!("[{other}]"), cluster),
            other => other,
        };
        return with_tcp(lines, host, cluster);
    }
    lines.push((
        "tcp",
        "off (listen_addresses in jobdbctl.toml turns it on; the socket is enough on this host)"
            .to_string(),
    ));
    lines
}

fn with_tcp(
    mut lines: Vec<(&'static str, String)>,
    host: &str,
    cluster: &Cluster,
) -> Vec<(&'static str, String)> {
    lines.push((
        "tcp_url",
        format!(
            "postgresql://{SUPERUSER}@{host}:{}/{DATABASE}",
            cluster.port
        ),
    ));
    lines.push((
        "tcp_auth",
        "scram-sha-256: set a password through the socket first (ALTER ROLE … PASSWORD), or create a role for the engine".to_string(),
    ));
    lines
}

/// A path for a URL's query: everything but unreserved characters and `/` percent-encoded.
fn percent(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
