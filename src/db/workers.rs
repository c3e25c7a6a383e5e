//! The live-worker registry. A native worker is live while its last heartbeat is within
//! `stale_after`; the check always runs in SQL against the server's clock. On Graphile Worker
//! the registry is Worker Pro's table, whose rows are live by definition; without Pro there is
//! none.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::db::profile::LiveSet;
use crate::db::{qualified, quote_ident, Profile, Sql};
use crate::output::{printable, MAX_SHOWN_ID};

#[derive(Debug, Clone, Serialize)]
pub struct Worker {
    pub worker_id: String,
    pub hostname: Option<String>,
    pub pid: Option<i32>,
    pub version: Option<String>,
    pub schema_version: Option<i32>,
    pub started_at: Option<DateTime<Utc>>,
    pub last_heartbeat_at: Option<DateTime<Utc>>,
    pub live: bool,
}

/// `stale_after` as a PostgreSQL interval literal bound as text (`'300 seconds'`).
pub fn interval_text(d: Duration) -> String {
    format!("{} milliseconds", d.as_millis())
}

pub fn list(
    db: &mut impl Sql,
    profile: &Profile,
    stale_after: Duration,
) -> anyhow::Result<Vec<Worker>> {
    if let Some((table, column)) = profile.pro_table() {
        return pro_workers(db, &table, column);
    }
    if profile.live_set != LiveSet::Heartbeats {
        return Ok(Vec::new());
    }
    let rows = db.query(
        "list_workers",
        &format!(
            "SELECT worker_id, hostname, pid, version, schema_version, started_at, last_heartbeat_at,
                    last_heartbeat_at > now() - $1::text::interval
               FROM {} ORDER BY worker_id",
            qualified(&profile.schema, "workers")
        ),
        &[&interval_text(stale_after)],
    )?;
    Ok(rows
        .iter()
        .map(|r| Worker {
            worker_id: r.get(0),
            hostname: r.get(1),
            pid: r.get(2),
            version: r.get(3),
            schema_version: r.get(4),
            started_at: r.get(5),
            last_heartbeat_at: r.get(6),
            live: r.get(7),
        })
        .collect())
}

/// Worker Pro's published runbook relies only on the id column; the rest of Pro's tables is
/// not a documented interface, so nothing else is read.
fn pro_workers(db: &mut impl Sql, table: &str, column: &str) -> anyhow::Result<Vec<Worker>> {
    let rows = db.query(
        "list_pro_workers",
        &format!(
            "SELECT {column}::text FROM {table} WHERE {column} IS NOT NULL ORDER BY 1",
            column = quote_ident(column)
        ),
        &[],
    )?;
    Ok(rows
        .iter()
        .map(|r| Worker {
            worker_id: r.get(0),
            hostname: None,
            pid: None,
            version: None,
            schema_version: None,
            started_at: None,
            last_heartbeat_at: None,
            live: true,
        })
        .collect())
}

/// The live workers themselves, for messages that say until when each counts as live.
pub fn live(
    db: &mut impl Sql,
    profile: &Profile,
    stale_after: Duration,
) -> anyhow::Result<Vec<Worker>> {
    Ok(list(db, profile, stale_after)?
        .into_iter()
        .filter(|w| w.live)
        .collect())
}

impl Worker {
    /// When this worker stops counting as live unless it heartbeats again; `None` for a
    /// registry without heartbeats (Worker Pro's, whose rows are live while present).
    pub fn live_until(&self, stale_after: Duration) -> Option<DateTime<Utc>> {
        let stale_after = chrono::Duration::from_std(stale_after).ok()?;
        self.last_heartbeat_at
            .and_then(|t| t.checked_add_signed(stale_after))
    }
}

/// The one refusal for an operation live workers would be hurt by (destroy, restore,
/// VACUUM FULL): `refusing to ACTION: N live workers still use this database: who, until
/// when; ADVICE`.
pub fn refusal(
    action: &str,
    live: &[Worker],
    stale_after: Duration,
    advice: &str,
) -> anyhow::Error {
    crate::error::failure(
        crate::error::Exit::Refused,
        format!(
            "refusing to {action}: {} {} this database: {}; {advice}",
            crate::output::plural(live.len() as i64, "live worker", "live workers"),
            if live.len() == 1 {
                "still uses"
            } else {
                "still use"
            },
            describe_live(live, stale_after)
        ),
    )
}

/// Names live workers and until when each counts as live, e.g. "worker w1 (last heartbeat
/// 2026-11-23 20:01:02 UTC) counts as live until 20:06:02 UTC"; the first five, then a count.
pub fn describe_live(live: &[Worker], stale_after: Duration) -> String {
    const SHOWN: usize = 5;
    let mut parts: Vec<String> = live
        .iter()
        .take(SHOWN)
        .map(|w| {
            let id = printable(&w.worker_id, MAX_SHOWN_ID);
            match (w.last_heartbeat_at, w.live_until(stale_after)) {
                (Some(beat), Some(until)) => {
                    let until_text = if until.date_naive() == beat.date_naive() {
                        until.format("%H:%M:%S UTC").to_string()
                    } else {
                        until.format("%Y-%m-%d %H:%M:%S UTC").to_string()
                    };
                    format!(
                        "worker {id} (last heartbeat {}) counts as live until {until_text}",
                        beat.format("%Y-%m-%d %H:%M:%S UTC")
                    )
                }
                _ => format!("worker {id} is in the live set (Worker Pro keeps it until it stops checking in)"),
            }
        })
        .collect();
    if live.len() > SHOWN {
        parts.push(format!("and {} more", live.len() - SHOWN));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(id: &str) -> Worker {
        Worker {
            worker_id: id.to_string(),
            hostname: None,
            pid: None,
            version: None,
            schema_version: None,
            started_at: None,
            last_heartbeat_at: Some(Utc::now()),
            live: true,
        }
    }

    #[test]
    fn the_refusal_agrees_with_its_number() {
        let one = refusal(
            "restore",
            &[worker("w1")],
            Duration::from_secs(300),
            "stop it",
        );
        assert!(
            one.to_string()
                .contains("1 live worker still uses this database"),
            "{one}"
        );
        let two = refusal(
            "restore",
            &[worker("w1"), worker("w2")],
            Duration::from_secs(300),
            "stop them",
        );
        assert!(
            two.to_string()
                .contains("2 live workers still use this database"),
            "{two}"
        );
    }
}
