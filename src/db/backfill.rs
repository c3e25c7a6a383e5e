//! The data side of a batched background migration: the built-in job classes, the table and
//! columns they touch (checked against the catalog, then quoted), and the batched UPDATE.
//!
//! Trust boundary: table and column names come from data and are never spliced into SQL
//! unchecked; each must name an existing table or column, and is quoted from the catalog's
//! own spelling. The `sql_expression` of `BackfillColumnJob` is SQL by design: it is written
//! by the migration's author (a schema migration shipped in the engine, or an operator who
//! can already write to the database) and runs with the finalizer's rights, as GitLab's job
//! classes run their Ruby. It is bound inside one UPDATE (the extended protocol refuses a
//! second statement), and compiled with EXPLAIN before anything changes.

use std::time::Duration;

use postgres::types::Type;

use crate::db::{qualified, quote_ident, sql_state, Sql};
use crate::error::{failure, Exit};

pub const COPY_COLUMN: &str = "CopyColumnUsingBackgroundMigrationJob";
pub const BACKFILL_COLUMN: &str = "BackfillColumnJob";

/// The job classes this binary runs, with the shape of their arguments.
pub const KNOWN_CLASSES: [(&str, &str); 2] = [
    (COPY_COLUMN, "[[from...], [to...]]"),
    (BACKFILL_COLUMN, "[column, sql_expression]"),
];

#[derive(Debug, Clone)]
pub enum JobClass {
    /// `SET to_i = from_i` (GitLab's integer to bigint conversion).
    CopyColumn { from: Vec<String>, to: Vec<String> },
    /// `SET column = expression`.
    Backfill { column: String, expression: String },
}

