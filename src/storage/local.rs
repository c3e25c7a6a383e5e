//! A local directory of archives. It may be writable by others (a group-writable
//! /srv/backups) and the archives hold every job's payload, so nothing already sitting at a
//! name is ever written through: an archive is written as `NAME.partial`, created exclusively
//! (`O_CREAT|O_EXCL|O_NOFOLLOW`, mode 0600 from its first byte), fsynced, renamed to `NAME`,
//! and the directory fsynced. Only our own stale `.partial` (a regular file of this user) is
//! removed first; anything else there, or at the final name, is refused (exit 3) before
//! anything is written. After the rename the final name must hold the very file written (same
//! device and inode, not a link), else the write fails loudly. Reads never follow a link at
//! an archive's name.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::{partial_name, Identity, Listed, Object, Store, Upload};
use crate::error::{failure, Exit};
use crate::shared::users::user_name;

pub struct LocalDir {
    dir: PathBuf,
}

impl LocalDir {
    pub fn new(dir: &Path) -> LocalDir {
        LocalDir {
            dir: dir.to_path_buf(),
        }
    }

    /// The directory holding `path` (`.` for a bare name) and the file name in it.
    pub fn of_file(path: &Path) -> anyhow::Result<(LocalDir, String)> {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("{} does not end in a file name", path.display()))?;
        Ok((LocalDir::new(dir), name.to_string()))
    }
}

impl LocalDir {
    fn start(&self, name: &str, replace: bool) -> anyhow::Result<Box<dyn Upload>> {
        let path = self.path_of(name);
        let partial = self.path_of(&partial_name(name));
        check_final_name(&path)?;
        let file = create_partial(&partial)?;
        Ok(Box::new(LocalUpload {
            dir: self.dir.clone(),
            path,
            partial,
            file,
            replace,
        }))
    }
}

impl Store for LocalDir {
    fn describe(&self) -> String {
        self.dir.display().to_string()
    }

    fn path_of(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn exists(&self) -> bool {
        self.dir.is_dir()
    }

    fn prepare(&self) -> anyhow::Result<()> {
        fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create {}", self.dir.display()))
    }

    fn list(&self) -> anyhow::Result<Vec<Listed>> {
        let dir = &self.dir;
        let mut listed = Vec::new();
        let entries =
            fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
        for e in entries {
            let e = e.with_context(|| format!("cannot list {}", dir.display()))?;
            let Some(name) = e.file_name().to_str().map(str::to_string) else {
                continue;
            };
            // DirEntry::metadata does not follow links.
            let Ok(meta) = e.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            listed.push(Listed {
                name,
                bytes: meta.len(),
                modified: meta.modified().ok(),
                owner: meta.uid(),
                identity: (meta.dev(), meta.ino()),
            });
        }
        Ok(listed)
    }

    fn open(&self, name: &str) -> std::io::Result<Box<dyn Object>> {
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(self.path_of(name))?;
        LocalFile::of(file)
    }

    fn create(&self, name: &str) -> anyhow::Result<Box<dyn Upload>> {
        self.start(name, true)
    }

    fn create_new(&self, name: &str) -> anyhow::Result<Box<dyn Upload>> {
        self.start(name, false)
    }

    fn remove(&self, name: &str, identity: Identity) -> anyhow::Result<bool> {
        let path = self.path_of(name);
        let gone = |e: &std::io::Error| e.kind() == ErrorKind::NotFound;
        // The name may have been swapped since it was read (the directory may be shared);
        // delete only the file that was checked.
        let still = match fs::symlink_metadata(&path) {
            Err(e) if gone(&e) => return Ok(true),
            other => other.with_context(|| format!("cannot stat {}", path.display()))?,
        };
        if (still.dev(), still.ino()) != identity || !still.is_file() {
            return Ok(false);
        }
        match fs::remove_file(&path) {
            Err(e) if !gone(&e) => {
                Err(e).with_context(|| format!("cannot remove {}", path.display()))
            }
            _ => Ok(true),
        }
    }

    fn free_bytes(&self) -> anyhow::Result<u64> {
        use std::os::unix::ffi::OsStrExt;
        let dir = &self.dir;
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
}

/// An archive the operator named by its path (`restore PATH`, `verify PATH`): opened as
/// given, a link to it included.
pub fn open_path(path: &Path) -> std::io::Result<Box<dyn Object>> {
    LocalFile::of(File::open(path)?)
}

struct LocalFile {
    file: File,
    bytes: u64,
    identity: Identity,
}

impl LocalFile {
    fn of(file: File) -> std::io::Result<Box<dyn Object>> {
        let meta = file.metadata()?;
        Ok(Box::new(LocalFile {
            bytes: meta.len(),
            identity: (meta.dev(), meta.ino()),
            file,
        }))
    }
}

impl Object for LocalFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        self.file.read_at(buf, offset)
    }

    fn stream(&self) -> std::io::Result<Box<dyn Read + Send>> {
        let mut file = self.file.try_clone()?;
        file.seek(SeekFrom::Start(0))?;
        Ok(Box::new(file))
    }

    fn bytes(&self) -> u64 {
        self.bytes
    }

    fn identity(&self) -> Identity {
        self.identity
    }
}

struct LocalUpload {
    dir: PathBuf,
    path: PathBuf,
    partial: PathBuf,
    file: File,
    /// Whether completing may replace our own older file at the final name; without, the
    /// partial is linked there, which fails when anything is.
    replace: bool,
}

impl Upload for LocalUpload {
    fn writer(&mut self) -> anyhow::Result<Box<dyn std::io::Write + Send>> {
        let writer = self
            .file
            .try_clone()
            .with_context(|| format!("cannot open {}", self.partial.display()))?;
        Ok(Box::new(std::io::BufWriter::with_capacity(1 << 20, writer)))
    }

    /// fsync the data, rename, check that the final name holds the file we wrote, fsync the
    /// directory.
    fn complete(self: Box<Self>) -> anyhow::Result<PathBuf> {
        let LocalUpload {
            dir,
            path,
            partial,
            file,
            replace,
        } = *self;
        file.sync_all()
            .with_context(|| format!("cannot write {}", partial.display()))?;
        let written = file
            .metadata()
            .with_context(|| format!("cannot stat {}", partial.display()))?;
        if replace {
            fs::rename(&partial, &path).with_context(|| {
                format!("cannot rename {} to {}", partial.display(), path.display())
            })?;
        } else {
            let linked = fs::hard_link(&partial, &path);
            let _ = fs::remove_file(&partial);
            linked.with_context(|| {
                format!("cannot link {} to {}", partial.display(), path.display())
            })?;
        }
        check_landed(&path, &partial, &written)?;
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("cannot sync directory {}", dir.display()))?;
        Ok(path)
    }

    fn abort(self: Box<Self>) {
        let _ = fs::remove_file(&self.partial);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
