//! Reads and checks an archive in one streaming pass, handing entries to a visitor (restore
//! loads them, verify discards them). Everything hostile is refused with exit 5 as soon as it
//! is seen: paths that are absolute or climb with `..`, links, devices and other entry types,
//! entries larger than the header allows, names the format does not have, duplicates, a
//! newer format, and everything `restore` would refuse in the header and `schema.json` (see
//! [`check`]). Checksums, sizes and row counts are compared with the manifest at the end, so a
//! visitor must not make anything permanent until `read` has returned Ok.
//!
//! Memory is bounded by the constants here and in [`crate::archive::readahead`], whatever the
//! archive declares: entries are handed on in pieces of at most [`PIECE`] bytes, only the JSON entries are held whole (each under
//! its own limit), and the bookkeeping per entry is capped by [`MAX_ENTRIES`]. Extension
//! entries (GNU long names, PAX headers), which the tar crate would read whole into memory,
//! are not interpreted: jobdbctl never writes them, so they are refused like other special
//! entries.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::sync::{Arc, Mutex};

use flate2::read::MultiGzDecoder;
use sha2::{Digest, Sha256};

use crate::archive::crypt::{self, Keys};
use crate::archive::readahead::ReadAhead;
use crate::archive::{
    check, count_lines, parse_data_entry_name, Codec, CopyFormat, Manifest, Mode, SchemaDdl,
    CLUSTER_DIR, DETECT_BYTES, FORMAT_VERSION, HEADER, MANIFEST, SCHEMA, ZSTD_WINDOW_LOG_MAX,
};
use crate::archive::{columns, pgcopy};
use crate::error::{failure, Exit};

/// Largest piece of an entry handed to the visitor at once.
pub const PIECE: usize = 4 << 20;
/// `header.json` names the tables and their columns: a few kilobytes for a real schema.
const MAX_HEADER_BYTES: u64 = 1 << 20;
/// `schema.json`: a real job schema's DDL is a few hundred kilobytes.
const MAX_SCHEMA_BYTES: u64 = 16 << 20;
/// `manifest.json`: about 130 bytes per entry, so room for [`MAX_ENTRIES`] with long names.
const MAX_MANIFEST_BYTES: u64 = 32 << 20;
/// Entries in one archive: an online archive of 800 GiB of table data, or a data directory
/// of 100,000 files.
pub const MAX_ENTRIES: usize = 100_000;

pub trait Visitor {
    /// The header, before any other entry is read, once it passed [`check::header`].
    fn header(&mut self, header: &Manifest) -> anyhow::Result<()>;
    /// An online archive's DDL, once it passed [`check::schema`]; before any data entry.
    fn schema(&mut self, _ddl: SchemaDdl) -> anyhow::Result<()> {
        Ok(())
    }
    fn dir(&mut self, name: &str, mode: u32) -> anyhow::Result<()>;
    /// A regular file's content in order, in pieces of at most [`PIECE`] bytes; `last` is set
    /// on the final piece (which may be empty for an empty file).
    fn file(&mut self, name: &str, mode: u32, piece: Vec<u8>, last: bool) -> anyhow::Result<()>;
    /// A buffer for the next piece, one of those handed to `file` before when the visitor
    /// is done with it: a fresh 4 MiB buffer is memory the kernel maps and zeroes again,
    /// which costs restore about as much as hashing it.
    fn spare(&mut self) -> Vec<u8> {
        Vec::new()
    }
}

/// Reads and discards: `verify`, and restore's check before it changes anything.
pub struct Discard;

impl Visitor for Discard {
    fn header(&mut self, _: &Manifest) -> anyhow::Result<()> {
        Ok(())
    }
    fn dir(&mut self, _: &str, _: u32) -> anyhow::Result<()> {
        Ok(())
    }
    fn file(&mut self, _: &str, _: u32, _: Vec<u8>, _: bool) -> anyhow::Result<()> {
        Ok(())
    }
}

/// What a complete read found, beyond the manifest.
#[derive(Debug)]
pub struct Summary {
    pub manifest: Manifest,
    pub entries: usize,
    pub uncompressed_bytes: u64,
    /// SHA-256 of the archive's bytes as stored (compressed, and encrypted if it is).
    pub file_sha256: [u8; 32],
    /// An age file (see `crypt`).
    pub encrypted: bool,
}

