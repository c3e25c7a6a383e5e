//! The native `jobdb` schema: its versions ship inside the binary as ordered migrations.

use crate::db::{quote_ident, Db, Sql, Tx};
use crate::error::{failure, Exit};

pub struct SchemaVersion {
    pub version: i32,
    pub name: &'static str,
    /// Workers that only know older versions break once this is applied; `migrate` waits
    /// for them to exit first.
    pub breaking: bool,
    /// A batched background migration (queued by an earlier version) that must be finished
    /// before this one may run.
    pub requires: Option<RequiredBackgroundMigration>,
    /// Runs with `search_path` set to the job schema, so it names tables unqualified.
    pub up: &'static str,
}

/// Identifies a batched background migration the way GitLab does: by its configuration.
pub struct RequiredBackgroundMigration {
    pub job_class_name: &'static str,
    pub table_name: &'static str,
    pub column_name: &'static str,
    /// The column it fills: the first job argument of a `BackfillColumnJob`.
    pub fills_column: &'static str,
}

pub const DEFAULT_SCHEMA: &str = "jobdb";

pub const MIGRATIONS: &[SchemaVersion] = &[
    SchemaVersion {
        version: 1,
        name: "initial job schema",
        breaking: false,
        requires: None,
        up: V1_INITIAL,
    },
    SchemaVersion {
        version: 2,
        name: "job queue ids",
        breaking: false,
        requires: None,
        up: V2_JOB_QUEUE_IDS,
    },
    SchemaVersion {
        version: 3,
        name: "job_queue_id is authoritative",
        breaking: true,
        requires: Some(JOB_QUEUE_ID_BACKFILL),
        up: V3_JOB_QUEUE_ID_AUTHORITATIVE,
    },
];

/// Fills `jobs.job_queue_id` for jobs that existed before version 2.
pub const JOB_QUEUE_ID_BACKFILL: RequiredBackgroundMigration = RequiredBackgroundMigration {
    job_class_name: "BackfillColumnJob",
    table_name: "jobs",
    column_name: "id",
    fills_column: "job_queue_id",
};

pub fn latest_version() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

const V1_INITIAL: &str = r#"
CREATE TABLE schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    breaking   boolean NOT NULL DEFAULT false,
    applied_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE jobs (
    id              bigserial PRIMARY KEY,
    queue_name      text,
    task_identifier text NOT NULL,
    payload         jsonb NOT NULL DEFAULT '{}'::jsonb,
    priority        integer NOT NULL DEFAULT 0,
    run_at          timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0,
    max_attempts    integer NOT NULL DEFAULT 25 CHECK (max_attempts >= 1),
    last_error      text,
    state           text NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    locked_at       timestamptz,
    locked_by       text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    -- A running job is held by exactly one worker; anything else holds no lock. This is what
    -- lets status count running jobs from the small locked-jobs index.
    CONSTRAINT jobs_running_is_locked CHECK ((state = 'running') = (locked_by IS NOT NULL))
);
-- The engine's dequeue path; also gives status an exact queued count without a table scan.
CREATE INDEX jobs_queued_idx ON jobs (priority, run_at, id) WHERE state = 'queued';
-- Locked jobs are few; status and unlock-stale-jobs find them here.
CREATE INDEX jobs_locked_by_idx ON jobs (locked_by, locked_at) WHERE locked_by IS NOT NULL;

CREATE TABLE job_queues (
    queue_name text PRIMARY KEY,
    locked_at  timestamptz,
    locked_by  text
);
CREATE INDEX job_queues_locked_by_idx ON job_queues (locked_by) WHERE locked_by IS NOT NULL;

CREATE TABLE workers (
    worker_id         text PRIMARY KEY,
    hostname          text,
    pid               integer,
    version           text,
    schema_version    integer,
    started_at        timestamptz NOT NULL DEFAULT now(),
    last_heartbeat_at timestamptz NOT NULL DEFAULT now()
);

-- Column for column the shape GitLab uses for batched background migrations.
CREATE TABLE batched_background_migrations (
    id                bigserial PRIMARY KEY,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    min_value         bigint NOT NULL DEFAULT 1,
    max_value         bigint NOT NULL,
    batch_size        integer NOT NULL,
    sub_batch_size    integer NOT NULL,
    "interval"        smallint NOT NULL,
    status            smallint NOT NULL DEFAULT 0,
    job_class_name    text NOT NULL,
    batch_class_name  text NOT NULL DEFAULT 'PrimaryKeyBatchingStrategy',
    table_name        text NOT NULL,
    column_name       text NOT NULL,
    job_arguments     jsonb NOT NULL DEFAULT '[]'::jsonb,
    total_tuple_count bigint,
    pause_ms          integer NOT NULL DEFAULT 100,
    max_batch_size    integer,
    started_at        timestamptz,
    on_hold_until     timestamptz,
    finished_at       timestamptz,
    CONSTRAINT check_positive_sub_batch_size CHECK (sub_batch_size > 0),
    CONSTRAINT check_max_batch_size CHECK (max_batch_size IS NULL OR max_batch_size >= batch_size),
    CONSTRAINT check_batch_size_in_range CHECK (batch_size >= sub_batch_size)
);
CREATE UNIQUE INDEX index_batched_background_migrations_on_unique_configuration
    ON batched_background_migrations (job_class_name, table_name, column_name, job_arguments);
