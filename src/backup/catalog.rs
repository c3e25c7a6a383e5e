//! The backup catalog: what sits in a backup directory, read without changing anything.
//!
//! Listed: every regular `*.tar.gz`, `*.tar.zst` and `*.tar` file (whoever named it; the
//! codec is read from the content, the name only selects) and every such name with `.partial`
//! (a backup still running or killed; never opened, only stat'ed). Nothing is followed: symbolic links
//! and other special files are skipped, and files are opened `O_NOFOLLOW|O_NONBLOCK`.
//!
//! How deeply an archive is read is the caller's choice ([`Depth`]):
//! - `Header`: the first entry only (`header.json`): what the archive claims to be.
//! - `Ends`: the header, and the last gzip member, which must hold `manifest.json` and the
//!   tar end marker, repeating the header. Catches a truncated or cut-off archive and gives
//!   row counts, for the cost of reading the file's last few hundred kilobytes; a flipped bit
//!   in the middle goes unnoticed, so the state says `unverified`. Only gzip archives have
//!   findable ends; a zstd or plain archive is read whole instead (zstd decodes several times
//!   faster than gzip, so this costs about what reading the file does).
//! - `Full`: a complete read as `verify` does (every SHA-256): `complete` or `damaged`.
//!
//! Measured (README, "The backup catalog"): for ten 45.7 MB archives, reading the ends took
//! 16 ms in all and full reads 10.7 s, so listings read the ends and `--verify` everything.
//!
//! Which archives retention may prune, and which `restore latest` may pick, is decided here
//! too, so the listing shows exactly what pruning would do.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use chrono::{DateTime, Utc};

use super::destination::is_own_name;
pub use super::destination::user_name;
use crate::archive::reader::{self, Discard};
use crate::archive::{self, Codec, Manifest, Retention};

/// How much of each archive to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    Header,
    Ends,
    Full,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Read completely; every entry matches its SHA-256.
    Complete,
    /// Header and end read and consistent; the middle was not checked.
    Unverified,
    /// Something read was wrong (see `problem`).
    Damaged,
    /// A `.partial` file: a backup still being written, or one that was killed.
    Partial,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Complete => "complete",
            State::Unverified => "unverified",
            State::Damaged => "damaged",
            State::Partial => "partial",
        }
    }
}

/// The server and database an archive was taken from; archives of one source are pruned
/// together and `restore latest` picks among them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub server: String,
    pub database: String,
}

impl Source {
    pub fn of(m: &Manifest) -> Source {
        Source {
            server: m.server.clone(),
            database: m.database.clone(),
        }
    }
}

/// One file of the backup directory.
#[derive(Debug)]
pub struct Item {
    pub path: PathBuf,
    pub bytes: u64,
    pub modified: Option<DateTime<Utc>>,
    pub owner: u32,
    pub state: State,
    /// Why it is damaged.
    pub problem: Option<String>,
    /// What `header.json` says, when it could be read.
    pub header: Option<Manifest>,
    /// `manifest.json` (with row counts), when the end or everything was read.
    pub manifest: Option<Manifest>,
    /// jobdbctl chose the file name (`<stem>-<UTC time>.tar.gz`).
    pub own_name: bool,
    /// Device and inode of the file that was read, so a name swapped since is not deleted.
    pub identity: (u64, u64),
}

/// How far in the future an archive's time may lie before it is treated as future-dated:
/// clocks of hosts sharing a backup directory differ by seconds, not by this much.
pub const FUTURE_ALLOWANCE: chrono::Duration = chrono::Duration::minutes(5);

impl Item {
    /// When the backup was taken (the file's mtime when the header cannot say).
    pub fn taken_at(&self) -> Option<DateTime<Utc>> {
        self.header.as_ref().map(|h| h.created_at).or(self.modified)
    }

    /// Dated later than now (plus [`FUTURE_ALLOWANCE`]): written while the clock was wrong,
    /// or planted. Such an archive would win every "newest" and hold a `--keep` slot for
    /// ever, so retention neither counts nor deletes it and `restore latest` passes it by.
    pub fn future_dated(&self) -> bool {
        self.header
            .as_ref()
            .is_some_and(|h| h.created_at > Utc::now() + FUTURE_ALLOWANCE)
    }

    pub fn source(&self) -> Option<Source> {
        self.header.as_ref().map(Source::of)
    }

