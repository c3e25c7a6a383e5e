//! What went wrong with the server, as the rest of jobdbctl needs to know it: a failed
//! statement (its name, message and SQLSTATE), a server that went away, and the exit code an
//! error ends a run with.

use postgres::error::SqlState;

use crate::error::{failure_exit, Exit};

/// A failed statement: its name and the server's message on one line, keeping the SQLSTATE
/// for callers that react to a kind of failure (a timeout, say).
#[derive(Debug)]
pub struct SqlError {
    message: String,
    pub code: Option<SqlState>,
    /// The server went away (stopped, crashed, restarted, or ended this session).
    pub connection_lost: bool,
}

impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SqlError {}

/// The SQLSTATE of the failed statement anywhere in `err`'s chain.
pub fn sql_state(err: &anyhow::Error) -> Option<&SqlState> {
    err.chain()
        .find_map(|e| e.downcast_ref::<SqlError>())
        .and_then(|e| e.code.as_ref())
}

pub(super) fn sql_error(name: &str, e: postgres::Error) -> anyhow::Error {
    anyhow::Error::new(SqlError {
        message: format!("{name}: {}", one_line(&e)),
        code: e.code().cloned(),
        connection_lost: is_connection_lost(&e),
    })
}

/// Whether `e` means the server is gone rather than that a statement failed: the connection
/// closed or broke, or the server ended the session (shutdown, crash, pg_terminate_backend).
pub fn is_connection_lost(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(code) = e.code() {
        return [
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
        ]
        .contains(code);
    }
    // Not a server message: an I/O error on the socket.
    e.as_db_error().is_none()
        && std::iter::successors(std::error::Error::source(e), |inner| inner.source())
            .any(|inner| inner.is::<std::io::Error>())
}

pub fn one_line(e: &postgres::Error) -> String {
    let text = match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{}: {}", db.severity(), db.message());
            if let Some(detail) = db.detail() {
                s.push_str(&format!(" ({detail})"));
            }
            s
        }
        None => {
            let mut s = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(inner) = source {
                s.push_str(&format!(": {inner}"));
                source = inner.source();
            }
            s
        }
    };
    text.replace('\n', " ")
}

/// The exit code for an error: the outermost [`crate::error::Failure`] in the chain, else
/// cannot-connect when the server went away mid-command, else a runtime error.
pub fn exit_code_of(err: &anyhow::Error) -> Exit {
    failure_exit(err).unwrap_or(if connection_lost(err) {
        Exit::Connect
    } else {
        Exit::Runtime
    })
}

/// Whether the server went away under this error (stopped, crashed, restarted, or ended the
/// session), as opposed to refusing a statement.
pub fn connection_lost(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<SqlError>().is_some_and(|s| s.connection_lost)
            || e.downcast_ref::<postgres::Error>()
                .is_some_and(is_connection_lost)
            // COPY streams report the database error inside an io::Error, whose source()
            // skips it.
            || e.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<postgres::Error>())
                .is_some_and(is_connection_lost)
    })
}