/// What is known of an entry read.
enum Content {
    Dir,
    File { size: u64, sha256: Option<[u8; 32]> },
}

/// The archive's bytes as stored, every one of them hashed as it is read. The hasher is
/// shared: the digest is taken once the stream has ended, so bytes that arrive after a first
/// end of file (a file growing while it is read) are in it too.
struct Hashing<R> {
    inner: R,
    hasher: Arc<Mutex<Sha256>>,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher
            .lock()
            .map_err(|_| std::io::Error::other("file hasher poisoned"))?
            .update(&buf[..n]);
        Ok(n)
    }
}

/// A read that failed: the storage's own failure when it carries one (an object store that
/// cannot be reached is exit 6, not a damaged archive), else a damaged archive.
fn bad_read(label: &str, e: std::io::Error, doing: &str) -> anyhow::Error {
    match crate::error::failure_in_io(&e) {
        Some(f) => failure(f.exit, f.message.clone()),
        None => bad(label, format!("{doing}{e} (truncated or corrupt)")),
    }
}

fn bad(label: &str, message: impl AsRef<str>) -> anyhow::Error {
    failure(
        Exit::BadArchive,
        format!("archive {label} is invalid: {}", message.as_ref()),
    )
}

/// The tar stream inside `input`, whatever its codec (gzip, zstd or none), told by its first
/// bytes; anything else is refused (exit 5).
pub fn decompressed<'a>(
    input: impl Read + Send + 'a,
    label: &str,
    keys: &Keys,
) -> anyhow::Result<(Codec, bool, Box<dyn Read + Send + 'a>)> {
    decompressed_with(input, label, 1 << 20, keys)
}

/// [`decompressed`] with a read buffer of `buffer` bytes (a header needs only a few KiB).
pub fn decompressed_with<'a>(
    input: impl Read + Send + 'a,
    label: &str,
    buffer: usize,
    keys: &Keys,
) -> anyhow::Result<(Codec, bool, Box<dyn Read + Send + 'a>)> {
    let (first, input) = start_of(input, label)?;
    let encrypted = crypt::is_encrypted(&first);
    let (first, input): (Vec<u8>, Box<dyn Read + Send + 'a>) = if encrypted {
        let plain = keys.open(std::io::Cursor::new(first).chain(input), label)?;
        start_of(plain, label)?
    } else {
        (first, input)
    };
    let codec = Codec::detect(&first).ok_or_else(|| {
        bad(
            label,
            "it is not a jobdbctl archive: neither gzip, zstd nor tar at its start",
        )
    })?;
    let whole = std::io::BufReader::with_capacity(buffer, std::io::Cursor::new(first).chain(input));
    let reader: Box<dyn Read + Send + 'a> = match codec {
        Codec::Gzip => Box::new(MultiGzDecoder::new(whole)),
        Codec::Zstd => {
            let mut z = zstd::stream::read::Decoder::with_buffer(whole)
                .map_err(|e| bad(label, format!("cannot start zstd: {e}")))?;
            // A frame asking for a larger window is refused, not honoured.
            z.window_log_max(ZSTD_WINDOW_LOG_MAX)
                .map_err(|e| bad(label, format!("cannot limit zstd's window: {e}")))?;
            Box::new(z)
        }
        Codec::None => Box::new(whole),
    };
    Ok((codec, encrypted, reader))
}

/// The first bytes of `input`, and the rest of it.
fn start_of<'a>(
    mut input: impl Read + Send + 'a,
    label: &str,
) -> anyhow::Result<(Vec<u8>, Box<dyn Read + Send + 'a>)> {
    let mut first = Vec::with_capacity(DETECT_BYTES);
    (&mut input)
        .take(DETECT_BYTES as u64)
        .read_to_end(&mut first)
        .map_err(|e| bad_read(label, e, "cannot read its start: "))?;
    Ok((first, Box::new(input)))
}

/// Reads the whole archive, checking every byte, and returns its manifest. Decompression
/// runs on a thread of its own ([`ReadAhead`]), the checks and the visitor on this one.
pub fn read(
    input: impl Read + Send + 'static,
    label: &str,
    keys: &Keys,
    visitor: &mut impl Visitor,
) -> anyhow::Result<Summary> {
    read_pass(input, label, keys, visitor, None)
}

