//! Restore's statements: a staging schema built from the archive's DDL and loaded with COPY,
//! then swapped for the live schema in one transaction. The staging schema has a fixed name
//! per target schema, so a run killed half-way leaves something the next run recognises and
//! drops (it holds the backup/restore lock, so nothing else can be using it).

use std::io::Write;

use anyhow::Context as _;
use sha2::{Digest, Sha256};

use crate::archive::columns::{Edit, NewValue};
use crate::archive::{CopyFormat, SchemaDdl, Table};
use crate::db::profile::ProfileChoice;
use crate::db::{
    copy_option, log, page_ranges, pages_condition, qualified, quote_ident, schema, snapshot,
    sql_error, sql_state, Db, Profile, ProfileKind, Sql, Tx,
};
use crate::error::{failure, Exit};
use crate::output::printable;

/// How long the swap waits for each lock on the live schema (workers' transactions on the
/// jobs table) before it gives up, leaving the live schema as it was.
pub const SWAP_LOCK_TIMEOUT: &str = "30s";
/// COPY data goes to the server in messages of at most this size, so no copy of a whole
/// piece of the archive builds up in the client library's buffers.
const COPY_MESSAGE: usize = 256 << 10;

/// The staging schema restore loads into, and the name the old schema briefly takes during
/// the swap; both recognisable, and within PostgreSQL's 63-byte identifier limit.
pub fn work_schemas(schema: &str) -> (String, String) {
    let tag = if schema.len() <= 40 {
        schema.to_string()
    } else {
        hex::encode(&Sha256::digest(schema.as_bytes())[..8])
    };
    (
        format!("jobdbctl_restore_{tag}"),
        format!("jobdbctl_replaced_{tag}"),
    )
}

/// Drops what a killed restore left behind.
pub fn drop_leftovers(db: &mut Db, schema: &str) -> anyhow::Result<Vec<String>> {
    let (staging, replaced) = work_schemas(schema);
    let mut dropped = Vec::new();
    for name in [staging, replaced] {
        let exists = !db
            .query(
                "find_leftover_schema",
                "SELECT 1 FROM pg_namespace WHERE nspname = $1",
                &[&name],
            )?
            .is_empty();
        if exists {
            db.batch(
                "drop_leftover_schema",
                &format!("DROP SCHEMA {} CASCADE", quote_ident(&name)),
            )?;
            dropped.push(name);
        }
    }
    Ok(dropped)
}

pub fn schema_exists(db: &mut impl Sql, schema: &str) -> anyhow::Result<bool> {
    Ok(!db
        .query(
            "schema_exists",
            "SELECT 1 FROM pg_namespace WHERE nspname = $1",
            &[&schema],
        )?
        .is_empty())
}

/// Whether the jobs table holds any row. Refuses when row-level security would hide rows
/// from this role (the answer could be a wrong "no").
pub fn has_jobs(db: &mut impl Sql, profile: &Profile) -> anyhow::Result<bool> {
    let table = profile.jobs_table();
    let hidden: bool = db
        .query_one(
            "jobs_under_row_security",
            "SELECT coalesce(row_security_active(to_regclass($1)), false)",
            &[&table],
        )?
        .get(0);
    if hidden {
        return Err(failure(
            Exit::Refused,
            format!(
                "row-level security hides rows of {table} from this role, so it cannot be checked for jobs; connect as the table's owner, a superuser or a role with BYPASSRLS"
            ),
        ));
    }
    Ok(db
        .query_one(
            "has_jobs",
            &format!("SELECT EXISTS (SELECT 1 FROM {})", profile.jobs_table()),
            &[],
        )?
        .get(0))
}

