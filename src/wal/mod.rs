//! Continuous archiving of the embedded cluster's write-ahead log: what PostgreSQL's
//! `archive_command` (`jobdbctl wal-push`) and `restore_command` (`jobdbctl wal-fetch`) run.
//!
//! The archive is a directory or an S3 bucket and prefix (`wal_archive = "s3://bucket/wal/"`),
//! through the same storage seam as backups ([`crate::storage`]).
//!
//! What it guarantees, following PostgreSQL's rules for archive commands:
//! - A push succeeds (exit 0) only once the file is durably stored, compressed (zstd, with
//!   its content checksum and size): in a directory as `NAME.zst.partial`, created
//!   exclusively, fsynced, linked to `NAME.zst` (which never replaces anything) and the
//!   directory fsynced; in a bucket as an upload completed under `NAME.zst` with
//!   `If-None-Match: *`. Either way the stored file is then read back and compared with the
//!   segment, so a store that replaced an object despite the condition (some S3-compatible
//!   stores ignore it) fails the push instead of claiming another cluster's segment as ours.
//! - A file already archived under the name with the same contents is success; with other
//!   contents it is a failure (exit 1), and the archived one is never replaced.
//! - Every push and fetch has a time limit: past it the process exits 1, so a hung disk or
//!   an unreachable bucket cannot hang the server's archiver (which retries a failed push).
//! - A fetch of a file that is not archived exits 1 without a word (that is how recovery
//!   finds the end of the archive); a fetched file is checked against its checksum and size
//!   before it appears under the name the server asked for.
//! - Segments, `.history` and `.backup` files alike; names are checked to be WAL file names,
//!   so nothing outside the archive directory is ever read or written through them.
//!
//! A kill -9 leaves at most a `.partial`, which the next push of that name replaces.

pub mod bases;
pub mod points;
mod records;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

use crate::config::s3::S3Config;
use crate::error::{failure, Exit};
use crate::storage::{Object, Places, Store};

/// The WAL archive: where `wal_archive` says it is, and the store there.
pub struct Archive {
    pub location: PathBuf,
    pub store: Box<dyn Store>,
}

impl Archive {
    pub fn open(location: &Path, places: &Places) -> anyhow::Result<Archive> {
        Ok(Archive {
            location: location.to_path_buf(),
            store: places.at(location)?,
        })
    }

    /// What `wal-push` and `wal-fetch` open: they read no configuration file, so a bucket's
    /// settings and credentials come from the environment the server was started with
    /// (`Cluster::start` puts them there).
    pub fn from_environment(location: &Path) -> anyhow::Result<Archive> {
        if !crate::storage::is_url(location) {
            // A directory: no AWS variable the server inherited may stop its archiving.
            return Ok(Archive {
                location: location.to_path_buf(),
                store: Box::new(crate::storage::LocalDir::new(location)),
            });
        }
        Archive::open(
            location,
            &Places::new(&S3Config::from_environment()?, false),
        )
    }

    /// For messages.
    pub fn describe(&self) -> String {
        self.location.display().to_string()
    }

    /// Whether the WAL file `name` (a segment, `.history` or `.backup` file) is archived.
    pub fn has(&self, name: &str) -> anyhow::Result<bool> {
        Ok(self.archived(name)?.is_some())
    }

