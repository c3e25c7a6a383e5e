//! The job-ID high-water mark on a server (any target but the embedded cluster, which keeps
//! it in a file beside the cluster): one row per job schema in `jobdbctl.job_id_high_water`.
//! The `jobdbctl` schema is not a job schema, so `destroy` and `restore` never drop it and
//! online backups (one job schema each) never include it. Its name has no `jobdbctl_`
//! prefix so it is never mistaken for restore's work schemas (`jobdbctl_restore_*`).
//! Also the figures a destroy or restore prompt shows about the jobs it would lose.

use crate::db::{qualified, quote_ident, Profile, Sql};

pub const META_SCHEMA: &str = "jobdbctl";
const TABLE: &str = "job_id_high_water";

/// The table's name as `show-params` and messages show it.
pub fn table_name() -> String {
    format!("{META_SCHEMA}.{TABLE}")
}

fn table_exists(db: &mut impl Sql) -> anyhow::Result<bool> {
    // to_regclass rather than a failing SELECT: an error would abort the caller's transaction.
    Ok(db
        .query_one(
            "high_water_table_exists",
            "SELECT to_regclass($1) IS NOT NULL",
            &[&qualified(META_SCHEMA, TABLE)],
        )?
        .get(0))
}

/// Every recorded mark, by schema name.
pub fn read_all(db: &mut impl Sql) -> anyhow::Result<Vec<(String, i64)>> {
    if !table_exists(db)? {
        return Ok(Vec::new());
    }
    let rows = db.query(
        "read_high_water_marks",
        &format!(
            "SELECT schema_name, last_used_job_id FROM {} ORDER BY schema_name",
            qualified(META_SCHEMA, TABLE)
        ),
        &[],
    )?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Raises the mark for `schema` to `last_used` unless it is already at least that, creating
/// the table on first use (`create`), and returns the mark now stored. One statement: two
/// runs raising at once both end with the higher value. Without `create` and without the
/// table, nothing is written and `None` comes back.
pub fn raise(
    db: &mut impl Sql,
    schema: &str,
    last_used: i64,
    create: bool,
) -> anyhow::Result<Option<i64>> {
    if !table_exists(db)? {
        if !create {
            return Ok(None);
        }
        // CREATE SCHEMA checks the CREATE privilege on the database even with IF NOT
        // EXISTS, so it is only run when the schema is missing.
        let schema_exists: bool = db
            .query_one(
                "high_water_schema_exists",
                "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
                &[&META_SCHEMA],
            )?
            .get(0);
        if !schema_exists {
            db.batch(
                "create_high_water_schema",
                &format!("CREATE SCHEMA IF NOT EXISTS {}", quote_ident(META_SCHEMA)),
            )?;
        }
        db.batch(
            "create_high_water_table",
            &format!(
                "CREATE TABLE IF NOT EXISTS {table} (
                     schema_name text PRIMARY KEY,
                     last_used_job_id bigint NOT NULL CHECK (last_used_job_id >= 0),
                     updated_at timestamptz NOT NULL DEFAULT now());
                 COMMENT ON TABLE {table} IS 'jobdbctl: highest job ID ever handed out per job schema, kept across destroy and restore'",
                table = qualified(META_SCHEMA, TABLE),
            ),
        )?;
    }
    let row = db.query_one(
        "raise_high_water_mark",
        &format!(
            "INSERT INTO {table} AS m (schema_name, last_used_job_id) VALUES ($1, $2)
             ON CONFLICT (schema_name) DO UPDATE
                SET last_used_job_id = greatest(m.last_used_job_id, excluded.last_used_job_id),
                    updated_at = CASE WHEN excluded.last_used_job_id > m.last_used_job_id
                                      THEN now() ELSE m.updated_at END
             RETURNING last_used_job_id",
            table = qualified(META_SCHEMA, TABLE)
        ),
        &[&schema, &last_used],
    )?;
    Ok(Some(row.get(0)))
}

/// How many jobs the jobs table holds and how long ago (by the server's clock) the newest
/// was created: what a destroy or restore would lose.
pub fn jobs_at_stake(db: &mut impl Sql, profile: &Profile) -> anyhow::Result<(i64, Option<f64>)> {
    let row = db.query_one(
        "jobs_at_stake",
        &format!(
            "SELECT count(*), extract(epoch FROM now() - max(created_at))::float8 FROM {}",
            profile.jobs_table()
        ),
        &[],
    )?;
    Ok((row.get(0), row.get(1)))
}