CREATE INDEX index_batched_background_migrations_on_status ON batched_background_migrations (status);

CREATE TABLE batched_background_migration_jobs (
    id                              bigserial PRIMARY KEY,
    created_at                      timestamptz NOT NULL DEFAULT now(),
    updated_at                      timestamptz NOT NULL DEFAULT now(),
    started_at                      timestamptz,
    finished_at                     timestamptz,
    batched_background_migration_id bigint NOT NULL
        REFERENCES batched_background_migrations (id) ON DELETE CASCADE,
    min_value                       bigint NOT NULL,
    max_value                       bigint NOT NULL,
    batch_size                      integer NOT NULL,
    sub_batch_size                  integer NOT NULL,
    status                          smallint NOT NULL DEFAULT 0,
    attempts                        smallint NOT NULL DEFAULT 0,
    metrics                         jsonb NOT NULL DEFAULT '{}'::jsonb,
    pause_ms                        integer NOT NULL DEFAULT 100
);
CREATE INDEX index_batched_jobs_by_migration_and_max_value
    ON batched_background_migration_jobs (batched_background_migration_id, max_value);
CREATE INDEX index_batched_jobs_by_migration_and_status
    ON batched_background_migration_jobs (batched_background_migration_id, status);
"#;

/// Version 2 (non-breaking): queues get an integer id and jobs a nullable `job_queue_id`
/// that a trigger keeps in step with `queue_name` for new and changed rows; existing rows
/// are left to a batched background migration, so this applies in moments on any size.
const V2_JOB_QUEUE_IDS: &str = r#"
ALTER TABLE job_queues ADD COLUMN id integer GENERATED BY DEFAULT AS IDENTITY;
ALTER TABLE job_queues ADD CONSTRAINT job_queues_id_key UNIQUE (id);
ALTER TABLE jobs ADD COLUMN job_queue_id integer;

-- Every queue a job names gets a row, so the backfill finds an id for every job.
INSERT INTO job_queues (queue_name)
SELECT DISTINCT queue_name FROM jobs WHERE queue_name IS NOT NULL
ON CONFLICT (queue_name) DO NOTHING;

-- SET search_path FROM CURRENT: the trigger runs with the writer's search_path otherwise.
CREATE FUNCTION jobs_sync_job_queue_id() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    IF NEW.queue_name IS NULL THEN
        NEW.job_queue_id := NULL;
        RETURN NEW;
    END IF;
    INSERT INTO job_queues (queue_name) VALUES (NEW.queue_name) ON CONFLICT (queue_name) DO NOTHING;
    SELECT q.id INTO NEW.job_queue_id FROM job_queues q WHERE q.queue_name = NEW.queue_name;
    RETURN NEW;
END
$$;
CREATE TRIGGER jobs_sync_job_queue_id BEFORE INSERT OR UPDATE OF queue_name ON jobs
    FOR EACH ROW EXECUTE FUNCTION jobs_sync_job_queue_id();

-- Queued active, or already finished when there is nothing to backfill (a fresh database).
INSERT INTO batched_background_migrations
    (min_value, max_value, batch_size, sub_batch_size, "interval", status,
     job_class_name, table_name, column_name, job_arguments, finished_at)
SELECT 1, coalesce(max(id), 1), 10000, 1000, 120,
       CASE WHEN max(id) IS NULL THEN 3 ELSE 1 END,
       'BackfillColumnJob', 'jobs', 'id',
       jsonb_build_array('job_queue_id',
           format('(SELECT q.id FROM %I.job_queues q WHERE q.queue_name = jobs.queue_name)', current_schema())),
       CASE WHEN max(id) IS NULL THEN now() END
  FROM jobs;
"#;

/// Version 3 (breaking): `job_queue_id` is the truth. A writer that sets only `queue_name`
/// (a worker of version 1 or 2) now fails the check; `queue_name` is derived from the id
/// for readers.
const V3_JOB_QUEUE_ID_AUTHORITATIVE: &str = r#"
DROP TRIGGER jobs_sync_job_queue_id ON jobs;
DROP FUNCTION jobs_sync_job_queue_id();

CREATE INDEX jobs_job_queue_id_idx ON jobs (job_queue_id) WHERE job_queue_id IS NOT NULL;
ALTER TABLE jobs ADD CONSTRAINT jobs_job_queue_id_fkey
    FOREIGN KEY (job_queue_id) REFERENCES job_queues (id);
ALTER TABLE jobs ADD CONSTRAINT jobs_queue_name_has_job_queue_id
    CHECK (queue_name IS NULL OR job_queue_id IS NOT NULL);

