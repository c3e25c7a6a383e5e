//! The job schema's DDL, reconstructed from the catalog, for an online archive.
//!
//! Everything is read with `search_path` set to the schema (then `pg_catalog`), so the
//! server's deparsers (`pg_get_viewdef`, `pg_get_indexdef`, `pg_get_expr`, `format_type`, …)
//! leave names in the schema unqualified. Restore runs the same statements with `search_path`
//! set to its staging schema, so they resolve there, and the staging schema is then renamed
//! into place. Function bodies are text and are not touched: a body naming the schema
//! explicitly (as Graphile Worker's do) works once the rename is done.
//!
//! Row-level security (Graphile Worker enables it on every table it creates, with no
//! policies) is archived: the `ENABLE`/`FORCE` switches and every policy go into the last
//! post-data phase, after the data is loaded, so loading never runs under a policy. The roles
//! policies name are listed in the archive, so restore can refuse a server that lacks one
//! before it creates anything.
//!
//! Object kinds a job schema does not use (partitioned or inherited tables, materialized
//! views, aggregates, operators, range types, extension members, …) are refused with a clear
//! message rather than archived half-way.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::bail;

use crate::archive::{CopyFormat, SchemaDdl};
use crate::db::{qualified, quote_ident, Sql};
use crate::error::{failure, Exit};

/// A table whose data goes into the archive.
#[derive(Debug, Clone)]
pub struct TableDef {
    pub name: String,
    /// Columns COPY carries: all but generated ones, in order.
    pub columns: Vec<String>,
    /// Heap pages, to decide whether to split the table across COPY streams.
    pub pages: i64,
    /// Heap bytes, for the free-space estimate and progress.
    pub bytes: i64,
    /// Binary when every column COPY carries has a portable binary form: a built-in base
    /// type (OID below 16384, the first one a database can assign) with send and receive
    /// functions, or an array of one, and not a `reg*` type (those travel as OIDs, which
    /// differ between databases). Binary arrays and composites carry their element types'
    /// OIDs, so a user-defined type anywhere keeps the table in text.
    pub format: CopyFormat,
}

pub struct SchemaDump {
    pub ddl: SchemaDdl,
    pub tables: Vec<TableDef>,
}

/// Points unqualified names at `schema` for the rest of the transaction.
pub fn set_search_path(db: &mut impl Sql, schema: &str) -> anyhow::Result<()> {
    db.execute(
        "set_search_path",
        "SELECT set_config('search_path', quote_ident($1) || ', pg_catalog', true)",
        &[&schema],
    )?;
    Ok(())
}

/// Reads every object of `schema` from the catalog. Run inside the backup's snapshot
/// transaction after `set_search_path`, with the tables locked against DDL. `embedded`: the
/// server is the embedded cluster, so a refusal can point at `--mode cold`.
pub fn read_schema(db: &mut impl Sql, schema: &str, embedded: bool) -> anyhow::Result<SchemaDump> {
    let row = db.query_one(
        "schema_oid",
        "SELECT oid FROM pg_namespace WHERE nspname = $1",
        &[&schema],
    )?;
    let ns: u32 = row.get(0);
    refuse_unsupported(db, ns, schema, embedded)?;
    refuse_hidden_rows(db, ns)?;

    let mut pre = Vec::new();
    pre.extend(types(db, ns)?);
    let sequences = sequences(db, ns)?;
    pre.extend(sequences.create);
    let functions = functions(db, ns)?;
    pre.extend(functions.early);
    let tables = tables(db, ns)?;
    pre.extend(tables.create);
    pre.extend(sequences.owned_by);
    pre.extend(functions.after_tables);
    pre.extend(views(db, ns)?);
    pre.extend(functions.after_views);
    // Checks before the data, as pg_dump writes them: COPY checks each row as it loads,
    // where adding them afterwards costs a second pass over every table.
    pre.extend(constraints(db, ns, &["c"])?);
    pre.extend(sequence_values(db, ns)?);
    pre.extend(comments(db, ns, false)?);

    let indexes = indexes(db, ns)?;
    let mut last = triggers_and_rules(db, ns)?;
    last.extend(indexes.after_constraints);
    last.extend(comments(db, ns, true)?);
    let security = row_security(db, ns)?;
    let post = vec![
        indexes.create,
        constraints(db, ns, &["p", "u", "x"])?,
        constraints(db, ns, &["f"])?,
        last,
        security.statements,
        security.comments,
    ];
    Ok(SchemaDump {
        ddl: SchemaDdl {
            pre_data: pre,
            post_data: post.into_iter().filter(|p| !p.is_empty()).collect(),
            roles: security.roles,
        },
        tables: tables.defs,
    })
}

