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

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
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
    /// Transaction blocks are refused; says how that showed.
    Statement(String),
}

/// Rounds of the probe while it shows nothing; each is a few round trips. Without other
/// clients the first round settles transaction pooling; under load another client may take
/// the released backend first, and each further round is another chance to see it: every
/// backend A's transactions ran on carries A's mark, so the chance that B lands on one grows
/// with each round (with a pool of 3 and four busy clients, five rounds once showed nothing).
const ROUNDS: usize = 10;

/// A session setting A leaves on every server backend its transactions run on. A custom
/// (dotted) name needs no privilege and touches nothing persistent; a session pool resets it
/// (`DISCARD ALL`) and a direct connection's backend ends with the run.
const MARK_SETTING: &str = "jobdbctl.pooler_probe";

/// What the second connection reports.
enum Answer {
    /// Connected, no transaction yet.
    Ready,
    /// Its backend pid and the mark it found there, inside the transaction it keeps open
    /// until told otherwise.
    Seen(i32, Option<String>),
    /// It could not connect, or its transaction failed: no evidence either way.
    Failed(String),
    /// It closed, told to make way for A (see [`Watch`]).
    GaveWay,
}

/// What the second connection is told to do.
enum Ask {
    Begin,
    Rollback,
    /// Close, and say so.
    Close,
}

/// Connection B, started before A connects, so that its connection time does not add to
/// every run's (a server backend's start, like A's: 7–8 ms of a 26 ms `status` in the
/// benchmark). It must never keep A out:
/// - [`Watch`] closes B if B got in while A is still kept out after [`HOLD_BACK`] (a pooler
///   that gives each client a backend at login, with one left); the probe then opens a new
///   B once A is in, as it does whenever B gave way or was refused.
/// - Where A finds no connection slot left (B may hold the last one), the caller stops B
///   and connects A again.
///
/// Once A is in, only the probe closes B, so a busy pool cannot make the probe lose B.
pub struct Second {
    ask: mpsc::Sender<Ask>,
    answers: mpsc::Receiver<Answer>,
    thread: std::thread::JoinHandle<()>,
    connected: Arc<AtomicBool>,
    /// Opened before A: the one kind that may have made way or been refused because of A's
    /// timing, and so is worth opening again.
    early: bool,
}

impl Second {
    /// Opens B before A connects; see [`Second`].
    pub fn early(target: &Target, connect_timeout: Duration, verbose: bool) -> Second {
        Second {
            early: true,
            ..Second::start(target, connect_timeout, verbose)
        }
    }

    /// Opens B on a thread of its own. Dropped without [`probe`], B closes (or ends with the
    /// process, if it is still connecting).
    pub fn start(target: &Target, connect_timeout: Duration, verbose: bool) -> Second {
        let (ask, asks) = mpsc::channel();
        let (answer, answers) = mpsc::channel();
        let connected = Arc::new(AtomicBool::new(false));
        let target = target.clone();
        let flag = Arc::clone(&connected);
        let thread = std::thread::spawn(move || {
            second_session(&target, connect_timeout, verbose, asks, answer, &flag)
        });
        Second {
            ask,
            answers,
            thread,
            connected,
            early: false,
        }
    }

    /// Closes B: waits up to `wait` for B to finish logging in (by then it may hold a
    /// connection slot), then, if it got in, for it to say goodbye, which is quick.
    pub fn stop(self, wait: Duration) {
        let Second {
            ask,
            answers,
            thread,
            connected,
            ..
        } = self;
        drop(ask);
        let _ = answers.recv_timeout(wait);
        if connected.load(Ordering::SeqCst) {
            let _ = thread.join();
        }
    }

