//! Where an archive goes: a file written as `PATH.partial`, fsynced and renamed to `PATH`
//! only when complete, or standard output. A run killed at any point leaves no file under
//! the final name; at most a `.partial`, which retention never counts and the next run to
//! the same name replaces.
//!
//! The destination directory may be writable by others (a group-writable /srv/backups), and
//! the archive holds every job's payload, so nothing already sitting at either name is ever
//! written through: the `.partial` is created exclusively (`O_CREAT|O_EXCL|O_NOFOLLOW`, mode
//! 0600 from its first byte). Only our own stale `.partial` (a regular file owned by this
//! user) is removed first; anything else there, or at the final name, makes the backup
//! refuse (exit 3) before it writes anything. After the rename the final name must hold the
//! very file we wrote (same device and inode, not a link), else the run fails loudly.

use std::fs::{self, File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use chrono::Utc;

use crate::archive::writer::Output;
use crate::archive::{Codec, Retention};
use crate::context::Ctx;
use crate::error::{failure, Exit};
use crate::output::human_bytes;

/// `strftime` form of the time in the names jobdbctl chooses; [`is_own_name`] parses it.
const TIME_FORMAT: &str = "%Y%m%dT%H%M%S%.3fZ";
/// Length of a [`TIME_FORMAT`] timestamp, e.g. `20240131T235959.123Z`.
const TIME_LEN: usize = 20;

/// Where the archive goes: a file written as `PATH.partial` and renamed when complete, or
/// standard output.
pub enum Destination {
    Stdout,
    File {
        path: PathBuf,
        partial: PathBuf,
        /// Managed when jobdbctl chose the name and the caller did not pin the archive.
        retention: Retention,
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
    ) -> anyhow::Result<Destination> {
        let default_name = || {
            format!(
                "{}-{}{}",
                sanitize(stem),
                Utc::now().format(TIME_FORMAT),
                codec.suffix()
            )
        };
        let (path, named_by_us) = match output {
            Some(p) if p == Path::new("-") => return Ok(Destination::Stdout),
            Some(p) if p.is_dir() => (p.join(default_name()), true),
            Some(p) => {
                check_parent(ctx, p)?;
                (p.to_path_buf(), false)
            }
            None => {
                create_backup_dir(ctx)?;
                (ctx.config.backup_dir.value.join(default_name()), true)
            }
        };
        let mut partial = path.clone().into_os_string();
        partial.push(".partial");
        Ok(Destination::File {
            path,
            partial: PathBuf::from(partial),
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
            Destination::File { retention, .. } => *retention,
        }
    }

    fn dir(&self) -> Option<PathBuf> {
        match self {
            Destination::Stdout => None,
            Destination::File { path, .. } => Some(
                path.parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."))
                    .to_path_buf(),
            ),
        }
    }

    /// Refuses (exit 3) when the estimate does not fit in the destination's free space.
    pub fn check_space(&self, estimate: u64, enabled: bool) -> anyhow::Result<()> {
        let Some(dir) = self.dir().filter(|_| enabled) else {
            return Ok(());
        };
        let free = free_bytes(&dir)?;
        if free < estimate {
            return Err(failure(
                Exit::Refused,
                format!(
                    "not enough free space in {}: the archive needs about {} ({estimate} bytes), {} ({free} bytes) are free; \
                     free some space, choose another --output, or pass --no-space-check",
                    dir.display(),
                    human_bytes(estimate as i64),
                    human_bytes(free as i64)
                ),
            ));
        }
        Ok(())
    }

    pub fn open(&self) -> anyhow::Result<(Output, Option<File>)> {
        match self {
            Destination::Stdout => Ok((Box::new(std::io::stdout()), None)),
            Destination::File { path, partial, .. } => {
                check_final_name(path)?;
                let file = create_partial(partial)?;
                let writer = file
                    .try_clone()
                    .with_context(|| format!("cannot open {}", partial.display()))?;
                Ok((
                    Box::new(std::io::BufWriter::with_capacity(1 << 20, writer)),
                    Some(file),
                ))
            }
        }
    }

    /// Makes the archive durable under its final name: fsync the data, rename, check that
    /// the final name holds the file we wrote, fsync the directory.
    pub fn complete(&self, file: Option<File>) -> anyhow::Result<Option<PathBuf>> {
        let Destination::File { path, partial, .. } = self else {
            return Ok(None);
        };
        let file = file.context("internal error: no open file for the archive")?;
        file.sync_all()
            .with_context(|| format!("cannot write {}", partial.display()))?;
        let written = file
            .metadata()
            .with_context(|| format!("cannot stat {}", partial.display()))?;
        fs::rename(partial, path).with_context(|| {
            format!("cannot rename {} to {}", partial.display(), path.display())
        })?;
        check_landed(path, partial, &written)?;
        if let Some(dir) = self.dir() {
            File::open(&dir)
                .and_then(|d| d.sync_all())
                .with_context(|| format!("cannot sync directory {}", dir.display()))?;
        }
        Ok(Some(path.clone()))
    }

    pub fn discard(&self) {
        if let Destination::File { partial, .. } = self {
            let _ = fs::remove_file(partial);
        }
    }
}

fn create_backup_dir(ctx: &Ctx) -> anyhow::Result<()> {
    let dir = &ctx.config.backup_dir.value;
    fs::create_dir_all(dir)
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
    if parent.is_dir() {
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

/// The final name may hold our own older archive of the same name, which the rename
/// replaces; anything else there (a link, another user's file, a directory) was not put
/// there by a backup of ours, so the backup refuses rather than replace it.
fn check_final_name(path: &Path) -> anyhow::Result<()> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot stat {}", path.display())),
        Ok(meta) if meta.is_file() && meta.uid() == crate::safe_fs::euid() => Ok(()),
        Ok(meta) => Err(failure(
            Exit::Refused,
            format!(
                "refusing to replace {}: it is {}, and backup replaces only an archive file of its own user; \
                 remove it or choose another --output",
                path.display(),
                describe(path, &meta)
            ),
        )),
    }
}

/// Creates `partial` exclusively with mode 0600, so nothing already at that name (a link
/// planted by another user, a file they could read) is followed or reused. Our own stale
/// `.partial` from a killed run is removed first; anything else is refused (exit 3).
fn create_partial(partial: &Path) -> anyhow::Result<File> {
    let open = || {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(partial)
    };
    let refuse = |meta: &fs::Metadata, why: &str| {
        failure(
            Exit::Refused,
            format!(
                "refusing to write {}: it already exists and is {}{why}; backup only replaces its own \
                 stale .partial (a regular file of its own user); remove it and check who can write to that directory",
                partial.display(),
                describe(partial, meta)
            ),
        )
    };
    match open() {
        Ok(file) => return Ok(file),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", partial.display())),
    }
    let meta = fs::symlink_metadata(partial)
        .with_context(|| format!("cannot stat {}", partial.display()))?;
    if !(meta.is_file() && meta.uid() == crate::safe_fs::euid()) {
        return Err(refuse(&meta, ""));
    }
    // unlink removes only the name: even if it was swapped since the lstat, nothing is
    // written through it.
    match fs::remove_file(partial) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => {
            return Err(e).with_context(|| format!("cannot remove the stale {}", partial.display()))
        }
    }
    match open() {
        Ok(file) => Ok(file),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            let meta = fs::symlink_metadata(partial)
                .with_context(|| format!("cannot stat {}", partial.display()))?;
            Err(refuse(
                &meta,
                " (it reappeared after the stale one was removed)",
            ))
        }
        Err(e) => Err(e).with_context(|| format!("cannot create {}", partial.display())),
    }
}

