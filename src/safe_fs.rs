//! Files in directories that another user can write to: the embedded cluster's data
//! directory (owned by the server user while root runs jobdbctl), an install prefix, an
//! engine's job-log tree.
//!
//! What it guarantees:
//! - No symbolic link is followed below a directory handle: every name is opened relative to
//!   its parent's open descriptor with `O_NOFOLLOW` (directories also `O_DIRECTORY`).
//! - A file is created only exclusively (`O_CREAT|O_EXCL|O_NOFOLLOW`, under a name of its
//!   own), made ready on the open descriptor (`fchmod`, `fchown`, data, `fsync`) and then
//!   renamed over the final name, which a rename replaces and never follows.
//! - What is read is checked on the open descriptor: a regular file, with one link, owned by
//!   a user the caller allows — so a link or a hard link to a root-only file is refused.
//! - A tree is removed with one descriptor at a time, whatever its depth.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::Context as _;

use crate::error::{failure, Exit};

/// A refusal to use what sits at a path (a link, a shared file, another user's file): exit 3.
macro_rules! refuse {
    ($($arg:tt)*) => {
        return Err(failure(Exit::Refused, format!($($arg)*)))
    };
}

/// This process's effective user id.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// `name` inside the directory open as `dir`: resolved by the kernel from the descriptor,
/// as `openat(dir, name)` would (the `/proc/self/fd` entry is the open directory itself).
pub fn at(dir: &File, name: impl AsRef<Path>) -> PathBuf {
    Path::new("/proc/self/fd")
        .join(dir.as_raw_fd().to_string())
        .join(name)
}

/// Opens a directory without following a link at its last component.
pub fn open_dir(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Opens `name` below `dir` as a directory, following no link.
pub fn open_dir_at(dir: &File, name: impl AsRef<Path>) -> std::io::Result<File> {
    open_dir(&at(dir, name))
}

/// Opens each `/`-separated component of `rel` below `dir` in turn, following no link.
pub fn open_dir_beneath(dir: &File, rel: &Path) -> std::io::Result<File> {
    let mut current = dir.try_clone()?;
    for part in rel.components() {
        current = open_dir_at(&current, part.as_os_str())?;
    }
    Ok(current)
}

/// Who may own a file that is read or replaced: one of these uids.
#[derive(Debug, Clone, Copy)]
pub struct Owners<'a>(pub &'a [u32]);

impl Owners<'_> {
    fn allow(&self, uid: u32) -> bool {
        self.0.contains(&uid)
    }
}

/// Opens `name` below `dir` for reading: a regular file with one link, owned as `owners`
/// allow. `Ok(None)` when there is no such name.
pub fn open_read_at(
    dir: &File,
    dir_path: &Path,
    name: &str,
    owners: Owners,
) -> anyhow::Result<Option<File>> {
    let shown = dir_path.join(name);
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(at(dir, name))
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            refuse!(
                "{} is a symbolic link; jobdbctl does not follow it (remove it)",
                shown.display()
            )
        }
        Err(e) => return Err(e).with_context(|| format!("cannot open {}", shown.display())),
    };
    let meta = file
        .metadata()
        .with_context(|| format!("cannot stat {}", shown.display()))?;
    check_plain(&meta, &shown, owners)?;
    Ok(Some(file))
}

fn check_plain(meta: &fs::Metadata, shown: &Path, owners: Owners) -> anyhow::Result<()> {
    if !meta.is_file() {
        refuse!("{} is not a regular file", shown.display());
    }
    if meta.nlink() > 1 {
        refuse!(
            "{} has {} hard links; jobdbctl does not read or replace a file that is also elsewhere (copy it to a file of its own)",
            shown.display(),
            meta.nlink()
        );
    }
    if !owners.allow(meta.uid()) {
        refuse!(
            "{} belongs to uid {}, not to the user who should own it; jobdbctl does not read or replace it (check who put it there)",
            shown.display(),
            meta.uid()
        );
    }
    Ok(())
}