    /// Watches A's connecting: see [`Watch`].
    pub fn watch(&self) -> Watch {
        let (done, until) = mpsc::channel::<()>();
        let ask = self.ask.clone();
        let connected = Arc::clone(&self.connected);
        std::thread::spawn(move || {
            let mut in_since = None;
            loop {
                match until.recv_timeout(WATCH_TICK) {
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
                if connected.load(Ordering::SeqCst) {
                    let since = *in_since.get_or_insert_with(std::time::Instant::now);
                    if since.elapsed() >= HOLD_BACK {
                        let _ = ask.send(Ask::Close);
                        return;
                    }
                }
            }
        });
        Watch(done)
    }
}

/// While A connects: closes B once B has been in for [`HOLD_BACK`] and A is still not.
/// Dropped when A's connecting ends, either way.
pub struct Watch(#[allow(dead_code)] mpsc::Sender<()>);

/// How long A may still be connecting after B got in before B makes way. A direct
/// connection takes milliseconds; longer, A is likely kept out by B.
const HOLD_BACK: Duration = Duration::from_secs(1);
const WATCH_TICK: Duration = Duration::from_millis(20);

/// Connection B once the probe is done with it: its thread rolls back and closes on its own
/// while the run goes on, and is waited for before the run opens another connection (so a
/// small session pool has B's backend back) and at the latest when this is dropped (so B
/// says goodbye to the server rather than vanish with the process).
pub struct SecondSession(Option<std::thread::JoinHandle<()>>);

impl SecondSession {
    pub fn finish(mut self) {
        self.join();
    }

    fn join(&mut self) {
        if let Some(thread) = self.0.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for SecondSession {
    fn drop(&mut self) {
        self.join();
    }
}

/// Probes how `db` (a connection to `target`) reaches the server, with `second` (B) started
/// for it.
///
/// A second connection (B) is opened first. Then, in rounds: A reads its backend pid p; B at
/// once opens a transaction and reads its backend pid q, keeping the transaction open while
/// A reads its pid again (p'). With its own session, A's pid never changes and B cannot get
/// A's backend, which A holds. Behind transaction pooling A's backend goes back to the pool
/// after each of A's transactions: B gets it (PgBouncer hands out the most recently released
/// backend first), or, when another client took it meanwhile, A's next transaction may run
/// on another backend, or B lands on a backend an earlier round of A marked. Any of these
/// settles it; a round that shows none is repeated.
///
/// Without an answer from B (a session pool with no backend to spare, a pooler that refuses
/// transaction blocks), A checks that it may open a transaction at all and that its backend
/// stays, then asks the pooler.
pub fn probe(
    db: &mut Db,
    target: &Target,
    connect_timeout: Duration,
    second: Second,
) -> anyhow::Result<(Pooling, SecondSession)> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mark = format!("{}-{nanos}", std::process::id());
    let login_wait = connect_timeout.max(SECOND_CONNECTION_WAIT);
    let mut second = second;
    let mut first = second.answers.recv_timeout(login_wait);
    // B started before A had connected: a server A had to wait for may have refused it, or
    // it made way for A. Either way a new B, now that A is in.
    let gave_way = |b: &Second| matches!(b.answers.try_recv(), Ok(Answer::GaveWay));
    let mut renewed = !second.early;
    if !renewed && matches!(first, Ok(Answer::Failed(_)))
        || matches!(first, Ok(Answer::Ready)) && gave_way(&second)
    {
        second = Second::start(target, connect_timeout, db.verbose);
        first = second.answers.recv_timeout(login_wait);
        renewed = true;
    }
    let mut evidence = None;
    // Why B gave no answer, when it did not, and whether it is still waiting for one.
    let (mut silent, mut waiting) = logged_in(first);
    let mut rounds = 0;
    while silent.is_none() && evidence.is_none() && rounds < ROUNDS {
        rounds += 1;
        let p = marked_backend_pid(db, &mark)?;
        let _ = second.ask.send(Ask::Begin);
        match second.answers.recv_timeout(SECOND_CONNECTION_WAIT) {
            Ok(Answer::Seen(q, _)) if q == p => {
                evidence = Some(Pooling::Transaction(format!(
                    "a second connection got this connection's server backend, pid {p}, between its transactions"
                )));
            }
            Ok(Answer::Seen(q, seen)) if seen.as_deref() == Some(mark.as_str()) => {
                evidence = Some(Pooling::Transaction(format!(
                    "a second connection got a server backend this connection had used, pid {q}"
                )));
            }
            Ok(Answer::Seen(..)) => {
                evidence = moved(db, p)?.map(Pooling::Transaction);
                let _ = second.ask.send(Ask::Rollback);
            }
            // Told to make way just as A got in: a new B, and the round again.
            Ok(Answer::GaveWay) if !renewed => {
                second = Second::start(target, connect_timeout, db.verbose);
                renewed = true;
                rounds -= 1;
                (silent, waiting) = logged_in(second.answers.recv_timeout(login_wait));
            }
            Ok(Answer::GaveWay) => silent = Some("it closed".to_string()),
            Ok(Answer::Failed(why)) => silent = Some(why),
            Ok(Answer::Ready) => silent = Some("no answer".to_string()),
            Err(_) => {
                silent = Some(format!(
                    "no server backend within {SECOND_CONNECTION_WAIT:?}"
                ));
                waiting = true;
            }
        }
    }
    // Ends B's transaction and connection. A B still waiting is left to finish on its own:
    // it rolls back and closes once it gets a backend, or when this process exits.
    let Second { ask, thread, .. } = second;
    drop(ask);
    let second = SecondSession((!waiting).then_some(thread));
    if let Some(verdict) = evidence {
        return Ok((verdict, second));
    }
    let Some(why) = silent else {
        return Ok((Pooling::Session, second));
    };
    // What follows may make A's pooler drop it: B is done first.
    second.finish();
    db.note(&format!(
        "pooler probe: the second connection failed: {why}"
    ));
    // A statement-mode pool drops A for this check, so it comes first.
    if let Some(refused) = transaction_block_refused(db)? {
        // The pooler's own words, from whichever connection got them (the other may see
        // only its connection close).
        let words = match refused.as_db_error() {
            Some(_) => one_line(&refused),
            None => why,
        };
        return Ok((
            Pooling::Statement(format!("it refused a transaction block: {words}")),
            SecondSession(None),
        ));
    }
    if rounds == 0 {
        let p = backend_pid(db)?;
        if let Some(evidence) = moved(db, p)? {
            return Ok((Pooling::Transaction(evidence), SecondSession(None)));
        }
    }
    Ok((
        pool_mode(db)?.unwrap_or(Pooling::Session),
        SecondSession(None),
    ))
}

/// What B's first answer means for the probe: `None` when B is in, else why B will give no
/// evidence and whether it is still waiting to log in. Logging in needs no server backend: a pooler
/// answers for the server, so a B that has not logged in by now is not going to soon.
fn logged_in(first: Result<Answer, mpsc::RecvTimeoutError>) -> (Option<String>, bool) {
    match first {
        Ok(Answer::Ready) => (None, false),
        Ok(Answer::Failed(why)) => (Some(why), false),
        Ok(Answer::Seen(..)) | Ok(Answer::GaveWay) | Err(_) => {
            (Some("not connected in time".to_string()), true)
        }
    }
}

/// A statement-mode pool refuses `BEGIN` (PgBouncer drops the connection for it).
fn transaction_block_refused(db: &mut Db) -> anyhow::Result<Option<postgres::Error>> {
    super::log(db.verbose, "pooler_probe_begin", "BEGIN");
    match db.client.simple_query("BEGIN") {
        Ok(_) => {
            db.simple("pooler_probe_rollback", "ROLLBACK")?;
            Ok(None)
        }
        Err(e) => Ok(Some(e)),
    }
}

/// A's backend pid after `p`: a change means A's session is not its own.
fn moved(db: &mut Db, p: i32) -> anyhow::Result<Option<String>> {
    let now = backend_pid(db)?;
    Ok((now != p).then(|| {
        format!(
            "this connection's server backend changed between its transactions, pid {p} then {now}"
        )
    }))
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

/// Leaves the mark on A's backend and reads its pid, in one transaction.
fn marked_backend_pid(db: &mut Db, mark: &str) -> anyhow::Result<i32> {
    // The mark is digits and a dash (made by `probe`): nothing to quote.
    let sql = format!("SET {MARK_SETTING} = '{mark}'; SELECT pg_backend_pid()");
    let messages = db.simple("pooler_probe_mark", &sql)?;
    parse_pid(&messages).ok_or_else(|| anyhow::anyhow!("pooler_probe_mark: no pid in the answer"))
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

fn second_value(messages: &[SimpleQueryMessage]) -> Option<String> {
    messages.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(row) => row.get(1).map(str::to_string),
        _ => None,
    })
}

fn parse_pid(messages: &[SimpleQueryMessage]) -> Option<i32> {
    first_value(messages).and_then(|v| v.parse().ok())
}

/// Connection B: connects, then opens a transaction and reports its backend pid on each
/// `Begin`, rolls back on `Rollback`, and rolls back and closes when the probe hangs up.
fn second_session(
    target: &Target,
    connect_timeout: Duration,
    verbose: bool,
    asks: mpsc::Receiver<Ask>,
    answer: mpsc::Sender<Answer>,
    connected: &AtomicBool,
) {
    let mut client: Client = match super::connect::open(target, &target.pg_config(connect_timeout))
    {
        Ok(Ok(client)) => client,
        Ok(Err(e)) => {
            let _ = answer.send(Answer::Failed(one_line(&e)));
            return;
        }
        Err(e) => {
            let _ = answer.send(Answer::Failed(format!("{e:#}")));
            return;
        }
    };
    connected.store(true, Ordering::SeqCst);
    let _ = answer.send(Answer::Ready);
    let mut open = false;
    while let Ok(ask) = asks.recv() {
        match ask {
            Ask::Begin => {
                let sql = format!(
                    "BEGIN; SELECT pg_backend_pid(), current_setting('{MARK_SETTING}', true)"
                );
                super::log(verbose, "pooler_probe_second_session", &sql);
                let seen = match client.simple_query(&sql) {
                    Ok(messages) => {
                        open = true;
                        match parse_pid(&messages) {
                            Some(pid) => Answer::Seen(pid, second_value(&messages)),
                            None => Answer::Failed("no pid in the answer".to_string()),
                        }
                    }
                    Err(e) => Answer::Failed(one_line(&e)),
                };
                let failed = matches!(seen, Answer::Failed(_));
                if answer.send(seen).is_err() || failed {
                    break;
                }
            }
            Ask::Rollback => {
                open = false;
                super::log(verbose, "pooler_probe_second_session", "ROLLBACK");
                if client.simple_query("ROLLBACK").is_err() {
                    return;
                }
            }
            Ask::Close => {
                drop(client);
                let _ = answer.send(Answer::GaveWay);
                return;
            }
        }
    }
    if open {
        let _ = client.simple_query("ROLLBACK");
    }
}