/// Creates the staging schema and everything in it but data, indexes, constraints,
/// triggers and row-level security, and commits, so the loader connections see it. Refuses,
/// before creating anything, when a role the DDL names does not exist here.
pub fn create_staging(db: &mut Db, staging: &str, ddl: &SchemaDdl) -> anyhow::Result<()> {
    let missing = missing_roles(db, &ddl.roles)?;
    if !missing.is_empty() {
        let names: Vec<String> = missing.iter().map(|r| format!("{r:?}")).collect();
        return Err(failure(
            Exit::Refused,
            format!(
                "the backup's row-level security policies apply to {} {} that {} not exist on this server; create them first (CREATE ROLE …) and run the restore again",
                if names.len() == 1 { "role" } else { "roles" },
                names.join(", "),
                if names.len() == 1 { "does" } else { "do" }
            ),
        ));
    }
    let pre_data = &ddl.pre_data;
    let mut tx = db.transaction()?;
    tx.batch(
        "create_staging_schema",
        &format!("CREATE SCHEMA {}", quote_ident(staging)),
    )?;
    in_schema(&mut tx, staging, true)?;
    // Bodies may name objects that exist only once the swap is done.
    tx.batch("no_body_checks", "SET LOCAL check_function_bodies = off")?;
    for stmt in pre_data {
        tx.batch("pre_data", stmt)
            .with_context(|| format!("recreating the schema failed at: {}", excerpt(stmt)))?;
    }
    tx.commit()
}

/// The roles of `wanted` that do not exist on this server.
fn missing_roles(db: &mut impl Sql, wanted: &[String]) -> anyhow::Result<Vec<String>> {
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let rows = db.query(
        "missing_roles",
        "SELECT w FROM unnest($1::text[]) w WHERE NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = w) ORDER BY 1",
        &[&wanted],
    )?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Points unqualified names at `schema` (for this transaction when `local`).
pub fn in_schema(db: &mut impl Sql, schema: &str, local: bool) -> anyhow::Result<()> {
    db.execute(
        "set_search_path",
        "SELECT set_config('search_path', quote_ident($1) || ', pg_catalog', $2)",
        &[&schema, &local],
    )?;
    Ok(())
}

/// Settings for a session that loads data or builds indexes: the final swap commits
/// synchronously, so losing these commits in a crash only loses the staging schema.
pub fn prepare_worker_session(db: &mut Db, staging: &str) -> anyhow::Result<()> {
    in_schema(db, staging, false)?;
    db.batch(
        "worker_session_settings",
        "SET synchronous_commit = off; SET maintenance_work_mem = '128MB'; SET check_function_bodies = off",
    )
}

/// Sort memory for this session's index builds, sized to the largest table's rows: a
/// b-tree build sorts one tuple per row (about 60 bytes each for a bigint key with
/// PostgreSQL's sort overhead), and one that does not fit spills to disk and merges, which
/// made the index phase grow a quarter faster than the rows from 1M to 10M jobs. At least
/// the 128 MB the loaders start with, at most 1 GB; this session's setting only, never the
/// server's or the engine's.
pub fn size_index_memory(db: &mut Db, largest_table_rows: u64) -> anyhow::Result<()> {
    const FLOOR_KB: u64 = 128 << 10;
    const CEILING_KB: u64 = 1 << 20;
    let kb = (largest_table_rows.saturating_mul(64) >> 10).clamp(FLOOR_KB, CEILING_KB);
    db.execute(
        "size_index_memory",
        "SELECT set_config('maintenance_work_mem', $1, false)",
        &[&format!("{kb}kB")],
    )?;
    Ok(())
}

/// The server process of this session, to end it if its thread gets stuck.
pub fn backend_pid(db: &mut Db) -> anyhow::Result<i32> {
    Ok(db
        .query_one("backend_pid", "SELECT pg_backend_pid()", &[])?
        .get(0))
}

/// Ends sessions of this restore whose threads did not stop, so they let go of the staging
/// tables. (The same role may end its own sessions.)
pub fn end_sessions(db: &mut Db, pids: &[i32]) -> anyhow::Result<()> {
    if pids.is_empty() {
        return Ok(());
    }
    db.query(
        "end_stuck_loader_sessions",
        "SELECT pg_terminate_backend(pid) FROM unnest($1::int4[]) pid",
        &[&pids],
    )?;
    Ok(())
}

/// A `COPY … FROM STDIN` into a staging table, fed an entry's pieces as they arrive.
/// Dropped without [`CopyIn::finish`], it is aborted.
pub struct CopyIn<'a> {
    writer: postgres::CopyInWriter<'a>,
    table: String,
}

