//! Where an archive goes: an archive store (`crate::storage`) under a name jobdbctl chooses
//! or the operator gave, or standard output. The store makes the archive appear under its
//! final name only when complete; a run killed at any point leaves at most a partial, which
//! retention never counts and the next run to the same name replaces. Anything else already
//! at the name is refused (exit 3) before anything is written.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context as _;
use chrono::Utc;

use crate::archive::writer::Output;
use crate::archive::{Codec, Retention};
use crate::context::Ctx;
use crate::error::{failure, Exit};
use crate::output::human_bytes;
use crate::storage::{is_url, LocalDir, Store, Upload};

/// `strftime` form of the time in the names jobdbctl chooses; [`is_own_name`] parses it.
const TIME_FORMAT: &str = "%Y%m%dT%H%M%S%.3fZ";
/// Length of a [`TIME_FORMAT`] timestamp, e.g. `20240131T235959.123Z`.
const TIME_LEN: usize = 20;

/// Where the archive goes: a file written as `PATH.partial` and renamed when complete, or
/// standard output.
pub enum Destination {
    Stdout,
    Stored {
        store: Box<dyn Store>,
        name: String,
        /// Managed when jobdbctl chose the name and the caller did not pin the archive.
        retention: Retention,
        /// The archive being written, between `open` and `complete` or `discard`.
        upload: Mutex<Option<Box<dyn Upload>>>,
    },
}

impl Destination {
    /// `pinned` marks the archive as never to be pruned even when jobdbctl chooses its name
    /// (`destroy --backup-first`).
    pub fn choose(
        ctx: &Ctx,
        output: Option<&Path>,
        stem: &str,
        pinned: bool,
        codec: Codec,
        encrypted: bool,
    ) -> anyhow::Result<Destination> {
        let default_name = || {
            format!(
                "{}-{}{}{}",
                sanitize(stem),
                Utc::now().format(TIME_FORMAT),
                codec.suffix(),
                if encrypted { ".age" } else { "" }
            )
        };
        let (store, name, named_by_us): (Box<dyn Store>, String, bool) = match output {
            Some(p) if p == Path::new("-") => return Ok(Destination::Stdout),
            Some(p) if is_url(p) => match bucket_place(ctx, p)? {
                (store, Some(name)) => (store, name, false),
                (store, None) => (store, default_name(), true),
            },
            Some(p) if p.is_dir() => (Box::new(LocalDir::new(p)), default_name(), true),
            // `DIR/` names a directory even before it exists: never a file called DIR.
            Some(p) if p.as_os_str().to_string_lossy().ends_with('/') => {
                let dir = PathBuf::from(p.to_string_lossy().trim_end_matches('/'));
                if dir != ctx.config.backup_dir.value {
                    return Err(failure(
                        Exit::Usage,
                        format!(
                            "no directory {}; create it first (only backup_dir is created)",
                            dir.display()
                        ),
                    ));
                }
                create_backup_dir(ctx)?;
                (Box::new(LocalDir::new(&dir)), default_name(), true)
            }
            Some(p) => {
                check_parent(ctx, p)?;
                let (store, name) = LocalDir::of_file(p)?;
                (Box::new(store), name, false)
            }
            None if is_url(&ctx.config.backup_dir.value) => (
                ctx.places.at(&ctx.config.backup_dir.value)?,
                default_name(),
                true,
            ),
            None => {
                create_backup_dir(ctx)?;
                (
                    Box::new(LocalDir::new(&ctx.config.backup_dir.value)),
                    default_name(),
                    true,
                )
            }
        };
        Ok(Destination::Stored {
            store,
            name,
            upload: Mutex::new(None),
            retention: if named_by_us && !pinned {
                Retention::Managed
            } else {
                Retention::Pinned
            },
        })
    }

    /// What the archive's header records about pruning.
    pub fn retention(&self) -> Retention {
        match self {
            Destination::Stdout => Retention::Pinned,
            Destination::Stored { retention, .. } => *retention,
        }
    }

    /// Refuses (exit 3) when the estimate does not fit in the destination's free space.
    pub fn check_space(&self, estimate: u64, enabled: bool) -> anyhow::Result<()> {
        let Destination::Stored { store, .. } = self else {
            return Ok(());
        };
        if !enabled {
            return Ok(());
        }
        let free = store.free_bytes()?;
        if free < estimate {
            return Err(failure(
                Exit::Refused,
                format!(
                    "not enough free space in {}: the archive needs about {} ({estimate} bytes), {} ({free} bytes) are free; \
                     free some space, choose another --output, or pass --no-space-check",
                    store.describe(),
                    human_bytes(estimate as i64),
                    human_bytes(free as i64)
                ),
            ));
        }
        Ok(())
    }

    /// Starts writing: where the archive's bytes go.
    pub fn open(&self) -> anyhow::Result<Output> {
        match self {
            Destination::Stdout => Ok(Box::new(std::io::stdout())),
            Destination::Stored {
                store,
                name,
                upload,
                ..
            } => {
                let mut started = store.create(name)?;
                let writer = started.writer()?;
                *upload.lock().map_err(|_| anyhow::anyhow!("poisoned"))? = Some(started);
                Ok(writer)
            }
        }
    }

