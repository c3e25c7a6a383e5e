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

/// Where man pages of section 1 go under `prefix`.
pub fn man_dir(prefix: &Path) -> PathBuf {
    prefix.join("share/man/man1")
}

/// Writes `body` to `dir/name` (creating `dir`), readable by everyone; returns the path.
pub fn write_file(dir: &Path, name: &str, body: &[u8]) -> anyhow::Result<PathBuf> {
    create_public_dir(dir)?;
    let path = dir.join(name);
    let partial = dir.join(format!(".{name}.partial"));
    fs::write(&partial, body).with_context(|| format!("cannot write {}", partial.display()))?;
    fs::set_permissions(&partial, fs::Permissions::from_mode(0o644))
        .with_context(|| format!("cannot chmod {}", partial.display()))?;
    if let Err(e) = fs::rename(&partial, &path) {
        let _ = fs::remove_file(&partial);
        return Err(e)
            .with_context(|| format!("cannot rename {} to {}", partial.display(), path.display()));
    }
    Ok(path)
}

/// Creates `dir` and its missing parents with mode 0755, leaving existing ones as they are.
fn create_public_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_public_dir(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
            .with_context(|| format!("cannot chmod {}", dir.display())),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot create {}", dir.display())),
    }
}
