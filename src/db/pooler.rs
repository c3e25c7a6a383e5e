//! Whether a connection goes through a pooler that hands server sessions to other clients
//! between transactions (transaction or statement pooling).
//!
//! jobdbctl keeps state in its session for the whole run: the advisory locks that make runs
//! one at a time, search_path and other settings, prepared statements. Behind such a pooler
//! those outlive the run on a server connection another client gets next, and two runs that
//! land on the same server connection both pass the same (re-entrant) lock. So such a pooler
//! is refused before anything changes.
//!
//! The probe uses only the simple query protocol (no prepared statement to collide with one
//! left on a shared server connection) and takes no lock. It relies on nothing a particular
//! pooler says about itself, only on what any pooler must do: in session mode (or with no
//! pooler) a client connection keeps one server backend for its lifetime; in transaction mode
//! its backend goes back to the pool after every transaction, where another client can get it.

use std::sync::mpsc;
use std::time::Duration;

use postgres::{Client, SimpleQueryMessage};

use crate::db::{one_line, Db};
use crate::target::Target;

/// How long the second connection may wait for a server backend. It waits only when every
/// backend of the pool is taken: in session mode by other clients (this run holds one), in
/// transaction mode by transactions in progress, which are short.
const SECOND_CONNECTION_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pooling {
    /// Every client connection keeps its own server session: a direct connection, or a pool
    /// in session mode.
    Session,
    /// Server sessions change hands between transactions; says how that showed.
    Transaction(String),
    /// Transaction blocks are refused; the pooler's message.
    Statement(String),
}

/// What the second connection saw.
enum Second {
    /// Its backend pid, inside an open transaction.
    Pid(i32),
    /// It could not connect, or its transaction failed: no evidence either way.
    Failed(String),
}

/// Probes how `db` (a connection to `target`) reaches the server.
///
/// On `db` (A): backend pid p1. A second connection (B) opens a transaction and reads its
/// backend pid q, keeping the transaction open while A reads its pid twice more (p2, p3).
/// With its own session, A's pid never changes and B cannot have A's backend (A holds it).
/// Behind transaction pooling, A's backend is free between A's transactions: B gets it
/// (PgBouncer hands out the most recently released backend first), or, when another client
/// took it meanwhile, A's next transactions run on another backend.
///
/// Without an answer from B (a session pool with no backend to spare, a pooler that refuses
/// transaction blocks), A checks that it may open a transaction at all and that its backend
/// stays, then asks the pooler.
pub fn probe(db: &mut Db, target: &Target, connect_timeout: Duration) -> anyhow::Result<Pooling> {
    let p1 = backend_pid(db)?;
    let (answer_tx, answer) = mpsc::channel();
    let (release, release_rx) = mpsc::channel::<()>();
    let second_target = target.clone();
    let verbose = db.verbose;
    let second = std::thread::spawn(move || {
        second_session(
            &second_target,
            connect_timeout,
            verbose,
            answer_tx,
            release_rx,
        )
    });
    let seen = answer.recv_timeout(SECOND_CONNECTION_WAIT);
    let verdict = match &seen {
        Ok(Second::Pid(q)) if *q == p1 => Some(Pooling::Transaction(format!(
            "a second connection got this connection's server backend, pid {p1}, between its transactions"
        ))),
        Ok(Second::Pid(_)) => moved(db, p1)?.map(Pooling::Transaction),
        Ok(Second::Failed(why)) => {
            db.note(&format!("pooler probe: the second connection failed: {why}"));
            // Before anything else on A: a statement-mode pool drops A for the check. B's
            // error is the one that says why (A may see only its connection close).
            transaction_block_refused(db)?.map(|_| Pooling::Statement(why.clone()))
        }
        Err(_) => {
            db.note(&format!(
                "pooler probe: the second connection got no server backend within {SECOND_CONNECTION_WAIT:?}"
            ));
            moved(db, p1)?.map(Pooling::Transaction)
        }
    };
    drop(release);
    if seen.is_ok() {
        // B answered: let it roll back and close, so a small session pool has its backend
        // back before this run opens more connections. (A B still waiting for a backend is
        // left to finish on its own: it rolls back and closes once it gets one, or when this
        // process exits.)
        let _ = second.join();
    }
    if let Some(verdict) = verdict {
        return Ok(verdict);
    }
    match seen {
        Ok(Second::Pid(_)) => Ok(Pooling::Session),
        // No evidence from B: a session pool with no backend to spare (this run holds one),
        // or a second connection refused. What A can still tell:
        Ok(Second::Failed(_)) => Ok(match moved(db, p1)? {
            Some(evidence) => Pooling::Transaction(evidence),
            None => pool_mode(db)?.unwrap_or(Pooling::Session),
        }),
        Err(_) => Ok(match transaction_block_refused(db)? {
            Some(refusal) => Pooling::Statement(refusal),
            None => pool_mode(db)?.unwrap_or(Pooling::Session),
        }),
    }
}

