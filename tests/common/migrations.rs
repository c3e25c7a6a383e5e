//! A batched background migration to finalize: GitLab's integer-to-bigint column copy over
//! a table with gaps, NULLs and stale values, and the single-statement result to compare.

use postgres::Client;

use super::{scalar_i64, TestDb};

pub const COPY: &str = "CopyColumnUsingBackgroundMigrationJob";
pub const COPY_ARGS: &str = r#"[["from_col"],["to_col"]]"#;

/// A table like one GitLab converts from integer to bigint: `id` with gaps, `from_col`
/// (some NULL), `to_col` (some stale values to overwrite). `<table>_oracle` holds what one
/// `UPDATE ... SET to_col = from_col` gives.
pub fn copy_table(c: &mut Client, table: &str, rows: i64) {
    c.batch_execute(&format!(
        "CREATE TABLE jobdb.{table} (id integer PRIMARY KEY, from_col integer, to_col bigint, payload text);
         INSERT INTO jobdb.{table} (id, from_col, to_col, payload)
           SELECT g, CASE WHEN g % 97 = 0 THEN NULL ELSE (g::int8 * 7919 % 1000003)::int4 END,
                  CASE WHEN g % 101 = 0 THEN -1 END, 'p' || g
             FROM generate_series(1, {rows}) g WHERE g % 13 <> 0;
         CREATE TABLE jobdb.{table}_oracle AS SELECT * FROM jobdb.{table};
         UPDATE jobdb.{table}_oracle SET to_col = from_col;
         ANALYZE jobdb.{table};"
    ))
    .expect("create copy table");
}

/// Queues a migration over `table`.`column` (range: 1 to the current maximum).
pub fn queue(
    c: &mut Client,
    class: &str,
    table: &str,
    column: &str,
    args: &str,
    batch: i32,
    sub: i32,
) -> i64 {
    c.query_one(
        &format!(
            "INSERT INTO jobdb.batched_background_migrations
                 (max_value, batch_size, sub_batch_size, \"interval\", status, job_class_name,
                  table_name, column_name, job_arguments)
             VALUES ((SELECT coalesce(max({column}), 1) FROM jobdb.{table}), $1, $2, 120, 1, $3, $4, $5, $6::text::jsonb)
             RETURNING id"
        ),
        &[&batch, &sub, &class, &table, &column, &args],
    )
    .expect("queue migration")
    .get(0)
}

/// A database whose `events` copy table has about `rows` rows, with a copy migration
/// queued over it in batches of `batch` (sub-batches of `sub`).
pub fn events_copy_migration(rows: i64, batch: i32, sub: i32) -> (TestDb, Client, i64) {
    let db = TestDb::initialized();
    let mut c = db.client();
    copy_table(&mut c, "events", rows);
    let id = queue(&mut c, COPY, "events", "id", COPY_ARGS, batch, sub);
    (db, c, id)
}

/// Rows that differ between the table and its single-statement oracle.
pub fn differences_from_oracle(c: &mut Client, table: &str) -> i64 {
    scalar_i64(
        c,
        &format!(
            "SELECT count(*) FROM (
                 (SELECT * FROM jobdb.{table} EXCEPT ALL SELECT * FROM jobdb.{table}_oracle)
                 UNION ALL
                 (SELECT * FROM jobdb.{table}_oracle EXCEPT ALL SELECT * FROM jobdb.{table})) d"
        ),
    )
}