fn refuse_unsupported(
    db: &mut impl Sql,
    ns: u32,
    schema: &str,
    embedded: bool,
) -> anyhow::Result<()> {
    let rows = db.query(
        "unsupported_objects",
        "SELECT kind || ' ' || name FROM (
            SELECT CASE c.relkind WHEN 'p' THEN 'partitioned table' WHEN 'f' THEN 'foreign table'
                                  WHEN 'm' THEN 'materialized view' END AS kind, c.relname::text AS name
              FROM pg_class c WHERE c.relnamespace = $1 AND c.relkind IN ('p', 'f', 'm')
            UNION ALL
            SELECT 'inherited table', c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE c.relnamespace = $1
            UNION ALL
            SELECT 'range type', t.typname::text FROM pg_type t WHERE t.typnamespace = $1 AND t.typtype IN ('r', 'm')
            UNION ALL
            SELECT 'aggregate', p.proname::text FROM pg_proc p WHERE p.pronamespace = $1 AND p.prokind = 'a'
            UNION ALL
            SELECT 'operator', o.oprname::text FROM pg_operator o WHERE o.oprnamespace = $1
            UNION ALL
            SELECT 'collation', c.collname::text FROM pg_collation c WHERE c.collnamespace = $1
            UNION ALL
            SELECT 'operator class', c.opcname::text FROM pg_opclass c WHERE c.opcnamespace = $1
            UNION ALL
            SELECT 'text search configuration', c.cfgname::text FROM pg_ts_config c WHERE c.cfgnamespace = $1
            UNION ALL
            SELECT 'extended statistics', s.stxname::text FROM pg_statistic_ext s WHERE s.stxnamespace = $1
            UNION ALL
            SELECT 'extension member', pg_describe_object(d.classid, d.objid, 0)
              FROM pg_depend d
             WHERE d.deptype = 'e' AND (
                   (d.classid = 'pg_class'::regclass AND d.objid IN (SELECT oid FROM pg_class WHERE relnamespace = $1))
                OR (d.classid = 'pg_proc'::regclass AND d.objid IN (SELECT oid FROM pg_proc WHERE pronamespace = $1))
                OR (d.classid = 'pg_type'::regclass AND d.objid IN (SELECT oid FROM pg_type WHERE typnamespace = $1)))
         ) u ORDER BY 1 LIMIT 5",
        &[&ns],
    )?;
    if !rows.is_empty() {
        let found: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        // Cold backup copies the embedded cluster's data directory; any other server is
        // backed up with its own tools.
        let advice = if embedded {
            "back up the embedded cluster with --mode cold, or use pg_dump".to_string()
        } else {
            format!("back up this server with pg_dump (e.g. pg_dump -Fc -n {schema}) instead")
        };
        return Err(failure(
            Exit::Runtime,
            format!(
                "schema {schema:?} holds objects online backup does not archive ({}); {advice}",
                found.join(", ")
            ),
        ));
    }
    Ok(())
}

/// COPY under row-level security returns only the rows the policies let the role see (none,
/// for Graphile Worker's tables, which have no policies): an archive taken that way would be
/// silently incomplete. The owner is exempt unless the table forces security on it, as are
/// superusers and roles with BYPASSRLS.
fn refuse_hidden_rows(db: &mut impl Sql, ns: u32) -> anyhow::Result<()> {
    let rows = db.query(
        "tables_under_row_security",
        "SELECT c.relname::text, current_user::text FROM pg_class c
          WHERE c.relnamespace = $1 AND c.relkind = 'r' AND c.relrowsecurity AND row_security_active(c.oid)
          ORDER BY c.relname LIMIT 5",
        &[&ns],
    )?;
    if let Some(first) = rows.first() {
        let tables: Vec<String> = rows
            .iter()
            .map(|r| format!("{:?}", r.get::<_, String>(0)))
            .collect();
        let role: String = first.get(1);
        return Err(failure(
            Exit::Refused,
            format!(
                "row-level security hides rows of {} {} from role {role:?}, so the backup would be incomplete; run it as the tables' owner (without FORCE ROW LEVEL SECURITY), a superuser or a role with BYPASSRLS",
                if tables.len() == 1 { "table" } else { "tables" },
                tables.join(", ")
            ),
        ));
    }
    Ok(())
}

