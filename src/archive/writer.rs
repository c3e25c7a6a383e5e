//! Writes the archive the way pigz does: the tar byte stream is cut into blocks (one per entry,
//! or slices of a large file), each block is compressed as an independent gzip member (or zstd
//! frame) on a worker thread, and they are written in order; a reader of either format sees
//! one stream. Checksums of whole-in-memory entries
//! are computed on the workers too, so the threads producing data only produce data.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use anyhow::{anyhow, Context as _};
use flate2::{Compress, Compression, Crc, FlushCompress, Status};
use sha2::{Digest, Sha256};

use crate::archive::crypt::Seal;
use crate::archive::{Codec, Entry, Manifest, CHUNK_SIZE, COMPRESSION_LEVEL, ZSTD_LEVEL};

pub type Output = Box<dyn Write + Send>;

/// Where the compressed archive goes: as it is, or through age encryption, whose last chunk
/// is written only by `end`. Either way the bytes are counted where they leave, so the size
/// reported is the archive's as stored.
pub struct Sink {
    out: Out,
    bytes: Arc<AtomicU64>,
}

enum Out {
    Plain(Counted),
    Sealed(Box<age::stream::StreamWriter<Counted>>),
}

impl Sink {
    /// `seal` encrypts (see `crypt`); `head` is what the catalog may read without the key.
    pub fn new(out: Output, seal: Option<&Seal>, head: &Manifest) -> anyhow::Result<Sink> {
        let bytes = Arc::new(AtomicU64::new(0));
        let counted = Counted {
            inner: out,
            bytes: Arc::clone(&bytes),
        };
        let out = match seal {
            None => Out::Plain(counted),
            Some(seal) => Out::Sealed(Box::new(seal.wrap(counted, head)?)),
        };
        Ok(Sink { out, bytes })
    }