/// Starts loading COPY data (text, or binary COPY files) into a staging table.
pub fn copy_in<'a>(
    db: &'a mut Db,
    staging: &str,
    table: &str,
    columns: &[String],
    format: CopyFormat,
) -> anyhow::Result<CopyIn<'a>> {
    let columns: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
    // A table without loadable columns is copied with the default list (`()` is not SQL).
    let list = if columns.is_empty() {
        String::new()
    } else {
        format!(" ({})", columns.join(", "))
    };
    let format = copy_option(format);
    let sql = format!(
        "COPY {}{list} FROM STDIN{format}",
        qualified(staging, table)
    );
    log(db.verbose, "copy_in", &sql);
    let writer = db
        .client
        .copy_in(&sql)
        .map_err(|e| sql_error("copy_in", e))?;
    Ok(CopyIn {
        writer,
        table: table.to_string(),
    })
}

impl CopyIn<'_> {
    pub fn write(&mut self, data: &[u8]) -> anyhow::Result<()> {
        for message in data.chunks(COPY_MESSAGE) {
            self.writer
                .write_all(message)
                .with_context(|| format!("cannot send data for table {:?}", self.table))?;
        }
        Ok(())
    }

    /// Ends the COPY; returns the rows the server loaded.
    pub fn finish(self) -> anyhow::Result<u64> {
        self.writer.finish().map_err(|e| sql_error("copy_in", e))
    }
}

pub fn run_statement(db: &mut Db, stmt: &str) -> anyhow::Result<()> {
    db.batch("post_data", stmt)
        .with_context(|| format!("recreating the schema failed at: {}", excerpt(stmt)))
}

/// Jobs that were running or locked when the backup was taken have no worker after a
/// restore: they go back to the queue (attempts kept), and queue locks are released.
/// Runs before triggers exist, so no engine trigger fires, and before the indexes, which it
/// would otherwise have to update.
///
/// The jobs table's statement is cut into `parts` block ranges (TID range scans, PostgreSQL
/// 14+) for as many connections to run at once: it is a scan of the whole table, and
/// would otherwise leave one core idle. Each row lies in exactly one range, and a row
/// once requeued no longer matches, so a new row version landing in another range is not
/// requeued twice. Each statement's result is its count of requeued jobs.
pub struct Requeue {
    pub jobs: Vec<String>,
    pub queues: Option<String>,
}

/// The requeue's statements; `jobs_done`: the jobs table's rows were requeued as they loaded
/// ([`requeue_on_load`]).
pub fn requeue_plan(
    db: &mut impl Sql,
    staging: &Profile,
    parts: usize,
    jobs_done: bool,
) -> anyhow::Result<Requeue> {
    let jobs = staging.jobs_table();
    let statement = if jobs_done {
        None
    } else if staging.kind == ProfileKind::Jobdb {
        Some(native_requeue(
            &jobs,
            "(state = 'running' OR locked_by IS NOT NULL)",
        ))
    } else if has_lock_columns(db, &jobs)? {
        Some(format!(
            "UPDATE {jobs} SET locked_at = NULL, locked_by = NULL WHERE locked_by IS NOT NULL"
        ))
    } else {
        None
    };
    let mut split = Vec::new();
    if let Some(statement) = statement {
        let blocks = if parts > 1 && snapshot::server_version_num(db)? >= 140000 {
            table_blocks(db, &jobs)?
        } else {
            0
        };
        let parts = (parts as i64).min(blocks).max(1);
        if parts == 1 {
            split.push(statement);
        } else {
            for range in page_ranges(blocks, parts) {
                split.push(format!("{statement} AND {}", pages_condition(range)));
            }
        }
    }
    let queues = staging.queues_table();
    let queues = has_lock_columns(db, &queues)?.then(|| {
        format!(
            "UPDATE {queues} SET locked_at = NULL, locked_by = NULL WHERE locked_by IS NOT NULL"
        )
    });
    Ok(Requeue {
        jobs: split,
        queues,
    })
}

