//! Reaching the server: one connection, retried with backoff while the server starts or a
//! failover runs, and the kinds of refusal a caller tells apart (credentials, no slot left).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context as _;
use postgres::error::SqlState;
use postgres::{Client, NoTls};

use super::errors::one_line;
use super::pooler::{self, Pooling, SecondSession};
use super::Db;
use crate::error::{failure, Exit, Failure};
use crate::output::Output;
use crate::target::{tls, Target};

const CONNECT_ATTEMPTS: u32 = 6;

/// Errors worth retrying at start-up: nothing listening yet, a dropped connection, or a
/// server that is starting up or shutting down.
fn is_transient(e: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    if let Some(db) = e.as_db_error() {
        return *db.code() == SqlState::CANNOT_CONNECT_NOW;
    }
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        if let Some(io) = inner.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
            );
        }
        source = inner.source();
    }
    false
}

fn is_authentication_failure(e: &postgres::Error) -> bool {
    e.code().is_some_and(|code| {
        [
            SqlState::INVALID_PASSWORD,
            SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
        ]
        .contains(code)
    })
}

/// The server answered but refused the credentials: it is up, and retrying will not help.
#[derive(Debug)]
pub struct AuthenticationFailed;

impl std::fmt::Display for AuthenticationFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "the server is up but refused these credentials; check the user name and the password (PGPASSWORD, PGPASSFILE or ~/.pgpass)",
        )
    }
}

impl std::error::Error for AuthenticationFailed {}

/// The server (or the role or database) had no connection slot left.
#[derive(Debug)]
pub struct NoConnectionSlot;

impl std::fmt::Display for NoConnectionSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no connection slot left")
    }
}

impl std::error::Error for NoConnectionSlot {}

/// Whether connecting failed because no connection slot was left.
pub fn no_connection_slot(err: &anyhow::Error) -> bool {
    err.chain().any(|e| e.is::<NoConnectionSlot>())
}

/// PostgreSQL's "too many connections" (for the server, a role or a database), or
/// PgBouncer's refusals past `max_client_conn` and its per-user and per-database client
/// limits.
fn is_out_of_slots(e: &postgres::Error) -> bool {
    e.code() == Some(&SqlState::TOO_MANY_CONNECTIONS)
        || e.as_db_error().is_some_and(|db| {
            ["no more connections allowed", "client connections exceeded"]
                .iter()
                .any(|m| db.message().contains(m))
        })
}

/// Whether connecting failed because the server refused the credentials.
pub fn authentication_failed(err: &anyhow::Error) -> bool {
    err.downcast_ref::<AuthenticationFailed>().is_some()
        || err.chain().any(|e| e.is::<AuthenticationFailed>())
}

/// One connection attempt to `target` with `pg`; the outer error is a TLS set-up problem.
pub(super) fn open(
    target: &Target,
    pg: &tokio_postgres::Config,
) -> anyhow::Result<Result<Client, postgres::Error>> {
    let pg = postgres::Config::from(pg.clone());
    Ok(match target {
        Target::Remote(remote) if remote.tls.mode != tls::TlsMode::Disable => {
            pg.connect(tls::connector(&remote.tls)?)
        }
        _ => pg.connect(NoTls),
    })
}

/// A connection on a single-thread runtime of its own, for work that wants many messages per
/// poll ([`snapshot::Stream`]). Connects once: it joins a run whose first connection has
/// already reached the server.
pub(super) fn open_driven(
    target: &Target,
    connect_timeout: Duration,
) -> anyhow::Result<(tokio::runtime::Runtime, tokio_postgres::Client)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime of a COPY stream")?;
    let pg = target.pg_config(connect_timeout);
    let client = match target {
        Target::Remote(remote) if remote.tls.mode != tls::TlsMode::Disable => {
            let tls = tls::connector(&remote.tls)?;
            rt.block_on(async {
                let (client, connection) = pg.connect(tls).await?;
                tokio::spawn(connection);
                Ok(client)
            })
        }
        _ => rt.block_on(async {
            let (client, connection) = pg.connect(NoTls).await?;
            tokio::spawn(connection);
            Ok(client)
        }),
    }
    .map_err(|e: postgres::Error| {
        failure(
            Exit::Connect,
            format!("cannot connect to {}: {}", target.describe(), one_line(&e)),
        )
    })?;
    Ok((rt, client))
}