/// Reads an archive that [`read`] found good (`checked`) a second time, with every check
/// but the entries' SHA-256: the file as stored must hash to what it did then, which proves
/// every entry the same for a twentieth of the hashing (the stored bytes are compressed).
/// A file changed in between is refused at the end (exit 5), before the visitor may make
/// anything permanent.
pub fn read_again(
    input: impl Read + Send + 'static,
    label: &str,
    keys: &Keys,
    visitor: &mut impl Visitor,
    checked: &Summary,
) -> anyhow::Result<Summary> {
    read_pass(input, label, keys, visitor, Some(checked.file_sha256))
}

fn read_pass(
    input: impl Read + Send + 'static,
    label: &str,
    keys: &Keys,
    visitor: &mut impl Visitor,
    same_file_as: Option<[u8; 32]>,
) -> anyhow::Result<Summary> {
    let file_hasher = Arc::new(Mutex::new(Sha256::new()));
    let input = Hashing {
        inner: input,
        hasher: Arc::clone(&file_hasher),
    };
    let hash_entries = same_file_as.is_none();
    let (_, encrypted, stream) = decompressed(input, label, keys)?;
    let mut archive = tar::Archive::new(ReadAhead::spawn(stream));
    let io = |e: std::io::Error| bad_read(label, e, "");
    let mut header: Option<Manifest> = None;
    let mut manifest: Option<Manifest> = None;
    let mut schema_seen = false;
    let mut seen: BTreeMap<String, Content> = BTreeMap::new();
    let mut lines_per_table: BTreeMap<usize, u64> = BTreeMap::new();
    let mut file_bytes: u64 = 0;
    let mut total: u64 = 0;
    let mut entries = archive.entries().map_err(io)?.raw(true);
    for entry in entries.by_ref() {
        let mut entry = entry.map_err(io)?;
        let name = entry_name(&entry, label)?;
        if seen.len() >= MAX_ENTRIES {
            return Err(bad(
                label,
                format!("it has more than {MAX_ENTRIES} entries"),
            ));
        }
        let kind = entry.header().entry_type();
        let mode = entry.header().mode().map_err(io)?;
        let size = entry.header().size().map_err(io)?;
        if manifest.is_some() {
            return Err(bad(label, format!("entry {name:?} follows {MANIFEST}")));
        }
        if !kind.is_file() && !kind.is_dir() {
            return Err(bad(
                label,
                format!(
                    "entry {name:?} is a {} (only regular files and directories are allowed)",
                    kind_name(kind)
                ),
            ));
        }
        if seen.contains_key(&name) {
            return Err(bad(label, format!("entry {name:?} appears twice")));
        }
        let Some(head) = header.as_ref() else {
            if name != HEADER || !kind.is_file() {
                return Err(bad(
                    label,
                    format!("first entry is {name:?}, not {HEADER} (not a jobdbctl archive?)"),
                ));
            }
            let bytes = read_small(&mut entry, &name, size, MAX_HEADER_BYTES, label)?;
            let sha256 = Some(Sha256::digest(&bytes).into());
            seen.insert(name, Content::File { size, sha256 });
            let parsed = parse_manifest(&bytes, HEADER, label)?;
            check::header(&parsed).map_err(|m| bad(label, m))?;
            visitor.header(&parsed)?;
            header = Some(parsed);
            continue;
        };
        // What this entry may be, given the archive's mode.
        let mut table = None;
        match (head.mode, name.as_str()) {
            (_, MANIFEST) | (Mode::Online, SCHEMA) => {}
            (Mode::Online, _) => {
                let index = parse_data_entry_name(&name)
                    .filter(|i| *i < head.tables.len())
                    .ok_or_else(|| {
                        bad(
                            label,
                            format!("unexpected entry {name:?} in an online archive"),
                        )
                    })?;
                // Restore creates the tables from schema.json before it can load them.
                if !schema_seen {
                    return Err(bad(
                        label,
                        format!("data entry {name:?} comes before {SCHEMA}"),
                    ));
                }
                table = Some(index);
            }
            (Mode::Cold | Mode::Physical, _) => {
                if name != CLUSTER_DIR && !name.starts_with(&format!("{CLUSTER_DIR}/")) {
                    return Err(bad(
                        label,
                        format!(
                            "unexpected entry {name:?} in a {} archive",
                            head.mode.name()
                        ),
                    ));
                }
                file_bytes = file_bytes.saturating_add(size);
                if file_bytes > head.total_file_bytes.unwrap_or(0) {
                    return Err(bad(
                        label,
                        format!(
                            "entry {name:?} takes the files past the {} bytes the header declares",
                            head.total_file_bytes.unwrap_or(0)
                        ),
                    ));
                }
            }
        }
        if !kind.is_file() {
            if !head.mode.is_cluster() || size != 0 {
                return Err(bad(label, format!("unexpected directory {name:?}")));
            }
            visitor.dir(&name, mode)?;
            seen.insert(name, Content::Dir);
            continue;
        }
        if (table.is_some() || head.mode.is_cluster() && name != MANIFEST)
            && size > head.max_entry_bytes
        {
            return Err(bad(
                label,
                format!(
                    "entry {name:?} is {size} bytes, more than the {} the header allows",
                    head.max_entry_bytes
                ),
            ));
        }
        if name == MANIFEST {
            let bytes = read_small(&mut entry, &name, size, MAX_MANIFEST_BYTES, label)?;
            manifest = Some(parse_manifest(&bytes, MANIFEST, label)?);
            continue;
        }
        if head.mode == Mode::Online && name == SCHEMA {
            let bytes = read_small(&mut entry, &name, size, MAX_SCHEMA_BYTES, label)?;
            let sha256 = Some(Sha256::digest(&bytes).into());
            seen.insert(name, Content::File { size, sha256 });
            let ddl: SchemaDdl = serde_json::from_slice(&bytes)
                .map_err(|e| bad(label, format!("{SCHEMA} is not valid: {e}")))?;
            drop(bytes);
            check::schema(head, &ddl).map_err(|m| bad(label, m))?;
            schema_seen = true;
            visitor.schema(ddl)?;
            continue;
        }
        let mut hasher = Sha256::new();
        let mut rows = table
            .map(|t| RowCounter::new(head.tables[t].format, head.tables[t].columns.len(), size));
        let mut left = size;
        loop {
            let want = left.min(PIECE as u64) as usize;
            let mut piece = visitor.spare();
            piece.resize(want, 0);
            entry.read_exact(&mut piece).map_err(io)?;
            if hash_entries {
                hasher.update(&piece);
            }
            if let Some(counter) = &mut rows {
                counter
                    .feed(&piece)
                    .map_err(|m| bad(label, format!("data entry {name:?}: {m}")))?;
            }
            left -= want as u64;
            total += want as u64;
            visitor.file(&name, mode, piece, left == 0)?;
            if left == 0 {
                break;
            }
        }
        if let (Some(t), Some(counter)) = (table, rows) {
            let n = counter
                .finish()
                .map_err(|m| bad(label, format!("data entry {name:?}: {m}")))?;
            *lines_per_table.entry(t).or_default() += n;
        }
        let sha256 = hash_entries.then(|| hasher.finalize().into());
        seen.insert(name, Content::File { size, sha256 });
    }
    let Some(header) = header else {
        return Err(bad(label, "it is empty (no entries)"));
    };
    let Some(mut manifest) = manifest else {
        return Err(bad(
            label,
            format!("it has no {MANIFEST} (truncated, or not a complete jobdbctl archive)"),
        ));
    };
    if header.mode == Mode::Online && !schema_seen {
        return Err(bad(label, format!("it has no {SCHEMA}")));
    }
    // Anything after the end-of-archive marker must be padding; reading to the end also
    // checks the last gzip member's CRC (or zstd frame's checksum).
    let mut rest = archive.into_inner();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = rest.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        if buf[..n].iter().any(|b| *b != 0) {
            return Err(bad(label, "data follows the end of the archive"));
        }
    }
    // The decompressing thread has stopped reading: it ends after the end of the stream,
    // which `rest` has just reached.
    let file_sha256: [u8; 32] = file_hasher
        .lock()
        .map_err(|_| bad(label, "file hasher poisoned"))?
        .clone()
        .finalize()
        .into();
    if same_file_as.is_some_and(|d| d != file_sha256) {
        return Err(bad(
            label,
            "it changed after it was checked (written to or replaced during the restore); nothing was restored, run the restore again",
        ));
    }
    check_manifest(&header, &mut manifest, &seen, &lines_per_table, label)?;
    Ok(Summary {
        entries: seen.len() + 1,
        uncompressed_bytes: total,
        manifest,
        file_sha256,
        encrypted,
    })
}

