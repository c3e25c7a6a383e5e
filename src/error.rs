//! Exit codes (docs/exit-codes.md) and the one error type that carries them.
//!
//! Everything else is `anyhow`; a command that needs a specific exit code wraps its message in
//! [`Failure`], and `main` finds it anywhere in the error chain.

use std::fmt;

/// Process exit codes. The man page and README list the same table; keep them in step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    Runtime = 1,
    Usage = 2,
    Refused = 3,
    NotReady = 4,
    BadArchive = 5,
    Connect = 6,
    Locked = 7,
}

impl Exit {
    pub const TABLE: [(Exit, &'static str); 8] = [
        (Exit::Ok, "success"),
        (Exit::Runtime, "runtime error (SQL, I/O, server failure)"),
        (Exit::Usage, "usage error (bad flag, argument or configuration)"),
        (
            Exit::Refused,
            "refused by a safety check (needs --yes/--force, live workers, non-empty target, would reuse job IDs, schema too new, a transaction-pooling connection pooler)",
        ),
        (Exit::NotReady, "`status --check`: not ready to upgrade"),
        (Exit::BadArchive, "archive invalid, corrupt or hostile"),
        (
            Exit::Connect,
            "cannot connect, server not running, or the server went away mid-command (a rerun is safe); object storage refused the credentials or did not answer within `s3_retry_for`",
        ),
        (Exit::Locked, "another jobdbctl run holds the lock for this operation"),
    ];

    pub fn code(self) -> u8 {
        self as u8
    }
}

/// An error whose exit code matters to the caller (scripts branch on it).
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

pub fn failure(exit: Exit, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Failure {
        exit,
        message: message.into(),
    })
}

/// The exit code of the outermost [`Failure`] in the chain, if there is one (`db::exit_code_of`
/// adds the server going away).
pub fn failure_exit(err: &anyhow::Error) -> Option<Exit> {
    // anyhow's own downcast also finds a Failure used as context; the chain finds one that
    // was wrapped as a source.
    err.downcast_ref::<Failure>().map(|f| f.exit).or_else(|| {
        err.chain()
            .find_map(|e| e.downcast_ref::<Failure>().map(|f| f.exit))
    })
}

/// The typed failure an I/O error carries, if storage put one in it (an object store's read
/// reaches the archive reader as `std::io`, and its exit code must survive that).
/// Looks through wrappers (the tar crate wraps I/O errors in its own, with the original as
/// the source).
pub fn failure_in_io(e: &std::io::Error) -> Option<&Failure> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = e.get_ref().map(|r| r as _);
    while let Some(err) = next {
        if let Some(f) = err.downcast_ref::<Failure>() {
            return Some(f);
        }
        next = match err.downcast_ref::<std::io::Error>() {
            Some(io) => io.get_ref().map(|r| r as _),
            None => err.source(),
        };
    }
    None
}

/// Said after an error when the server went away: every step jobdbctl takes is one
/// transaction or is redone from its start (a staging schema, a `.partial` file, an
/// idempotent batch), so nothing half-done is kept and a rerun is safe.
pub const CONNECTION_LOST_HINT: &str =
    "the server closed the connection (it stopped, restarted or ended this session); \
     nothing half-done was kept: check that the server is up, then run the command again";

/// Return early with a typed failure: `bail_with!(Exit::Refused, "…{}", x)`.
#[macro_export]
macro_rules! bail_with {
    ($exit:expr, $($arg:tt)*) => {
        return Err($crate::error::failure($exit, format!($($arg)*)))
    };
}
