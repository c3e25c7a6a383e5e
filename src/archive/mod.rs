//! The backup archive: a `.tar.gz` whose first entry is `header.json` (what the archive is,
//! known before any data) and whose last entry is `manifest.json` (the header again plus
//! per-table row counts and the size and SHA-256 of every other entry). The manifest comes
//! last because the checksums are known only once the data has streamed past; a reader can
//! still refuse an archive it does not understand from the header before touching anything.
//!
//! The gzip stream is a sequence of independent members (one per entry or slice of one),
//! compressed in parallel; any gzip reader sees one stream.

pub mod check;
pub mod chunker;
pub mod columns;
pub mod crypt;
pub mod pgcopy;
pub mod readahead;
pub mod reader;
pub mod server_config;
pub mod writer;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Bump when a reader of the previous format could misread a new archive. 2: tables may be
/// in binary COPY format (`Table::format`); readers still read 1.
pub const FORMAT_VERSION: u32 = 2;
pub const HEADER: &str = "header.json";
pub const MANIFEST: &str = "manifest.json";
/// The schema's DDL (online archives).
pub const SCHEMA: &str = "schema.json";
/// Cold archives hold the data directory under this prefix.
pub const CLUSTER_DIR: &str = "psql";
/// Table data is cut into entries of about this size (on row boundaries), so entries can be
/// compressed, checksummed and loaded in parallel.
pub const CHUNK_SIZE: usize = 8 << 20;
/// Limit for the JSON entries; far above any real schema.
pub const MAX_METADATA_BYTES: u64 = 64 << 20;
/// gzip level: on column-major job data level 2 of zlib-rs gives pg_dump's size (deflate
/// level 6) at about 450 MB/s per core, a third faster than level 3 for 1% more (see
/// docs/backups.md).
pub const COMPRESSION_LEVEL: u32 = 2;
/// zstd level: on column-major job data level 2 is both faster and smaller than zstd's
/// default 3 (1300 against 1000 MB/s per core, 10.4 against 11.7 MB for a million jobs).
pub const ZSTD_LEVEL: i32 = 2;
/// The largest zstd window a reader accepts (16 MiB): the writer compresses blocks of at most
/// `CHUNK_SIZE` plus a header, so a bigger window only comes from a hostile archive and would
/// cost the reader its memory.
pub const ZSTD_WINDOW_LOG_MAX: u32 = 24;

/// How the tar stream is compressed. Readers detect it from the first bytes, never from the
/// file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    /// Independent gzip members, one per block (`.tar.gz`): any gzip reader reads it.
    Gzip,
    /// Independent zstd frames, one per block (`.tar.zst`): faster and smaller.
    Zstd,
    /// Plain tar (`.tar`).
    None,
}

impl Codec {
    /// The file name ending jobdbctl gives an archive of this codec.
    pub fn suffix(self) -> &'static str {
        match self {
            Codec::Gzip => ".tar.gz",
            Codec::Zstd => ".tar.zst",
            Codec::None => ".tar",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Codec::Gzip => "gzip",
            Codec::Zstd => "zstd",
            Codec::None => "none",
        }
    }

    /// The codec of an archive from its first bytes (at least 262 for a plain tar).
    pub fn detect(first: &[u8]) -> Option<Codec> {
        if first.starts_with(&[0x1f, 0x8b]) {
            Some(Codec::Gzip)
        } else if first.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Some(Codec::Zstd)
        } else if first.get(257..262) == Some(b"ustar".as_slice()) {
            Some(Codec::None)
        } else {
            None
        }
    }

    /// Every ending an archive may have, for listing a directory (`.age`: encrypted).
    pub const SUFFIXES: [&'static str; 6] = [
        ".tar.gz.age",
        ".tar.zst.age",
        ".tar.age",
        ".tar.gz",
        ".tar.zst",
        ".tar",
    ];
}

impl std::fmt::Display for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The schema profiles an online archive's header may name (`db::profile` knows each).
pub const PROFILES: [&str; 2] = ["jobdb", "graphile-worker"];

/// Bytes `Codec::detect` needs to see.
pub const DETECT_BYTES: usize = 262;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Consistent snapshot of the job schema through SQL while the server runs.
    Online,
    /// Tarball of the embedded cluster's data directory with the server stopped.
    Cold,
    /// Base backup of the embedded cluster's data directory while the server runs
    /// (`pg_backup_start`/`pg_backup_stop`): consistent only with the archived WAL of its
    /// range (`Manifest::base`), from which a restore recovers it to a point.
    Physical,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Online => "online",
            Mode::Cold => "cold",
            Mode::Physical => "physical",
        }
    }

    /// Whether the archive holds a data directory (`psql/…` entries) rather than tables.
    pub fn is_cluster(self) -> bool {
        matches!(self, Mode::Cold | Mode::Physical)
    }
}

/// Where a physical archive's WAL begins: recovery needs every segment from `start_wal`
/// through the stop segment, which PostgreSQL's backup history file
/// (`START_WAL.OFFSET.backup`, archived with the WAL) names along with the stop time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseBackup {
    /// The label given to `pg_backup_start`, repeated in the backup history file.
    pub label: String,
    pub timeline: u32,
    pub start_lsn: String,
    /// The segment holding `start_lsn`.
    pub start_wal: String,
}

/// Whether `--keep`/`--keep-within` may ever delete an archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Retention {
    /// jobdbctl chose the file name (the operator gave a directory or nothing): pruning may
    /// delete it.
    Managed,
    /// The operator named the file, it went to standard output, or `destroy --backup-first`
    /// wrote it: never pruned.
    Pinned,
}

