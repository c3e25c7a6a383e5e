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
//! Measured (docs/backups.md, "The backup catalog"): for ten 45.7 MB archives, reading the ends took
//! 16 ms in all and full reads 10.7 s, so listings read the ends and `--verify` everything.
//!
//! Which archives retention may prune, and which `restore latest` may pick, is decided here
//! too, so the listing shows exactly what pruning would do.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use chrono::{DateTime, Utc};

use super::destination::is_own_name;
use crate::archive::crypt::{self, Keys};
use crate::archive::reader::{self, Discard};
use crate::archive::{self, Codec, Manifest, Retention};
use crate::error::{failure, failure_in_io, Exit};
use crate::storage::{self, Identity, Object, Store};

/// The read buffer for a header: `header.json` sits in the archive's first few kilobytes.
const HEADER_BUFFER: usize = 16 << 10;

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

    pub fn is(&self, h: &Header) -> bool {
        *self.server == *h.server && *self.database == *h.database
    }
}

/// What the catalog keeps of an archive's `header.json`: what it shows and decides by, with
/// the strings that archives of one database share stored once (see `scan`), so a listing
/// of 10,000 archives costs a few hundred bytes each, not a header each.
#[derive(Debug)]
pub struct Header {
    pub created_at: DateTime<Utc>,
    pub mode: archive::Mode,
    pub server: Arc<str>,
    pub database: Arc<str>,
    pub profile: Option<Arc<str>>,
    pub schema: Option<Arc<str>>,
    pub schema_version: Option<i32>,
    pub last_used_job_id: Option<i64>,
    pub retention: Option<Retention>,
    /// A physical archive's base backup label (`archive::BaseBackup`).
    pub base_label: Option<Arc<str>>,
}

impl Header {
    fn of(m: Manifest, strings: &mut Strings) -> Header {
        Header {
            created_at: m.created_at,
            mode: m.mode,
            server: strings.get(m.server),
            database: strings.get(m.database),
            profile: m.profile.map(|p| strings.get(p)),
            schema: m.schema.map(|s| strings.get(s)),
            schema_version: m.schema_version,
            last_used_job_id: m.last_used_job_id,
            retention: m.retention,
            base_label: m.base.map(|b| Arc::from(b.label)),
        }
    }

    pub fn source(&self) -> Source {
        Source {
            server: self.server.to_string(),
            database: self.database.to_string(),
        }
    }
}

/// Each distinct string once.
#[derive(Default)]
struct Strings(std::collections::HashSet<Arc<str>>);

impl Strings {
    fn get(&mut self, s: String) -> Arc<str> {
        if let Some(known) = self.0.get(s.as_str()) {
            return known.clone();
        }
        let new: Arc<str> = Arc::from(s);
        self.0.insert(new.clone());
        new
    }
}

/// One file of the backup directory.
#[derive(Debug)]
pub struct Item {
    /// Its name in the store.
    pub name: String,
    /// The store's place, shared by every item of a scan: a path each would cost ten
    /// thousand archives a megabyte.
    place: Arc<Path>,
    pub bytes: u64,
    pub modified: Option<DateTime<Utc>>,
    pub owner: u32,
    pub state: State,
    /// Why it is damaged.
    pub problem: Option<String>,
    /// What `header.json` says, when it could be read.
    pub header: Option<Box<Header>>,
    /// Rows of the job table by `manifest.json`, when the end or everything was read.
    pub jobs: Option<u64>,
    /// jobdbctl chose the file name (`<stem>-<UTC time>.tar.gz`).
    pub own_name: bool,
    /// Which object was read, so a name swapped since is not deleted.
    pub identity: Identity,
    /// An age file (`archive::crypt`): without the key only its meta stanza is read.
    pub encrypted: bool,
}

/// How far in the future an archive's time may lie before it is treated as future-dated:
/// clocks of hosts sharing a backup directory differ by seconds, not by this much.
pub const FUTURE_ALLOWANCE: chrono::Duration = chrono::Duration::minutes(5);

impl Item {
    /// Where it is, as the operator gives it back to jobdbctl.
    pub fn path(&self) -> PathBuf {
        self.place.join(&self.name)
    }