struct RowSecurity {
    statements: Vec<String>,
    /// Comments on policies: a phase of their own, after the policies exist.
    comments: Vec<String>,
    /// Roles the policies apply to (besides PUBLIC), which must exist where they are restored.
    roles: Vec<String>,
}

/// `ENABLE`/`FORCE ROW LEVEL SECURITY`, policies and their comments. Expressions are
/// deparsed with `search_path` at the schema, like the rest, so they bind to the staging
/// tables on restore.
fn row_security(db: &mut impl Sql, ns: u32) -> anyhow::Result<RowSecurity> {
    let rows = db.query(
        "dump_row_security",
        "SELECT pass = 3, stmt FROM (
            SELECT 1 AS pass, c.oid AS rel, 0::oid AS obj, format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', c.relname) AS stmt
              FROM pg_class c WHERE c.relnamespace = $1 AND c.relkind = 'r' AND c.relrowsecurity
            UNION ALL
            SELECT 1, c.oid, 1::oid, format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', c.relname)
              FROM pg_class c WHERE c.relnamespace = $1 AND c.relkind = 'r' AND c.relforcerowsecurity
            UNION ALL
            SELECT 2, c.oid, p.oid, format('CREATE POLICY %I ON %I AS %s FOR %s TO %s%s%s', p.polname, c.relname,
                          CASE WHEN p.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END,
                          CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
                                        WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
                          -- PUBLIC (role 0) absorbs any other role named with it.
                          CASE WHEN 0::oid = ANY (p.polroles) THEN 'PUBLIC'
                               ELSE (SELECT string_agg(quote_ident(r.rolname), ', ' ORDER BY r.rolname)
                                       FROM pg_roles r WHERE r.oid = ANY (p.polroles)) END,
                          CASE WHEN p.polqual IS NOT NULL THEN format(' USING (%s)', pg_get_expr(p.polqual, p.polrelid, true)) ELSE '' END,
                          CASE WHEN p.polwithcheck IS NOT NULL THEN format(' WITH CHECK (%s)', pg_get_expr(p.polwithcheck, p.polrelid, true)) ELSE '' END)
              FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
             WHERE c.relnamespace = $1
            UNION ALL
            SELECT 3, c.oid, p.oid, format('COMMENT ON POLICY %I ON %I IS %L', p.polname, c.relname, d.description)
              FROM pg_description d JOIN pg_policy p ON d.classoid = 'pg_policy'::regclass AND d.objoid = p.oid
              JOIN pg_class c ON c.oid = p.polrelid
             WHERE c.relnamespace = $1
         ) s ORDER BY pass, rel, obj",
        &[&ns],
    )?;
    let roles = db.query(
        "policy_roles",
        "SELECT DISTINCT r.rolname::text FROM pg_policy p
           JOIN pg_class c ON c.oid = p.polrelid
           JOIN pg_roles r ON r.oid = ANY (p.polroles)
          WHERE c.relnamespace = $1 AND NOT 0::oid = ANY (p.polroles)
          ORDER BY 1",
        &[&ns],
    )?;
    let (comments, statements): (Vec<_>, Vec<_>) = rows.iter().partition(|r| r.get::<_, bool>(0));
    Ok(RowSecurity {
        statements: statements.iter().map(|r| r.get(1)).collect(),
        comments: comments.iter().map(|r| r.get(1)).collect(),
        roles: roles.iter().map(|r| r.get(0)).collect(),
    })
}