    pub fn retention(&self) -> Option<Retention> {
        self.header.as_ref().and_then(|h| h.retention)
    }

    /// Ours to count and delete: a jobdbctl-named, managed, regular file of this user that
    /// is not known to be damaged. Pruning reads it in full before it counts.
    pub fn prunable(&self) -> bool {
        self.own_name
            && self.owner == euid()
            && self.retention() == Some(Retention::Managed)
            && matches!(self.state, State::Complete | State::Unverified)
            && !self.future_dated()
    }

    /// Rows of the job table, when the manifest was read.
    pub fn jobs(&self) -> Option<u64> {
        let m = self.manifest.as_ref()?;
        m.tables
            .iter()
            .find(|t| t.name == "jobs" || t.name == "_private_jobs")
            .and_then(|t| t.rows)
    }

    /// Reads the whole archive now (as `verify` does) and records the outcome.
    pub fn verify(&mut self) {
        if self.state == State::Partial {
            return;
        }
        let checked = open_nofollow(&self.path)
            .with_context(|| format!("cannot open {}", self.path.display()))
            .and_then(|file| {
                let meta = file
                    .metadata()
                    .with_context(|| format!("cannot stat {}", self.path.display()))?;
                if (meta.dev(), meta.ino()) != self.identity {
                    anyhow::bail!("{} was replaced while it was read", self.path.display());
                }
                reader::read(file, &self.path.display().to_string(), &mut Discard)
            });
        match checked {
            Ok(summary) => {
                self.state = State::Complete;
                self.problem = None;
                self.manifest = Some(summary.manifest);
            }
            Err(e) => {
                self.state = State::Damaged;
                self.problem = Some(format!("{e:#}"));
            }
        }
    }
}

/// Lists `dir`, reading each archive as deeply as `depth` says for its header (archives
/// whose header cannot be read are damaged). Newest first by the time the backup was taken;
/// the name breaks ties.
pub fn scan(dir: &Path, depth: &dyn Fn(&Manifest) -> Depth) -> anyhow::Result<Vec<Item>> {
    let mut items = Vec::new();
    let listing = fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    for e in listing {
        let e = e.with_context(|| format!("cannot list {}", dir.display()))?;
        let Some(name) = e.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let base = name.strip_suffix(".partial").unwrap_or(&name);
        if !Codec::SUFFIXES.iter().any(|suffix| base.ends_with(suffix)) {
            continue;
        }
        let partial = base.len() < name.len();
        // DirEntry::metadata does not follow links.
        let Ok(meta) = e.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        let path = e.path();
        let mut item = Item {
            bytes: meta.len(),
            modified: meta.modified().ok().map(DateTime::<Utc>::from),
            owner: meta.uid(),
            state: State::Partial,
            problem: None,
            header: None,
            manifest: None,
            own_name: !partial && is_own_name(&name),
            identity: (meta.dev(), meta.ino()),
            path,
        };
        if !partial && read_item(&mut item, depth) == Outcome::Gone {
            // Removed since the listing (another prune): nothing to show or count.
            continue;
        }
        items.push(item);
    }
    items.sort_by(|a, b| (b.taken_at(), &b.path).cmp(&(a.taken_at(), &a.path)));
    Ok(items)
}

#[derive(PartialEq, Eq)]
enum Outcome {
    Done,
    Gone,
}

fn read_item(item: &mut Item, depth: &dyn Fn(&Manifest) -> Depth) -> Outcome {
    let damaged = |item: &mut Item, why: String| {
        item.state = State::Damaged;
        item.problem = Some(why);
        Outcome::Done
    };
    let file = match open_nofollow(&item.path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Outcome::Gone,
        Err(e) => return damaged(item, format!("cannot open it: {e}")),
    };
    if let Ok(meta) = file.metadata() {
        // What is read is what a later delete must match.
        item.identity = (meta.dev(), meta.ino());
        item.bytes = meta.len();
    }
    let Some(header) = read_header(&file) else {
        return damaged(
            item,
            "its header.json cannot be read (not a jobdbctl archive, or damaged)".to_string(),
        );
    };
    let want = depth(&header);
    item.header = Some(header);
    item.state = State::Unverified;
    match want {
        Depth::Header => {}
        Depth::Full => item.verify(),
        Depth::Ends if codec_of(&file) != Some(Codec::Gzip) => item.verify(),
        Depth::Ends => match read_tail(&file, item.bytes) {
            Ok(manifest)
                if item
                    .header
                    .as_ref()
                    .is_some_and(|h| reader::repeats(h, &manifest)) =>
            {
                item.manifest = Some(manifest)
            }
            // Ends that do not read as the writer leaves them (one gzip member after
            // `gzip -dc | gzip`, a cut-off file): only a full read may call it damaged, so
            // the listing, verify, prune and `restore latest` agree.
            _ => item.verify(),
        },
    }
    Outcome::Done
}