/// `header.json` and `manifest.json`: the header has no row counts and no entries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub jobdbctl_version: String,
    pub mode: Mode,
    pub created_at: DateTime<Utc>,
    pub server_version: Option<String>,
    /// Where the archive was taken from (no password).
    pub server: String,
    pub database: String,
    pub profile: Option<String>,
    pub schema: Option<String>,
    pub schema_version: Option<i32>,
    pub last_used_job_id: Option<i64>,
    /// The largest entry this archive may hold; anything larger is hostile.
    pub max_entry_bytes: u64,
    /// Cold archives: the data directory's total size when archived.
    #[serde(default)]
    pub total_file_bytes: Option<u64>,
    /// Physical archives: where their WAL begins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<BaseBackup>,
    /// Absent in archives written before retention marks existed; pruning treats those as
    /// pinned. Skipped when absent so such archives' header and manifest still compare equal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
    #[serde(default)]
    pub tables: Vec<Table>,
    #[serde(default)]
    pub entries: Vec<Entry>,
}

impl Manifest {
    /// The header of an archive this jobdbctl starts now, before anything of the database
    /// is known.
    pub fn new(mode: Mode, server: String, database: String) -> Manifest {
        Manifest {
            format_version: FORMAT_VERSION,
            jobdbctl_version: env!("CARGO_PKG_VERSION").to_string(),
            mode,
            created_at: Utc::now(),
            server_version: None,
            server,
            database,
            profile: None,
            schema: None,
            schema_version: None,
            last_used_job_id: None,
            max_entry_bytes: 0,
            total_file_bytes: None,
            base: None,
            retention: None,
            tables: Vec::new(),
            entries: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    pub name: String,
    /// The columns COPY carries, in order (generated columns are recomputed on load).
    pub columns: Vec<String>,
    /// Rows in the archive; only in the manifest.
    #[serde(default)]
    pub rows: Option<u64>,
    /// How the table's entries encode rows; absent (format 1) means text.
    #[serde(default, skip_serializing_if = "CopyFormat::is_text")]
    pub format: CopyFormat,
}

/// The COPY format of a table's data entries. Binary is chosen when every column's type is a
/// built-in one whose binary form PostgreSQL keeps stable across major versions; anything
/// else (user-defined types, arrays or composites of them, `reg*` types that travel as OIDs)
/// stays text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CopyFormat {
    #[default]
    Text,
    Binary,
}

impl CopyFormat {
    pub fn is_text(&self) -> bool {
        *self == CopyFormat::Text
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

/// The DDL of an online archive, split where the data load goes: `pre_data` creates types,
/// sequences, functions, tables, views and check constraints (checked row by row as COPY
/// loads, as pg_dump does); `post_data` is phases of statements that may run in parallel
/// within a phase (indexes; then key constraints; then foreign keys; then triggers;
/// then row-level security and policies; then comments on policies).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SchemaDdl {
    pub pre_data: Vec<String>,
    pub post_data: Vec<Vec<String>>,
    /// Roles the DDL names (row-level security policies): restore refuses a server that
    /// lacks one before it creates anything.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

/// The entry holding chunk `chunk` of table number `table`.
pub fn data_entry_name(table: usize, chunk: u32) -> String {
    format!("data/{table:04}/{chunk:06}.copy")
}

/// The table number of a data entry name, if it is one.
pub fn parse_data_entry_name(name: &str) -> Option<usize> {
    let rest = name.strip_prefix("data/")?;
    let (table, file) = rest.split_once('/')?;
    let chunk = file.strip_suffix(".copy")?;
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(table, 4) || !digits(chunk, 6) {
        return None;
    }
    table.parse().ok()
}

/// The rows in a piece of COPY text: its newlines, counted eight bytes at a time, since every
/// byte of every text table passes here, in backup and in restore (in tests, through an
/// unoptimised build).
pub fn count_lines(data: &[u8]) -> u64 {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const LOW7: u64 = 0x7f * ONES;
    // SAFETY: every bit pattern is a valid u64.
    let (head, words, tail) = unsafe { data.align_to::<u64>() };
    let mut n = 0u64;
    for &w in words {
        let x = w ^ (u64::from(b'\n') * ONES);
        // A byte of x is zero exactly where the byte was a newline; its high bit in t is
        // then clear, and set everywhere else.
        let t = ((x & LOW7) + LOW7) | x;
        n += u64::from((!t & !LOW7).count_ones());
    }
    let bytes = |part: &[u8]| part.iter().filter(|b| **b == b'\n').count() as u64;
    n + bytes(head) + bytes(tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_counted_eight_bytes_at_a_time_as_one_by_one() {
        let mut data: Vec<u8> = (0..=255u8).cycle().take(10_007).collect();
        data.extend_from_slice(b"\n\n\x8a\x0b\n");
        for start in 0..9 {
            let slice = &data[start..];
            let one_by_one = slice.iter().filter(|b| **b == b'\n').count() as u64;
            assert_eq!(count_lines(slice), one_by_one);
        }
        assert_eq!(count_lines(b""), 0);
        assert_eq!(count_lines(&[b'\n'; 17]), 17);
    }

    #[test]
    fn data_entry_names_round_trip() {
        assert_eq!(data_entry_name(3, 17), "data/0003/000017.copy");
        assert_eq!(parse_data_entry_name("data/0003/000017.copy"), Some(3));
        assert_eq!(parse_data_entry_name("data/03/000017.copy"), None);
        assert_eq!(parse_data_entry_name("data/0003/../x.copy"), None);
        assert_eq!(parse_data_entry_name("data/0003/000017.copy/x"), None);
    }
}
