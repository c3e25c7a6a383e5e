//! Where an archive goes: a file written as `PATH.partial`, fsynced and renamed to `PATH`
//! only when complete, or standard output. A run killed at any point leaves no file under
//! the final name; at most a `.partial`, which retention never counts and the next run to
//! the same name overwrites.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use chrono::Utc;

use crate::archive::writer::Output;
use crate::context::Ctx;
use crate::error::{failure, Exit};
use crate::output::human_bytes;

/// Where the archive goes: a file written as `PATH.partial` and renamed when complete, or
/// standard output.
pub enum Destination {
    Stdout,
    File { path: PathBuf, partial: PathBuf },
}

impl Destination {
    pub fn choose(ctx: &Ctx, output: Option<&Path>, stem: &str) -> anyhow::Result<Destination> {
        let default_name = || {
            format!(
                "{}-{}.tar.gz",
                sanitize(stem),
                Utc::now().format("%Y%m%dT%H%M%S%.3fZ")
            )
        };
        let path = match output {
            Some(p) if p == Path::new("-") => return Ok(Destination::Stdout),
            Some(p) if p.is_dir() => p.join(default_name()),
            Some(p) => p.to_path_buf(),
            None => {
                let dir = &ctx.config.backup_dir.value;
                fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create backup directory {}", dir.display()))?;
                dir.join(default_name())
            }
        };
        let mut partial = path.clone().into_os_string();
        partial.push(".partial");
        Ok(Destination::File {
            path,
            partial: PathBuf::from(partial),
        })
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
            Destination::File { partial, .. } => {
                let file = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(partial)
                    .with_context(|| format!("cannot create {}", partial.display()))?;
                // A .partial left by a killed run may have had other permissions.
                file.set_permissions(fs::Permissions::from_mode(0o600))
                    .with_context(|| format!("cannot chmod {}", partial.display()))?;
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

    /// Makes the archive durable under its final name: fsync the data, rename, fsync the
    /// directory.
    pub fn complete(&self, file: Option<File>) -> anyhow::Result<Option<PathBuf>> {
        let Destination::File { path, partial } = self else {
            return Ok(None);
        };
        if let Some(f) = file {
            f.sync_all()
                .with_context(|| format!("cannot write {}", partial.display()))?;
        }
        fs::rename(partial, path).with_context(|| {
            format!("cannot rename {} to {}", partial.display(), path.display())
        })?;
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
