//! Cuts one COPY stream from the server into data entries of about `CHUNK_SIZE`, each ending
//! at a row end, and counts their rows. A binary entry holds a complete binary COPY file of
//! its own (header, rows, trailer), regrouped column by column (`columns`) unless that would
//! make it too big to regroup back in memory, so every entry loads with one
//! `COPY … FROM STDIN` in any order.

use super::pgcopy::{self, Scanner};
use super::{columns, count_lines, CopyFormat, CHUNK_SIZE};

/// A full entry and the rows in it.
pub type Chunk = (Vec<u8>, u64);

pub struct Chunker {
    columns: usize,
    chunk: Vec<u8>,
    /// Binary streams: where rows end.
    scanner: Option<Scanner>,
    /// Binary streams: the stream offset of the first byte after `pgcopy::HEADER` in `chunk`.
    base: u64,
    /// Binary streams: bytes of the stream seen so far.
    fed: u64,
    /// Binary streams: rows in the entries already cut.
    rows_cut: u64,
}

impl Chunker {
    pub fn new(format: CopyFormat, columns: usize) -> Result<Chunker, String> {
        let mut chunk = Vec::with_capacity(CHUNK_SIZE + (64 << 10));
        let scanner = match format {
            CopyFormat::Text => None,
            CopyFormat::Binary => {
                chunk.extend_from_slice(&pgcopy::HEADER);
                Some(Scanner::new(columns)?)
            }
        };
        Ok(Chunker {
            columns,
            chunk,
            scanner,
            base: pgcopy::HEADER.len() as u64,
            fed: 0,
            rows_cut: 0,
        })
    }

    /// Takes the next bytes of the stream; returns an entry when one is full.
    pub fn push(&mut self, data: &[u8]) -> Result<Option<Chunk>, String> {
        let Some(scanner) = &mut self.scanner else {
            self.chunk.extend_from_slice(data);
            if self.chunk.len() < CHUNK_SIZE {
                return Ok(None);
            }
            // Cut at the last row end; the rest starts the next entry.
            let Some(end) = self.chunk.iter().rposition(|b| *b == b'\n') else {
                return Ok(None);
            };
            let rest = self.chunk.split_off(end + 1);
            let full = std::mem::replace(&mut self.chunk, rest);
            self.chunk.reserve(CHUNK_SIZE + (64 << 10));
            let rows = count_lines(&full);
            return Ok(Some((full, rows)));
        };
        scanner.feed(data)?;
        // The server's own header is replaced by ours.
        let skip = (pgcopy::HEADER.len() as u64).saturating_sub(self.fed) as usize;
        self.fed += data.len() as u64;
        self.chunk.extend_from_slice(&data[skip.min(data.len())..]);
        let cut = pgcopy::HEADER.len() + (scanner.boundary().saturating_sub(self.base)) as usize;
        if self.chunk.len() < CHUNK_SIZE || cut == pgcopy::HEADER.len() {
            return Ok(None);
        }
        let mut rest = Vec::with_capacity(CHUNK_SIZE + (64 << 10));
        rest.extend_from_slice(&pgcopy::HEADER);
        rest.extend_from_slice(&self.chunk[cut..]);
        let mut full = std::mem::replace(&mut self.chunk, rest);
        full.truncate(cut);
        full.extend_from_slice(&pgcopy::TRAILER);
        self.base = scanner.boundary();
        let rows = scanner.rows() - self.rows_cut;
        self.rows_cut = scanner.rows();
        Ok(Some(self.regrouped(full, rows)))
    }

    /// The last entry, if the stream left rows after the last cut; an error if a binary
    /// stream ended before its trailer.
    pub fn finish(mut self) -> Result<Option<Chunk>, String> {
        let Some(scanner) = &self.scanner else {
            if self.chunk.is_empty() {
                return Ok(None);
            }
            let rows = count_lines(&self.chunk);
            return Ok(Some((self.chunk, rows)));
        };
        let total = scanner.finish()?;
        if total == self.rows_cut {
            return Ok(None);
        }
        // Drop the server's trailer: ours follows the last row.
        let end = pgcopy::HEADER.len() + (scanner.boundary() - self.base) as usize;
        self.chunk.truncate(end);
        self.chunk.extend_from_slice(&pgcopy::TRAILER);
        let rows = total - self.rows_cut;
        let full = std::mem::take(&mut self.chunk);
        Ok(Some(self.regrouped(full, rows)))
    }

    fn regrouped(&self, file: Vec<u8>, rows: u64) -> Chunk {
        match columns::from_copy(&file, self.columns, rows) {
            Some(entry) => (entry, rows),
            None => (file, rows),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binary_stream(rows: usize, field: usize) -> Vec<u8> {
        let mut out = pgcopy::HEADER.to_vec();
        for i in 0..rows {
            out.extend_from_slice(&1u16.to_be_bytes());
            out.extend_from_slice(&(field as i32).to_be_bytes());
            out.extend(std::iter::repeat_n((i % 251) as u8, field));
        }
        out.extend_from_slice(&pgcopy::TRAILER);
        out
    }

    #[test]
    fn binary_entries_are_column_major_copy_files_that_hold_every_row() {
        let rows = 3000;
        let stream = binary_stream(rows, 7000);
        for piece in [1000, 65536, 1 << 20] {
            let mut chunker = Chunker::new(CopyFormat::Binary, 1).unwrap();
            let mut entries = Vec::new();
            for p in stream.chunks(piece) {
                entries.extend(chunker.push(p).unwrap());
            }
            entries.extend(chunker.finish().unwrap());
            assert!(entries.len() >= 2, "pieces of {piece}");
            let mut total = 0;
            let mut payload = Vec::new();
            for (entry, n) in &entries {
                assert!(entry.starts_with(&columns::MAGIC));
                let data = &columns::to_copy(entry, 1).unwrap();
                let mut s = Scanner::new(1).unwrap();
                s.feed(data).unwrap();
                assert_eq!(s.finish(), Ok(*n));
                assert!(data.len() < CHUNK_SIZE + 8000);
                payload.extend_from_slice(&data[pgcopy::HEADER.len()..data.len() - 2]);
                total += n;
            }
            assert_eq!(total, rows as u64);
            assert_eq!(payload, stream[pgcopy::HEADER.len()..stream.len() - 2]);
        }
    }

    #[test]
    fn an_empty_table_makes_no_entry_and_a_cut_stream_is_an_error() {
        let mut chunker = Chunker::new(CopyFormat::Binary, 1).unwrap();
        assert_eq!(chunker.push(&binary_stream(0, 0)).unwrap(), None);
        assert_eq!(chunker.finish().unwrap(), None);
        let stream = binary_stream(2, 10);
        let mut chunker = Chunker::new(CopyFormat::Binary, 1).unwrap();
        chunker.push(&stream[..stream.len() - 2]).unwrap();
        assert!(chunker.finish().is_err());
    }

    #[test]
    fn text_entries_end_at_row_ends() {
        let line = vec![b'x'; 999];
        let mut stream = Vec::new();
        for _ in 0..20_000 {
            stream.extend_from_slice(&line);
            stream.push(b'\n');
        }
        let mut chunker = Chunker::new(CopyFormat::Text, 1).unwrap();
        let mut entries = Vec::new();
        for p in stream.chunks(70_000) {
            entries.extend(chunker.push(p).unwrap());
        }
        entries.extend(chunker.finish().unwrap());
        assert!(entries.len() >= 2);
        assert!(entries.iter().all(|(d, _)| d.ends_with(b"\n")));
        assert_eq!(entries.iter().map(|(_, n)| n).sum::<u64>(), 20_000);
    }
}
