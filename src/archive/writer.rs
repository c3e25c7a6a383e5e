//! Writes the archive the way pigz does: the tar byte stream is cut into blocks (one per entry,
//! or slices of a large file), each block is compressed as an independent gzip member (or zstd
//! frame) on a worker thread, and they are written in order; a reader of either format sees
//! one stream. Checksums of whole-in-memory entries
//! are computed on the workers too, so the threads producing data only produce data.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use anyhow::{anyhow, Context as _};
use flate2::{Compress, Compression, Crc, FlushCompress, Status};
use sha2::{Digest, Sha256};

use crate::archive::crypt::Seal;
use crate::archive::{Codec, Entry, Manifest, COMPRESSION_LEVEL, ZSTD_LEVEL};

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

struct Submitter {
    next_seq: u64,
    blocks: SyncSender<Block>,
    compressed: SyncSender<(u64, Vec<u8>)>,
}

pub struct ArchiveWriter {
    submit: Mutex<Option<Submitter>>,
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
        let (out_tx, out_rx) = sync_channel::<(u64, Vec<u8>)>(threads * 2);
        let block_rx = Arc::new(Mutex::new(block_rx));
        let records = Arc::new(Mutex::new(Vec::new()));
        let workers = (0..threads)
            .map(|_| {
                let rx = Arc::clone(&block_rx);
                let tx = out_tx.clone();
                let records = Arc::clone(&records);
                std::thread::spawn(move || compress_blocks(&rx, &tx, &records, codec))
            })
            .collect();
        let written = Arc::clone(&output.bytes);
        let output = std::thread::spawn(move || write_in_order(output, out_rx));
        ArchiveWriter {
            submit: Mutex::new(Some(Submitter {
                next_seq: 0,
                blocks: block_tx,
                compressed: out_tx,
            })),
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

fn compress_blocks(
    blocks: &Mutex<Receiver<Block>>,
    out: &SyncSender<(u64, Vec<u8>)>,
    records: &Mutex<Vec<Entry>>,
    codec: Codec,
) {
    // A worker that cannot compress stops; the writer sees its blocks missing.
    let Ok(mut compressor) = Compressor::new(codec) else {
        return;
    };
    loop {
        let next = match blocks.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(mut block) = next else { return };
        if let Some(name) = block.record.take() {
            let entry = Entry {
                name,
                size: block.data.len() as u64,
                sha256: hex::encode(Sha256::digest(&block.data)),
            };
            match records.lock() {
                Ok(mut r) => r.push(entry),
                Err(_) => return,
            }
        }
        let seq = block.seq;
        let member = match compressor.compress(&mut block) {
            Ok(m) => m,
            Err(_) => return,
        };
        if out.send((seq, member)).is_err() {
            return;
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

fn write_in_order(mut output: Sink, members: Receiver<(u64, Vec<u8>)>) -> anyhow::Result<Output> {
    let mut pending: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    let mut next = 0u64;
    for (seq, member) in members {
        pending.insert(seq, member);
        while let Some(member) = pending.remove(&next) {
            output
                .write_all(&member)
                .context("cannot write the archive")?;
            next += 1;
        }
    }
    let mut output = output.end().context("cannot write the archive")?;
    output.flush().context("cannot write the archive")?;
    Ok(output)
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
