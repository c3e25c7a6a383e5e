//! Where archives live: a place that lists, reads, writes and deletes archives by name, so that
//! backup, the catalog, retention and restore never touch files themselves. The local
//! directory ([`LocalDir`]) and an S3 bucket and prefix (`s3::S3Store`, `s3://bucket/prefix/`)
//! are the two kinds of place; [`Places`] picks one by the path or URL given.
//!
//! What every kind of place guarantees:
//! - An archive appears under its final name only when it is complete ([`Store::create`]
//!   writes elsewhere until [`Upload::complete`]); an aborted or killed write leaves at most
//!   a partial that listings show as such and the next write of that name replaces.
//! - Nothing already at a name is written through or replaced unless it is an archive of this
//!   user's; anything else there is refused (exit 3) before a byte is written.
//! - A delete removes only the very object that was read ([`Identity`]); one that another run
//!   removed first counts as removed.

pub mod local;
pub mod s3;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context as _;

pub use local::LocalDir;

use crate::config::s3::S3Config;
use crate::error::{failure, Exit};

/// Which stored object was read, so that a delete or a second read can tell it was not
/// replaced meanwhile (a local file's device and inode).
pub type Identity = (u64, u64);

/// An object as a listing shows it, before anything of it is read.
pub struct Listed {
    pub name: String,
    pub bytes: u64,
    pub modified: Option<SystemTime>,
    /// The user the object belongs to.
    pub owner: u32,
    pub identity: Identity,
}

/// An object opened for reading.
pub trait Object: Send + Sync {
    /// Reads from `offset`, as `pread` does.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize>;

    /// The whole object from its start, for the archive reader.
    fn stream(&self) -> std::io::Result<Box<dyn Read + Send>>;

    fn bytes(&self) -> u64;

    fn identity(&self) -> Identity;

