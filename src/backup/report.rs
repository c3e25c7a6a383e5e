//! `backups` for people and for `--json`: one row per archive in the backup directory.

use serde_json::json;

use crate::backup::catalog::{Item, State};
use crate::output::{human_bytes, printable, table};
use crate::shared::users::user_name;

/// How much of a value read from an archive header or the file system a row shows.
const SHOWN: usize = 120;

/// One archive as `backups --json` lists it.
pub fn json(i: &Item) -> serde_json::Value {
    let h = i.header.as_deref();
    json!({
        "file": i.path().file_name().map(|n| n.to_string_lossy().into_owned()),
        "path": i.path().display().to_string(),
        "taken_at": h.map(|h| h.created_at),
        "modified_at": i.modified,
        "mode": h.map(|h| h.mode.name()),
        "database": h.map(|h| &*h.database),
        "server": h.map(|h| &*h.server),
        "profile": h.and_then(|h| h.profile.as_deref()),
        "schema": h.and_then(|h| h.schema.as_deref()),
        "schema_version": h.and_then(|h| h.schema_version),
        "jobs": i.jobs(),
        "last_used_job_id": h.and_then(|h| h.last_used_job_id),
        "bytes": i.bytes,
        "owner": user_name(i.owner),
        "owner_uid": i.owner,
        "state": i.state.name(),
        "encrypted": i.encrypted,
        "problem": i.problem,
        "retention": h.and_then(|h| h.retention),
        "named_by_jobdbctl": i.own_name,
        "future_dated": i.future_dated(),
        "prunable": i.prunable(),
    })
}

/// Why retention may or may not delete it, in a word or two.
fn prune_note(i: &Item) -> String {
    if i.prunable() {
        return "yes".to_string();
    }
    let why = match (i.state, i.header.as_deref()) {
        (State::Partial, _) => return "-".to_string(),
        (State::Damaged, _) => "damaged".to_string(),
        _ if i.future_dated() => "future-dated".to_string(),
        _ if i.owner != crate::safe_fs::euid() => format!("owner {}", user_name(i.owner)),
        _ if !i.own_name => "named by you".to_string(),
        (_, Some(h)) if h.retention.is_none() => "no mark".to_string(),
        _ => "pinned".to_string(),
    };
    format!("no ({why})")
}

/// The catalog table, then a line for each damaged or partial archive. Six columns fit an
/// 80-column terminal; `wide` adds where each archive came from (mode, database and server,
/// profile, schema and version, last job ID), as `ps -f` and `kubectl -o wide` do.
pub fn listing(items: &[Item], verified: bool, wide: bool) -> String {
    if items.is_empty() {
        return "no archives".to_string();
    }
    let mut header = vec!["file", "taken at (UTC)"];
    if wide {
        header.extend(["mode", "database @ server", "profile / schema (version)"]);
    }
    header.extend(["jobs"]);
    if wide {
        header.push("last job ID");
    }
    header.extend(["size", "state", "prunable"]);
    let mut t = table(&header);
    let dash = || "-".to_string();
    for i in items {
        let h = i.header.as_deref();
        let name = i
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut row = vec![
            printable(&name, SHOWN),
            i.taken_at()
                .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_else(dash),
        ];
        if wide {
            row.push(h.map(|h| h.mode.name().to_string()).unwrap_or_else(dash));
            row.push(
                h.map(|h| {
                    format!(
                        "{} @ {}",
                        printable(&h.database, SHOWN),
                        printable(&h.server, SHOWN)
                    )
                })
                .unwrap_or_else(dash),
            );
            row.push(
                h.map(|h| {
                    format!(
                        "{} / {} ({})",
                        printable(h.profile.as_deref().unwrap_or("-"), SHOWN),
                        printable(h.schema.as_deref().unwrap_or("-"), SHOWN),
                        h.schema_version.map_or_else(dash, |v| v.to_string())
                    )
                })
                .unwrap_or_else(dash),
            );
        }
        row.push(i.jobs().map_or_else(dash, |n| n.to_string()));
        if wide {
            row.push(
                h.and_then(|h| h.last_used_job_id)
                    .map_or_else(dash, |n| n.to_string()),
            );
        }
        row.extend([
            human_bytes(i.bytes as i64),
            match (i.encrypted, i.state) {
                (true, State::Unverified) => "encrypted".to_string(),
                (true, state) => format!("{}, encrypted", state.name()),
                (false, state) => state.name().to_string(),
            },
            prune_note(i),
        ]);
        t.add_row(row);
    }
    let mut lines = vec![t.to_string()];
    for i in items {
        match i.state {
            State::Damaged => lines.push(format!(
                "damaged: {}: {}",
                printable(&i.path().display().to_string(), 4 * SHOWN),
                printable(i.problem.as_deref().unwrap_or(""), 4 * SHOWN)
            )),
            State::Partial => lines.push(format!(
                "partial: {} (owner {}): a backup still running, or one that was killed; a later backup to that name replaces it",
                printable(&i.path().display().to_string(), 4 * SHOWN),
                user_name(i.owner)
            )),
            _ if i.future_dated() => lines.push(format!(
                "future-dated: {}: taken at {} by its header, later than now; retention neither counts nor deletes it and `restore latest` passes it by (a wrong clock when it was written, or planted)",
                printable(&i.path().display().to_string(), 4 * SHOWN),
                i.taken_at().map(|t| t.to_rfc3339()).unwrap_or_default()
            )),
            _ => {}
        }
    }
    if items
        .iter()
        .any(|i| i.encrypted && i.state == State::Unverified)
    {
        lines.push(
            "encrypted: read without the key, only its name, size, time, database and retention mark are known; `jobdbctl backups verify --identity FILE` reads everything".to_string(),
        );
    }
    if !verified
        && items
            .iter()
            .any(|i| !i.encrypted && i.state == State::Unverified)
    {
        lines.push(
            "unverified: header and end read and consistent, contents not checked; `jobdbctl backups verify` reads everything".to_string(),
        );
    }
    lines.join("\n")
}