/// The native schema's requeue of [`requeue_plan`] as an edit of the jobs table's rows on
/// their way to the server, which spares the UPDATE's scan of the whole table after the load
/// and the dead row versions it leaves. Only where it means exactly what the UPDATE does: a
/// native staging schema whose jobs table loads in binary and has the UPDATE's columns with
/// their own types (text compared byte for byte needs a deterministic collation). `now` is
/// the server's clock when this is asked, just before the load. The table's position in
/// `tables` and the edit; `None` leaves it to the UPDATE.
pub fn requeue_on_load(
    db: &mut impl Sql,
    staging: &str,
    choice: Option<ProfileChoice>,
    tables: &[Table],
) -> anyhow::Result<Option<(usize, Edit)>> {
    if !matches!(choice, None | Some(ProfileChoice::Jobdb)) || !schema::is_native(db, staging)? {
        return Ok(None);
    }
    let Some((index, table)) = tables
        .iter()
        .enumerate()
        .find(|(_, t)| t.name == "jobs" && t.format == CopyFormat::Binary)
    else {
        return Ok(None);
    };
    let typed: Vec<(String, String)> = db
        .query(
            "requeue_columns",
            "SELECT a.attname::text, a.atttypid::regtype::text
               FROM pg_attribute a LEFT JOIN pg_collation c ON c.oid = a.attcollation
              WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
                AND coalesce(c.collisdeterministic, true)",
            &[&qualified(staging, "jobs")],
        )?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let column = |name: &str, ty: &str| {
        typed
            .iter()
            .any(|(n, t)| n == name && t == ty)
            .then(|| table.columns.iter().position(|c| c == name))
            .flatten()
    };
    let text = "text";
    let time = "timestamp with time zone";
    let (Some(state), Some(locked_by), Some(locked_at), Some(run_at), Some(updated_at)) = (
        column("state", text),
        column("locked_by", text),
        column("locked_at", time),
        column("run_at", time),
        column("updated_at", time),
    ) else {
        return Ok(None);
    };
    // Binary timestamptz: microseconds since 2000-01-01 UTC.
    let now: i64 = db
        .query_one(
            "requeue_now",
            "SELECT ((extract(epoch FROM statement_timestamp()) - 946684800) * 1000000)::int8",
            &[],
        )?
        .get(0);
    Ok(Some((
        index,
        Edit {
            when: vec![(state, Some(b"running".to_vec())), (locked_by, None)],
            set: vec![
                (state, NewValue::Bytes(b"queued".to_vec())),
                (locked_at, NewValue::Null),
                (locked_by, NewValue::Null),
                (run_at, NewValue::AtLeast(now)),
                (updated_at, NewValue::Bytes(now.to_be_bytes().to_vec())),
            ],
        },
    )))
}

/// Queues again the jobs running in a recovered database and clears job and queue locks (see
/// [`requeue_plan`]), in place: on a native schema whose constraint ties `running` to a
/// lock, the running jobs are exactly the locked ones, found through the small partial index
/// on locks instead of a scan of every job. The jobs requeued.
pub fn requeue_in_place(db: &mut Db, profile: &Profile) -> anyhow::Result<u64> {
    let jobs = profile.jobs_table();
    let tied: bool = profile.kind == ProfileKind::Jobdb
        && db
            .query_one(
                "running_is_locked",
                "SELECT EXISTS (SELECT 1 FROM pg_constraint
                   WHERE conrelid = to_regclass($1) AND conname = 'jobs_running_is_locked'
                     AND contype = 'c' AND convalidated)",
                &[&jobs],
            )?
            .get(0);
    let mut plan = requeue_plan(db, profile, 1, false)?;
    if tied {
        plan.jobs = vec![native_requeue(&jobs, "locked_by IS NOT NULL")];
    }
    let mut requeued = 0;
    for statement in &plan.jobs {
        requeued += run_requeue(db, statement)?;
    }
    if let Some(queues) = &plan.queues {
        run_requeue(db, queues)?;
    }
    Ok(requeued)
}