impl Db {
    /// Connects, retrying a refused or reset connection (a server restarting, a failover in
    /// progress) a few times with backoff; each retry is reported through `on_retry`.
    pub fn connect(
        target: &Target,
        connect_timeout: Duration,
        verbose: bool,
        on_retry: &dyn Fn(String),
    ) -> anyhow::Result<Db> {
        let pg = target.pg_config(connect_timeout);
        let mut delay = Duration::from_millis(250);
        let mut attempt = 1;
        loop {
            match open(target, &pg)? {
                Ok(client) => return Ok(Db::new(client, verbose)),
                Err(e) if attempt < CONNECT_ATTEMPTS && is_transient(&e) => {
                    attempt += 1;
                    on_retry(format!(
                        "cannot connect to {} ({}); retrying in {delay:?} (attempt {attempt}/{CONNECT_ATTEMPTS})",
                        target.describe(),
                        one_line(&e),
                    ));
                    std::thread::sleep(delay);
                    delay *= 2;
                }
                Err(e) => {
                    let failed = |hint: &str| Failure {
                        exit: Exit::Connect,
                        message: format!(
                            "cannot connect to {}: {}{hint}",
                            target.describe(),
                            one_line(&e)
                        ),
                    };
                    // Kinds a caller tells apart travel as the error under the message.
                    return Err(if is_authentication_failure(&e) {
                        anyhow::Error::new(AuthenticationFailed).context(failed(""))
                    } else if is_out_of_slots(&e) {
                        anyhow::Error::new(NoConnectionSlot)
                            .context(failed("; wait for connections to end, or raise the limit"))
                    } else {
                        anyhow::Error::new(failed(match target {
                            Target::Embedded(_) => "; start it with `jobdbctl start`",
                            Target::Remote(_) => {
                                "; check the URL, that the server is up, and credentials"
                            }
                        }))
                    });
                }
            }
        }
    }
}

/// The longest pause while a connection slot the pooler check's second connection held comes
/// free (pauses double from 25 ms: five tries in 0.8 s).
const MAX_SLOT_PAUSE: Duration = Duration::from_millis(400);

/// A run's connections to one server: the first one checks (once per run, away from the
/// embedded cluster) that no pooler in transaction or statement mode shares its session.
#[derive(Default)]
pub struct Connector {
    /// Set once a connection showed the target keeps sessions apart (see `connect`).
    sessions_checked: AtomicBool,
    /// The pooler probe's second connection, closing while the run goes on.
    probe_session: Mutex<Option<SecondSession>>,
}

impl Connector {
    /// A connection to `target`, its warnings going to `out`.
    pub fn connect(
        &self,
        target: &Target,
        timeout: Duration,
        verbose: bool,
        out: Output,
    ) -> anyhow::Result<Db> {
        if let Some(second) = self.probe_session.lock().ok().and_then(|mut s| s.take()) {
            second.finish();
        }
        // The embedded cluster is reached on its own socket, with no pooler in between.
        // Elsewhere one check per run is enough: every connection goes the same way. The
        // check's second connection opens alongside this one, so its start adds nothing to
        // the run's; it never keeps this one out (`pooler::Second`).
        let check = target.cluster().is_none() && !self.sessions_checked.load(Ordering::Relaxed);
        let mut second = check.then(|| pooler::Second::early(target, timeout, verbose));
        let connect = || Db::connect(target, timeout, verbose, &|m| out.warn(m));
        let watch = second.as_ref().map(pooler::Second::watch);
        let connected = connect();
        drop(watch);
        let mut db = match connected {
            Ok(db) => db,
            // No slot left (of the server, the role, the database or a pooler): the second
            // connection may hold it. It goes, and this one tries again while the slot
            // comes free.
            Err(e) if no_connection_slot(&e) && second.is_some() => {
                // Even a second connection that did not get in counts: two logins at once can
                // both be refused by a limit that would have let one in.
                if let Some(second) = second.take() {
                    second.stop(timeout);
                }
                let mut pause = Duration::from_millis(25);
                loop {
                    match connect() {
                        Ok(db) => break db,
                        Err(e) if no_connection_slot(&e) && pause <= MAX_SLOT_PAUSE => {
                            std::thread::sleep(pause);
                            pause *= 2;
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
            Err(e) => return Err(e),
        };
        db.on_warning(move |message| out.warn(message));
        if check {
            // Opened again, now that this one is in, if it made way.
            let second = second.unwrap_or_else(|| pooler::Second::start(target, timeout, verbose));
            self.refuse_shared_sessions(&mut db, target, timeout, second)?;
            self.sessions_checked.store(true, Ordering::Relaxed);
        }
        Ok(db)
    }
    /// Refuses (exit 3) a pooler in transaction or statement mode before anything changes:
    /// the run's locks and settings live in its session, which such a pooler shares.
    fn refuse_shared_sessions(
        &self,
        db: &mut Db,
        target: &Target,
        timeout: Duration,
        second: pooler::Second,
    ) -> anyhow::Result<()> {
        let (pooling, second) = pooler::probe(db, target, timeout, second)?;
        if let Ok(mut slot) = self.probe_session.lock() {
            *slot = Some(second);
        }
        let (mode, evidence) = match pooling {
            Pooling::Session => return Ok(()),
            Pooling::Transaction(evidence) => ("transaction", evidence),
            Pooling::Statement(evidence) => ("statement", evidence),
        };
        Err(failure(
            Exit::Refused,
            format!(
                "{} is behind a connection pooler in {mode} pooling mode ({evidence}): jobdbctl's locks \
                 and settings live in its session, which such a pool shares with other clients; \
                 connect directly to PostgreSQL, or through a pool in session mode",
                target.describe()
            ),
        ))
    }
}