/// A statement-mode pool refuses `BEGIN` (PgBouncer drops the connection for it).
fn transaction_block_refused(db: &mut Db) -> anyhow::Result<Option<String>> {
    super::log(db.verbose, "pooler_probe_begin", "BEGIN");
    match db.client.simple_query("BEGIN") {
        Ok(_) => {
            db.simple("pooler_probe_rollback", "ROLLBACK")?;
            Ok(None)
        }
        Err(e) => Ok(Some(one_line(&e))),
    }
}

/// A's backend pid after the first: a change means A's session is not its own.
fn moved(db: &mut Db, p1: i32) -> anyhow::Result<Option<String>> {
    for _ in 0..2 {
        let p = backend_pid(db)?;
        if p != p1 {
            return Ok(Some(format!(
                "this connection's server backend changed between its transactions, pid {p1} then {p}"
            )));
        }
    }
    Ok(None)
}

/// What a pooler says about itself, when it answers `SHOW pool_mode` on an ordinary
/// connection (PostgreSQL does not know the name). Asked only when the probe had no second
/// connection to go by, to keep an error out of every direct server's log.
fn pool_mode(db: &mut Db) -> anyhow::Result<Option<Pooling>> {
    let Ok(messages) = db.simple("show_pool_mode", "SHOW pool_mode") else {
        return Ok(None);
    };
    Ok(
        first_value(&messages).and_then(|mode| match mode.to_ascii_lowercase().as_str() {
            "transaction" => Some(Pooling::Transaction(
                "the pooler reports pool_mode = transaction".to_string(),
            )),
            "statement" => Some(Pooling::Statement(
                "the pooler reports pool_mode = statement".to_string(),
            )),
            _ => None,
        }),
    )
}

fn backend_pid(db: &mut Db) -> anyhow::Result<i32> {
    let messages = db.simple("backend_pid", "SELECT pg_backend_pid()")?;
    parse_pid(&messages).ok_or_else(|| anyhow::anyhow!("backend_pid: no pid in the answer"))
}

fn first_value(messages: &[SimpleQueryMessage]) -> Option<String> {
    messages.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
        _ => None,
    })
}

fn parse_pid(messages: &[SimpleQueryMessage]) -> Option<i32> {
    first_value(messages).and_then(|v| v.parse().ok())
}

/// Connection B: opens a transaction, reports its backend pid, and keeps the transaction
/// (and so its backend) until `release` is dropped.
fn second_session(
    target: &Target,
    connect_timeout: Duration,
    verbose: bool,
    answer: mpsc::Sender<Second>,
    release: mpsc::Receiver<()>,
) {
    let mut client: Client = match super::open(target, &target.pg_config(connect_timeout)) {
        Ok(Ok(client)) => client,
        Ok(Err(e)) => {
            let _ = answer.send(Second::Failed(one_line(&e)));
            return;
        }
        Err(e) => {
            let _ = answer.send(Second::Failed(format!("{e:#}")));
            return;
        }
    };
    let sql = "BEGIN; SELECT pg_backend_pid()";
    super::log(verbose, "pooler_probe_second_session", sql);
    match client.simple_query(sql) {
        Ok(messages) => {
            let seen = match parse_pid(&messages) {
                Some(q) => Second::Pid(q),
                None => Second::Failed("no pid in the answer".to_string()),
            };
            let _ = answer.send(seen);
            // Blocks until the probe is done with A (or gave up on B).
            let _ = release.recv();
            let _ = client.simple_query("ROLLBACK");
        }
        Err(e) => {
            let _ = answer.send(Second::Failed(one_line(&e)));
        }
    }
}