/// The native schema's requeue of the jobs `condition` selects.
fn native_requeue(jobs: &str, condition: &str) -> String {
    format!(
        "UPDATE {jobs} SET state = 'queued', locked_at = NULL, locked_by = NULL,
                run_at = greatest(run_at, now()), updated_at = now()
          WHERE {condition}"
    )
}

/// Runs one statement of a [`Requeue`]; the rows it changed.
pub fn run_requeue(db: &mut Db, statement: &str) -> anyhow::Result<u64> {
    db.execute("requeue", statement, &[])
}

fn table_blocks(db: &mut impl Sql, table: &str) -> anyhow::Result<i64> {
    Ok(db
        .query_one(
            "table_blocks",
            "SELECT pg_relation_size(to_regclass($1)) / current_setting('block_size')::int8",
            &[&table],
        )?
        .get(0))
}

fn has_lock_columns(db: &mut impl Sql, table: &str) -> anyhow::Result<bool> {
    let count: i64 = db
        .query_one(
            "lock_columns",
            "SELECT count(*) FROM pg_attribute
              WHERE attrelid = to_regclass($1) AND attname IN ('locked_at', 'locked_by') AND NOT attisdropped",
            &[&table],
        )?
        .get(0);
    Ok(count == 2)
}

/// Blocks writes to the live jobs table for the rest of the swap transaction, so no job
/// slips in between the checks and the swap.
pub fn lock_live_jobs(tx: &mut Tx<'_>, profile: &Profile) -> anyhow::Result<()> {
    tx.batch(
        "swap_lock_timeout",
        &format!("SET LOCAL lock_timeout = '{SWAP_LOCK_TIMEOUT}'"),
    )?;
    tx.batch(
        "lock_live_jobs",
        &format!("LOCK TABLE {} IN EXCLUSIVE MODE", profile.jobs_table()),
    )
}

/// The swap itself: the old schema steps aside, the staging schema takes its name, the old
/// one is dropped. All inside the caller's transaction.
pub fn swap(
    tx: &mut Tx<'_>,
    schema: &str,
    staging: &str,
    replaced: &str,
    old_exists: bool,
) -> anyhow::Result<()> {
    tx.batch(
        "swap_lock_timeout",
        &format!("SET LOCAL lock_timeout = '{SWAP_LOCK_TIMEOUT}'"),
    )?;
    if old_exists {
        tx.batch(
            "move_old_schema_aside",
            &format!(
                "ALTER SCHEMA {} RENAME TO {}",
                quote_ident(schema),
                quote_ident(replaced)
            ),
        )?;
    }
    tx.batch(
        "move_staging_into_place",
        &format!(
            "ALTER SCHEMA {} RENAME TO {}",
            quote_ident(staging),
            quote_ident(schema)
        ),
    )?;
    if old_exists {
        tx.batch(
            "drop_old_schema",
            &format!("DROP SCHEMA {} CASCADE", quote_ident(replaced)),
        )?;
    }
    Ok(())
}

fn excerpt(stmt: &str) -> String {
    let flat: String = stmt.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(100) {
        Some((i, _)) => format!("{}…", &flat[..i]),
        None => flat,
    }
}