    /// When the backup was taken (the file's mtime when the header cannot say).
    pub fn taken_at(&self) -> Option<DateTime<Utc>> {
        self.header
            .as_deref()
            .map(|h| h.created_at)
            .or(self.modified)
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
        self.header.as_deref().map(Header::source)
    }

    pub fn retention(&self) -> Option<Retention> {
        self.header.as_ref().and_then(|h| h.retention)
    }

    /// Ours to count and delete: a jobdbctl-named, managed, regular file of this user that
    /// is not known to be damaged. Pruning reads it in full before it counts.
    pub fn prunable(&self) -> bool {
        self.own_name
            && self.owner == crate::safe_fs::euid()
            && self.retention() == Some(Retention::Managed)
            && matches!(self.state, State::Complete | State::Unverified)
            && !self.future_dated()
    }

    /// Rows of the job table, when the manifest was read.
    pub fn jobs(&self) -> Option<u64> {
        self.jobs
    }

    /// Reads the whole archive now (as `verify` does) and records the outcome.
    pub fn verify(&mut self, store: &dyn Store, keys: &Keys) {
        if self.state == State::Partial {
            return;
        }
        let checked = store
            .open(&self.name)
            .with_context(|| format!("cannot open {}", self.path().display()))
            .and_then(|object| {
                if object.identity() != self.identity {
                    anyhow::bail!("{} was replaced while it was read", self.path().display());
                }
                let stream = object
                    .stream()
                    .with_context(|| format!("cannot read {}", self.path().display()))?;
                reader::read(
                    stream,
                    &self.path().display().to_string(),
                    keys,
                    &mut Discard,
                )
            });
        match checked {
            Ok(summary) => {
                self.state = State::Complete;
                self.problem = None;
                self.jobs = job_rows(&summary.manifest);
                // A passphrase-encrypted archive shows its header only once decrypted.
                if self.header.is_none() {
                    let header = Header::of(summary.manifest, &mut Strings::default());
                    self.header = Some(Box::new(header));
                }
            }
            Err(e) => {
                self.state = State::Damaged;
                self.problem = Some(format!("{e:#}"));
            }
        }
    }
}

/// How deeply to read an archive, given its header; called from the scanning threads.
pub type DepthFor<'a> = dyn Fn(&Manifest) -> Depth + Sync + 'a;