/// Counts the rows of one data entry and refuses one that cannot be the table's COPY data
/// before a server sees it: in text, a NUL byte (PostgreSQL text cannot hold one, and COPY
/// would refuse it only after the whole entry was sent); in binary, anything but a complete
/// binary COPY file of the table's column count, row-major or column-major (`columns`), and
/// a column-major entry larger than restore regroups in memory.
enum RowCounter {
    Text(u64),
    /// Binary, before the first bytes say which layout.
    Binary {
        columns: usize,
        size: u64,
    },
    RowMajor(pgcopy::Scanner),
    ColumnMajor(columns::Scanner),
}

impl RowCounter {
    fn new(format: CopyFormat, columns: usize, size: u64) -> RowCounter {
        match format {
            CopyFormat::Text => RowCounter::Text(0),
            CopyFormat::Binary => RowCounter::Binary { columns, size },
        }
    }

    fn feed(&mut self, piece: &[u8]) -> Result<(), String> {
        if let RowCounter::Binary { columns, size } = *self {
            *self = if piece.starts_with(&columns::MAGIC) {
                if size > columns::MAX_BYTES as u64 {
                    return Err(format!(
                        "a column-major entry of {size} bytes is larger than the {} jobdbctl writes",
                        columns::MAX_BYTES
                    ));
                }
                RowCounter::ColumnMajor(columns::Scanner::new(columns)?)
            } else {
                RowCounter::RowMajor(pgcopy::Scanner::new(columns)?)
            };
        }
        match self {
            RowCounter::Text(n) => {
                if piece.contains(&0) {
                    return Err("it holds a NUL byte, which COPY text never does".into());
                }
                *n += count_lines(piece);
                Ok(())
            }
            RowCounter::Binary { .. } => Ok(()),
            RowCounter::RowMajor(s) => s.feed(piece),
            RowCounter::ColumnMajor(s) => s.feed(piece),
        }
    }

