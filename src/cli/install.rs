//! Installing the generated man pages and shell completions where `man` and the shells look:
//! under a prefix's `share/` (by default the prefix the running binary is installed in, so
//! `/usr/local/bin/jobdbctl` installs into `/usr/local/share/…`). Each file is written under
//! a temporary name and renamed, so a reader never sees half a page, and made readable by
//! every user (a root shell's umask may be 077).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::error::{failure, Exit};
use crate::safe_fs;

/// The prefix: the one given, else the directory above the running binary's `bin/`.
pub fn prefix(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = given {
        return Ok(dir);
    }
    let exe = std::env::current_exe().context("cannot find the running jobdbctl binary")?;
    let exe = fs::canonicalize(&exe).unwrap_or(exe);
    match exe.parent().and_then(|bin| bin.parent()) {
        Some(prefix) => Ok(prefix.to_path_buf()),
        None => Err(failure(
            Exit::Usage,
            format!(
                "cannot tell the install prefix of {}; give one with --prefix DIR",
                exe.display()
            ),
        )),
    }
}

/// Where man pages of section 1 go under a prefix.
pub const MAN_DIR: &str = "share/man/man1";

/// Writes `body` to `base/sub/name`, readable by everyone, and returns its path. `base` (the
/// prefix or output directory the operator named) is taken as given and created if missing;
/// below it nothing is followed (`safe_fs`): each directory of `sub` is created or opened
/// without following a link, the file is written under a new exclusive name and renamed into
/// place, and a link, directory or another user's file at its name is refused (exit 3) — a
/// prefix that other users can write to cannot turn a root install into a write elsewhere.
pub fn write_file(base: &Path, sub: &str, name: &str, body: &[u8]) -> anyhow::Result<PathBuf> {
    if !base.is_dir() {
        fs::create_dir_all(base).with_context(|| format!("cannot create {}", base.display()))?;
    }
    let mut dir =
        fs::File::open(base).with_context(|| format!("cannot open {}", base.display()))?;
    let mut dir_path = base.to_path_buf();
    for part in Path::new(sub).components() {
        dir_path.push(part);
        match fs::create_dir(safe_fs::at(&dir, part)) {
            Ok(()) => {
                let made = safe_fs::open_dir_at(&dir, part)
                    .with_context(|| format!("cannot open {}", dir_path.display()))?;
                made.set_permissions(fs::Permissions::from_mode(0o755))
                    .with_context(|| format!("cannot chmod {}", dir_path.display()))?;
                dir = made;
                continue;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(e).with_context(|| format!("cannot create {}", dir_path.display()))
            }
        }
        dir = safe_fs::open_dir_at(&dir, part).map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) || e.raw_os_error() == Some(libc::ENOTDIR) {
                failure(
                    Exit::Refused,
                    format!(
                        "{} is a symbolic link or not a directory; jobdbctl does not install through it (remove it, or choose another --prefix)",
                        dir_path.display()
                    ),
                )
            } else {
                anyhow::Error::new(e).context(format!("cannot open {}", dir_path.display()))
            }
        })?;
    }
    let euid = [safe_fs::euid()];
    safe_fs::replace_at(
        &dir,
        &dir_path,
        name,
        body,
        0o644,
        None,
        safe_fs::Owners(&euid),
    )?;
    Ok(dir_path.join(name))
}
