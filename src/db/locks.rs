//! Operation locks: session-level advisory locks named `jobdbctl:<name>`, so that two runs of
//! one operation (two backups, two finalizers) never work on a database at once. Held until
//! released or the `Db` is dropped, and by the server until the session ends, so a killed run
//! frees them too.

use std::time::Duration;

use postgres::types::Type;

use super::{Db, Sql};
use crate::error::{failure, Exit};

impl Db {
    /// Takes a session-level advisory lock named `name`, or fails with exit 7 when another
    /// session holds it. Released by [`Db::release_operation_lock`] or when this `Db` is
    /// dropped, and by the server when the connection closes, so a killed run frees it too.
    pub fn try_operation_lock(&mut self, name: &str, what: &str) -> anyhow::Result<()> {
        self.wait_operation_lock(name, what, Duration::ZERO)
    }

    /// As [`Db::try_operation_lock`], but waits up to `wait` for the holder to finish.
    pub fn wait_operation_lock(
        &mut self,
        name: &str,
        what: &str,
        wait: Duration,
    ) -> anyhow::Result<()> {
        // Advisory locks are re-entrant within a session; taking one twice would need two
        // releases.
        if self.held_locks.iter().any(|held| held == name) {
            return Ok(());
        }
        let deadline = std::time::Instant::now() + wait;
        loop {
            let got: bool = self
                .query_typed_one(
                    "try_operation_lock",
                    "SELECT pg_try_advisory_lock(hashtextextended('jobdbctl:' || $1, 0))",
                    &[(&name, Type::TEXT)],
                )?
                .get(0);
            if got {
                self.held_locks.push(name.to_string());
                return Ok(());
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                let holder = self.lock_holder(name)?;
                return Err(failure(
                    Exit::Locked,
                    format!("another jobdbctl {what} is running on this database{holder}; wait for it to finish"),
                ));
            }
            // Advisory locks cannot be waited on with a timeout from here; poll.
            std::thread::sleep((deadline - now).min(Duration::from_millis(200)));
        }
    }

    /// Releases a lock taken by [`Db::try_operation_lock`] before the connection closes, for
    /// a run that goes on to other work (`finalize-migration --all`). Warns when the session
    /// no longer held it: then nothing kept another run out meanwhile.
    pub fn release_operation_lock(&mut self, name: &str) -> anyhow::Result<()> {
        self.held_locks.retain(|held| held != name);
        if !self.unlock(name)? {
            self.warn(&lock_gone(name));
        }
        Ok(())
    }

    fn unlock(&mut self, name: &str) -> anyhow::Result<bool> {
        Ok(self
            .query_typed_one(
                "release_operation_lock",
                "SELECT pg_advisory_unlock(hashtextextended('jobdbctl:' || $1, 0))",
                &[(&name, Type::TEXT)],
            )?
            .get(0))
    }

    fn lock_holder(&mut self, name: &str) -> anyhow::Result<String> {
        let rows = self.query(
            "advisory_lock_holder",
            "SELECT a.pid, coalesce(a.client_hostname, a.client_addr::text, 'local'), a.backend_start::text
               FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
              WHERE l.locktype = 'advisory' AND l.granted
                AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended('jobdbctl:' || $1, 0)",
            &[&name],
        )?;
        Ok(rows
            .first()
            .map(|r| {
                let pid: i32 = r.get(0);
                let host: String = r.get(1);
                let since: String = r.get(2);
                format!(" (backend pid {pid} from {host}, since {since})")
            })
            .unwrap_or_default())
    }
}

fn lock_gone(name: &str) -> String {
    format!(
        "the jobdbctl lock {name:?} was no longer held by this session when released; \
         another run may have worked alongside this one"
    )
}

impl Drop for Db {
    /// Releases the operation locks still held, whichever way the run ends (an error, a
    /// refusal, a panic), so none outlives it on a server connection a pooler hands on.
    fn drop(&mut self) {
        for name in std::mem::take(&mut self.held_locks) {
            if self.client.is_closed() {
                return;
            }
            // Best effort: the server drops the lock with the session anyway.
            if let Ok(false) = self.unlock(&name) {
                self.warn(&lock_gone(&name));
            }
        }
    }
}