/// Enums, then domains, then composite types: each may use the ones before.
fn types(db: &mut impl Sql, ns: u32) -> anyhow::Result<Vec<String>> {
    let rows = db.query(
        "dump_types",
        "SELECT CASE t.typtype
                  WHEN 'e' THEN format('CREATE TYPE %I AS ENUM (%s)', t.typname,
                         (SELECT coalesce(string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder), '')
                            FROM pg_enum e WHERE e.enumtypid = t.oid))
                  WHEN 'd' THEN format('CREATE DOMAIN %I AS %s%s%s%s%s', t.typname,
                         format_type(t.typbasetype, t.typtypmod),
                         CASE WHEN t.typcollation <> 0 AND t.typcollation <> bt.typcollation
                              THEN ' COLLATE ' || (SELECT CASE WHEN pg_collation_is_visible(co.oid) THEN quote_ident(co.collname)
                                                             ELSE format('%I.%I', cn.nspname, co.collname) END
                                                     FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace
                                                    WHERE co.oid = t.typcollation)
                              ELSE '' END,
                         CASE WHEN t.typdefault IS NOT NULL THEN ' DEFAULT ' || t.typdefault ELSE '' END,
                         CASE WHEN t.typnotnull THEN ' NOT NULL' ELSE '' END,
                         (SELECT coalesce(string_agg(format(' CONSTRAINT %I %s', c.conname, pg_get_constraintdef(c.oid, true)), '' ORDER BY c.conname), '')
                            FROM pg_constraint c WHERE c.contypid = t.oid))
                  ELSE format('CREATE TYPE %I AS (%s)', t.typname,
                         (SELECT coalesce(string_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod)), ', ' ORDER BY a.attnum), '')
                            FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped))
                END
           FROM pg_type t
           LEFT JOIN pg_type bt ON bt.oid = t.typbasetype
           LEFT JOIN pg_class r ON r.oid = t.typrelid
          WHERE t.typnamespace = $1
            AND (t.typtype IN ('e', 'd') OR (t.typtype = 'c' AND r.relkind = 'c'))
          ORDER BY CASE t.typtype WHEN 'e' THEN 0 WHEN 'd' THEN 1 ELSE 2 END, t.oid",
        &[&ns],
    )?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

struct Sequences {
    create: Vec<String>,
    owned_by: Vec<String>,
}

/// Free-standing sequences (serial ones included); identity sequences come with their
/// columns.
fn sequences(db: &mut impl Sql, ns: u32) -> anyhow::Result<Sequences> {
    let rows = db.query(
        "dump_sequences",
        "SELECT format('CREATE %sSEQUENCE %I AS %s START WITH %s INCREMENT BY %s MINVALUE %s MAXVALUE %s CACHE %s%s',
                       CASE WHEN c.relpersistence = 'u' THEN 'UNLOGGED ' ELSE '' END,
                       c.relname, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax,
                       s.seqcache, CASE WHEN s.seqcycle THEN ' CYCLE' ELSE '' END),
                (SELECT format('ALTER SEQUENCE %I OWNED BY %I.%I', c.relname, t.relname, a.attname)
                   FROM pg_depend d
                   JOIN pg_class t ON t.oid = d.refobjid
                   JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                    AND d.refclassid = 'pg_class'::regclass AND d.deptype = 'a'
                    AND t.relnamespace = $1)
           FROM pg_class c JOIN pg_sequence s ON s.seqrelid = c.oid
          WHERE c.relnamespace = $1 AND c.relkind = 'S'
            AND NOT EXISTS (SELECT 1 FROM pg_depend d
                             WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'i')
          ORDER BY c.oid",
        &[&ns],
    )?;
    Ok(Sequences {
        create: rows.iter().map(|r| r.get(0)).collect(),
        owned_by: rows.iter().filter_map(|r| r.get(1)).collect(),
    })
}

/// Every sequence's position (identity ones included), as `setval` calls.
fn sequence_values(db: &mut impl Sql, ns: u32) -> anyhow::Result<Vec<String>> {
    let names: Vec<(String, String)> = db
        .query(
            "list_sequences",
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relnamespace = $1 AND c.relkind = 'S' ORDER BY c.oid",
            &[&ns],
        )?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let mut out = Vec::new();
    for (schema, name) in names {
        // Names come from the catalog and are quoted; the value is read, not an MVCC row.
        let row = db.query_one(
            "read_sequence",
            &format!(
                "SELECT format('SELECT pg_catalog.setval(%L, %s, %s)', $1::text, last_value, CASE WHEN is_called THEN 'true' ELSE 'false' END) FROM {}",
                qualified(&schema, &name)
            ),
            &[&quote_ident(&name)],
        )?;
        out.push(row.get(0));
    }
    Ok(out)
}

