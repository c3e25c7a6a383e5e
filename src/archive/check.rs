//! The checks `restore` makes of an archive's header and `schema.json` before it changes
//! anything, that need no database. The reader runs them for `verify` and `restore` alike,
//! so after `verify` exit 0 restore can refuse the archive only for what takes a server to
//! tell (a statement or value the server rejects, a missing role, live workers, a lock).
//!
//! What they cannot do is make `schema.json` harmless: its statements are SQL that restore
//! runs as the connecting role, as a pg_dump file is. They check that the statements create
//! the tables and columns the data goes into, not what else they do.

use std::collections::{BTreeMap, BTreeSet};

use crate::archive::{Manifest, Mode, SchemaDdl, HEADER, PROFILES, SCHEMA};

/// PostgreSQL truncates longer identifiers (NAMEDATALEN - 1), so a longer name in an archive
/// would not be the name restore creates.
pub const MAX_IDENTIFIER_BYTES: usize = 63;

/// A name PostgreSQL can hold as it is: 1 to 63 bytes, no NUL.
pub fn identifier(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("{what} has an empty name"));
    }
    if name.len() > MAX_IDENTIFIER_BYTES {
        return Err(format!(
            "{what} {name:?} is {} bytes long; PostgreSQL names hold at most {MAX_IDENTIFIER_BYTES}",
            name.len()
        ));
    }
    if name.contains('\0') {
        return Err(format!("{what} {name:?} contains a NUL byte"));
    }
    Ok(())
}

/// What an online archive's header must say for restore to use it.
pub fn header(head: &Manifest) -> Result<(), String> {
    if head.mode == Mode::Physical {
        return base_backup(head);
    }
    if head.mode != Mode::Online {
        return Ok(());
    }
    if let Some(profile) = &head.profile {
        if !PROFILES.contains(&profile.as_str()) {
            return Err(format!(
                "{HEADER} names profile {profile:?}, which this jobdbctl does not know (known: jobdb, graphile-worker)"
            ));
        }
    }
    let schema = head
        .schema
        .as_deref()
        .ok_or_else(|| format!("{HEADER} of an online archive names no schema"))?;
    identifier("schema", schema)?;
    // The swap renames the staging schema to this name, which PostgreSQL refuses.
    if schema.starts_with("pg_") {
        return Err(format!(
            "schema {schema:?} has the prefix pg_, which PostgreSQL reserves for system schemas"
        ));
    }
    let mut tables = BTreeSet::new();
    for t in &head.tables {
        identifier("table", &t.name)?;
        if !tables.insert(t.name.as_str()) {
            return Err(format!("{HEADER} lists table {:?} twice", t.name));
        }
        let mut columns = BTreeSet::new();
        for c in &t.columns {
            identifier(&format!("a column of table {:?}", t.name), c)?;
            if !columns.insert(c.as_str()) {
                return Err(format!(
                    "{HEADER} lists column {c:?} of table {:?} twice",
                    t.name
                ));
            }
        }
    }
    Ok(())
}

/// A physical archive's WAL start, which names files in the WAL archive and goes into the
/// recovery settings: only the shapes PostgreSQL writes.
fn base_backup(head: &Manifest) -> Result<(), String> {
    let base = head
        .base
        .as_ref()
        .ok_or_else(|| format!("{HEADER} of a physical archive names no WAL start"))?;
    let hex = |s: &str| !s.is_empty() && s.len() <= 8 && s.bytes().all(|b| b.is_ascii_hexdigit());
    let lsn_ok = base
        .start_lsn
        .split_once('/')
        .is_some_and(|(hi, lo)| hex(hi) && hex(lo));
    let wal_ok = base.start_wal.len() == 24
        && base.start_wal.bytes().all(|b| b.is_ascii_hexdigit())
        && u32::from_str_radix(&base.start_wal[..8], 16) == Ok(base.timeline);
    let label_ok = base.label.len() <= 100
        && base
            .label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    if !(lsn_ok && wal_ok && label_ok && base.timeline > 0) {
        return Err(format!(
            "{HEADER} of a physical archive has a WAL start PostgreSQL never writes"
        ));
    }
    Ok(())
}