/// Objects outside `schema` that depend on objects in it (a view elsewhere over its tables,
/// a foreign key from another schema, a cast using its functions). The swap's
/// `DROP SCHEMA … CASCADE` would silently drop them with the old schema.
pub fn outside_dependents(db: &mut impl Sql, schema: &str) -> anyhow::Result<Vec<String>> {
    let rows = db.query(
        "outside_dependents",
        "WITH ns AS (SELECT oid FROM pg_namespace WHERE nspname = $1),
              inside AS (
                SELECT 'pg_class'::regclass AS classid, c.oid FROM pg_class c JOIN ns ON c.relnamespace = ns.oid
                UNION ALL SELECT 'pg_type'::regclass, t.oid FROM pg_type t JOIN ns ON t.typnamespace = ns.oid
                UNION ALL SELECT 'pg_proc'::regclass, p.oid FROM pg_proc p JOIN ns ON p.pronamespace = ns.oid)
         -- A view's dependency is held by its rewrite rule; name the view.
         SELECT DISTINCT CASE WHEN d.classid = 'pg_rewrite'::regclass
                              THEN (SELECT pg_describe_object('pg_class'::regclass, r.ev_class, 0) FROM pg_rewrite r WHERE r.oid = d.objid)
                              ELSE pg_describe_object(d.classid, d.objid, 0) END
           FROM pg_depend d JOIN inside i ON d.refclassid = i.classid AND d.refobjid = i.oid
          WHERE d.deptype IN ('n', 'a')
            AND (CASE d.classid
                   WHEN 'pg_class'::regclass THEN (SELECT relnamespace FROM pg_class WHERE oid = d.objid)
                   WHEN 'pg_type'::regclass THEN (SELECT typnamespace FROM pg_type WHERE oid = d.objid)
                   WHEN 'pg_proc'::regclass THEN (SELECT pronamespace FROM pg_proc WHERE oid = d.objid)
                   WHEN 'pg_constraint'::regclass THEN (SELECT connamespace FROM pg_constraint WHERE oid = d.objid)
                   WHEN 'pg_attrdef'::regclass THEN (SELECT c.relnamespace FROM pg_attrdef a JOIN pg_class c ON c.oid = a.adrelid WHERE a.oid = d.objid)
                   WHEN 'pg_rewrite'::regclass THEN (SELECT c.relnamespace FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class WHERE r.oid = d.objid)
                   WHEN 'pg_trigger'::regclass THEN (SELECT c.relnamespace FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE t.oid = d.objid)
                   WHEN 'pg_policy'::regclass THEN (SELECT c.relnamespace FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid WHERE p.oid = d.objid)
                 END) IS DISTINCT FROM (SELECT oid FROM ns)
          ORDER BY 1 LIMIT 10",
        &[&schema],
    )?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Whether `err` is a statement that gave up waiting for a lock (`lock_timeout`).
pub fn is_lock_timeout(err: &anyhow::Error) -> bool {
    sql_state(err) == Some(&postgres::error::SqlState::LOCK_NOT_AVAILABLE)
}

/// Other sessions holding locks on `schema` or the tables in it (the locks the swap waits
/// for), one line each: pid, application, client, state and query.
pub fn lock_holders(db: &mut Db, schema: &str) -> anyhow::Result<Vec<String>> {
    let rows = db.query(
        "schema_lock_holders",
        "SELECT DISTINCT ON (a.pid) a.pid, coalesce(a.application_name, ''),
                coalesce(a.client_hostname, host(a.client_addr), 'local socket'),
                coalesce(a.state, ''), coalesce(a.query, ''),
                coalesce(c.relname::text, 'the schema'), l.mode
           FROM pg_locks l
           LEFT JOIN pg_class c ON l.locktype = 'relation' AND c.oid = l.relation
           JOIN pg_namespace n
             ON n.oid = CASE WHEN l.locktype = 'relation' THEN c.relnamespace
                             WHEN l.locktype = 'object' AND l.classid = 'pg_namespace'::regclass THEN l.objid END
           JOIN pg_stat_activity a ON a.pid = l.pid
          WHERE l.granted AND l.pid <> pg_backend_pid() AND n.nspname = $1
            AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
          ORDER BY a.pid, c.relname
          LIMIT 5",
        &[&schema],
    )?;
    Ok(rows
        .iter()
        .map(|r| {
            let pid: i32 = r.get(0);
            let app: String = r.get(1);
            let client: String = r.get(2);
            let state: String = r.get(3);
            let query: String = r.get(4);
            let object: String = r.get(5);
            let mode: String = r.get(6);
            format!(
                "pid {pid} (application_name \"{}\", client {}, {state}, {mode} on {}, query \"{}\")",
                printable(&app, 60),
                printable(&client, 60),
                printable(&object, 80),
                printable(&query, 120)
            )
        })
        .collect())
}