struct Functions {
    early: Vec<String>,
    after_tables: Vec<String>,
    after_views: Vec<String>,
}

/// Functions and procedures. Bodies are not checked at restore (`check_function_bodies` is
/// off), so order only matters for signatures: a function whose arguments or result use a
/// table's (or view's) row type is created after the tables (or views).
fn functions(db: &mut impl Sql, ns: u32) -> anyhow::Result<Functions> {
    let rows = db.query(
        "dump_functions",
        "SELECT p.proname, pg_get_functiondef(p.oid),
                format('CREATE OR REPLACE %s %s(', CASE p.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END,
                       format('%I.%I', n.nspname, p.proname)),
                CASE p.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END,
                coalesce((SELECT max(CASE r.relkind WHEN 'v' THEN 2 ELSE 1 END)
                            FROM pg_depend d
                            JOIN pg_type t ON d.refclassid = 'pg_type'::regclass AND d.refobjid = t.oid
                            JOIN pg_class r ON r.oid = t.typrelid
                           WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                             AND r.relnamespace = $1 AND r.relkind IN ('r', 'v')), 0)
           FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
          WHERE p.pronamespace = $1 AND p.prokind IN ('f', 'p', 'w')
          ORDER BY p.oid",
        &[&ns],
    )?;
    let mut out = Functions {
        early: Vec::new(),
        after_tables: Vec::new(),
        after_views: Vec::new(),
    };
    for r in rows {
        let name: String = r.get(0);
        let def: String = r.get(1);
        let prefix: String = r.get(2);
        let kind: String = r.get(3);
        let group: i32 = r.get(4);
        let Some(rest) = def.strip_prefix(&prefix) else {
            bail!("cannot read the definition of function {name:?} (unexpected pg_get_functiondef output)");
        };
        let stmt = format!("CREATE {kind} {}({rest}", quote_ident(&name));
        match group {
            0 => out.early.push(stmt),
            1 => out.after_tables.push(stmt),
            _ => out.after_views.push(stmt),
        }
    }
    Ok(out)
}

struct Tables {
    create: Vec<String>,
    defs: Vec<TableDef>,
}