fn known_classes_text() -> String {
    KNOWN_CLASSES
        .iter()
        .map(|(name, args)| format!("{name} (arguments {args})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Fails unless this binary knows the class.
pub fn check_class_name(name: &str) -> anyhow::Result<()> {
    if KNOWN_CLASSES.iter().any(|(known, _)| *known == name) {
        return Ok(());
    }
    Err(failure(
        Exit::Usage,
        format!(
            "unknown job class {name:?}; this jobdbctl runs {}",
            known_classes_text()
        ),
    ))
}

impl JobClass {
    pub fn parse(name: &str, args: &serde_json::Value) -> anyhow::Result<JobClass> {
        check_class_name(name)?;
        let bad = |why: &str| {
            let shape = KNOWN_CLASSES
                .iter()
                .find(|(n, _)| *n == name)
                .map_or("", |(_, s)| *s);
            failure(
                Exit::Usage,
                format!("{name} takes job arguments {shape}; got {args}: {why}"),
            )
        };
        let strings = |v: &serde_json::Value| -> Option<Vec<String>> {
            v.as_array()?
                .iter()
                .map(|s| s.as_str().map(str::to_string))
                .collect()
        };
        let parts = args.as_array().ok_or_else(|| bad("not a JSON array"))?;
        match name {
            COPY_COLUMN => {
                let [from, to] = parts.as_slice() else {
                    return Err(bad("expected two arrays"));
                };
                let (Some(from), Some(to)) = (strings(from), strings(to)) else {
                    return Err(bad("expected two arrays of column names"));
                };
                if from.is_empty() || from.len() != to.len() {
                    return Err(bad(
                        "the two arrays must name the same, non-zero number of columns",
                    ));
                }
                Ok(JobClass::CopyColumn { from, to })
            }
            _ => {
                let [column, expression] = parts.as_slice() else {
                    return Err(bad("expected a column name and an SQL expression"));
                };
                let (Some(column), Some(expression)) = (column.as_str(), expression.as_str())
                else {
                    return Err(bad("expected two strings"));
                };
                if expression.trim().is_empty() {
                    return Err(bad("the SQL expression is empty"));
                }
                Ok(JobClass::Backfill {
                    column: column.to_string(),
                    expression: expression.to_string(),
                })
            }
        }
    }

    /// Columns the class reads or writes (besides the batching column).
    fn columns(&self) -> Vec<&str> {
        match self {
            JobClass::CopyColumn { from, to } => {
                from.iter().chain(to.iter()).map(String::as_str).collect()
            }
            JobClass::Backfill { column, .. } => vec![column.as_str()],
        }
    }
}

/// A migration's table and columns, resolved in the catalog, and the statements that
/// update one sub-batch of it.
#[derive(Debug, Clone)]
pub struct BatchTarget {
    /// `schema.table` as the catalog spells it, for messages.
    pub display: String,
    table: String,
    column: String,
    sub_batch_sql: String,
    /// Whether an index leads with the batching column (else every batch scans the table).
    pub indexed: bool,
}

impl BatchTarget {
    /// The table, quoted and schema-qualified, as SQL text.
    pub fn table_sql(&self) -> &str {
        &self.table
    }
}

/// Finds the migration's table (unqualified: in the job schema; else `schema.table`), its
/// batching column (an integer column) and the class's columns, and compiles the UPDATE.
/// Nothing is changed; a name that does not resolve is a usage error naming it.
pub fn resolve(
    db: &mut crate::db::Db,
    job_schema: &str,
    table_name: &str,
    column_name: &str,
    class: &JobClass,
    lock_timeout: Duration,
) -> anyhow::Result<BatchTarget> {
    let rows = db.query(
        "resolve_migration_table",
        "SELECT c.oid, n.nspname::text, c.relname::text
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('r', 'p')
            AND ((n.nspname = $1 AND c.relname = $2) OR n.nspname || '.' || c.relname = $2)
          ORDER BY (n.nspname = $1 AND c.relname = $2) DESC
          LIMIT 1",
        &[&job_schema, &table_name],
    )?;
    let Some(row) = rows.first() else {
        return Err(failure(
            Exit::Usage,
            format!(
                "table {table_name:?} does not exist (looked in schema {job_schema:?}, then for a schema-qualified name)"
            ),
        ));
    };
    let (oid, schema, table): (u32, String, String) = (row.get(0), row.get(1), row.get(2));
    let display = format!("{schema}.{table}");

    let mut wanted: Vec<&str> = vec![column_name];
    wanted.extend(class.columns());
    let found = db.query(
        "resolve_migration_columns",
        "SELECT a.attname::text, a.atttypid::regtype::text
           FROM pg_attribute a
          WHERE a.attrelid = $1 AND a.attname = ANY($2) AND a.attnum > 0 AND NOT a.attisdropped",
        &[&oid, &wanted],
    )?;
    let type_of = |name: &str| {
        found
            .iter()
            .find(|r| r.get::<_, String>(0) == name)
            .map(|r| r.get::<_, String>(1))
    };
    let missing: Vec<String> = wanted
        .iter()
        .filter(|c| type_of(c).is_none())
        .map(|c| format!("{c:?}"))
        .collect();
    if !missing.is_empty() {
        return Err(failure(
            Exit::Usage,
            format!(
                "table {display} has no column {}",
                missing.join(", no column ")
            ),
        ));
    }
    let batch_type = type_of(column_name).unwrap_or_default();
    if !matches!(batch_type.as_str(), "smallint" | "integer" | "bigint") {
        return Err(failure(
            Exit::Usage,
            format!(
                "batching column {column_name:?} of {display} is {batch_type}; primary-key batching needs an integer column"
            ),
        ));
    }
    let indexed: bool = db
        .query_one(
            "batching_column_indexed",
            "SELECT EXISTS (
                 SELECT 1 FROM pg_index i
                   JOIN pg_class ic ON ic.oid = i.indexrelid
                   JOIN pg_am am ON am.oid = ic.relam
                   JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                  WHERE i.indrelid = $1 AND a.attname = $2 AND am.amname = 'btree'
                    AND i.indpred IS NULL AND i.indisvalid)",
            &[&oid, &column_name],
        )?
        .get(0);

    let table = qualified(&schema, &table);
    let column = quote_ident(column_name);
    let (set, only_changed) = match class {
        JobClass::CopyColumn { from, to } => {
            let from: Vec<String> = from.iter().map(|c| quote_ident(c)).collect();
            let to: Vec<String> = to.iter().map(|c| quote_ident(c)).collect();
            let set: Vec<String> = to
                .iter()
                .zip(&from)
                .map(|(t, f)| format!("{t} = {f}"))
                .collect();
            // Rows a sync trigger or an earlier run already copied are not rewritten.
            let changed = format!(
                "AND ({}) IS DISTINCT FROM ({})",
                to.join(", "),
                from.join(", ")
            );
            (set.join(", "), changed)
        }
        JobClass::Backfill { column, expression } => (
            format!("{} = ({expression})", quote_ident(column)),
            String::new(),
        ),
    };
    // One sub-batch: a range of the column whose bounds were read from its index (see
    // [`plan_batch`]), so the planner sees both ends and estimates the range's rows.
    let sub_batch_sql = format!(
        "UPDATE {table} SET {set} WHERE {column} >= $1::int8 AND {column} <= $2::int8 {only_changed}"
    );
    let target = BatchTarget {
        display,
        table,
        column,
        sub_batch_sql,
        indexed,
    };
    compile_check(db, &target, lock_timeout)?;
    Ok(target)
}

/// Plans the UPDATE without running it, so a bad expression or mismatched column types fail
/// before the migration is touched.
fn compile_check(
    db: &mut crate::db::Db,
    target: &BatchTarget,
    lock_timeout: Duration,
) -> anyhow::Result<()> {
    let mut tx = db.transaction()?;
    tx.execute(
        "compile_check_lock_timeout",
        "SELECT set_config('lock_timeout', $1, true)",
        &[&guc_ms(lock_timeout)],
    )?;
    let planned = tx.query(
        "plan_batch_update",
        &format!("EXPLAIN (COSTS OFF) {}", target.sub_batch_sql),
        &[&0i64, &0i64],
    );
    match planned {
        Ok(_) => Ok(()),
        // Syntax errors, unknown names, type mismatches: the migration cannot run as written.
        Err(e) if sql_state(&e).is_some_and(|s| s.code().starts_with("42")) => Err(failure(
            Exit::Usage,
            format!(
                "the migration's UPDATE of {} does not compile: {e:#}",
                target.display
            ),
        )),
        Err(e) => Err(e.context(format!("cannot plan the UPDATE of {}", target.display))),
    }
}

/// A duration as a time setting's value (`0ms` turns the limit off).
fn guc_ms(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

/// Limits for one batch transaction: statements and lock waits are cut short so the live
/// engine is never held up for long; a suspended finalizer loses its locks too.
pub fn limit_batch_transaction(
    tx: &mut impl Sql,
    statement_timeout: Duration,
    lock_timeout: Duration,
    idle_timeout: Duration,
) -> anyhow::Result<()> {
    tx.execute(
        "batch_transaction_limits",
        "SELECT set_config('statement_timeout', $1, true), set_config('lock_timeout', $2, true),
                set_config('idle_in_transaction_session_timeout', $3, true)",
        &[
            &guc_ms(statement_timeout),
            &guc_ms(lock_timeout),
            &guc_ms(idle_timeout),
        ],
    )?;
    Ok(())
}

/// One UPDATE statement's share of a batch: `[from, to]` of the batching column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubRange {
    pub from: i64,
    pub to: i64,
    /// Rows in the range when it was cut.
    pub rows: i64,
}

/// A batch: the next `limit` values of the column at or above `from` (up to `to`), cut into
/// sub-ranges of `sub` values each, read in one pass over the index. The sub-ranges tile
/// `[from, end]`, where `end` is the `limit`-th value, or `to` when fewer are left (so the
/// last batch reaches `to` and batches tile the migration's range). Empty when `[from, to]`
/// holds no row.
///
/// Reading every bound up front costs one index pass per batch; each UPDATE then gets a
/// plain range with both ends known, instead of finding its own upper end with a second
/// pass over the same index entries.
pub fn plan_batch(
    db: &mut impl Sql,
    target: &BatchTarget,
    from: i64,
    to: i64,
    limit: i64,
    sub: i64,
) -> anyhow::Result<Vec<SubRange>> {
    let (c, t) = (&target.column, &target.table);
    // Each step reads the next `sub` values after the previous step's highest, until
    // `limit` values are read or the range runs out.
    let rows = db.query(
        "plan_batch_sub_ranges",
        &format!(
            "WITH RECURSIVE cut(n, hi) AS (
                 SELECT s.n, s.hi
                   FROM (SELECT count(*)::int8 AS n, max(k)::int8 AS hi
                           FROM (SELECT {c} AS k FROM {t} WHERE {c} >= $1::int8 AND {c} <= $2::int8
                                  ORDER BY {c} LIMIT least($3::int8, $4::int8)) x) s
                  WHERE s.n > 0
               UNION ALL
                 SELECT cut.n + s.n, s.hi
                   FROM cut, LATERAL (
                        SELECT count(*)::int8 AS n, max(k)::int8 AS hi
                          FROM (SELECT {c} AS k FROM {t} WHERE {c} > cut.hi AND {c} <= $2::int8
                                 ORDER BY {c} LIMIT least($4::int8, $3::int8 - cut.n)) x) s
                  WHERE cut.n < $3::int8 AND s.n > 0)
             SELECT hi, n FROM cut ORDER BY n"
        ),
        &[&from, &to, &limit, &sub],
    )?;
    let cuts: Vec<(i64, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    Ok(sub_ranges(from, to, limit, &cuts))
}

/// Sub-ranges from the cut points (highest value, rows so far) of [`plan_batch`].
fn sub_ranges(from: i64, to: i64, limit: i64, cuts: &[(i64, i64)]) -> Vec<SubRange> {
    let Some(&(_, total)) = cuts.last() else {
        return Vec::new();
    };
    let mut ranges = Vec::with_capacity(cuts.len());
    let (mut start, mut before) = (from, 0);
    for (i, &(hi, n)) in cuts.iter().enumerate() {
        // Fewer than `limit` values were left: the batch reaches `to`.
        let end = if i + 1 == cuts.len() && total < limit {
            to
        } else {
            hi
        };
        ranges.push(SubRange {
            from: start,
            to: end,
            rows: n - before,
        });
        if end >= to {
            break;
        }
        (start, before) = (end + 1, n);
    }
    ranges
}

/// Updates one sub-range; returns the rows it changed. Sent as one unnamed statement with
/// typed parameters: one round trip, planned for these bounds every time (a prepared
/// statement could switch to a generic plan after five runs).
pub fn update_range(
    tx: &mut impl Sql,
    target: &BatchTarget,
    range: &SubRange,
) -> anyhow::Result<u64> {
    tx.execute_typed(
        "update_sub_batch",
        &target.sub_batch_sql,
        &[(&range.from, Type::INT8), (&range.to, Type::INT8)],
    )
}

/// Where to cut `[from, to]` into two halves with as many rows each; `None` when it holds
/// fewer than two rows.
pub fn split_point(
    db: &mut impl Sql,
    target: &BatchTarget,
    from: i64,
    to: i64,
) -> anyhow::Result<Option<(i64, i64, i64)>> {
    let row = db.query_one(
        "batch_split_point",
        &format!(
            "WITH r AS (SELECT {c} AS k FROM {t} WHERE {c} >= $1::int8 AND {c} <= $2::int8),
                  n AS (SELECT count(*)::int8 AS n FROM r)
             SELECT (SELECT n FROM n),
                    (SELECT max(k)::int8 FROM (SELECT k FROM r ORDER BY k LIMIT (SELECT n / 2 FROM n)) h)",
            c = target.column,
            t = target.table
        ),
        &[&from, &to],
    )?;
    let (n, mid): (i64, Option<i64>) = (row.get(0), row.get(1));
    Ok(match mid {
        Some(mid) if n >= 2 && mid < to => Some((mid, n / 2, n - n / 2)),
        _ => None,
    })
}

/// The planner's estimate of the rows in `[from, to]`, for the progress bar: exact counting
/// would read the whole range once more.
pub fn estimate_rows(
    db: &mut impl Sql,
    target: &BatchTarget,
    from: i64,
    to: i64,
) -> anyhow::Result<i64> {
    let row = db.query_one(
        "estimate_rows_in_range",
        &format!(
            "EXPLAIN (FORMAT JSON) SELECT 1 FROM {t} WHERE {c} >= $1::int8 AND {c} <= $2::int8",
            c = target.column,
            t = target.table
        ),
        &[&from, &to],
    )?;
    let plan: serde_json::Value = row.get(0);
    Ok(plan
        .pointer("/0/Plan/Plan Rows")
        .and_then(serde_json::Value::as_f64)
        .map_or(0, |r| r as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(from: i64, to: i64, rows: i64) -> SubRange {
        SubRange { from, to, rows }
    }

    #[test]
    fn sub_ranges_tile_the_batch() {
        // Five values per sub-batch, ten per batch, values 1..=12 in [1, 100].
        assert_eq!(
            sub_ranges(1, 100, 10, &[(5, 5), (10, 10)]),
            vec![r(1, 5, 5), r(6, 10, 5)]
        );
        // The last batch reaches `to`.
        assert_eq!(sub_ranges(11, 100, 10, &[(12, 2)]), vec![r(11, 100, 2)]);
        assert_eq!(
            sub_ranges(1, 100, 20, &[(5, 5), (10, 10), (12, 12)]),
            vec![r(1, 5, 5), r(6, 10, 5), r(11, 100, 2)]
        );
        assert_eq!(sub_ranges(1, 100, 10, &[]), vec![]);
        // A value at the very top of the type never steps past it.
        assert_eq!(
            sub_ranges(i64::MAX - 1, i64::MAX, 10, &[(i64::MAX, 2)]),
            vec![r(i64::MAX - 1, i64::MAX, 2)]
        );
    }
}