/// Lists `dir`, reading each archive as deeply as `depth` says for its header (archives
/// whose header cannot be read are damaged). Newest first by the time the backup was taken;
/// the name breaks ties.
pub fn scan(store: &dyn Store, keys: &Keys, depth: &DepthFor) -> anyhow::Result<Vec<Item>> {
    let mut items = Vec::new();
    let place: Arc<Path> = Arc::from(store.path_of("").as_path());
    for listed in store.list()? {
        let name = listed.name;
        let base = name.strip_suffix(".partial").unwrap_or(&name);
        if !Codec::SUFFIXES.iter().any(|suffix| base.ends_with(suffix)) {
            continue;
        }
        let partial = storage::is_partial(&name);
        items.push(Item {
            bytes: listed.bytes,
            modified: listed.modified.map(DateTime::<Utc>::from),
            owner: listed.owner,
            state: State::Partial,
            problem: None,
            header: None,
            jobs: None,
            own_name: !partial && is_own_name(&name),
            identity: listed.identity,
            encrypted: false,
            place: place.clone(),
            name,
        });
    }
    // Reading is decompressing and parsing: spread over the cores, in order-independent
    // parts (the result is sorted below).
    let threads = store.parallel_reads().max(1);
    let part = items.len().div_ceil(threads).max(1);
    let mut gone = vec![false; items.len()];
    let unreachable = std::sync::Mutex::new(None);
    std::thread::scope(|scope| {
        for (items, gone) in items.chunks_mut(part).zip(gone.chunks_mut(part)) {
            let unreachable = &unreachable;
            scope.spawn(move || {
                let mut strings = Strings::default();
                let mut headers = ArchiveEnds::default();
                for (item, gone) in items.iter_mut().zip(gone) {
                    // A `.partial` is never opened, only stat'ed.
                    if item.state == State::Partial && !storage::is_partial(&item.name) {
                        match read_item(store, keys, item, depth, &mut strings, &mut headers) {
                            Outcome::Done => {}
                            // Removed since the listing (another prune): nothing to show or
                            // count.
                            Outcome::Gone => *gone = true,
                            Outcome::Unreachable(why) => {
                                if let Ok(mut u) = unreachable.lock() {
                                    *u = Some(why);
                                }
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    // A store that stopped answering says nothing about its archives: not "damaged".
    if let Some(why) = unreachable.into_inner().ok().flatten() {
        return Err(failure(Exit::Connect, why));
    }
    let mut gone = gone.into_iter();
    items.retain(|_| !gone.next().unwrap_or(false));
    items.sort_by(|a, b| (b.taken_at(), &b.name).cmp(&(a.taken_at(), &a.name)));
    Ok(items)
}

#[derive(PartialEq, Eq)]
enum Outcome {
    Done,
    Gone,
    /// The store did not answer (after its retries).
    Unreachable(String),
}

fn read_item(
    store: &dyn Store,
    keys: &Keys,
    item: &mut Item,
    depth: &DepthFor,
    strings: &mut Strings,
    headers: &mut ArchiveEnds,
) -> Outcome {
    let damaged = |item: &mut Item, why: String| {
        item.state = State::Damaged;
        item.problem = Some(why);
        Outcome::Done
    };
    let object = match store.open(&item.name) {
        Ok(object) => object,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Outcome::Gone,
        Err(e) => match failure_in_io(&e) {
            Some(f) if f.exit == Exit::Connect => return Outcome::Unreachable(f.message.clone()),
            _ => return damaged(item, format!("cannot open it: {e}")),
        },
    };
    // What is read is what a later delete must match.
    item.identity = object.identity();
    item.bytes = object.bytes();
    let file = &*object;
    let header = match headers.read(file) {
        Start::Unreachable(why) => return Outcome::Unreachable(why),
        Start::Plain(Some(header)) => header,
        Start::Plain(None) => {
            return damaged(
                item,
                "its header.json cannot be read (not a jobdbctl archive, or damaged)".to_string(),
            )
        }
        Start::Sealed(meta) => {
            item.encrypted = true;
            item.state = State::Unverified;
            // Without the key what the meta stanza says is all there is. With it, a full
            // read when one is asked for: the ends of an encrypted archive cost a read of
            // the whole.
            let read_all = meta.as_ref().is_none_or(|m| depth(m) == Depth::Full);
            if let Some(m) = meta {
                item.header = Some(Box::new(Header::of(m, strings)));
            }
            if !keys.is_empty() && read_all {
                item.verify(store, keys);
            }
            return Outcome::Done;
        }
    };
    let want = depth(&header);
    item.state = State::Unverified;
    match want {
        Depth::Header => {}
        Depth::Full => item.verify(store, keys),
        Depth::Ends if codec_of(file) != Some(Codec::Gzip) => item.verify(store, keys),
        Depth::Ends => match headers.tail(file, item.bytes) {
            Ok(manifest) if reader::repeats(&header, &manifest) => item.jobs = job_rows(&manifest),
            // Ends that do not read as the writer leaves them (one gzip member after
            // `gzip -dc | gzip`, a cut-off file): only a full read may call it damaged, so
            // the listing, verify, prune and `restore latest` agree.
            _ => item.verify(store, keys),
        },
    }
    item.header = Some(Box::new(Header::of(header, strings)));
    Outcome::Done
}

/// Fills `buf` from the file's start (less at its end); how much was read.
fn read_start(file: &dyn Object, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The codec of an archive file, from its first bytes.
fn codec_of(file: &dyn Object) -> Option<Codec> {
    let mut first = [0u8; archive::DETECT_BYTES];
    let n = file.read_at(&mut first, 0).ok()?;
    Codec::detect(&first[..n])
}

/// The rows of the job table by a manifest.
fn job_rows(m: &Manifest) -> Option<u64> {
    m.tables
        .iter()
        .find(|t| t.name == "jobs" || t.name == "_private_jobs")
        .and_then(|t| t.rows)
}

/// The header an archive's first bytes hold, if they hold one.
enum Start {
    /// A plain archive's `header.json`.
    Plain(Option<Manifest>),
    /// An encrypted archive's meta stanza (`archive::crypt`).
    Sealed(Option<Manifest>),
    /// The store did not answer (after its retries).
    Unreachable(String),
}

/// Reads archives' first and last gzip members (header, manifest) with buffers and a
/// deflate state that one scanning thread reuses: a new gzip decoder per archive (its
/// buffers allocated and zeroed each time) left the allocator holding tens of megabytes for
/// a directory of thousands of archives.
#[derive(Default)]
struct ArchiveEnds {
    raw: Vec<u8>,
    out: Vec<u8>,
    inflate: Option<flate2::Decompress>,
}

impl ArchiveEnds {
    /// The first bytes of a file hold `header.json`, in the writer's first gzip member.
    const WINDOW: usize = 64 << 10;

    /// What the file's start says: an age file's meta stanza, or `header.json`.
    fn read(&mut self, file: &dyn Object) -> Start {
        self.raw.resize(Self::WINDOW, 0);
        let n = match read_start(file, &mut self.raw) {
            Ok(n) => n,
            // A bucket's first request for an archive is this read (opening it costs none).
            Err(e) => {
                return match failure_in_io(&e) {
                    Some(f) if f.exit == Exit::Connect => Start::Unreachable(f.message.clone()),
                    _ => Start::Plain(None),
                }
            }
        };
        if crypt::is_encrypted(&self.raw[..n]) {
            return Start::Sealed(crypt::meta(&self.raw[..n]));
        }
        let header = self.inflated(n).and_then(first_entry);
        Start::Plain(header.or_else(|| generic_header(file)))
    }

    /// The first gzip member's start, inflated into `out` (as far as the window reaches).
    fn inflated(&mut self, n: usize) -> Option<&[u8]> {
        let body = gzip_body(&self.raw[..n])?;
        let inflate = self
            .inflate
            .get_or_insert_with(|| flate2::Decompress::new(false));
        inflate.reset(false);
        self.out.clear();
        self.out.reserve(4 * Self::WINDOW);
        // What the window holds; a header.json cut off by it is completed by generic_header.
        inflate
            .decompress_vec(body, &mut self.out, flate2::FlushDecompress::Finish)
            .ok()?;
        Some(&self.out)
    }

    /// The manifest from the archive's last gzip member, which the writer makes of
    /// `manifest.json` and the tar end marker alone. gzip has no index, so the member's start
    /// is found by trying each gzip magic number from the end backwards: the right one decodes
    /// with a good CRC exactly up to the end of the file. A small window is tried first; the
    /// larger one covers manifests of very large archives.
    fn tail(&mut self, file: &dyn Object, size: u64) -> Result<Manifest, String> {
        const WINDOWS: [u64; 3] = [64 << 10, 1 << 20, 16 << 20];
        let mut last_err = String::new();
        for window in WINDOWS {
            let len = size.min(window);
            let mut buf = std::mem::take(&mut self.raw);
            buf.resize(len as usize, 0);
            let read = file.read_exact_at(&mut buf, size - len);
            let found = read.is_ok().then(|| {
                (0..buf.len().saturating_sub(2))
                    .rev()
                    .filter(|&start| buf[start..start + 3] == [0x1f, 0x8b, 0x08])
                    .find_map(|start| match self.last_member(&buf[start..]) {
                        Ok(m) => Some(m),
                        Err(e) => {
                            last_err = e;
                            None
                        }
                    })
            });
            // The buffer is kept for the next archive.
            self.raw = buf;
            if let Err(e) = read {
                return Err(format!("cannot read its end: {e}"));
            }
            if let Some(m) = found.flatten() {
                return Ok(m);
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

    /// `bytes` as exactly one gzip member (CRC and length checked, nothing after it) holding
    /// the manifest and the tar end marker.
    fn last_member(&mut self, bytes: &[u8]) -> Result<Manifest, String> {
        let body = gzip_body(bytes).ok_or("not a gzip member header")?;
        let inflate = self
            .inflate
            .get_or_insert_with(|| flate2::Decompress::new(false));
        inflate.reset(false);
        self.out.clear();
        let limit = (archive::MAX_METADATA_BYTES + 4096) as usize;
        loop {
            self.out.reserve((4 * body.len()).clamp(64 << 10, limit));
            let at = inflate.total_in() as usize;
            let status = inflate
                .decompress_vec(&body[at..], &mut self.out, flate2::FlushDecompress::Finish)
                .map_err(|e| e.to_string())?;
            match status {
                flate2::Status::StreamEnd => break,
                _ if self.out.len() > limit => {
                    return Err("the last gzip member is too large".into())
                }
                _ if inflate.total_in() as usize == body.len()
                    && self.out.len() < self.out.capacity() =>
                {
                    return Err("the last gzip member is cut off".into())
                }
                _ => {}
            }
        }
        let trailer = &body[inflate.total_in() as usize..];
        if trailer.len() != 8 {
            return Err(if trailer.len() > 8 {
                "bytes follow the last gzip member".into()
            } else {
                "the last gzip member is cut off".into()
            });
        }
        let mut crc = flate2::Crc::new();
        crc.update(&self.out);
        let want_crc = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
        let want_len = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
        if crc.sum() != want_crc || self.out.len() as u32 != want_len {
            return Err("the last gzip member's checksum does not match".into());
        }
        let out = &self.out;
        let mut tar = tar::Archive::new(out.as_slice());
        let mut entries = tar.entries().map_err(|e| e.to_string())?;
        let mut entry = entries
            .next()
            .ok_or("the last gzip member is empty")?
            .map_err(|e| e.to_string())?;
        if entry.path_bytes().as_ref() != archive::MANIFEST.as_bytes() {
            return Err(format!("the last entry is not {}", archive::MANIFEST));
        }
        let mut json = Vec::new();
        (&mut entry)
            .take(archive::MAX_METADATA_BYTES)
            .read_to_end(&mut json)
            .map_err(|e| e.to_string())?;
        let manifest: Manifest = serde_json::from_slice(&json).map_err(|e| e.to_string())?;
        let consumed = entry.raw_file_position() + entry.size();
        drop(entry);
        // The rest is the entry's padding and the two zero blocks that end a tar archive.
        let rest = out.get(consumed as usize..).unwrap_or_default();
        if rest.len() < 1024 || rest.iter().any(|b| *b != 0) {
            return Err("no tar end marker after the manifest".to_string());
        }
        Ok(manifest)
    }
}

/// The deflate data of a gzip member starting at `raw[0]`, after its header (RFC 1952).
fn gzip_body(raw: &[u8]) -> Option<&[u8]> {
    let (magic, rest) = raw.split_at_checked(10)?;
    if magic[..3] != [0x1f, 0x8b, 0x08] {
        return None;
    }
    let flags = magic[3];
    let mut rest = rest;
    if flags & 0x04 != 0 {
        let (len, tail) = rest.split_at_checked(2)?;
        rest = tail.get(usize::from(u16::from_le_bytes([len[0], len[1]]))..)?;
    }
    for flag in [0x08, 0x10] {
        if flags & flag != 0 {
            let end = rest.iter().position(|b| *b == 0)?;
            rest = &rest[end + 1..];
        }
    }
    if flags & 0x02 != 0 {
        rest = rest.get(2..)?;
    }
    Some(rest)
}

/// `header.json` as the first entry of the tar stream `tar`, when it is there whole.
fn first_entry(tar: impl Read) -> Option<Manifest> {
    let mut archive = tar::Archive::new(tar);
    let mut entry = archive.entries().ok()?.next()?.ok()?;
    if entry.path_bytes().as_ref() != archive::HEADER.as_bytes()
        || entry.header().size().ok()? > archive::MAX_METADATA_BYTES
    {
        return None;
    }
    // Whole, then parsed: serde_json reading a tar entry byte by byte was most of a
    // listing's time.
    let mut json = Vec::with_capacity(entry.header().size().ok()? as usize);
    entry.read_to_end(&mut json).ok()?;
    if json.len() as u64 != entry.header().size().ok()? {
        return None;
    }
    serde_json::from_slice(&json).ok()
}

/// Any codec, through the reader's own decompression (zstd, plain tar, a header larger
/// than the window).
fn generic_header(file: &dyn Object) -> Option<Manifest> {
    let no_keys = Keys::default();
    let (_, _, stream) =
        reader::decompressed_with(file.stream().ok()?, "", HEADER_BUFFER, &no_keys).ok()?;
    first_entry(stream)
}
