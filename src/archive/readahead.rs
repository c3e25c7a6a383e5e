//! Decompression on a thread of its own, a few chunks ahead of the reader that checks the
//! entries. Checking an archive costs about as much in SHA-256 and COPY scanning as in
//! decompressing it; with the two on separate cores, `verify` and restore's check before it
//! changes anything take the time of the slower half instead of the sum.
//!
//! Memory: at most [`CHUNKS_AHEAD`] chunks of [`CHUNK`] bytes wait for the reader, plus the
//! one being filled and the one being read. The thread ends at the end of the stream, at its
//! first error (after handing on what it read before it), or when the reader is dropped.

use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

const CHUNK: usize = 1 << 20;
const CHUNKS_AHEAD: usize = 4;

/// The reading end: a [`Read`] over what the thread decompressed, in order.
pub struct ReadAhead {
    chunks: Receiver<io::Result<Vec<u8>>>,
    /// Chunks read out go back to the thread, so their memory is not allocated and zeroed
    /// again for every megabyte.
    spent: SyncSender<Vec<u8>>,
    current: Vec<u8>,
    at: usize,
    ended: bool,
}

/// Fills `buf` (grown to a chunk) from `inner`: what was read, and the error that stopped it.
fn fill(inner: &mut dyn Read, buf: &mut Vec<u8>) -> Option<io::Error> {
    buf.resize(CHUNK, 0);
    let mut filled = 0;
    let mut failed = None;
    while filled < CHUNK {
        match inner.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    buf.truncate(filled);
    failed
}

/// Queues one chunk as the thread hands it on (an empty chunk is the end of the stream, an
/// error comes after what was read before it); false once the stream is over or the reader
/// is gone.
fn hand_on(tx: &SyncSender<io::Result<Vec<u8>>>, buf: Vec<u8>, failed: Option<io::Error>) -> bool {
    let end = buf.is_empty();
    if (!end || failed.is_none()) && tx.send(Ok(buf)).is_err() {
        return false;
    }
    if let Some(e) = failed {
        let _ = tx.send(Err(e));
        return false;
    }
    !end
}

impl ReadAhead {
    /// The first chunk is decompressed here: a stream that ends within it (a small archive,
    /// as the backup catalog reads by the thousand) needs no thread, and its buffer comes
    /// from, and goes back to, the caller's own memory.
    pub fn spawn(mut inner: Box<dyn Read + Send>) -> ReadAhead {
        let (tx, chunks) = sync_channel::<io::Result<Vec<u8>>>(CHUNKS_AHEAD);
        let (spent, recycled) = sync_channel::<Vec<u8>>(CHUNKS_AHEAD + 2);
        let mut first = Vec::new();
        let failed = fill(&mut inner, &mut first);
        let whole = first.len() < CHUNK || failed.is_some();
        let more = hand_on(&tx, first, failed);
        if more && whole {
            // Short of a chunk without an error: the stream has ended.
            hand_on(&tx, Vec::new(), None);
        } else if more {
            std::thread::spawn(move || loop {
                let mut buf = recycled.try_recv().unwrap_or_default();
                let failed = fill(&mut inner, &mut buf);
                if !hand_on(&tx, buf, failed) {
                    return;
                }
            });
        }
        ReadAhead {
            chunks,
            spent,
            current: Vec::new(),
            at: 0,
            ended: false,
        }
    }
}

impl Read for ReadAhead {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.at == self.current.len() {
            if self.ended || out.is_empty() {
                return Ok(0);
            }
            let spent = std::mem::take(&mut self.current);
            if spent.capacity() > 0 {
                let _ = self.spent.try_send(spent);
            }
            self.at = 0;
            match self.chunks.recv() {
                Ok(Ok(chunk)) => {
                    self.ended = chunk.is_empty();
                    self.current = chunk;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    return Err(io::Error::other(
                        "the decompressing thread stopped before the end of the archive",
                    ))
                }
            }
        }
        let n = out.len().min(self.current.len() - self.at);
        out[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out `data` a few bytes at a time, then fails with `error` if there is one.
    struct Dribble {
        data: Vec<u8>,
        at: usize,
        error: Option<io::ErrorKind>,
    }

    impl Read for Dribble {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if self.at == self.data.len() {
                return match self.error.take() {
                    Some(kind) => Err(io::Error::new(kind, "broken")),
                    None => Ok(0),
                };
            }
            let n = out.len().min(7).min(self.data.len() - self.at);
            out[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn passes_every_byte_in_order() {
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 12345] {
            let want = data(len);
            let mut got = Vec::new();
            ReadAhead::spawn(Box::new(Dribble {
                data: want.clone(),
                at: 0,
                error: None,
            }))
            .read_to_end(&mut got)
            .expect("read");
            assert!(got == want, "{len} bytes");
        }
    }

    #[test]
    fn hands_on_what_came_before_an_error_then_the_error() {
        let want = data(CHUNK + 100);
        let mut reader = ReadAhead::spawn(Box::new(Dribble {
            data: want.clone(),
            at: 0,
            error: Some(io::ErrorKind::InvalidData),
        }));
        let mut got = vec![0u8; want.len()];
        reader.read_exact(&mut got).expect("bytes before the error");
        assert!(got == want);
        let err = reader.read(&mut [0u8; 16]).expect_err("the error");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn the_thread_stops_when_the_reader_is_dropped() {
        struct Endless(std::sync::Arc<std::sync::atomic::AtomicBool>);
        impl Read for Endless {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                Ok(out.len())
            }
        }
        impl Drop for Endless {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let dropped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut reader = ReadAhead::spawn(Box::new(Endless(dropped.clone())));
        reader.read_exact(&mut [0u8; 100]).expect("read");
        drop(reader);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !dropped.load(std::sync::atomic::Ordering::SeqCst) {
            assert!(
                std::time::Instant::now() < deadline,
                "the thread kept reading"
            );
            std::thread::yield_now();
        }
    }
}