    fn finish(self) -> Result<u64, String> {
        match self {
            RowCounter::Text(n) => Ok(n),
            RowCounter::Binary { .. } => Err("it is empty".into()),
            RowCounter::RowMajor(s) => s.finish(),
            RowCounter::ColumnMajor(s) => s.finish(),
        }
    }
}

fn check_manifest(
    header: &Manifest,
    manifest: &mut Manifest,
    seen: &BTreeMap<String, Content>,
    lines_per_table: &BTreeMap<usize, u64>,
    label: &str,
) -> anyhow::Result<()> {
    if !repeats(header, manifest) {
        return Err(bad(label, format!("{MANIFEST} does not match {HEADER}")));
    }
    let mut listed = BTreeSet::new();
    for e in &manifest.entries {
        if !listed.insert(e.name.as_str()) {
            return Err(bad(label, format!("{MANIFEST} lists {:?} twice", e.name)));
        }
        match seen.get(&e.name) {
            Some(Content::Dir) => {
                return Err(bad(
                    label,
                    format!("{MANIFEST} lists {:?}, which is a directory", e.name),
                ))
            }
            None => {
                return Err(bad(
                    label,
                    format!("entry {:?} listed in {MANIFEST} is missing", e.name),
                ))
            }
            Some(Content::File { size, .. }) if *size != e.size => {
                return Err(bad(
                    label,
                    format!(
                        "entry {:?} is {size} bytes but {MANIFEST} declares {}",
                        e.name, e.size
                    ),
                ))
            }
            Some(Content::File {
                sha256: Some(sha), ..
            }) if hex::encode(sha) != e.sha256 => {
                return Err(bad(
                    label,
                    format!("entry {:?} fails its SHA-256 check (corrupt)", e.name),
                ))
            }
            Some(_) => {}
        }
    }
    for (name, content) in seen {
        // Directories carry no content to check; every file must be listed.
        if matches!(content, Content::File { .. }) && !listed.contains(name.as_str()) {
            return Err(bad(
                label,
                format!("entry {name:?} is not listed in {MANIFEST}"),
            ));
        }
    }
    if manifest.mode == Mode::Online {
        for (i, t) in manifest.tables.iter().enumerate() {
            let found = lines_per_table.get(&i).copied().unwrap_or(0);
            let declared = t.rows.unwrap_or(0);
            if found != declared {
                return Err(bad(
                    label,
                    format!(
                        "table {:?} has {found} rows but {MANIFEST} declares {declared}",
                        t.name
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Whether `manifest` repeats `header` (the manifest adds only row counts and entries); any
/// difference means one of them was tampered with.
pub fn repeats(header: &Manifest, manifest: &Manifest) -> bool {
    let mut as_header = manifest.clone();
    as_header.entries.clear();
    for t in &mut as_header.tables {
        t.rows = None;
    }
    serde_json::to_value(&as_header).ok() == serde_json::to_value(header).ok()
}

fn parse_manifest(bytes: &[u8], name: &str, label: &str) -> anyhow::Result<Manifest> {
    // Look at the format version before anything else, so a newer format is reported as
    // such rather than as whatever field it changed. (Only that field is kept: a generic
    // JSON value of a large manifest takes several times its size.)
    #[derive(serde::Deserialize)]
    struct Versioned {
        format_version: Option<serde_json::Value>,
    }
    let versioned: Versioned = serde_json::from_slice(bytes)
        .map_err(|e| bad(label, format!("{name} is not JSON: {e}")))?;
    let version = versioned
        .format_version
        .and_then(|v| v.as_u64())
        .ok_or_else(|| bad(label, format!("{name} has no format_version")))?;
    if version > u64::from(FORMAT_VERSION) {
        return Err(bad(
            label,
            format!(
                "its format version {version} is newer than this jobdbctl ({}) reads ({FORMAT_VERSION}); use a newer jobdbctl",
                env!("CARGO_PKG_VERSION")
            ),
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| bad(label, format!("{name}: {e}")))
}

fn read_small(
    entry: &mut impl Read,
    name: &str,
    size: u64,
    limit: u64,
    label: &str,
) -> anyhow::Result<Vec<u8>> {
    if size > limit {
        return Err(bad(
            label,
            format!("{name} declares {size} bytes, more than the {limit} jobdbctl reads"),
        ));
    }
    let mut bytes = vec![0u8; size as usize];
    entry
        .read_exact(&mut bytes)
        .map_err(|e| bad_read(label, e, &format!("reading {name}: ")))?;
    Ok(bytes)
}

/// The entry's path as a relative, normalised name; anything that could escape the
/// destination is refused.
fn entry_name<R: Read>(entry: &tar::Entry<'_, R>, label: &str) -> anyhow::Result<String> {
    let raw = entry.path_bytes();
    let text = std::str::from_utf8(&raw)
        .map_err(|_| bad(label, "an entry name is not UTF-8"))?
        .to_string();
    let trimmed = text.strip_suffix('/').unwrap_or(&text);
    if trimmed.is_empty() || trimmed.starts_with('/') {
        return Err(bad(
            label,
            format!("entry {text:?} has an absolute or empty path"),
        ));
    }
    if trimmed
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == ".." || c.contains('\0'))
    {
        return Err(bad(
            label,
            format!("entry {text:?} has a path with \"..\", \".\" or empty components"),
        ));
    }
    Ok(trimmed.to_string())
}

fn kind_name(kind: tar::EntryType) -> &'static str {
    match kind {
        tar::EntryType::Symlink => "symbolic link",
        tar::EntryType::Link => "hard link",
        tar::EntryType::Char => "character device",
        tar::EntryType::Block => "block device",
        tar::EntryType::Fifo => "FIFO",
        tar::EntryType::GNUSparse => "sparse file",
        _ => "special entry",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out one part per read, an empty part being an end of file: a file that grows
    /// while it is read.
    struct Growing(Vec<&'static [u8]>);

    impl Read for Growing {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() {
                return Ok(0);
            }
            let part = self.0.remove(0);
            buf[..part.len()].copy_from_slice(part);
            Ok(part.len())
        }
    }

    #[test]
    fn the_file_digest_covers_bytes_read_after_an_end_of_file() {
        let hasher = Arc::new(Mutex::new(Sha256::new()));
        let mut input = Hashing {
            inner: Growing(vec![b"abc", b"", b"def"]),
            hasher: Arc::clone(&hasher),
        };
        let mut buf = [0u8; 8];
        let reads: Vec<usize> = (0..4).map(|_| input.read(&mut buf).unwrap()).collect();
        assert_eq!(reads, [3, 0, 3, 0]);
        let digest: [u8; 32] = hasher.lock().unwrap().clone().finalize().into();
        let whole: [u8; 32] = Sha256::digest(b"abcdef").into();
        assert_eq!(digest, whole);
    }
}