    /// The archived WAL file `name`, opened; `None` when it is not archived.
    fn archived(&self, name: &str) -> anyhow::Result<Option<Box<dyn Object>>> {
        match self.store.open(&archived_name(name)) {
            Ok(object) => Ok(Some(object)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => {
                Err(e).with_context(|| format!("cannot open {}", self.path_of(name).display()))
            }
        }
    }

    /// Where the WAL file `name` is archived, for messages.
    fn path_of(&self, name: &str) -> PathBuf {
        self.store.path_of(&archived_name(name))
    }
}

/// The archived name of a WAL file.
pub fn archived_name(name: &str) -> String {
    format!("{name}.zst")
}

/// Whether `name` is a WAL file name PostgreSQL archives: a segment (24 hex digits), a
/// timeline history file (`8 hex.history`), or a backup history file (`24 hex.8 hex.backup`),
/// also `.partial` segments of a promoted standby.
pub fn is_wal_name(name: &str) -> bool {
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    if let Some(tli) = name.strip_suffix(".history") {
        return hex(tli, 8);
    }
    if let Some(rest) = name.strip_suffix(".backup") {
        return rest
            .split_once('.')
            .is_some_and(|(seg, off)| hex(seg, 24) && hex(off, 8));
    }
    hex(name.strip_suffix(".partial").unwrap_or(name), 24)
}

/// Segments per "log" (the middle 8 hex digits of a segment name) with PostgreSQL's default
/// 16 MB segments, which the embedded cluster uses.
pub const SEGMENTS_PER_LOG: u64 = 0x100;
const SEGMENT_BYTES: u64 = 16 << 20;

/// Whether `text` is an LSN as PostgreSQL prints it (`16/B374D848`).
pub fn is_lsn(text: &str) -> bool {
    parse_lsn(text).is_some()
}

/// An LSN's position in the WAL.
pub fn parse_lsn(text: &str) -> Option<u64> {
    let (hi, lo) = text.split_once('/')?;
    let part = |s: &str| {
        (!s.is_empty() && s.len() <= 8 && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| u64::from_str_radix(s, 16).ok())
            .flatten()
    };
    Some((part(hi)? << 32) | part(lo)?)
}

/// A segment name's timeline and number (counting from the start of the WAL).
pub fn segment_number(name: &str) -> Option<(u32, u64)> {
    if name.len() != 24 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let tli = u32::from_str_radix(&name[..8], 16).ok()?;
    let log = u64::from_str_radix(&name[8..16], 16).ok()?;
    let seg = u64::from_str_radix(&name[16..], 16).ok()?;
    Some((tli, log * SEGMENTS_PER_LOG + seg))
}

pub fn segment_name(timeline: u32, number: u64) -> String {
    format!(
        "{timeline:08X}{:08X}{:08X}",
        number / SEGMENTS_PER_LOG,
        number % SEGMENTS_PER_LOG
    )
}

/// The number of the segment holding `lsn`.
pub fn segment_of(lsn: u64) -> u64 {
    lsn / SEGMENT_BYTES
}

fn check_name(name: &str) -> anyhow::Result<()> {
    if is_wal_name(name) {
        return Ok(());
    }
    Err(failure(
        Exit::Usage,
        format!("{name:?} is not a WAL file name (a segment, .history or .backup file)"),
    ))
}

/// Ends the process with exit 1 once `limit` has passed: PostgreSQL retries a failed push,
/// and a push that never returns would stop archiving for good.
pub fn deadline(what: &'static str, limit: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!(
            "jobdbctl: error: {what} did not finish within {}; check the WAL archive's disk or bucket",
            humantime::format_duration(limit)
        );
        std::process::exit(1);
    });
}

pub enum Pushed {
    Stored,
    /// The same contents were archived before (a repeated push after a crash).
    AlreadyThere,
}

/// Archives the WAL file at `path` into `archive`.
pub fn push(archive: &Archive, path: &Path) -> anyhow::Result<Pushed> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{} does not end in a file name", path.display()))?;
    check_name(name)?;
    let data = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if let Some(pushed) = compare_existing(archive, name, &data)? {
        return Ok(pushed);
    }
    let mut compressor = zstd::stream::Encoder::new(Vec::new(), 3).context("cannot start zstd")?;
    compressor
        .include_checksum(true)
        .and_then(|()| compressor.set_pledged_src_size(Some(data.len() as u64)))
        .and_then(|()| compressor.include_contentsize(true))
        .context("cannot set up zstd")?;
    compressor.write_all(&data).context("cannot compress")?;
    let compressed = compressor.finish().context("cannot compress")?;
    let store = &*archive.store;
    let put = store.put_new(&archived_name(name), &compressed);
    // Read back whether or not the put succeeded: another push of the name may have got
    // there first (the same contents are success), or replaced ours where the store
    // ignored the create-only condition (other contents: fail closed).
    match (put, compare_existing(archive, name, &data)) {
        (Ok(_), Ok(Some(_))) => Ok(Pushed::Stored),
        (Err(_), Ok(Some(pushed))) => Ok(pushed),
        (Ok(_), Ok(None)) => Err(failure(
            Exit::Runtime,
            format!(
                "{} vanished right after it was stored; check what else writes to the archive",
                archive.path_of(name).display()
            ),
        )),
        (Err(_), Ok(None)) if !store.exists() => Err(failure(
            Exit::Usage,
            format!(
                "WAL archive {} does not exist; create it (jobdbctl start does) or fix wal_archive",
                archive.describe()
            ),
        )),
        (Err(e), Ok(None)) => Err(e),
        (_, Err(e)) => Err(e),
    }
}