/// After the rename, `path` must be the file we wrote: if something replaced the
/// `.partial` meanwhile, the rename moved that instead. Our data stays in a 0600 file
/// either way; the run must not report an archive that is not there.
fn check_landed(path: &Path, partial: &Path, written: &fs::Metadata) -> anyhow::Result<()> {
    let landed =
        fs::symlink_metadata(path).with_context(|| format!("cannot stat {}", path.display()))?;
    if landed.file_type().is_symlink()
        || landed.dev() != written.dev()
        || landed.ino() != written.ino()
    {
        return Err(failure(
            Exit::Runtime,
            format!(
                "backup failed: after renaming {} to {}, that name holds {}, not the archive this run wrote \
                 (something replaced the .partial while it was written); do not use {}, remove it, \
                 and check who can write to that directory",
                partial.display(),
                path.display(),
                describe(path, &landed),
                path.display()
            ),
        ));
    }
    Ok(())
}

/// "a symbolic link to X owned by nobody (uid 65534)", for refusals.
fn describe(path: &Path, meta: &fs::Metadata) -> String {
    let kind = meta.file_type();
    let what = if kind.is_symlink() {
        match fs::read_link(path) {
            Ok(to) => format!("a symbolic link to {}", to.display()),
            Err(_) => "a symbolic link".to_string(),
        }
    } else if kind.is_file() {
        "a regular file".to_string()
    } else if kind.is_dir() {
        "a directory".to_string()
    } else {
        "a special file".to_string()
    };
    format!("{what} owned by {}", user_name(meta.uid()))
}

pub fn user_name(uid: u32) -> String {
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: getpwuid_r writes into `pwd` and `buf` (whose length we pass) and sets
    // `result` to null or to `pwd`; pw_name then points into `buf`, which outlives its use.
    let name = unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result);
        if rc == 0 && !result.is_null() && !pwd.pw_name.is_null() {
            Some(
                std::ffi::CStr::from_ptr(pwd.pw_name)
                    .to_string_lossy()
                    .into_owned(),
            )
        } else {
            None
        }
    };
    match name {
        Some(n) => format!("{n} (uid {uid})"),
        None => format!("uid {uid}"),
    }
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

fn free_bytes(dir: &Path) -> anyhow::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .with_context(|| format!("bad path {}", dir.display()))?;
    // SAFETY: statvfs writes into the zeroed struct we pass; the path is NUL-terminated.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("cannot read free space of {}", dir.display()));
    }
    Ok(st.f_bavail as u64 * st.f_frsize as u64)
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

    #[test]
    fn a_swapped_final_name_is_detected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ours = dir.path().join("ours");
        let path = dir.path().join("x.tar.gz");
        let file = File::create(&ours).expect("create");
        let written = file.metadata().expect("stat");
        fs::rename(&ours, &path).expect("rename");
        check_landed(&path, &ours, &written).expect("our own file passes");
        fs::remove_file(&path).expect("remove");
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), &path).expect("symlink");
        let err = check_landed(&path, &ours, &written).expect_err("a link fails");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        fs::remove_file(&path).expect("remove");
        File::create(&path).expect("create other");
        assert!(
            check_landed(&path, &ours, &written).is_err(),
            "another file fails"
        );
    }
}