/// What `schema.json` must hold for restore to load the header's tables: every statement
/// sendable, roles that can exist, and a `CREATE TABLE` for each table of the header with
/// each of its columns, none of them generated (COPY cannot write those).
pub fn schema(head: &Manifest, ddl: &SchemaDdl) -> Result<(), String> {
    let statements = ddl.pre_data.iter().chain(ddl.post_data.iter().flatten());
    for stmt in statements {
        if stmt.contains('\0') {
            return Err(format!(
                "{SCHEMA} has a statement with a NUL byte, which PostgreSQL cannot receive"
            ));
        }
    }
    for role in &ddl.roles {
        identifier(&format!("a role named in {SCHEMA}"), role)?;
    }
    let mut created: BTreeMap<String, Vec<(String, bool)>> = BTreeMap::new();
    for stmt in &ddl.pre_data {
        let Some(table) = created_table(stmt)? else {
            continue;
        };
        if created.contains_key(&table.name) {
            return Err(format!("{SCHEMA} creates table {:?} twice", table.name));
        }
        created.insert(table.name, table.columns);
    }
    for t in &head.tables {
        let columns = created.get(&t.name).ok_or_else(|| {
            format!(
                "{SCHEMA} does not create table {:?}, which {HEADER} lists",
                t.name
            )
        })?;
        for c in &t.columns {
            match columns.iter().find(|(name, _)| name == c) {
                None => {
                    return Err(format!(
                        "table {:?} in {SCHEMA} has no column {c:?}, which {HEADER} lists",
                        t.name
                    ))
                }
                Some((_, true)) => {
                    return Err(format!(
                        "column {c:?} of table {:?} is generated in {SCHEMA}, so its data cannot be loaded",
                        t.name
                    ))
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}

struct CreatedTable {
    name: String,
    /// Each column and whether it is a stored generated column.
    columns: Vec<(String, bool)>,
}

/// The table and columns of a `CREATE [UNLOGGED] TABLE name (…)` statement with an
/// unqualified name (the shape `db::dump` writes); `None` for any other statement.
fn created_table(stmt: &str) -> Result<Option<CreatedTable>, String> {
    let tokens = tokens(stmt)?;
    let mut at = 0;
    let word = |i: usize, w: &str| matches!(tokens.get(i), Some(Token::Word(x)) if x == w);
    if !word(at, "create") {
        return Ok(None);
    }
    at += 1;
    if word(at, "unlogged") {
        at += 1;
    }
    if !word(at, "table") {
        return Ok(None);
    }
    at += 1;
    if word(at, "if") {
        at += 3;
    }
    let name = match tokens.get(at) {
        Some(Token::Word(w) | Token::Quoted(w)) => w.clone(),
        _ => return Ok(None),
    };
    at += 1;
    if tokens.get(at) != Some(&Token::Punct('(')) {
        return Ok(None);
    }
    at += 1;
    let broken =
        || format!("{SCHEMA} has a CREATE TABLE {name:?} whose column list does not parse");
    let mut columns: Vec<(String, bool)> = Vec::new();
    let mut element: Vec<&Token> = Vec::new();
    let mut depth = 0usize;
    loop {
        let token = tokens.get(at).ok_or_else(broken)?;
        at += 1;
        let end = depth == 0 && matches!(token, Token::Punct(',' | ')'));
        if !end {
            match token {
                Token::Punct('(' | '[') => depth += 1,
                Token::Punct(')' | ']') => depth = depth.saturating_sub(1),
                _ => {}
            }
            element.push(token);
            continue;
        }
        if let Some(column) = column_of(&element) {
            if columns.iter().any(|(c, _)| *c == column.0) {
                return Err(format!(
                    "{SCHEMA} creates table {name:?} with column {:?} twice",
                    column.0
                ));
            }
            columns.push(column);
        }
        element.clear();
        if *token == Token::Punct(')') {
            break;
        }
    }
    Ok(Some(CreatedTable { name, columns }))
}

/// The column an element of a column list defines, and whether it is generated; `None` for
/// a table constraint or `LIKE`.
fn column_of(element: &[&Token]) -> Option<(String, bool)> {
    const NOT_COLUMNS: [&str; 7] = [
        "constraint",
        "check",
        "unique",
        "primary",
        "foreign",
        "exclude",
        "like",
    ];
    let name = match element.first()? {
        Token::Word(w) if NOT_COLUMNS.contains(&w.as_str()) => return None,
        Token::Word(w) | Token::Quoted(w) => w.clone(),
        _ => return None,
    };
    // `GENERATED ALWAYS AS (expr) STORED`, not `… AS IDENTITY`, at the element's top level.
    let mut depth = 0usize;
    let mut generated = false;
    for (i, t) in element.iter().enumerate() {
        match t {
            Token::Punct('(' | '[') => depth += 1,
            Token::Punct(')' | ']') => depth = depth.saturating_sub(1),
            Token::Word(w) if depth == 0 && w == "generated" => {
                let next = |k: usize| element.get(i + k).copied();
                generated = matches!(next(1), Some(Token::Word(a)) if a == "always")
                    && matches!(next(2), Some(Token::Word(a)) if a == "as")
                    && next(3) == Some(&Token::Punct('('));
            }
            _ => {}
        }
        if generated {
            break;
        }
    }
    Some((name, generated))
}

#[derive(Debug, PartialEq)]
enum Token {
    /// An unquoted word, folded to lower case as PostgreSQL folds it.
    Word(String),
    /// A double-quoted identifier, unescaped.
    Quoted(String),
    /// A string, number or operator: only its extent matters here.
    Other,
    Punct(char),
}

/// SQL tokens, as far as telling names, parentheses and commas apart needs: strings (also
/// `E'…'` with backslash escapes), dollar quotes, quoted identifiers and comments are
/// skipped whole so nothing inside them is mistaken for structure.
fn tokens(sql: &str) -> Result<Vec<Token>, String> {
    let unterminated = |what: &str| format!("{SCHEMA} has a statement with an unterminated {what}");
    let chars: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '-' && chars.get(i + 1) == Some(&'-') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            // Block comments nest in PostgreSQL.
            let mut depth = 0usize;
            loop {
                match (chars.get(i), chars.get(i + 1)) {
                    (Some('/'), Some('*')) => {
                        depth += 1;
                        i += 2;
                    }
                    (Some('*'), Some('/')) => {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    }
                    (Some(_), _) => i += 1,
                    (None, _) => return Err(unterminated("comment")),
                }
            }
        } else if c == '"' {
            let mut name = String::new();
            i += 1;
            loop {
                match (chars.get(i), chars.get(i + 1)) {
                    (Some('"'), Some('"')) => {
                        name.push('"');
                        i += 2;
                    }
                    (Some('"'), _) => {
                        i += 1;
                        break;
                    }
                    (Some(ch), _) => {
                        name.push(*ch);
                        i += 1;
                    }
                    (None, _) => return Err(unterminated("quoted name")),
                }
            }
            out.push(Token::Quoted(name));
        } else if c == '\'' {
            i = skip_string(&chars, i, false).ok_or_else(|| unterminated("string"))?;
            out.push(Token::Other);
        } else if c == '$' {
            match dollar_tag(&chars, i) {
                Some(tag) => {
                    let body = i + tag.len();
                    let end = (body..=chars.len().saturating_sub(tag.len()))
                        .find(|&k| chars[k..k + tag.len()] == tag[..])
                        .ok_or_else(|| unterminated("dollar-quoted string"))?;
                    i = end + tag.len();
                }
                None => i += 1,
            }
            out.push(Token::Other);
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            if chars.get(i) == Some(&'\'') {
                // A prefixed string: E'…' (backslash escapes), B'…', X'…', U&'…'.
                let escapes = word.eq_ignore_ascii_case("e");
                i = skip_string(&chars, i, escapes).ok_or_else(|| unterminated("string"))?;
                out.push(Token::Other);
            } else {
                out.push(Token::Word(word.to_ascii_lowercase()));
            }
        } else if c.is_ascii_digit() {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            out.push(Token::Other);
        } else {
            out.push(Token::Punct(c));
            i += 1;
        }
    }
    Ok(out)
}

/// The index just past the string literal whose opening quote is at `start`.
fn skip_string(chars: &[char], start: usize, escapes: bool) -> Option<usize> {
    let mut i = start + 1;
    loop {
        match (chars.get(i)?, chars.get(i + 1)) {
            ('\\', Some(_)) if escapes => i += 2,
            ('\'', Some('\'')) => i += 2,
            ('\'', _) => return Some(i + 1),
            _ => i += 1,
        }
    }
}

/// The `$tag$` opening a dollar-quoted string at `start`, if one does.
fn dollar_tag(chars: &[char], start: usize) -> Option<Vec<char>> {
    let mut i = start + 1;
    while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
        if i == start + 1 && chars[i].is_ascii_digit() {
            // `$1` is a parameter, not a tag.
            return None;
        }
        i += 1;
    }
    (chars.get(i) == Some(&'$')).then(|| chars[start..=i].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns(stmt: &str) -> Vec<(String, bool)> {
        created_table(stmt)
            .expect("parses")
            .expect("a CREATE TABLE")
            .columns
    }

    #[test]
    fn reads_the_create_table_statements_dump_writes() {
        let stmt = "CREATE TABLE jobs (\n    id bigint DEFAULT nextval('jobs_id_seq'::regclass) NOT NULL,\n    \"Payload, (odd)\" jsonb DEFAULT '{\"a\": \"(,\"}'::jsonb,\n    amount numeric(10,2),\n    tags text[] DEFAULT ARRAY['x,y'::text],\n    note text COLLATE \"C\" DEFAULT E'it\\'s, (',\n    total bigint GENERATED ALWAYS AS ((amount * (2)::numeric)) STORED\n) WITH (fillfactor=90)";
        assert_eq!(
            columns(stmt),
            vec![
                ("id".to_string(), false),
                ("Payload, (odd)".to_string(), false),
                ("amount".to_string(), false),
                ("tags".to_string(), false),
                ("note".to_string(), false),
                ("total".to_string(), true),
            ]
        );
        assert_eq!(columns("CREATE UNLOGGED TABLE \"t\"\"q\" ()"), vec![]);
        let t = created_table("CREATE UNLOGGED TABLE \"t\"\"q\" ()")
            .expect("parses")
            .expect("a table");
        assert_eq!(t.name, "t\"q");
    }

    #[test]
    fn other_statements_are_not_tables() {
        for stmt in [
            "CREATE SEQUENCE jobs_id_seq",
            "CREATE TABLE other.jobs (id int)",
            "ALTER TABLE jobs ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (SEQUENCE NAME s)",
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $body$ SELECT 1 $body$",
        ] {
            assert!(created_table(stmt).expect("parses").is_none(), "{stmt}");
        }
        assert!(created_table("CREATE TABLE t (a int, a text)").is_err());
        assert!(created_table("CREATE TABLE t (a text DEFAULT 'x").is_err());
        assert!(created_table("CREATE TABLE t (a int").is_err());
    }

    #[test]
    fn identifiers_postgresql_cannot_hold_are_refused() {
        assert!(identifier("table", "jobs").is_ok());
        assert!(identifier("table", "").is_err());
        assert!(identifier("table", &"x".repeat(64)).is_err());
        assert!(identifier("table", &"x".repeat(63)).is_ok());
        assert!(identifier("table", "a\0b").is_err());
    }
}