    fn end(self) -> std::io::Result<Output> {
        match self.out {
            Out::Plain(out) => Ok(out.inner),
            Out::Sealed(w) => w.finish().map(|out| out.inner),
        }
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &mut self.out {
            Out::Plain(out) => out.write(buf),
            Out::Sealed(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.out {
            Out::Plain(out) => out.flush(),
            Out::Sealed(w) => w.flush(),
        }
    }
}

/// An output that counts what it is given.
struct Counted {
    inner: Output,
    bytes: Arc<AtomicU64>,
}

impl Write for Counted {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

const BLOCK: usize = 512;

struct Block {
    seq: u64,
    header: Option<[u8; BLOCK]>,
    data: Vec<u8>,
    padding: usize,
    /// Name of a whole entry whose size and checksum the worker records.
    record: Option<String>,
}

impl Block {
    /// What the block counts against the in-flight bound until it is compressed.
    fn cost(&self) -> usize {
        self.data.len() + BLOCK
    }
}

/// A compressed block on its way to the output: sequence number and bytes, which count
/// against the in-flight bound until written.
type Member = (u64, Vec<u8>);

struct Submitter {
    next_seq: u64,
    blocks: SyncSender<Block>,
    compressed: SyncSender<Member>,
}

/// Bytes the writer holds: blocks waiting for or in compression, members waiting to be put
/// in order and written. The queues alone bound blocks by count, not the members waiting to
/// be put in order; behind a slow output (a bucket upload) they all filled, 150 MiB more than
/// a backup to a file. Bounding the bytes bounds the writer's memory whatever the output's
/// speed; counting members at their compressed size keeps the bound from idling a worker
/// when the output keeps up.
struct InFlight {
    state: Mutex<InFlightState>,
    changed: Condvar,
    limit: usize,
}

struct InFlightState {
    bytes: usize,
    /// A producer has waited for room since the output last asked: the output is slow.
    waited: bool,
    /// The output or a worker has stopped: nothing will be given back.
    stopped: bool,
}

impl InFlight {
    fn new(limit: usize) -> InFlight {
        InFlight {
            state: Mutex::new(InFlightState {
                bytes: 0,
                waited: false,
                stopped: false,
            }),
            changed: Condvar::new(),
            limit,
        }
    }

    /// Waits for room for `n` bytes; one block larger than the bound passes alone.
    fn take(&self, n: usize) -> anyhow::Result<()> {
        let poisoned = || anyhow!("archive writer state poisoned");
        let mut state = self.state.lock().map_err(|_| poisoned())?;
        while !state.stopped && state.bytes > 0 && state.bytes + n > self.limit {
            state.waited = true;
            state = self.changed.wait(state).map_err(|_| poisoned())?;
        }
        if state.stopped {
            return Err(anyhow!("the archive output stopped"));
        }
        state.bytes += n;
        Ok(())
    }

    /// `n` bytes held become `now` (0: given back).
    fn shrink(&self, n: usize, now: usize) {
        if let Ok(mut state) = self.state.lock() {
            state.bytes = state.bytes.saturating_sub(n) + now;
            self.changed.notify_all();
        }
    }

    /// Whether a producer has waited for room since the last call.
    fn take_waited(&self) -> bool {
        self.state
            .lock()
            .map(|mut state| std::mem::take(&mut state.waited))
            .unwrap_or(false)
    }

    fn stop(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.stopped = true;
            self.changed.notify_all();
        }
    }
}

/// Stops the in-flight bound when the thread holding it ends, however it ends, so no
/// producer waits for room that will never come.
struct StopOnExit(Arc<InFlight>);

impl Drop for StopOnExit {
    fn drop(&mut self) {
        self.0.stop();
    }
}

pub struct ArchiveWriter {
    submit: Mutex<Option<Submitter>>,
    in_flight: Arc<InFlight>,
    records: Arc<Mutex<Vec<Entry>>>,
    workers: Vec<JoinHandle<()>>,
    output: JoinHandle<anyhow::Result<Output>>,
    written: Arc<AtomicU64>,
    codec: Codec,
}

impl ArchiveWriter {
    pub fn new(output: Sink, codec: Codec, threads: usize) -> ArchiveWriter {
        let threads = threads.max(1);
        let (block_tx, block_rx) = sync_channel::<Block>(threads * 2);
        let (out_tx, out_rx) = sync_channel::<Member>(threads * 2);
        // Every worker with a block in hand and two waiting, and room for compressed members:
        // more only adds memory.
        let in_flight = Arc::new(InFlight::new((threads * 3 + 2) * CHUNK_SIZE));
        let block_rx = Arc::new(Mutex::new(block_rx));
        let records = Arc::new(Mutex::new(Vec::new()));
        let workers = (0..threads)
            .map(|_| {
                let rx = Arc::clone(&block_rx);
                let tx = out_tx.clone();
                let records = Arc::clone(&records);
                let in_flight = Arc::clone(&in_flight);
                std::thread::spawn(move || {
                    if !compress_blocks(&rx, &tx, &records, codec, &in_flight) {
                        in_flight.stop();
                    }
                })
            })
            .collect();
        let written = Arc::clone(&output.bytes);
        let stop = StopOnExit(Arc::clone(&in_flight));
        let output = std::thread::spawn(move || write_in_order(output, out_rx, stop));
        ArchiveWriter {
            submit: Mutex::new(Some(Submitter {
                next_seq: 0,
                blocks: block_tx,
                compressed: out_tx,
            })),
            in_flight,
            records,
            workers,
            output,
            written,
            codec,
        }
    }

    /// Adds a regular file held in memory; its size and SHA-256 go into the manifest.
    pub fn add_entry(&self, name: &str, data: Vec<u8>) -> anyhow::Result<()> {
        let header = header(name, tar::EntryType::Regular, data.len() as u64, 0o600)?;
        let padding = padding(data.len() as u64);
        self.submit(|seq| Block {
            seq,
            header: Some(header),
            data,
            padding,
            record: Some(name.to_string()),
        })
    }

    pub fn add_dir(&self, name: &str) -> anyhow::Result<()> {
        let header = header(name, tar::EntryType::Directory, 0, 0o700)?;
        self.submit(|seq| Block {
            seq,
            header: Some(header),
            data: Vec::new(),
            padding: 0,
            record: None,
        })
    }

    /// Adds a file of known size streamed from `source` in slices, so a large file never
    /// sits in memory whole. The caller must be the only producer while this runs.
    pub fn add_stream(
        &self,
        name: &str,
        size: u64,
        mode: u32,
        source: &mut dyn std::io::Read,
        slice: usize,
    ) -> anyhow::Result<()> {
        let mut header = Some(header(name, tar::EntryType::Regular, size, mode)?);
        let mut hasher = Sha256::new();
        let mut left = size;
        loop {
            let want = left.min(slice as u64) as usize;
            let mut data = vec![0u8; want];
            source
                .read_exact(&mut data)
                .with_context(|| format!("cannot read {name} (did it change while archiving?)"))?;
            hasher.update(&data);
            left -= want as u64;
            let last = left == 0;
            let head = header.take();
            self.submit(|seq| Block {
                seq,
                header: head,
                data,
                padding: if last { padding(size) } else { 0 },
                record: None,
            })?;
            if last {
                break;
            }
        }
        self.records
            .lock()
            .map_err(|_| anyhow!("archive writer state poisoned"))?
            .push(Entry {
                name: name.to_string(),
                size,
                sha256: hex::encode(hasher.finalize()),
            });
        Ok(())
    }

    fn submit(&self, make: impl FnOnce(u64) -> Block) -> anyhow::Result<()> {
        let mut guard = self
            .submit
            .lock()
            .map_err(|_| anyhow!("archive writer state poisoned"))?;
        let submitter = guard
            .as_mut()
            .ok_or_else(|| anyhow!("archive already finished"))?;
        let block = make(submitter.next_seq);
        self.in_flight.take(block.cost())?;
        submitter.next_seq += 1;
        submitter
            .blocks
            .send(block)
            .map_err(|_| anyhow!("the archive output stopped"))
    }

    /// Waits for every entry, appends the manifest built from their records and the tar
    /// end-of-archive marker, and returns the output with the compressed size.
    pub fn finish(
        mut self,
        manifest: impl FnOnce(Vec<Entry>) -> anyhow::Result<(String, Vec<u8>)>,
    ) -> anyhow::Result<(Output, u64)> {
        let submitter = self
            .submit
            .get_mut()
            .map_err(|_| anyhow!("archive writer state poisoned"))?
            .take()
            .ok_or_else(|| anyhow!("archive already finished"))?;
        let Submitter {
            next_seq,
            blocks,
            compressed,
        } = submitter;
        drop(blocks);
        for worker in self.workers.drain(..) {
            worker
                .join()
                .map_err(|_| anyhow!("a compression thread panicked"))?;
        }
        let mut records = std::mem::take(
            &mut *self
                .records
                .lock()
                .map_err(|_| anyhow!("archive writer state poisoned"))?,
        );
        records.sort_by(|a, b| a.name.cmp(&b.name));
        let (name, data) = manifest(records)?;
        let mut tail = Block {
            seq: next_seq,
            header: Some(header(
                &name,
                tar::EntryType::Regular,
                data.len() as u64,
                0o600,
            )?),
            padding: padding(data.len() as u64) + 2 * BLOCK,
            data,
            record: None,
        };
        let member = Compressor::new(self.codec)
            .and_then(|mut c| c.compress(&mut tail))
            .context("cannot compress the manifest")?;
        let sent = compressed.send((next_seq, member)).is_ok();
        drop(compressed);
        let output = self
            .output
            .join()
            .map_err(|_| anyhow!("the archive output thread panicked"))??;
        if !sent {
            return Err(anyhow!("the archive output stopped"));
        }
        let written = self.written.load(Ordering::Relaxed);
        Ok((output, written))
    }

    /// After a failure while producing entries: the output thread's own error when it has
    /// one (e.g. disk full), which explains the failure better than "output stopped".
    pub fn abandon(mut self, err: anyhow::Error) -> anyhow::Error {
        if let Ok(mut guard) = self.submit.lock() {
            guard.take();
        }
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
        match self.output.join() {
            Ok(Err(output_err)) => output_err,
            _ => err,
        }
    }
}

/// Compresses blocks until there are no more (true) or it cannot go on (false): a worker
/// that cannot compress stops, and the writer sees its blocks missing.
fn compress_blocks(
    blocks: &Mutex<Receiver<Block>>,
    out: &SyncSender<Member>,
    records: &Mutex<Vec<Entry>>,
    codec: Codec,
    in_flight: &InFlight,
) -> bool {
    let Ok(mut compressor) = Compressor::new(codec) else {
        return false;
    };
    loop {
        let next = match blocks.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return false,
        };
        let Ok(mut block) = next else { return true };
        if let Some(name) = block.record.take() {
            let entry = Entry {
                name,
                size: block.data.len() as u64,
                sha256: hex::encode(Sha256::digest(&block.data)),
            };
            match records.lock() {
                Ok(mut r) => r.push(entry),
                Err(_) => return false,
            }
        }
        let (seq, cost) = (block.seq, block.cost());
        let member = match compressor.compress(&mut block) {
            Ok(m) => m,
            Err(_) => return false,
        };
        in_flight.shrink(cost, member.len());
        if out.send((seq, member)).is_err() {
            return false;
        }
    }
}

/// One worker's compressor, kept from block to block: setting up a deflate or zstd state
/// for every 8 MiB block cost more than a tenth of the backup's own CPU time.
enum Compressor {
    Gzip(Compress),
    Zstd(zstd::zstd_safe::CCtx<'static>),
    None,
}

impl Compressor {
    fn new(codec: Codec) -> std::io::Result<Compressor> {
        Ok(match codec {
            Codec::Gzip => {
                Compressor::Gzip(Compress::new(Compression::new(COMPRESSION_LEVEL), false))
            }
            Codec::Zstd => {
                let mut cctx = zstd::zstd_safe::CCtx::create();
                cctx.set_parameter(zstd::zstd_safe::CParameter::CompressionLevel(ZSTD_LEVEL))
                    .map_err(|code| std::io::Error::other(zstd::zstd_safe::get_error_name(code)))?;
                Compressor::Zstd(cctx)
            }
            Codec::None => Compressor::None,
        })
    }

