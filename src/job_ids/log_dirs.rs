//! The engine's per-job log directories (Tractor keeps `<log dir>/<user>/J<jid>/…`): finding
//! those of jobs above an ID — the IDs a restored or new job counter will hand out again,
//! whose old logs the engine would append to — and removing them. Needs no database.
//!
//! What it guarantees:
//! - Nothing below the log directory is followed. Each level is opened relative to its
//!   parent's open descriptor with `O_NOFOLLOW | O_DIRECTORY`, and each entry is examined
//!   without following it (lstat), so a symlinked user directory or job entry is reported
//!   and skipped, never entered or removed through — also when it is swapped in between the
//!   listing and the removal (the removal then fails or removes the link itself, never its
//!   target). The log directory named by the operator is opened as given.
//! - Only entries whose path matches the pattern with a job ID above the given one are
//!   removed, and only those that were listed to the operator before; everything else is
//!   left alone and counted.
//! - A failed removal is reported and the others go on; a kill -9 leaves a partly removed
//!   job directory, which still matches and is removed by the next run.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Serialize;

use crate::error::{failure, Exit};
use crate::safe_fs::{self, at};

/// Where a job's logs sit below the log directory: `/`-separated names in which `{user}`
/// stands for any name and `{jid}` for the job ID (digits); the entry holding `{jid}` is the
/// job's. Parsed once; `matches` is per entry name.
#[derive(Debug, Clone)]
pub struct Pattern {
    text: String,
    segments: Vec<Vec<Part>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    User,
    Jid,
}

#[derive(Debug, Default, Clone)]
struct Captures {
    user: Option<String>,
    jid: Option<i64>,
}