fn tables(db: &mut impl Sql, ns: u32) -> anyhow::Result<Tables> {
    let rows = db.query(
        "dump_tables",
        "SELECT c.relname,
                format('CREATE %sTABLE %I (%s)%s',
                       CASE WHEN c.relpersistence = 'u' THEN 'UNLOGGED ' ELSE '' END,
                       c.relname,
                       coalesce((SELECT string_agg(E'\\n    ' || col.def, ',' ORDER BY col.attnum) FROM (
                           SELECT a.attnum,
                                  format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod))
                               || CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation
                                       THEN ' COLLATE ' || (SELECT CASE WHEN pg_collation_is_visible(co.oid) THEN quote_ident(co.collname)
                                                                      ELSE format('%I.%I', cn.nspname, co.collname) END
                                                              FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace
                                                             WHERE co.oid = a.attcollation)
                                       ELSE '' END
                               || CASE WHEN a.attgenerated = 's' THEN format(' GENERATED ALWAYS AS (%s) STORED', pg_get_expr(d.adbin, d.adrelid, true))
                                       WHEN d.adbin IS NOT NULL THEN ' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid, true)
                                       ELSE '' END
                               || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END AS def
                             FROM pg_attribute a
                             JOIN pg_type t ON t.oid = a.atttypid
                             LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                            WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) col) || E'\\n', ''),
                       CASE WHEN c.reloptions IS NOT NULL THEN format(' WITH (%s)', array_to_string(c.reloptions, ', ')) ELSE '' END),
                array(SELECT a.attname::text FROM pg_attribute a
                       WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
                       ORDER BY a.attnum),
                array(SELECT format('ALTER TABLE %I ALTER COLUMN %I ADD GENERATED %s AS IDENTITY (SEQUENCE NAME %I START WITH %s INCREMENT BY %s MINVALUE %s MAXVALUE %s CACHE %s%s)',
                                    c.relname, a.attname, CASE a.attidentity WHEN 'a' THEN 'ALWAYS' ELSE 'BY DEFAULT' END,
                                    sc.relname, s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache,
                                    CASE WHEN s.seqcycle THEN ' CYCLE' ELSE '' END)
                        FROM pg_attribute a
                        JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass AND d.refobjid = c.oid
                                        AND d.refobjsubid = a.attnum AND d.classid = 'pg_class'::regclass AND d.deptype = 'i'
                        JOIN pg_class sc ON sc.oid = d.objid AND sc.relkind = 'S'
                        JOIN pg_sequence s ON s.seqrelid = sc.oid
                       WHERE a.attrelid = c.oid AND a.attidentity <> '' AND NOT a.attisdropped
                       ORDER BY a.attnum),
                array(SELECT format('ALTER TABLE %I ALTER COLUMN %I SET STATISTICS %s', c.relname, a.attname, a.attstattarget)
                        FROM pg_attribute a
                       WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attstattarget >= 0
                       ORDER BY a.attnum)
             || array(SELECT format('ALTER TABLE %I ALTER COLUMN %I SET STORAGE %s', c.relname, a.attname,
                                    CASE a.attstorage WHEN 'p' THEN 'PLAIN' WHEN 'e' THEN 'EXTERNAL' WHEN 'm' THEN 'MAIN' ELSE 'EXTENDED' END)
                        FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
                       WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attstorage <> t.typstorage
                       ORDER BY a.attnum)
             || CASE c.relreplident WHEN 'n' THEN ARRAY[format('ALTER TABLE %I REPLICA IDENTITY NOTHING', c.relname)]
                                    WHEN 'f' THEN ARRAY[format('ALTER TABLE %I REPLICA IDENTITY FULL', c.relname)]
                                    ELSE ARRAY[]::text[] END,
                c.relpages::int8,
                pg_relation_size(c.oid),
                NOT EXISTS (SELECT FROM pg_attribute a
                             JOIN pg_type t ON t.oid = a.atttypid
                             LEFT JOIN pg_type e ON e.oid = t.typelem AND t.typcategory = 'A'
                            WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
                              AND NOT (t.oid < 16384 AND t.typtype = 'b' AND t.typname !~ '^_?reg'
                                       AND t.typsend <> 0 AND t.typreceive <> 0
                                       AND (e.oid IS NULL OR (e.oid < 16384 AND e.typtype = 'b' AND e.typname !~ '^reg'
                                                              AND e.typsend <> 0 AND e.typreceive <> 0))))
           FROM pg_class c
          WHERE c.relnamespace = $1 AND c.relkind = 'r'
          ORDER BY c.oid",
        &[&ns],
    )?;
    let mut out = Tables {
        create: Vec::new(),
        defs: Vec::new(),
    };
    for r in rows {
        out.create.push(r.get(1));
        let identity: Vec<String> = r.get(3);
        let extra: Vec<String> = r.get(4);
        out.create.extend(identity);
        out.create.extend(extra);
        out.defs.push(TableDef {
            name: r.get(0),
            columns: r.get(2),
            pages: r.get(5),
            bytes: r.get(6),
            format: if r.get(7) {
                CopyFormat::Binary
            } else {
                CopyFormat::Text
            },
        });
    }
    Ok(out)
}

/// Views, each after the views it selects from.
fn views(db: &mut impl Sql, ns: u32) -> anyhow::Result<Vec<String>> {
    let rows = db.query(
        "dump_views",
        "SELECT c.oid, format('CREATE VIEW %I%s AS%s', c.relname,
                       CASE WHEN c.reloptions IS NOT NULL THEN format(' WITH (%s)', array_to_string(c.reloptions, ', ')) ELSE '' END,
                       rtrim(pg_get_viewdef(c.oid, true), ';')),
                array(SELECT DISTINCT d.refobjid FROM pg_rewrite rw
                        JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid
                                        AND d.refclassid = 'pg_class'::regclass
                        JOIN pg_class v ON v.oid = d.refobjid AND v.relkind = 'v' AND v.relnamespace = $1
                       WHERE rw.ev_class = c.oid AND d.refobjid <> c.oid)
           FROM pg_class c WHERE c.relnamespace = $1 AND c.relkind = 'v' ORDER BY c.oid",
        &[&ns],
    )?;
    let mut pending: BTreeMap<u32, (String, BTreeSet<u32>)> = rows
        .iter()
        .map(|r| {
            let deps: Vec<u32> = r.get(2);
            (r.get(0), (r.get(1), deps.into_iter().collect()))
        })
        .collect();
    let mut out = Vec::new();
    while !pending.is_empty() {
        let ready: Vec<u32> = pending
            .iter()
            .filter(|(_, (_, deps))| deps.iter().all(|d| !pending.contains_key(d)))
            .map(|(oid, _)| *oid)
            .collect();
        if ready.is_empty() {
            bail!("views in the schema depend on each other in a cycle; cannot order them");
        }
        for oid in ready {
            if let Some((stmt, _)) = pending.remove(&oid) {
                out.push(stmt);
            }
        }
    }
    Ok(out)
}

