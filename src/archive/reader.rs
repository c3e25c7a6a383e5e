//! Reads and checks an archive in one streaming pass, handing entries to a visitor (restore
//! loads them, verify discards them). Everything hostile is refused with exit 5 as soon as it
//! is seen: paths that are absolute or climb with `..`, links, devices and other entry types,
//! entries larger than the header allows, names the format does not have, duplicates, a
//! newer format. Checksums, sizes and row counts are compared with the manifest at the end,
//! so a visitor must not make anything permanent until `read` has returned Ok.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use flate2::read::MultiGzDecoder;
use sha2::{Digest, Sha256};

use crate::archive::{
    count_lines, parse_data_entry_name, Manifest, Mode, CLUSTER_DIR, FORMAT_VERSION, HEADER,
    MANIFEST, MAX_METADATA_BYTES, SCHEMA,
};
use crate::error::{failure, Exit};

/// Largest piece of an entry handed to the visitor at once.
pub const PIECE: usize = 16 << 20;

pub trait Visitor {
    /// The header, before any other entry is read.
    fn header(&mut self, header: &Manifest) -> anyhow::Result<()>;
    fn dir(&mut self, name: &str, mode: u32) -> anyhow::Result<()>;
    /// A regular file's content in order, in pieces of at most [`PIECE`] bytes; `last` is set
    /// on the final piece (which may be empty for an empty file).
    fn file(&mut self, name: &str, mode: u32, piece: Vec<u8>, last: bool) -> anyhow::Result<()>;
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
}

fn bad(label: &str, message: impl AsRef<str>) -> anyhow::Error {
    failure(
        Exit::BadArchive,
        format!("archive {label} is invalid: {}", message.as_ref()),
    )
}

/// Reads the whole archive, checking every byte, and returns its manifest.
pub fn read(input: impl Read, label: &str, visitor: &mut impl Visitor) -> anyhow::Result<Summary> {
    let mut archive = tar::Archive::new(MultiGzDecoder::new(std::io::BufReader::with_capacity(
        1 << 20,
        input,
    )));
    let io = |e: std::io::Error| bad(label, format!("{e} (truncated or corrupt)"));
    let mut header: Option<Manifest> = None;
    let mut manifest: Option<Manifest> = None;
    let mut seen: BTreeMap<String, (u64, String)> = BTreeMap::new();
    let mut lines_per_table: BTreeMap<usize, u64> = BTreeMap::new();
    let mut file_bytes: u64 = 0;
    let mut total: u64 = 0;
    let mut entries = archive.entries().map_err(io)?;
    for entry in entries.by_ref() {
        let mut entry = entry.map_err(io)?;
        let name = entry_name(&entry, label)?;
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
            let bytes = read_small(&mut entry, &name, size, label)?;
            seen.insert(name, (size, hex::encode(Sha256::digest(&bytes))));
            let parsed = parse_manifest(&bytes, HEADER, label)?;
            visitor.header(&parsed)?;
            header = Some(parsed);
            continue;
        };
        // What this entry may be, given the archive's mode.
        let mut table = None;
        match (head.mode, name.as_str()) {
            (_, MANIFEST) | (Mode::Online, SCHEMA) => {
                if size > MAX_METADATA_BYTES {
                    return Err(bad(label, format!("{name} declares {size} bytes")));
                }
            }
            (Mode::Online, _) => {
                let index = parse_data_entry_name(&name)
                    .filter(|i| *i < head.tables.len())
                    .ok_or_else(|| {
                        bad(
                            label,
                            format!("unexpected entry {name:?} in an online archive"),
                        )
                    })?;
                table = Some(index);
            }
            (Mode::Cold, _) => {
                if name != CLUSTER_DIR && !name.starts_with(&format!("{CLUSTER_DIR}/")) {
                    return Err(bad(
                        label,
                        format!("unexpected entry {name:?} in a cold archive"),
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
            if head.mode != Mode::Cold || size != 0 {
                return Err(bad(label, format!("unexpected directory {name:?}")));
            }
            visitor.dir(&name, mode)?;
            seen.insert(name, (0, String::new()));
            continue;
        }
        if (table.is_some() || head.mode == Mode::Cold && name != MANIFEST)
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
            let bytes = read_small(&mut entry, &name, size, label)?;
            manifest = Some(parse_manifest(&bytes, MANIFEST, label)?);
            continue;
        }
        let mut hasher = Sha256::new();
        let mut left = size;
        loop {
            let want = left.min(PIECE as u64) as usize;
            let mut piece = vec![0u8; want];
            entry.read_exact(&mut piece).map_err(io)?;
            hasher.update(&piece);
            if let Some(t) = table {
                *lines_per_table.entry(t).or_default() += count_lines(&piece);
            }
            left -= want as u64;
            total += want as u64;
            visitor.file(&name, mode, piece, left == 0)?;
            if left == 0 {
                break;
            }
        }
        seen.insert(name, (size, hex::encode(hasher.finalize())));
    }
    let Some(header) = header else {
        return Err(bad(label, "it is empty (no entries)"));
    };
    let Some(manifest) = manifest else {
        return Err(bad(
            label,
            format!("it has no {MANIFEST} (truncated, or not a complete jobdbctl archive)"),
        ));
    };
    // Anything after the end-of-archive marker must be padding; reading to the end also
    // checks the last gzip member's CRC.
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
    check_manifest(&header, &manifest, &seen, &lines_per_table, label)?;
    Ok(Summary {
        entries: seen.len() + 1,
        uncompressed_bytes: total,
        manifest,
    })
}

fn check_manifest(
    header: &Manifest,
    manifest: &Manifest,
    seen: &BTreeMap<String, (u64, String)>,
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
            None => {
                return Err(bad(
                    label,
                    format!("entry {:?} listed in {MANIFEST} is missing", e.name),
                ))
            }
            Some((size, _)) if *size != e.size => {
                return Err(bad(
                    label,
                    format!(
                        "entry {:?} is {size} bytes but {MANIFEST} declares {}",
                        e.name, e.size
                    ),
                ))
            }
            Some((_, sha)) if *sha != e.sha256 => {
                return Err(bad(
                    label,
                    format!("entry {:?} fails its SHA-256 check (corrupt)", e.name),
                ))
            }
            Some(_) => {}
        }
    }
    for (name, (_, sha)) in seen {
        // Directories carry no content to check; every file must be listed.
        if !sha.is_empty() && !listed.contains(name.as_str()) {
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
    // such rather than as whatever field it changed.
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| bad(label, format!("{name} is not JSON: {e}")))?;
    let version = value
        .get("format_version")
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
    serde_json::from_value(value).map_err(|e| bad(label, format!("{name}: {e}")))
}

fn read_small(
    entry: &mut impl Read,
    name: &str,
    size: u64,
    label: &str,
) -> anyhow::Result<Vec<u8>> {
    if size > MAX_METADATA_BYTES {
        return Err(bad(label, format!("{name} declares {size} bytes")));
    }
    let mut bytes = vec![0u8; size as usize];
    entry
        .read_exact(&mut bytes)
        .map_err(|e| bad(label, format!("{e} reading {name} (truncated or corrupt)")))?;
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
