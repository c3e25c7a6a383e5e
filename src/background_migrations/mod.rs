//! Batched background migrations (GitLab's `batched_background_migrations`): listing,
//! pausing and resuming them (`steer`), and finishing one in the foreground (`finalizer`).
//!
//! What finalizing guarantees: each batch job's attempt is recorded and committed before the
//! batch's own transaction, and a batch's updates commit together with its success record.
//! A kill -9 mid-batch rolls that batch back and leaves a visible `running` job whose attempt
//! counts; the next run resumes there, so the end result equals one UPDATE of the whole
//! range. One finalizer per migration (a second exits 7); a batch that times out is halved
//! and retried; a batch that fails `MAX_ATTEMPTS` times marks the migration failed (exit 1).
//! Pausing the migration from another session stops the run after its batch.

pub mod finalizer;
pub mod report;
pub mod steer;

use crate::db::batched_migrations::{self as bm, BackgroundMigration, Tables};
use crate::db::Db;
use crate::error::{failure, Exit};

/// The migration with this id, or a usage error pointing at the list.
pub fn find(db: &mut Db, tables: &Tables, id: i64) -> anyhow::Result<BackgroundMigration> {
    bm::by_id(db, tables, id)?.ok_or_else(|| {
        failure(
            Exit::Usage,
            format!(
                "no background migration with id {id}; see `jobdbctl background-migrations list`"
            ),
        )
    })
}
