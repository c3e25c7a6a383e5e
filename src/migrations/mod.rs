//! Batched background migrations and schema upgrades.
//!
//! What they guarantee:
//! - Finalizing: each batch job's attempt is recorded and committed before the batch's own
//!   transaction, and a batch's updates commit together with its success record. A kill -9
//!   mid-batch rolls that batch back and leaves a visible `running` job whose attempt
//!   counts; the next run resumes there, so the end result equals one UPDATE of the whole
//!   range. One finalizer per migration (a second exits 7); a batch that times out is
//!   halved and retried; a batch that fails `MAX_ATTEMPTS` times marks the migration failed
//!   (exit 1). Pausing the migration from another session stops the run after its batch.
//! - Upgrading: each schema version is applied in its own transaction, so a kill leaves
//!   whole versions only. One migrator at a time (others wait `--lock-wait`, then exit 7).
//!   A version is applied only once its required background migration is finished and,
//!   when breaking, once no live worker of an older version is left (or, with
//!   `--force-after-wait`, after their jobs were released).

pub mod batch_sizer;
pub mod finalizer;
pub mod steer;
pub mod upgrade;

use crate::db::batched_migrations::{self as bm, Migration, Tables};
use crate::db::Db;
use crate::error::{failure, Exit};

/// The migration with this id, or a usage error pointing at the list.
pub fn find(db: &mut Db, tables: &Tables, id: i64) -> anyhow::Result<Migration> {
    bm::by_id(db, tables, id)?.ok_or_else(|| {
        failure(
            Exit::Usage,
            format!(
                "no background migration with id {id}; see `jobdbctl background-migrations list`"
            ),
        )
    })
}