pub fn euid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

pub fn open_nofollow(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
}

/// The codec of an archive file, from its first bytes.
fn codec_of(file: &File) -> Option<Codec> {
    let mut first = [0u8; archive::DETECT_BYTES];
    let n = std::os::unix::fs::FileExt::read_at(file, &mut first, 0).ok()?;
    Codec::detect(&first[..n])
}

/// The header of an archive, if it is one of ours (cheap: the first entry only).
pub fn read_header(file: &File) -> Option<Manifest> {
    let mut f = file;
    f.seek(SeekFrom::Start(0)).ok()?;
    let (_, stream) = reader::decompressed(f, "").ok()?;
    let mut tar = tar::Archive::new(stream);
    let mut entry = tar.entries().ok()?.next()?.ok()?;
    if entry.path_bytes().as_ref() != archive::HEADER.as_bytes()
        || entry.header().size().ok()? > archive::MAX_METADATA_BYTES
    {
        return None;
    }
    serde_json::from_reader(&mut entry).ok()
}

/// The manifest from the archive's last gzip member, which the writer makes of
/// `manifest.json` and the tar end marker alone. gzip has no index, so the member's start
/// is found by trying each gzip magic number from the end backwards: the right one decodes
/// with a good CRC exactly up to the end of the file. A small window is tried first; the
/// larger one covers manifests of very large archives.
fn read_tail(file: &File, size: u64) -> Result<Manifest, String> {
    const WINDOWS: [u64; 2] = [256 << 10, 16 << 20];
    let mut last_err = String::new();
    for window in WINDOWS {
        let len = size.min(window);
        let mut buf = vec![0u8; len as usize];
        let mut f = file;
        f.seek(SeekFrom::Start(size - len))
            .and_then(|_| f.read_exact(&mut buf))
            .map_err(|e| format!("cannot read its end: {e}"))?;
        for start in (0..buf.len().saturating_sub(2)).rev() {
            if buf[start..start + 3] != [0x1f, 0x8b, 0x08] {
                continue;
            }
            match last_member(&buf[start..]) {
                Ok(m) => return Ok(m),
                Err(e) => last_err = e,
            }
        }
        if len == size {
            break;
        }
    }
    if last_err.is_empty() {
        last_err = "no gzip member at its end".to_string();
    }
    Err(format!(
        "its end does not hold {} and the tar end marker (truncated or corrupt: {last_err})",
        archive::MANIFEST
    ))
}

fn last_member(bytes: &[u8]) -> Result<Manifest, String> {
    let mut gz = flate2::bufread::GzDecoder::new(bytes);
    let mut out = Vec::new();
    (&mut gz)
        .take(archive::MAX_METADATA_BYTES + 4096)
        .read_to_end(&mut out)
        .map_err(|e| e.to_string())?;
    if !gz.into_inner().is_empty() {
        return Err("bytes follow the last gzip member".to_string());
    }
    let mut tar = tar::Archive::new(out.as_slice());
    let mut entries = tar.entries().map_err(|e| e.to_string())?;
    let mut entry = entries
        .next()
        .ok_or("the last gzip member is empty")?
        .map_err(|e| e.to_string())?;
    if entry.path_bytes().as_ref() != archive::MANIFEST.as_bytes() {
        return Err(format!("the last entry is not {}", archive::MANIFEST));
    }
    let manifest: Manifest = serde_json::from_reader(&mut entry).map_err(|e| e.to_string())?;
    let consumed = entry.raw_file_position() + entry.size();
    drop(entry);
    // The rest is the entry's padding and the two zero blocks that end a tar archive.
    let rest = out.get(consumed as usize..).unwrap_or_default();
    if rest.len() < 1024 || rest.iter().any(|b| *b != 0) {
        return Err("no tar end marker after the manifest".to_string());
    }
    Ok(manifest)
}