impl Pattern {
    /// Refuses what could reach outside the log directory or match ambiguously, with the
    /// reason.
    pub fn parse(text: &str) -> Result<Pattern, String> {
        if text.is_empty() {
            return Err("is empty".to_string());
        }
        if text.starts_with('/') {
            return Err("must be relative to the log directory (no leading /)".to_string());
        }
        let mut segments = Vec::new();
        for segment in text.split('/') {
            if segment.is_empty() || segment == "." || segment == ".." {
                return Err(format!(
                    "has an empty, '.' or '..' component ({segment:?}); give names like {{user}}/J{{jid}}"
                ));
            }
            segments.push(parse_segment(segment)?);
        }
        let count = |p: &Part| segments.iter().flatten().filter(|q| *q == p).count();
        if count(&Part::Jid) != 1 {
            return Err("must contain {jid} exactly once".to_string());
        }
        if count(&Part::User) > 1 {
            return Err("may contain {user} at most once".to_string());
        }
        if !segments.last().is_some_and(|s| s.contains(&Part::Jid)) {
            return Err(
                "must have {jid} in its last component: the job's entry is what is removed"
                    .to_string(),
            );
        }
        Ok(Pattern {
            text: text.to_string(),
            segments,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

fn parse_segment(segment: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut rest = segment;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('{') {
            let end = after
                .find('}')
                .ok_or_else(|| format!("has an unclosed {{ in {segment:?}"))?;
            let part = match &after[..end] {
                "user" => Part::User,
                "jid" => Part::Jid,
                other => {
                    return Err(format!(
                        "has the unknown placeholder {{{other}}}; use {{user}} and {{jid}}"
                    ))
                }
            };
            if matches!(parts.last(), Some(Part::User | Part::Jid)) {
                return Err(format!(
                    "has two placeholders side by side in {segment:?}; separate them with text"
                ));
            }
            parts.push(part);
            rest = &after[end + 1..];
        } else {
            let end = rest.find(['{', '}']).unwrap_or(rest.len());
            if rest[end..].starts_with('}') {
                return Err(format!("has a stray }} in {segment:?}"));
            }
            parts.push(Part::Literal(rest[..end].to_string()));
            rest = &rest[end..];
        }
    }
    Ok(parts)
}

/// Whether `name` matches the parts, filling in what the placeholders stood for.
fn match_parts(parts: &[Part], name: &str, caps: &mut Captures) -> bool {
    let Some((first, rest)) = parts.split_first() else {
        return name.is_empty();
    };
    match first {
        Part::Literal(text) => name
            .strip_prefix(text.as_str())
            .is_some_and(|tail| match_parts(rest, tail, caps)),
        Part::Jid => {
            let digits = name.bytes().take_while(u8::is_ascii_digit).count();
            (1..=digits).rev().any(|end| {
                let Ok(jid) = name[..end].parse::<i64>() else {
                    return false;
                };
                let matched = match_parts(rest, &name[end..], caps);
                if matched {
                    caps.jid = Some(jid);
                }
                matched
            })
        }
        Part::User => {
            let ends: Vec<usize> = name.char_indices().map(|(i, c)| i + c.len_utf8()).collect();
            ends.into_iter().rev().any(|end| {
                let matched = match_parts(rest, &name[end..], caps);
                if matched {
                    caps.user = Some(name[..end].to_string());
                }
                matched
            })
        }
    }
}

/// A job's log entry above the given ID.
#[derive(Debug, Clone, Serialize)]
pub struct Found {
    pub job_id: i64,
    pub user: Option<String>,
    pub path: PathBuf,
    pub kind: &'static str,
    pub removed: bool,
    /// Why the removal failed.
    pub error: Option<String>,
}

/// An entry that matched the pattern but was left alone, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
}

/// What a walk of the log directory found.
#[derive(Debug, Default, Serialize)]
pub struct Scan {
    pub found: Vec<Found>,
    pub skipped: Vec<Skipped>,
    /// Job entries with IDs at or below the given one (kept).
    pub kept: usize,
    /// Entries whose names do not match the pattern (never touched).
    pub ignored: usize,
}

/// Lists the job entries above `above`; changes nothing.
pub fn scan(dir: &Path, pattern: &Pattern, above: i64) -> anyhow::Result<Scan> {
    walk(dir, pattern, above, None)
}

/// Removes the job entries above `above` that are in `listed` (paths as [`scan`] gave them)
/// and still match, and says what happened to each.
pub fn remove(
    dir: &Path,
    pattern: &Pattern,
    above: i64,
    listed: &BTreeSet<PathBuf>,
) -> anyhow::Result<Scan> {
    walk(dir, pattern, above, Some(listed))
}

fn walk(
    dir: &Path,
    pattern: &Pattern,
    above: i64,
    remove: Option<&BTreeSet<PathBuf>>,
) -> anyhow::Result<Scan> {
    if !Path::new("/proc/self/fd").is_dir() {
        return Err(failure(
            Exit::Runtime,
            "job-logs needs /proc (Linux) to walk directories without following symbolic links; mount /proc",
        ));
    }
    let top = match File::open(dir) {
        Ok(f) if f.metadata().is_ok_and(|m| m.is_dir()) => f,
        Ok(_) => {
            return Err(failure(
                Exit::Usage,
                format!(
                    "{} is not a directory; give the engine's log directory with --dir",
                    dir.display()
                ),
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(failure(
                Exit::Usage,
                format!(
                    "log directory {} does not exist; give the engine's log directory with --dir",
                    dir.display()
                ),
            ))
        }
        Err(e) => return Err(e).with_context(|| format!("cannot open {}", dir.display())),
    };
    let mut walker = Walker {
        pattern,
        above,
        remove,
        root: dir.to_path_buf(),
        scan: Scan::default(),
    };
    walker.level(&top, Path::new(""), 0, Captures::default())?;
    walker
        .scan
        .found
        .sort_by(|a, b| (a.job_id, &a.path).cmp(&(b.job_id, &b.path)));
    walker.scan.skipped.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(walker.scan)
}

struct Walker<'a> {
    pattern: &'a Pattern,
    above: i64,
    remove: Option<&'a BTreeSet<PathBuf>>,
    root: PathBuf,
    scan: Scan,
}

/// The path of `name` inside the directory open as `dir`, resolved through the descriptor
/// (so a directory renamed or replaced meanwhile is not looked up again by name).
impl Walker<'_> {
    fn level(
        &mut self,
        dir: &File,
        rel: &Path,
        depth: usize,
        caps: Captures,
    ) -> anyhow::Result<()> {
        let shown = self.root.join(rel);
        let mut names: Vec<OsString> = fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd()))
            .and_then(|entries| entries.map(|e| e.map(|e| e.file_name())).collect())
            .with_context(|| format!("cannot list {}", shown.display()))?;
        names.sort();
        let segment = &self.pattern.segments[depth];
        let last = depth + 1 == self.pattern.segments.len();
        for name in names {
            let mut caps = caps.clone();
            let matched = name
                .to_str()
                .is_some_and(|text| match_parts(segment, text, &mut caps));
            if !matched {
                self.scan.ignored += 1;
                continue;
            }
            let rel = rel.join(&name);
            let meta = match fs::symlink_metadata(at(dir, &name)) {
                Ok(meta) => meta,
                // Removed by someone else meanwhile.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    self.skip(&rel, format!("cannot examine it: {e}"));
                    continue;
                }
            };
            let kind = meta.file_type();
            if kind.is_symlink() {
                self.skip(&rel, "symbolic link, not followed".to_string());
                continue;
            }
            if !last {
                if !kind.is_dir() {
                    self.scan.ignored += 1;
                    continue;
                }
                match safe_fs::open_dir_at(dir, &name) {
                    Ok(sub) => self.level(&sub, &rel, depth + 1, caps)?,
                    Err(e) => {
                        self.skip(&rel, format!("cannot open it without following links: {e}"))
                    }
                }
                continue;
            }
            let Some(job_id) = caps.jid else { continue };
            if job_id <= self.above {
                self.scan.kept += 1;
                continue;
            }
            let kind_name = if kind.is_dir() {
                "directory"
            } else if kind.is_file() {
                "file"
            } else {
                self.skip(&rel, "neither a directory nor a regular file".to_string());
                continue;
            };
            let mut found = Found {
                job_id,
                user: caps.user.clone(),
                path: self.root.join(&rel),
                kind: kind_name,
                removed: false,
                error: None,
            };
            if self
                .remove
                .is_some_and(|listed| listed.contains(&found.path))
            {
                let target = at(dir, &name);
                // remove_dir_all never follows a symbolic link: one swapped in meanwhile is
                // removed itself, its target left alone.
                // One descriptor at a time, however deep the tree (safe_fs::remove_tree_at).
                let result = if kind.is_dir() {
                    safe_fs::remove_tree_at(dir, &name)
                } else {
                    fs::remove_file(&target)
                };
                match result {
                    Ok(()) => found.removed = true,
                    Err(e) => found.error = Some(e.to_string()),
                }
            }
            self.scan.found.push(found);
        }
        Ok(())
    }

    fn skip(&mut self, rel: &Path, reason: String) {
        self.scan.skipped.push(Skipped {
            path: self.root.join(rel),
            reason,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(pattern: &str, names: &[&str]) -> Option<(Option<String>, Option<i64>)> {
        let p = Pattern::parse(pattern).expect("pattern");
        let mut caps = Captures::default();
        for (segment, name) in p.segments.iter().zip(names) {
            if !match_parts(segment, name, &mut caps) {
                return None;
            }
        }
        Some((caps.user, caps.jid))
    }

    #[test]
    fn patterns_match_tractor_names() {
        assert_eq!(
            caps("{user}/J{jid}", &["alice", "J1234"]),
            Some((Some("alice".into()), Some(1234)))
        );
        assert_eq!(caps("{user}/J{jid}", &["alice", "J12x"]), None);
        assert_eq!(caps("{user}/J{jid}", &["alice", "J"]), None);
        assert_eq!(caps("{user}/J{jid}", &["alice", "j12"]), None);
        assert_eq!(
            caps("logs/{user}-{jid}.log", &["logs", "bob-smith-77.log"]),
            Some((Some("bob-smith".into()), Some(77)))
        );
        assert_eq!(caps("job{jid}", &["job99999999999999999999"]), None);
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in [
            "",
            "/abs/J{jid}",
            "{user}/../J{jid}",
            "{user}//J{jid}",
            "{user}",
            "J{jid}/{user}",
            "{user}{jid}",
            "{who}/J{jid}",
            "{user}/J{jid",
            "J}{jid}",
            "{jid}/{jid}",
        ] {
            assert!(Pattern::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