/// Writes `body` to `name` below `dir`: into a new file created exclusively, with `mode` and
/// (when root) `owner` set on its descriptor, synced, then renamed over `name`. What sits at
/// `name` before must be absent or a regular file that `replaceable` allows; a link, a
/// directory or a file of another owner is refused with its path.
pub fn replace_at(
    dir: &File,
    dir_path: &Path,
    name: &str,
    body: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
    replaceable: Owners,
) -> anyhow::Result<()> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let shown = dir_path.join(name);
    match fs::symlink_metadata(at(dir, name)) {
        Ok(meta) if meta.file_type().is_symlink() => refuse!(
            "{} is a symbolic link; jobdbctl does not write through it (remove it, then run again)",
            shown.display()
        ),
        Ok(meta) => check_plain(&meta, &shown, replaceable)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot stat {}", shown.display())),
    }
    let temp = format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let write = || -> anyhow::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(at(dir, &temp))
            .with_context(|| format!("cannot create {}", dir_path.join(&temp).display()))?;
        // On the descriptor: the umask does not narrow it, and no path is followed.
        file.set_permissions(fs::Permissions::from_mode(mode))
            .with_context(|| format!("cannot chmod {}", dir_path.join(&temp).display()))?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::fchown(&file, Some(uid), Some(gid))
                .with_context(|| format!("cannot chown {}", dir_path.join(&temp).display()))?;
        }
        file.write_all(body)
            .and_then(|()| file.sync_all())
            .with_context(|| format!("cannot write {}", dir_path.join(&temp).display()))?;
        fs::rename(at(dir, &temp), at(dir, name))
            .with_context(|| format!("cannot rename {} to {}", temp, shown.display()))?;
        dir.sync_all()
            .with_context(|| format!("cannot sync {}", dir_path.display()))
    };
    write().inspect_err(|_| {
        let _ = fs::remove_file(at(dir, &temp));
    })
}

/// Removes `name` below `dir` and everything under it, holding one directory descriptor at
/// a time whatever the depth (std's `remove_dir_all` holds one per level and runs out of
/// descriptors on a tree thousands deep). Going back up, `..` must be the directory it came
/// from (device and inode), else the tree was moved meanwhile and the removal stops there.
pub fn remove_tree_at(dir: &File, name: &OsStr) -> std::io::Result<()> {
    if !fs::symlink_metadata(at(dir, name))?.is_dir() {
        return fs::remove_file(at(dir, name));
    }
    // The directories entered below `dir`: (name in its parent, device, inode).
    let mut path: Vec<(std::ffi::OsString, u64, u64)> = Vec::new();
    let mut current = open_dir_at(dir, name)?;
    let id = |f: &File| f.metadata().map(|m| (m.dev(), m.ino()));
    let (dev, ino) = id(&current)?;
    path.push((name.to_os_string(), dev, ino));
    loop {
        let mut subdir = None;
        for entry in fs::read_dir(at(&current, ""))? {
            let entry = entry?;
            // DirEntry::file_type does not follow a link.
            if entry.file_type()?.is_dir() {
                subdir = Some(entry.file_name());
                break;
            }
            match fs::remove_file(at(&current, entry.file_name())) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        if let Some(sub) = subdir {
            let next = open_dir_at(&current, &sub)?;
            let (dev, ino) = id(&next)?;
            path.push((sub, dev, ino));
            current = next;
            continue;
        }
        let (done, _, _) = path
            .pop()
            .expect("the path holds the directory being emptied");
        let Some((_, dev, ino)) = path.last() else {
            drop(current);
            return fs::remove_dir(at(dir, &done));
        };
        let parent = open_dir_at(&current, "..")?;
        if id(&parent)? != (*dev, *ino) {
            return Err(std::io::Error::other(
                "the directory was moved while it was being removed; run again",
            ));
        }
        fs::remove_dir(at(&parent, &done))?;
        current = parent;
    }
}
