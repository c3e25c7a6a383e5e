//! `--log-file PATH`: one line per run appended for cron (`<RFC 3339 time> jobdbctl[<pid>]
//! <args>: exit <code>[: <error line>]`), in a file opened without following links, mode
//! 0600, and never holding the value of `--database-url` (it may carry a password).

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::error::{self, Exit};
use crate::output;

/// `--log-file FILE` or `--log-file=FILE`, wherever it stands (it is a global option).
pub fn log_file_arg(argv: &[OsString]) -> Option<PathBuf> {
    let mut it = argv.iter().skip(1);
    let mut found = None;
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        }
        if a == "--log-file" {
            found = it.next().map(PathBuf::from);
        } else if let Some(v) = a.to_str().and_then(|s| s.strip_prefix("--log-file=")) {
            found = Some(PathBuf::from(v));
        }
    }
    found.map(|p| crate::config::absolute(&p, None))
}

/// Opens the log for appending without following a link, creating it with mode 0600;
/// refuses (exit 3) anything but a regular file of this user with one name, since cron
/// runs as root and the log's directory may be writable by others.
pub fn open_log(path: &Path) -> anyhow::Result<File> {
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                error::failure(
                    Exit::Refused,
                    format!(
                        "refusing to write log file {}: it is a symbolic link; give the path of a regular file",
                        path.display()
                    ),
                )
            } else {
                anyhow::Error::new(e).context(format!("cannot open log file {}", path.display()))
            }
        })?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot stat log file {}", path.display()))?;
    // SAFETY: geteuid cannot fail.
    let euid = unsafe { libc::geteuid() };
    if !meta.is_file() || meta.uid() != euid || meta.nlink() != 1 {
        return Err(error::failure(
            Exit::Refused,
            format!(
                "refusing to write log file {}: it is not a regular file of this user with a single name; remove it or choose another path",
                path.display()
            ),
        ));
    }
    Ok(file)
}

/// `<RFC 3339 time> jobdbctl[<pid>] <args>: exit <code>[: <error line>]`. The value of
/// --database-url is left out: it may hold a password.
/// What the run wants its log line to say besides its exit code (the archive a backup
/// wrote, and its size); set by the command, read by `main` once at the end.
static OUTCOME: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Records what the log line should say of this run's result.
pub fn note_outcome(text: String) {
    if let Ok(mut outcome) = OUTCOME.lock() {
        *outcome = Some(text);
    }
}

pub fn log_line(argv: &[OsString], code: u8, error: Option<&str>) -> String {
    let mut words = Vec::new();
    let mut hide_next = false;
    for a in argv.iter().skip(1) {
        let a = a.to_string_lossy();
        if hide_next {
            words.push("<hidden>".to_string());
            hide_next = false;
        } else if a == "--database-url" {
            hide_next = true;
            words.push(a.into_owned());
        } else if a.starts_with("--database-url=") {
            words.push("--database-url=<hidden>".to_string());
        } else {
            words.push(output::printable(&a, 200));
        }
    }
    let mut line = format!(
        "{} jobdbctl[{}] {}: exit {code}",
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        std::process::id(),
        words.join(" ")
    );
    if let Some(e) = error {
        line.push_str(": ");
        line.push_str(&output::printable(e, 2000));
    } else if let Some(outcome) = OUTCOME.lock().ok().and_then(|mut o| o.take()) {
        line.push_str(": ");
        line.push_str(&output::printable(&outcome, 2000));
    }
    line.push('\n');
    line
}