/// `Some` when `stored` exists: the same contents, or a refusal when they differ.
fn compare_existing(archive: &Archive, name: &str, data: &[u8]) -> anyhow::Result<Option<Pushed>> {
    let Some(existing) = archive.archived(name)? else {
        return Ok(None);
    };
    let path = archive.path_of(name);
    let old = decompress(existing.stream()?, &path, data.len() as u64 + 1);
    match old {
        Ok(old) if old == data => Ok(Some(Pushed::AlreadyThere)),
        Ok(_) => Err(failure(
            Exit::Runtime,
            format!(
                "{} is already archived with other contents; refusing to replace it (two clusters archiving into one directory?); check the archive",
                path.display()
            ),
        )),
        Err(e) => Err(e.context(format!(
            "{} is already archived but cannot be read; refusing to replace it",
            path.display()
        ))),
    }
}

/// The contents of an archived file, checked against its zstd checksum; at most `limit`
/// bytes (a WAL file's size bounds what a real one holds).
fn decompress(input: Box<dyn Read + Send>, path: &Path, limit: u64) -> anyhow::Result<Vec<u8>> {
    let decoder = zstd::stream::read::Decoder::new(input)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = Vec::new();
    decoder.take(limit).read_to_end(&mut out).map_err(|e| {
        failure(
            Exit::BadArchive,
            format!(
                "{} is damaged (its checksum or compression): {e}",
                path.display()
            ),
        )
    })?;
    Ok(out)
}

/// The most a WAL file may hold: segments are at most 1 GB.
const MAX_WAL_FILE: u64 = 1 << 30;

/// Restores the archived WAL file `name` to `dest`; `false` when it is not archived.
pub fn fetch(archive: &Archive, name: &str, dest: &Path) -> anyhow::Result<bool> {
    check_name(name)?;
    let Some(object) = archive.archived(name)? else {
        return Ok(false);
    };
    let data = decompress(object.stream()?, &archive.path_of(name), MAX_WAL_FILE)?;
    // The server reads the file as soon as it has the name: write beside it, then rename.
    let partial = PathBuf::from(format!("{}.jobdbctl-partial", dest.display()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&partial)
        .with_context(|| format!("cannot create {}", partial.display()))?;
    let written = file
        .write_all(&data)
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&partial, dest));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(e).with_context(|| format!("cannot write {}", dest.display()));
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wal_names_are_recognised() {
        for good in [
            "000000010000000000000001",
            "00000002.history",
            "000000010000000000000002.00000028.backup",
            "000000010000000000000003.partial",
        ] {
            assert!(is_wal_name(good), "{good}");
        }
        for bad in [
            "../etc/passwd",
            "00000001000000000000000",
            "x.history",
            "",
            "00000001.history/..",
        ] {
            assert!(!is_wal_name(bad), "{bad}");
        }
    }

    #[test]
    fn segments_and_lsns_agree() {
        let lsn = parse_lsn("1/2A000028").unwrap();
        assert_eq!(segment_name(3, segment_of(lsn)), "00000003000000010000002A");
        assert_eq!(segment_number("00000003000000010000002A"), Some((3, 0x12A)));
        for bad in ["", "1", "1/", "/1", "123456789/0", "g/0"] {
            assert!(parse_lsn(bad).is_none(), "{bad}");
        }
    }
}