struct Indexes {
    create: Vec<String>,
    after_constraints: Vec<String>,
}

/// Every index of the schema's tables, constraint indexes included (their constraints are
/// attached to them afterwards), except exclusion constraints', which build their own.
fn indexes(db: &mut impl Sql, ns: u32) -> anyhow::Result<Indexes> {
    let rows = db.query(
        "dump_indexes",
        "SELECT pg_get_indexdef(i.indexrelid, 0, true),
                CASE WHEN i.indisclustered THEN format('ALTER TABLE %I CLUSTER ON %I', t.relname, ic.relname) END,
                CASE WHEN i.indisreplident THEN format('ALTER TABLE %I REPLICA IDENTITY USING INDEX %I', t.relname, ic.relname) END
           FROM pg_index i
           JOIN pg_class ic ON ic.oid = i.indexrelid
           JOIN pg_class t ON t.oid = i.indrelid
          WHERE t.relnamespace = $1 AND t.relkind = 'r'
            AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.contype = 'x')
          ORDER BY pg_relation_size(i.indrelid) DESC, i.indexrelid",
        &[&ns],
    )?;
    let mut out = Indexes {
        create: Vec::new(),
        after_constraints: Vec::new(),
    };
    for r in rows {
        out.create.push(r.get(0));
        out.after_constraints.extend(r.get::<_, Option<String>>(1));
        out.after_constraints.extend(r.get::<_, Option<String>>(2));
    }
    Ok(out)
}

/// One `ALTER TABLE` per table adding its constraints of the kinds (`contype`) asked for:
/// primary keys and unique constraints adopt the indexes built before; foreign keys need
/// the referenced keys in place.
fn constraints(db: &mut impl Sql, ns: u32, kinds: &[&str]) -> anyhow::Result<Vec<String>> {
    let kinds: Vec<String> = kinds.iter().map(|k| k.to_string()).collect();
    let rows = db.query(
        "dump_constraints",
        "SELECT format('ALTER TABLE ONLY %I %s', t.relname, string_agg(
                  CASE WHEN c.contype IN ('p', 'u') THEN
                       format('ADD CONSTRAINT %I %s USING INDEX %I%s', c.conname,
                              CASE c.contype WHEN 'p' THEN 'PRIMARY KEY' ELSE 'UNIQUE' END, ic.relname,
                              CASE WHEN c.condeferrable THEN ' DEFERRABLE' || CASE WHEN c.condeferred THEN ' INITIALLY DEFERRED' ELSE '' END ELSE '' END)
                  ELSE format('ADD CONSTRAINT %I %s', c.conname, pg_get_constraintdef(c.oid, true)) END,
                  ', ' ORDER BY c.contype, c.conname))
           FROM pg_constraint c
           JOIN pg_class t ON t.oid = c.conrelid
           LEFT JOIN pg_class ic ON ic.oid = c.conindid
          WHERE t.relnamespace = $1 AND t.relkind = 'r'
            AND c.contype::text = ANY($2)
          GROUP BY t.oid, t.relname
          ORDER BY pg_relation_size(t.oid) DESC, t.oid",
        &[&ns, &kinds],
    )?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