    /// Makes the archive durable under its final name; where it is (None for standard
    /// output).
    pub fn complete(&self) -> anyhow::Result<Option<PathBuf>> {
        let Destination::Stored { upload, .. } = self else {
            return Ok(None);
        };
        let started = upload
            .lock()
            .ok()
            .and_then(|mut u| u.take())
            .context("internal error: no archive being written")?;
        started.complete().map(Some)
    }

    /// Removes what was written, if anything.
    pub fn discard(&self) {
        if let Destination::Stored { upload, .. } = self {
            if let Some(started) = upload.lock().ok().and_then(|mut u| u.take()) {
                started.abort();
            }
        }
    }
}

/// Checks, before the database is read, that a bucket destination answers to the
/// credentials: a wrong key, a missing bucket or a denied prefix is one line and an exit
/// code, not a failure after minutes of reading.
pub fn preflight(ctx: &Ctx, output: Option<&Path>) -> anyhow::Result<()> {
    let store = match output {
        Some(p) if is_url(p) => bucket_place(ctx, p)?.0,
        Some(_) => return Ok(()),
        None if is_url(&ctx.config.backup_dir.value) => {
            ctx.places.at(&ctx.config.backup_dir.value)?
        }
        None => return Ok(()),
    };
    store.prepare()
}

/// Where `--output s3://…` puts the archive: the URL's prefix, with the name it ends in
/// when its last segment is an archive's name (pinned), else `None` (jobdbctl names it; a
/// URL ending in `/` is always a prefix).
fn bucket_place(ctx: &Ctx, url: &Path) -> anyhow::Result<(Box<dyn Store>, Option<String>)> {
    let text = url.to_string_lossy();
    let last = text.rsplit('/').next().unwrap_or("");
    if Codec::SUFFIXES.iter().any(|s| last.ends_with(s)) {
        let (store, name) = ctx.places.of_file(url)?;
        return Ok((store, Some(name)));
    }
    Ok((ctx.places.at(url)?, None))
}

fn create_backup_dir(ctx: &Ctx) -> anyhow::Result<()> {
    let dir = &ctx.config.backup_dir.value;
    LocalDir::new(dir)
        .prepare()
        .with_context(|| format!("cannot create backup directory {}", dir.display()))
}

/// An operator's `--output` in the configured backup directory gets that directory created as
/// a default backup would (the upgrade runbook names its archive there on a fresh machine);
/// any other missing directory is a typo until proven otherwise.
fn check_parent(ctx: &Ctx, output: &Path) -> anyhow::Result<()> {
    let parent = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => return Ok(()),
    };
    if LocalDir::new(parent).exists() {
        return Ok(());
    }
    if parent == ctx.config.backup_dir.value {
        return create_backup_dir(ctx);
    }
    Err(failure(
        Exit::Usage,
        format!(
            "cannot write {}: directory {} does not exist; create it or choose another --output",
            output.display(),
            parent.display()
        ),
    ))
}

/// Whether `name` is one jobdbctl chooses for an archive (`<stem>-<UTC time>.tar.gz`, or
/// `.tar.zst` or `.tar`, as [`Destination::choose`] makes them); retention prunes nothing else.
pub fn is_own_name(name: &str) -> bool {
    let Some(rest) = Codec::SUFFIXES
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
    else {
        return false;
    };
    let Some(split) = rest.len().checked_sub(TIME_LEN + 1) else {
        return false;
    };
    let (stem, time) = rest.split_at(split);
    let Some(time) = time.strip_prefix('-') else {
        return false;
    };
    !stem.is_empty()
        && sanitize(stem) == stem
        && chrono::NaiveDateTime::parse_from_str(time, TIME_FORMAT).is_ok()
}

fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_names_are_the_ones_choose_makes() {
        let made = format!("jobs-jobdb-{}.tar.gz", Utc::now().format(TIME_FORMAT));
        assert!(is_own_name(&made), "{made}");
        assert!(is_own_name("cluster-20240131T235959.123Z.tar.gz"));
        assert!(is_own_name("cluster-20240131T235959.123Z.tar.zst"));
        assert!(is_own_name("cluster-20240131T235959.123Z.tar"));
        assert!(!is_own_name("cluster-20240131T235959.123Z.tar.xz"));
        for other in [
            "pre-upgrade.tar.gz",
            "-20240131T235959.123Z.tar.gz",
            "a b-20240131T235959.123Z.tar.gz",
            "jobs-20240131T235959.123Z.tar.gz.partial",
            "jobs-20241331T235959.123Z.tar.gz",
            "jobs-20240131T235959Z.tar.gz",
            "jobs_20240131T235959.123Z.tar.gz",
            "20240131T235959.123Z.tar.gz",
        ] {
            assert!(!is_own_name(other), "{other}");
        }
    }
}