CREATE FUNCTION jobs_derive_queue_name() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    IF NEW.job_queue_id IS NOT NULL THEN
        SELECT q.queue_name INTO NEW.queue_name FROM job_queues q WHERE q.id = NEW.job_queue_id;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER jobs_derive_queue_name BEFORE INSERT OR UPDATE OF job_queue_id ON jobs
    FOR EACH ROW EXECUTE FUNCTION jobs_derive_queue_name();
"#;

/// What a schema name holds right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaState {
    Absent,
    Empty,
    /// Has `schema_migrations`; the highest applied version.
    Native(i32),
    /// Holds objects that are not a jobdbctl schema.
    Foreign {
        objects: i64,
    },
}

/// Whether `schema` is a native job schema: the one question profile detection asks, without
/// the catalog-wide object count of [`inspect`] (a few milliseconds on a fresh session).
pub fn is_native(db: &mut impl Sql, schema: &str) -> anyhow::Result<bool> {
    Ok(db
        .query_one(
            "has_schema_migrations",
            "SELECT to_regclass(quote_ident($1) || '.schema_migrations') IS NOT NULL",
            &[&schema],
        )?
        .get(0))
}

pub fn inspect(db: &mut impl Sql, schema: &str) -> anyhow::Result<SchemaState> {
    let row = db.query_one(
        "inspect_schema",
        "SELECT n.oid IS NOT NULL,
                (SELECT count(*) FROM pg_class c WHERE c.relnamespace = n.oid)
              + (SELECT count(*) FROM pg_proc p WHERE p.pronamespace = n.oid)
              + (SELECT count(*) FROM pg_type t WHERE t.typnamespace = n.oid AND t.typtype IN ('e','d','r','m')),
                to_regclass(quote_ident($1) || '.schema_migrations') IS NOT NULL
           FROM (SELECT $1::text AS name) s
           LEFT JOIN pg_namespace n ON n.nspname = s.name",
        &[&schema],
    )?;
    let exists: bool = row.get(0);
    let objects: Option<i64> = row.get(1);
    let has_migrations: bool = row.get(2);
    if !exists {
        return Ok(SchemaState::Absent);
    }
    if has_migrations {
        let version: Option<i32> = db
            .query_one(
                "schema_version",
                &format!(
                    "SELECT max(version) FROM {}.schema_migrations",
                    quote_ident(schema)
                ),
                &[],
            )?
            .get(0);
        return Ok(SchemaState::Native(version.unwrap_or(0)));
    }
    match objects.unwrap_or(0) {
        0 => Ok(SchemaState::Empty),
        n => Ok(SchemaState::Foreign { objects: n }),
    }
}

pub enum InitOutcome {
    Created { version: i32 },
    AlreadyPresent { version: i32 },
}

/// Creates the job schema at `version` in one transaction; a second run (or a concurrent one)
/// finds it present and changes nothing.
pub fn init(db: &mut Db, schema: &str, version: i32) -> anyhow::Result<InitOutcome> {
    if !MIGRATIONS.iter().any(|m| m.version == version) {
        return Err(failure(
            Exit::Usage,
            format!(
                "unknown schema version {version}; this jobdbctl knows versions 1 to {}",
                latest_version()
            ),
        ));
    }
    let mut tx = db.transaction()?;
    tx.execute(
        "lock_schema_init",
        "SELECT pg_advisory_xact_lock(hashtextextended('jobdbctl:schema:' || $1, 0))",
        &[&schema],
    )?;
    match inspect(&mut tx, schema)? {
        SchemaState::Native(v) => return Ok(InitOutcome::AlreadyPresent { version: v }),
        SchemaState::Foreign { objects } => {
            return Err(failure(
                Exit::Refused,
                format!(
                    "schema {schema:?} already holds {objects} objects that are not a jobdbctl job schema; \
                     choose another --schema or drop it yourself"
                ),
            ))
        }
        SchemaState::Absent => {
            tx.batch("create_schema", &format!("CREATE SCHEMA {}", quote_ident(schema)))?;
        }
        SchemaState::Empty => {}
    }
    tx.batch(
        "set_search_path",
        &format!("SET LOCAL search_path TO {}", quote_ident(schema)),
    )?;
    for m in MIGRATIONS.iter().filter(|m| m.version <= version) {
        apply_in_tx(&mut tx, m)?;
    }
    tx.commit()?;
    Ok(InitOutcome::Created { version })
}

/// Applies one migration's DDL and records it; the caller owns the transaction.
pub fn apply_in_tx(tx: &mut Tx<'_>, m: &SchemaVersion) -> anyhow::Result<()> {
    tx.batch(&format!("migration_{}", m.version), m.up)?;
    tx.execute(
        "record_migration",
        "INSERT INTO schema_migrations (version, name, breaking) VALUES ($1, $2, $3)",
        &[&m.version, &m.name, &m.breaking],
    )?;
    Ok(())
}
