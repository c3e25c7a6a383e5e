//! Reading an object: ranged GETs, each conditional on the ETag the object had when it was
//! opened, so a replaced object is refused (exit 5) instead of read half old, half new.

use std::io::Read;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex};

use rusty_s3::{Method, S3Action};

use super::client::{Call, Client, SIGNED_FOR};
use super::Identity;
use crate::error::{failure, Exit, Failure};

/// The bytes a streaming read fetches per request.
const CHUNK: u64 = 8 << 20;
/// The smallest range `read_at` fetches: a catalog's header and end reads take a few small
/// reads each, one request serves them.
const WINDOW: u64 = 256 << 10;

pub struct S3Object {
    source: Arc<Source>,
    bytes: u64,
    /// The last window `read_at` fetched: its offset and bytes.
    window: Mutex<Option<(u64, Arc<Vec<u8>>)>>,
}

/// Which object, in which version, a read is of; shared with the thread `stream` starts.
struct Source {
    client: Arc<Client>,
    key: String,
    /// For messages.
    url: String,
    /// The ETag the object had when it was opened: every read is conditional on it.
    etag: String,
}

impl S3Object {
    pub fn new(client: Arc<Client>, key: String, url: String, bytes: u64, etag: String) -> Self {
        S3Object {
            source: Arc::new(Source {
                client,
                key,
                url,
                etag,
            }),
            bytes,
            window: Mutex::new(None),
        }
    }
}

impl Source {
    /// Fetches `[start, end)` of the object as it was opened.
    fn fetch(&self, start: u64, end: u64) -> anyhow::Result<Vec<u8>> {
        let Source {
            client,
            key,
            url,
            etag,
        } = self;
        let range = format!("bytes={start}-{}", end - 1);
        let sign = || {
            client
                .bucket
                .get_object(Some(&client.credentials), key)
                .sign(SIGNED_FOR)
        };
        let what = format!("read {url} at {start}");
        let answer = client.send(
            &Call::new(&what, Method::Get, &sign)
                .headers(&[("range", range.as_str()), ("if-match", etag)]),
        )?;
        match answer.status {
            206 | 200 => {}
            412 => {
                return Err(failure(
                    Exit::BadArchive,
                    format!("archive {url} changed while it was read (another object is at that name now); nothing was changed, run again"),
                ))
            }
            404 => {
                return Err(failure(
                    Exit::BadArchive,
                    format!("archive {url} was deleted while it was read; nothing was changed"),
                ))
            }
            _ => return Err(client.refused(&what, &answer)),
        }
        let mut body = answer.body;
        // A store that ignores Range sends the whole object.
        if answer.status == 200 && start > 0 {
            body = body
                .get(start as usize..)
                .map(<[u8]>::to_vec)
                .unwrap_or_default();
        }
        body.truncate((end - start) as usize);
        if (body.len() as u64) < end - start {
            return Err(failure(
                Exit::BadArchive,
                format!(
                    "archive {url}: a read at {start} returned {} of {} bytes",
                    body.len(),
                    end - start
                ),
            ));
        }
        Ok(body)
    }
}

impl super::Object for S3Object {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        if offset >= self.bytes || buf.is_empty() {
            return Ok(0);
        }
        let mut window = self
            .window
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?;
        let cached = window
            .as_ref()
            .filter(|(at, data)| offset >= *at && offset < at + data.len() as u64)
            .cloned();
        let (at, data) = match cached {
            Some(hit) => hit,
            None => {
                let end = (offset + (buf.len() as u64).max(WINDOW)).min(self.bytes);
                let data = self.source.fetch(offset, end).map_err(into_io)?;
                let fresh = (offset, Arc::new(data));
                *window = Some(fresh.clone());
                fresh
            }
        };
        let from = (offset - at) as usize;
        let n = buf.len().min(data.len() - from);
        buf[..n].copy_from_slice(&data[from..from + n]);
        Ok(n)
    }

    fn stream(&self) -> std::io::Result<Box<dyn Read + Send>> {
        let (tx, rx) = sync_channel(2);
        let (source, bytes) = (Arc::clone(&self.source), self.bytes);
        // Fetching runs ahead of decompression by two chunks; dropping the reader stops it
        // at its next send.
        std::thread::Builder::new()
            .name("s3-read".into())
            .spawn(move || {
                let mut start = 0;
                while start < bytes {
                    let end = (start + CHUNK).min(bytes);
                    let chunk = source.fetch(start, end).map_err(into_io);
                    let failed = chunk.is_err();
                    if tx.send(chunk).is_err() || failed {
                        return;
                    }
                    start = end;
                }
            })?;
        Ok(Box::new(Chunks {
            rx,
            current: Vec::new(),
            at: 0,
        }))
    }

    fn bytes(&self) -> u64 {
        self.bytes
    }

    fn identity(&self) -> Identity {
        super::identity(&self.source.etag, self.bytes)
    }
}

struct Chunks {
    rx: Receiver<std::io::Result<Vec<u8>>>,
    current: Vec<u8>,
    at: usize,
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.current.len() {
            match self.rx.recv() {
                Ok(chunk) => {
                    self.current = chunk?;
                    self.at = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.at);
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// A storage failure carried through `std::io` (the archive reader's interface), so that
/// its exit code survives: see `crate::error::failure_in_io`.
pub fn into_io(e: anyhow::Error) -> std::io::Error {
    match e.downcast::<Failure>() {
        Ok(f) => std::io::Error::other(f),
        Err(e) => std::io::Error::other(format!("{e:#}")),
    }
}