    fn compress(&mut self, block: &mut Block) -> std::io::Result<Vec<u8>> {
        let capacity = block.data.len() / 4 + 64;
        let out = match self {
            Compressor::Gzip(deflate) => gzip_member(deflate, block, capacity)?,
            Compressor::Zstd(cctx) => {
                let mut z =
                    zstd::stream::write::Encoder::with_context(Vec::with_capacity(capacity), cctx);
                write_block(&mut z, block)?;
                z.finish()?
            }
            Compressor::None => {
                let mut raw = Vec::with_capacity(BLOCK + block.data.len() + block.padding);
                write_block(&mut raw, block)?;
                raw
            }
        };
        block.data = Vec::new();
        Ok(out)
    }
}

/// One gzip member (RFC 1952) holding the block: header, raw deflate, CRC-32 and size.
fn gzip_member(deflate: &mut Compress, block: &Block, capacity: usize) -> std::io::Result<Vec<u8>> {
    deflate.reset();
    let mut out = Vec::with_capacity(capacity);
    // No name, no time; OS 255 (unknown), as flate2's GzEncoder writes it.
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
    let mut crc = Crc::new();
    let padding = vec![0u8; block.padding];
    let parts = [
        block.header.as_ref().map(|h| &h[..]).unwrap_or(&[]),
        &block.data,
        &padding,
    ];
    for part in parts {
        crc.update(part);
        deflate_all(deflate, part, &mut out, FlushCompress::None)?;
    }
    deflate_all(deflate, &[], &mut out, FlushCompress::Finish)?;
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&crc.amount().to_le_bytes());
    Ok(out)
}

fn deflate_all(
    deflate: &mut Compress,
    mut input: &[u8],
    out: &mut Vec<u8>,
    flush: FlushCompress,
) -> std::io::Result<()> {
    loop {
        if out.capacity() - out.len() < (32 << 10) {
            out.reserve(out.capacity().max(64 << 10));
        }
        let before = deflate.total_in();
        let status = deflate
            .compress_vec(input, out, flush)
            .map_err(std::io::Error::other)?;
        input = &input[(deflate.total_in() - before) as usize..];
        let done = match flush {
            FlushCompress::Finish => status == Status::StreamEnd,
            _ => input.is_empty(),
        };
        if done {
            return Ok(());
        }
    }
}

fn write_block(out: &mut impl Write, block: &Block) -> std::io::Result<()> {
    if let Some(h) = &block.header {
        out.write_all(h)?;
    }
    out.write_all(&block.data)?;
    if block.padding > 0 {
        out.write_all(&vec![0u8; block.padding])?;
    }
    Ok(())
}

fn write_in_order(
    mut output: Sink,
    members: Receiver<Member>,
    in_flight: StopOnExit,
) -> anyhow::Result<Output> {
    let mut pending: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    let mut next = 0u64;
    let mut since_trim = 0usize;
    for (seq, member) in members {
        pending.insert(seq, member);
        while let Some(member) = pending.remove(&next) {
            output
                .write_all(&member)
                .context("cannot write the archive")?;
            in_flight.0.shrink(member.len(), 0);
            since_trim += member.len();
            drop(member);
            if since_trim >= TRIM_EVERY {
                since_trim = 0;
                if in_flight.0.take_waited() {
                    return_free_memory();
                }
            }
            next += 1;
        }
    }
    let mut output = output.end().context("cannot write the archive")?;
    output.flush().context("cannot write the archive")?;
    Ok(output)
}

/// How often, in bytes written, the output checks whether it is the slow part.
const TRIM_EVERY: usize = CHUNK_SIZE;

/// Gives memory freed by the writer's threads back to the system. Blocks are allocated by
/// the producers and freed by the output thread, and glibc keeps each thread's freed blocks
/// in that thread's arena: behind a slow output (a bucket upload) a 1.2 GiB backup held
/// 80-100 MiB freed but not returned, over the bound the writer keeps on what it holds. Only
/// when producers wait for the output: a fast output reuses that memory at once.
fn return_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointers; it only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

fn header(name: &str, kind: tar::EntryType, size: u64, mode: u32) -> anyhow::Result<[u8; BLOCK]> {
    let mut h = tar::Header::new_ustar();
    h.set_path(name)
        .with_context(|| format!("cannot store {name:?} in the archive"))?;
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(chrono::Utc::now().timestamp().max(0) as u64);
    h.set_cksum();
    let mut out = [0u8; BLOCK];
    out.copy_from_slice(h.as_bytes());
    Ok(out)
}

fn padding(size: u64) -> usize {
    ((BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::{Duration, Instant};

    /// An output that takes nothing until it is opened, as a stalled upload.
    struct Stalled {
        gate: Receiver<()>,
        open: bool,
    }

    impl Write for Stalled {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if !self.open {
                self.gate.recv().map_err(std::io::Error::other)?;
                self.open = true;
            }
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stalled_output_stops_producers_at_the_in_flight_bound() {
        const ENTRIES: usize = 16;
        let (open, gate) = sync_channel(1);
        let sink = Sink::new(
            Box::new(Stalled { gate, open: false }),
            None,
            &Manifest::new(crate::archive::Mode::Online, String::new(), String::new()),
        )
        .unwrap();
        let writer = ArchiveWriter::new(sink, Codec::None, 2);
        let added = AtomicUsize::new(0);
        std::thread::scope(|s| {
            let producer = s.spawn(|| -> anyhow::Result<()> {
                for i in 0..ENTRIES {
                    writer.add_entry(&format!("e{i}"), vec![1u8; CHUNK_SIZE])?;
                    added.fetch_add(1, Ordering::SeqCst);
                }
                Ok(())
            });
            let deadline = Instant::now() + Duration::from_secs(60);
            let waited = loop {
                if writer.in_flight.state.lock().unwrap().waited {
                    break true;
                }
                if Instant::now() > deadline {
                    break false;
                }
                std::thread::yield_now();
            };
            let taken = added.load(Ordering::SeqCst);
            // Opened before asserting, so a failure does not leave the producer stuck.
            open.send(()).unwrap();
            producer.join().unwrap().unwrap();
            assert!(
                waited,
                "the producer never waited: {taken} entries taken by a stalled output"
            );
            let held = taken * (CHUNK_SIZE + BLOCK);
            assert!(
                held <= writer.in_flight.limit,
                "{held} bytes held over the bound"
            );
        });
        assert_eq!(added.load(Ordering::SeqCst), ENTRIES);
        let (_, written) = writer
            .finish(|_| Ok(("manifest.json".into(), b"{}".to_vec())))
            .unwrap();
        assert!(written as usize > ENTRIES * CHUNK_SIZE);
    }
}