    /// Fills `buf` from `offset`, or fails.
    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
        while !buf.is_empty() {
            match self.read_at(buf, offset) {
                Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// An archive being written: the bytes go to [`Upload::writer`], then [`Upload::complete`]
/// makes them durable under the final name, or [`Upload::abort`] removes them.
pub trait Upload: Send {
    /// Where the archive's bytes go (buffered).
    fn writer(&mut self) -> anyhow::Result<Box<dyn std::io::Write + Send>>;

    /// Makes the written bytes durable under the final name; returns where they are.
    fn complete(self: Box<Self>) -> anyhow::Result<PathBuf>;

    /// Removes what was written; never fails (best effort).
    fn abort(self: Box<Self>);
}

/// A place that holds archives.
pub trait Store: Send + Sync {
    /// For messages: the directory (or bucket and prefix).
    fn describe(&self) -> String;

    /// Where an object of this name is, as the operator would give it back to jobdbctl.
    fn path_of(&self, name: &str) -> PathBuf;

    /// Whether the place itself exists.
    fn exists(&self) -> bool;

    /// Makes the place ready to hold archives (creates a local directory and its parents).
    fn prepare(&self) -> anyhow::Result<()>;

    /// Every object that may be an archive (or a partial one), in no particular order;
    /// links and other kinds of file are left out.
    fn list(&self) -> anyhow::Result<Vec<Listed>>;

    /// Opens an object for reading without following a link at its name; `NotFound` when it
    /// is gone.
    fn open(&self, name: &str) -> std::io::Result<Box<dyn Object>>;

    /// Starts writing an archive under `name` (see the module's guarantees).
    fn create(&self, name: &str) -> anyhow::Result<Box<dyn Upload>>;

    /// [`Store::create`], but completing never replaces anything at the name, not even an
    /// object of ours (a bucket never replaces anyway).
    fn create_new(&self, name: &str) -> anyhow::Result<Box<dyn Upload>> {
        self.create(name)
    }

    /// Stores `data` under `name` as [`Store::create_new`] does, whole or not at all: a
    /// failed write leaves nothing behind.
    fn put_new(&self, name: &str, data: &[u8]) -> anyhow::Result<PathBuf> {
        let mut upload = self.create_new(name)?;
        let written = upload.writer().and_then(|mut w| {
            w.write_all(data)
                .and_then(|()| w.flush())
                .with_context(|| format!("cannot write {}", self.path_of(name).display()))
        });
        match written {
            Ok(()) => upload.complete(),
            Err(e) => {
                upload.abort();
                Err(e)
            }
        }
    }

    /// Deletes `name` if it still is the object read as `identity`: `true` when it is gone
    /// (removed now, or already), `false` when the name now holds something else (kept).
    fn remove(&self, name: &str, identity: Identity) -> anyhow::Result<bool>;

    /// [`Store::remove`] of many, each as it says; batched where the place allows.
    fn remove_many(&self, doomed: &[(String, Identity)]) -> anyhow::Result<Vec<bool>> {
        doomed
            .iter()
            .map(|(name, identity)| self.remove(name, *identity))
            .collect()
    }

    /// Bytes free for new archives.
    fn free_bytes(&self) -> anyhow::Result<u64>;

    /// How many archives the catalog reads at once: a local directory's reads are
    /// decompression and parsing (one per core); a bucket's wait on the network.
    fn parallel_reads(&self) -> usize {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }

    /// Removes what runs killed mid-write left that no listing shows (a bucket's incomplete
    /// uploads older than a day); with `dry_run` only says what. A local directory's
    /// `.partial` files are listed instead, and replaced by the next write of their name.
    fn remove_abandoned(&self, _dry_run: bool) -> anyhow::Result<Vec<PathBuf>> {
        Ok(Vec::new())
    }
}

/// Where archives are, for paths and `s3://` URLs alike; built once per run.
pub struct Places {
    s3: S3Config,
    verbose: bool,
}

impl Places {
    pub fn new(s3: &S3Config, verbose: bool) -> Places {
        Places {
            s3: s3.clone(),
            verbose,
        }
    }

    /// The place of archives at `dir` (a directory or an `s3://bucket/prefix/` URL).
    pub fn at(&self, dir: &Path) -> anyhow::Result<Box<dyn Store>> {
        if !is_url(dir) {
            return Ok(Box::new(LocalDir::new(dir)));
        }
        let url = s3::Url::parse(&dir.to_string_lossy())?;
        let client = s3::connect(&url, &self.s3, self.verbose)?;
        Ok(Box::new(s3::S3Store::new(client, &url)))
    }

    /// An archive the operator named by its path or URL (`restore PATH`, `verify PATH`),
    /// opened as given (a link the operator made to a file is followed).
    pub fn open_given(&self, path: &Path) -> anyhow::Result<Box<dyn Object>> {
        if !is_url(path) {
            return local::open_path(path)
                .with_context(|| format!("cannot open archive {}", path.display()));
        }
        let (store, name) = self.of_file(path)?;
        store
            .open(&name)
            .map_err(|e| match crate::error::failure_in_io(&e) {
                Some(f) => failure(f.exit, f.message.clone()),
                None if e.kind() == std::io::ErrorKind::NotFound => failure(
                    Exit::Usage,
                    format!("cannot open archive {}: no such object", path.display()),
                ),
                None => {
                    anyhow::Error::new(e).context(format!("cannot open archive {}", path.display()))
                }
            })
    }

    /// The store holding `path` and its name there: a file's directory, or a URL's prefix.
    pub fn of_file(&self, path: &Path) -> anyhow::Result<(Box<dyn Store>, String)> {
        if !is_url(path) {
            let (dir, name) = LocalDir::of_file(path)?;
            return Ok((Box::new(dir), name));
        }
        let text = path.to_string_lossy();
        let (dir, name) = text
            .rsplit_once('/')
            .filter(|(dir, name)| !name.is_empty() && dir.len() > "s3:/".len())
            .ok_or_else(|| {
                failure(
                    Exit::Usage,
                    format!("{text:?} names no object; give s3://bucket/prefix/NAME"),
                )
            })?;
        Ok((self.at(Path::new(&format!("{dir}/")))?, name.to_string()))
    }
}

/// Whether `path` is an `s3://` URL.
pub fn is_url(path: &Path) -> bool {
    crate::config::is_url(path)
}

/// The name an unfinished archive has while it is written.
pub fn partial_name(name: &str) -> String {
    format!("{name}.partial")
}

/// Whether `name` is that of an unfinished archive.
pub fn is_partial(name: &str) -> bool {
    name.ends_with(".partial")
}