fn triggers_and_rules(db: &mut impl Sql, ns: u32) -> anyhow::Result<Vec<String>> {
    let rows = db.query(
        "dump_triggers",
        "SELECT stmt FROM (
            SELECT 1 AS pass, tg.oid, pg_get_triggerdef(tg.oid, true) AS stmt
              FROM pg_trigger tg JOIN pg_class t ON t.oid = tg.tgrelid
             WHERE t.relnamespace = $1 AND NOT tg.tgisinternal
            UNION ALL
            SELECT 2, tg.oid, format('ALTER TABLE %I %s TRIGGER %I', t.relname,
                                     CASE tg.tgenabled WHEN 'D' THEN 'DISABLE' WHEN 'R' THEN 'ENABLE REPLICA' ELSE 'ENABLE ALWAYS' END,
                                     tg.tgname)
              FROM pg_trigger tg JOIN pg_class t ON t.oid = tg.tgrelid
             WHERE t.relnamespace = $1 AND NOT tg.tgisinternal AND tg.tgenabled <> 'O'
            UNION ALL
            SELECT 3, r.oid, rtrim(pg_get_ruledef(r.oid, true), ';')
              FROM pg_rewrite r JOIN pg_class t ON t.oid = r.ev_class
             WHERE t.relnamespace = $1 AND r.rulename <> '_RETURN'
         ) s ORDER BY pass, oid",
        &[&ns],
    )?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// `COMMENT ON` statements: for relations, columns, functions and types (`post_data` false),
/// or for indexes, constraints and triggers, which exist only after the data is in.
fn comments(db: &mut impl Sql, ns: u32, post_data: bool) -> anyhow::Result<Vec<String>> {
    let rows = db.query(
        "dump_comments",
        "SELECT stmt FROM (
            SELECT false AS post, format('COMMENT ON %s %I IS %L',
                          CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'S' THEN 'SEQUENCE' WHEN 'c' THEN 'TYPE' ELSE 'TABLE' END,
                          c.relname, d.description) AS stmt
              FROM pg_description d JOIN pg_class c ON d.classoid = 'pg_class'::regclass AND d.objoid = c.oid
             WHERE c.relnamespace = $1 AND d.objsubid = 0 AND c.relkind IN ('r', 'v', 'S', 'c')
            UNION ALL
            SELECT false, format('COMMENT ON COLUMN %I.%I IS %L', c.relname, a.attname, d.description)
              FROM pg_description d JOIN pg_class c ON d.classoid = 'pg_class'::regclass AND d.objoid = c.oid
              JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid
             WHERE c.relnamespace = $1 AND d.objsubid > 0
            UNION ALL
            SELECT false, format('COMMENT ON %s %I(%s) IS %L', CASE p.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END,
                                 p.proname, pg_get_function_identity_arguments(p.oid), d.description)
              FROM pg_description d JOIN pg_proc p ON d.classoid = 'pg_proc'::regclass AND d.objoid = p.oid
             WHERE p.pronamespace = $1
            UNION ALL
            SELECT false, format('COMMENT ON %s %I IS %L', CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, t.typname, d.description)
              FROM pg_description d JOIN pg_type t ON d.classoid = 'pg_type'::regclass AND d.objoid = t.oid
             WHERE t.typnamespace = $1 AND t.typtype IN ('e', 'd')
            UNION ALL
            SELECT true, format('COMMENT ON INDEX %I IS %L', c.relname, d.description)
              FROM pg_description d JOIN pg_class c ON d.classoid = 'pg_class'::regclass AND d.objoid = c.oid
             WHERE c.relnamespace = $1 AND c.relkind = 'i'
            UNION ALL
            SELECT true, format('COMMENT ON CONSTRAINT %I ON %I IS %L', co.conname, t.relname, d.description)
              FROM pg_description d JOIN pg_constraint co ON d.classoid = 'pg_constraint'::regclass AND d.objoid = co.oid
              JOIN pg_class t ON t.oid = co.conrelid
             WHERE t.relnamespace = $1
            UNION ALL
            SELECT true, format('COMMENT ON TRIGGER %I ON %I IS %L', tg.tgname, t.relname, d.description)
              FROM pg_description d JOIN pg_trigger tg ON d.classoid = 'pg_trigger'::regclass AND d.objoid = tg.oid
              JOIN pg_class t ON t.oid = tg.tgrelid
             WHERE t.relnamespace = $1
         ) s WHERE post = $2 ORDER BY stmt",
        &[&ns, &post_data],
    )?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}
