//! The embedded server's log files: `<pgdata>/jobdbctl-server.log` (what the server says
//! before its logging collector runs, and pg_ctl's own output) and the collector's files in
//! `<pgdata>/log/`, rotated daily or at 100 MB (see `cluster::LOG_FILENAME`).
//!
//! What it guarantees: reading never changes a file. Purging removes only rotated collector
//! files older than the cut-off, never the newest one (the server may be writing it) nor
//! the start-up log. A kill -9 mid-purge leaves some old files removed and the rest in
//! place; a rerun removes the rest.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;

use crate::cluster::{Cluster, LOG_DIR, START_LOG};
use crate::safe_fs;

#[derive(Debug, Clone, Serialize)]
pub struct LogFile {
    pub path: PathBuf,
    pub bytes: u64,
    pub modified: DateTime<Utc>,
    /// A collector file other than the newest: safe to remove.
    pub rotated: bool,
}

/// Every log file of the cluster, oldest first.
pub fn files(cluster: &Cluster) -> anyhow::Result<Vec<LogFile>> {
    let mut found = Vec::new();
    let start_log = cluster.log_file();
    if let Some(file) = cluster.open_file(Path::new(START_LOG))? {
        let meta = file
            .metadata()
            .with_context(|| format!("cannot stat {}", start_log.display()))?;
        found.push((start_log, meta, false));
    }
    let dir = cluster.log_dir();
    let mut collected = Vec::new();
    match fs::read_dir(&dir) {
        Ok(entries) => {
            for entry in entries {
                let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
                let name = entry.file_name();
                let is_log = name
                    .to_str()
                    .is_some_and(|n| n.starts_with("postgresql-") && n.ends_with(".log"));
                if !is_log {
                    continue;
                }
                // Only a plain file of the cluster's owner, opened without following links,
                // is a log file; a link planted there is refused by name.
                let rel = Path::new(LOG_DIR).join(&name);
                let Some(file) = cluster.open_file(&rel)? else {
                    continue;
                };
                let meta = file
                    .metadata()
                    .with_context(|| format!("cannot stat {}", entry.path().display()))?;
                collected.push((entry.path(), meta));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    }
    collected.sort_by(|a, b| a.0.cmp(&b.0));
    let newest = collected.len().saturating_sub(1);
    for (i, (path, meta)) in collected.into_iter().enumerate() {
        found.push((path, meta, i < newest));
    }
    let mut files: Vec<LogFile> = found
        .into_iter()
        .map(|(path, meta, rotated)| LogFile {
            bytes: meta.len(),
            modified: meta
                .modified()
                .map(DateTime::<Utc>::from)
                .unwrap_or_else(|_| Utc::now()),
            path,
            rotated,
        })
        .collect();
    files.sort_by_key(|f| f.modified);
    Ok(files)
}

/// The time at the start of a server log line (`log_line_prefix` '%m [%p] '), if any.
fn line_time(line: &str) -> Option<DateTime<Utc>> {
    let stamp = line.get(..23)?;
    NaiveDateTime::parse_from_str(stamp, "%Y-%m-%d %H:%M:%S%.3f")
        .ok()
        .map(|t| t.and_utc())
}

/// The last `tail` lines (all with None) of the files, oldest first, limited to lines logged
/// at or after `since`; continuation lines go with the line they continue.
pub fn read_lines(
    cluster: &Cluster,
    files: &[LogFile],
    tail: Option<usize>,
    since: Option<DateTime<Utc>>,
) -> anyhow::Result<Vec<String>> {
    let mut lines = Vec::new();
    for f in files {
        if since.is_some_and(|s| f.modified < s) {
            continue;
        }
        let text = read_from(cluster, &f.path, 0)?;
        let mut keep = since.is_none();
        for line in String::from_utf8_lossy(&text).lines() {
            if let (Some(s), Some(t)) = (since, line_time(line)) {
                keep = t >= s;
            }
            if keep {
                lines.push(line.to_string());
            }
        }
    }
    if let Some(n) = tail {
        let skip = lines.len().saturating_sub(n);
        lines.drain(..skip);
    }
    Ok(lines)
}

/// Prints what is appended to the newest log file (switching to a newer one when the
/// collector rotates) until the process is stopped.
pub fn follow(
    cluster: &Cluster,
    emit: &mut dyn FnMut(&str) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut current: Option<(PathBuf, u64)> = None;
    let mut pending = String::new();
    loop {
        let newest = files(cluster)?.pop();
        if let Some(f) = newest {
            match &current {
                Some((path, _)) if *path == f.path => {}
                // From the end of the file at the start; from the beginning of a new one.
                _ => {
                    let offset = if current.is_none() { f.bytes } else { 0 };
                    current = Some((f.path.clone(), offset));
                }
            }
        }
        if let Some((path, offset)) = current.as_mut() {
            let read = read_from(cluster, path, *offset)?;
            *offset += read.len() as u64;
            pending.push_str(&String::from_utf8_lossy(&read));
            while let Some(end) = pending.find('\n') {
                let line: String = pending.drain(..=end).collect();
                emit(line.trim_end_matches('\n'))?;
            }
        }
        // Files give no change notification here; poll.
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A log file's bytes from `offset` on, read without following links (`Cluster::open_file`);
/// nothing when it is gone.
fn read_from(cluster: &Cluster, path: &Path, offset: u64) -> anyhow::Result<Vec<u8>> {
    let rel = path.strip_prefix(&cluster.pgdata).unwrap_or(path);
    let Some(mut file) = cluster.open_file(rel)? else {
        return Ok(Vec::new());
    };
    file.seek(SeekFrom::Start(offset))
        .with_context(|| format!("cannot seek in {}", path.display()))?;
    let mut buf = Vec::new();
    file.read_to_end(&mut buf)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(buf)
}

/// Removes rotated collector files last written before `older_than` ago (or, `dry_run`,
/// lists them).
pub fn purge(
    cluster: &Cluster,
    older_than: Duration,
    dry_run: bool,
) -> anyhow::Result<Vec<LogFile>> {
    let cutoff: DateTime<Utc> = SystemTime::now()
        .checked_sub(older_than)
        .unwrap_or(SystemTime::UNIX_EPOCH)
        .into();
    let doomed: Vec<LogFile> = files(cluster)?
        .into_iter()
        .filter(|f| f.rotated && f.modified < cutoff)
        .collect();
    if !dry_run {
        // By name in the log directory opened without following a link.
        let dir = safe_fs::open_dir(&cluster.log_dir())
            .with_context(|| format!("cannot open {}", cluster.log_dir().display()))?;
        for f in &doomed {
            let name = f.path.file_name().unwrap_or_default();
            fs::remove_file(safe_fs::at(&dir, name))
                .with_context(|| format!("cannot remove {}", f.path.display()))?;
        }
    }
    Ok(doomed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_time_reads_the_default_prefix() {
        let t = line_time("2026-10-01 12:34:56.789 UTC [42] LOG:  checkpoint starting");
        assert_eq!(
            t.map(|t| t.to_rfc3339()),
            Some("2026-10-01T12:34:56.789+00:00".into())
        );
        assert_eq!(line_time("\tcontinued"), None);
    }
}
