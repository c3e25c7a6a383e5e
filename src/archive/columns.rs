//! Column-major binary entries: the fields of a binary COPY file regrouped column by column,
//! so that a column's values (ids, timestamps, states) sit next to each other, where the
//! compressor finds their repetitions. Row-major binary COPY compresses worse than COPY text
//! (docs/backups.md); column-major compresses far better than both.
//!
//! Layout (integers big-endian): `MAGIC`; rows (u32); columns (u16); then for each column the
//! rows' field lengths (i32 each, -1 for NULL) followed by the non-NULL values' bytes in row
//! order. Nothing follows the last column. Restore turns an entry back into a binary COPY
//! file in memory, so an entry may be at most `MAX_BYTES`; the writer keeps larger ones (a
//! chunk holding a row of many megabytes) as plain binary COPY files.

use super::pgcopy;

pub const MAGIC: [u8; 8] = *b"JDBCOL1\n";
/// The largest column-major entry: a data chunk (`CHUNK_SIZE`, 8 MiB) plus rows of up to
/// 8 MiB at its end.
pub const MAX_BYTES: usize = 16 << 20;
const PREFIX: usize = MAGIC.len() + 4 + 2;

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Regroups a complete, well-formed binary COPY file (as `pgcopy::Scanner` accepts it) of
/// `rows` rows by column. `None` when the result would exceed `MAX_BYTES` or the file is not
/// what the scanner accepted.
pub fn from_copy(file: &[u8], columns: usize, rows: u64) -> Option<Vec<u8>> {
    let rows32 = u32::try_from(rows).ok()?;
    let columns16 = u16::try_from(columns).ok()?;
    let rows = rows as usize;
    // Every row drops its 2-byte field count; the COPY header and trailer go.
    let size = (file.len() + PREFIX).checked_sub(pgcopy::HEADER.len() + 2 + 2 * rows)?;
    if size > MAX_BYTES {
        return None;
    }
    // Two passes, so every byte is copied once, straight to its place: the first finds
    // where each column's lengths and values go, the second puts them there.
    let mut value_bytes = vec![0usize; columns];
    let mut at = pgcopy::HEADER.len();
    for _ in 0..rows {
        at += 2;
        for bytes in value_bytes.iter_mut() {
            let n = be32(file.get(at..at + 4)?);
            at += 4;
            if n != u32::MAX {
                *bytes += n as usize;
                at += n as usize;
            }
        }
    }
    if file.get(at..) != Some(&pgcopy::TRAILER[..]) {
        return None;
    }
    let mut out = vec![0u8; size];
    out[..MAGIC.len()].copy_from_slice(&MAGIC);
    out[MAGIC.len()..MAGIC.len() + 4].copy_from_slice(&rows32.to_be_bytes());
    out[MAGIC.len() + 4..PREFIX].copy_from_slice(&columns16.to_be_bytes());
    // (next length, next value) per column.
    let mut next = Vec::with_capacity(columns);
    let mut start = PREFIX;
    for bytes in &value_bytes {
        next.push((start, start + rows * 4));
        start += rows * 4 + bytes;
    }
    let mut at = pgcopy::HEADER.len();
    for _ in 0..rows {
        at += 2;
        for (length, value) in next.iter_mut() {
            out[*length..*length + 4].copy_from_slice(&file[at..at + 4]);
            let n = be32(&file[at..]);
            *length += 4;
            at += 4;
            if n != u32::MAX {
                let n = n as usize;
                out[*value..*value + n].copy_from_slice(&file[at..at + n]);
                *value += n;
                at += n;
            }
        }
    }
    Some(out)
}

/// The binary COPY file a column-major entry holds, whole; an error if it is not well formed
/// for a table of `columns` columns. (Restore writes it out in parts with [`Rows`].)
#[cfg(test)]
pub fn to_copy(entry: &[u8], columns: usize) -> Result<Vec<u8>, String> {
    let rows = Rows::of(entry, columns)?;
    let mut out = Vec::with_capacity(rows.copy_len());
    rows.write(usize::MAX, None, |part| {
        out.extend_from_slice(part);
        Ok::<(), std::convert::Infallible>(())
    })
    .unwrap_or_else(|never| match never {});
    Ok(out)
}

/// A change made to rows while they are written out, so that it costs no second pass over
/// the table on the server: a row changes when any `when` column holds its value (`None`:
/// any value but NULL), and then takes the `set` fields. Columns are positions in the
/// entry's column list; values are in binary COPY form.
#[derive(Debug, Clone, Default)]
pub struct Edit {
    pub when: Vec<(usize, Option<Vec<u8>>)>,
    pub set: Vec<(usize, NewValue)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewValue {
    Null,
    Bytes(Vec<u8>),
    /// An 8-byte integer field (`int8`, `timestamptz`) raised to at least this; a NULL
    /// becomes it, as SQL's `greatest` does. A field of another size is left for the server
    /// to judge.
    AtLeast(i64),
}

/// A column-major entry found well formed, to be written out as a binary COPY file.
pub struct Rows<'a> {
    entry: &'a [u8],
    rows: usize,
    /// Where each column's lengths and values start.
    starts: Vec<(usize, usize)>,
}

impl<'a> Rows<'a> {
    /// Checks `entry` whole for a table of `columns` columns.
    pub fn of(entry: &'a [u8], columns: usize) -> Result<Rows<'a>, String> {
        let mut check = Scanner::new(columns)?;
        check.feed(entry)?;
        let rows = check.finish()? as usize;
        let mut starts = Vec::with_capacity(columns);
        let mut at = PREFIX;
        for _ in 0..columns {
            let lengths = at;
            at += rows * 4;
            let values = at;
            for r in 0..rows {
                let n = be32(&entry[lengths + r * 4..]);
                if n != u32::MAX {
                    at += n as usize;
                }
            }
            starts.push((lengths, values));
        }
        Ok(Rows {
            entry,
            rows,
            starts,
        })
    }

    /// The size of the binary COPY file.
    pub fn copy_len(&self) -> usize {
        self.entry.len() + pgcopy::HEADER.len() + 2 * self.rows + pgcopy::TRAILER.len() - PREFIX
    }

    /// Hands the binary COPY file to `emit` in order, in parts of about `part` bytes (whole
    /// rows, so a part can go to the server while the next one is regrouped), with `edit`
    /// made to the rows it matches. Returns how many rows the edit changed.
    pub fn write<E>(
        &self,
        part: usize,
        edit: Option<&Edit>,
        mut emit: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<u64, E> {
        let entry = self.entry;
        let columns = self.starts.len();
        let mut out = Vec::with_capacity(self.copy_len().min(part.saturating_add(64 << 10)));
        out.extend_from_slice(&pgcopy::HEADER);
        let count = (columns as u16).to_be_bytes();
        let mut values: Vec<usize> = self.starts.iter().map(|(_, v)| *v).collect();
        let (when, set) = match edit {
            Some(e) => (e.when.as_slice(), e.set.as_slice()),
            None => (&[][..], &[][..]),
        };
        // Out-of-range columns change nothing rather than fail: the caller matched names.
        let when: Vec<(usize, Option<&[u8]>)> = when
            .iter()
            .filter(|(c, _)| *c < columns)
            .map(|(c, v)| (*c, v.as_deref()))
            .collect();
        let mut replace: Vec<Option<&NewValue>> = vec![None; columns];
        for (c, v) in set {
            if let Some(slot) = replace.get_mut(*c) {
                *slot = Some(v);
            }
        }
        let mut changed = 0;
        for r in 0..self.rows {
            let field = |c: usize| -> Option<&[u8]> {
                let n = be32(&entry[self.starts[c].0 + r * 4..]);
                (n != u32::MAX).then(|| &entry[values[c]..values[c] + n as usize])
            };
            let matched = when.iter().any(|(c, want)| match (field(*c), want) {
                (Some(_), None) => true,
                (Some(v), Some(w)) => v == *w,
                (None, _) => false,
            });
            changed += u64::from(matched);
            out.extend_from_slice(&count);
            for (c, ((lengths, _), at)) in self.starts.iter().zip(values.iter_mut()).enumerate() {
                let mut len = [0u8; 4];
                len.copy_from_slice(&entry[*lengths + r * 4..*lengths + r * 4 + 4]);
                let n = u32::from_be_bytes(len);
                let old = (n != u32::MAX).then(|| &entry[*at..*at + n as usize]);
                match (matched, replace[c]) {
                    (true, Some(new)) => put_new(&mut out, old, new),
                    _ => {
                        out.extend_from_slice(&len);
                        if let Some(v) = old {
                            put_value(&mut out, v);
                        }
                    }
                }
                *at += old.map_or(0, <[u8]>::len);
            }
            if out.len() >= part {
                emit(&out)?;
                out.clear();
            }
        }
        out.extend_from_slice(&pgcopy::TRAILER);
        emit(&out)?;
        Ok(changed)
    }
}

/// Appends a field's value. Most are 4 or 8 bytes (integers, timestamps): copied as such they
/// are a store each, where a copy of unknown length is a call (a fifth of restore's CPU went
/// to those calls, one per field).
#[inline(always)]
fn put_value(out: &mut Vec<u8>, v: &[u8]) {
    if let Ok(v8) = <[u8; 8]>::try_from(v) {
        out.extend_from_slice(&v8);
    } else if let Ok(v4) = <[u8; 4]>::try_from(v) {
        out.extend_from_slice(&v4);
    } else {
        out.extend_from_slice(v);
    }
}

/// Writes the field that replaces `old`.
fn put_new(out: &mut Vec<u8>, old: Option<&[u8]>, new: &NewValue) {
    let mut put = |v: &[u8]| {
        out.extend_from_slice(&(v.len() as u32).to_be_bytes());
        out.extend_from_slice(v);
    };
    match (new, old) {
        (NewValue::Null, _) => out.extend_from_slice(&u32::MAX.to_be_bytes()),
        (NewValue::Bytes(v), _) => put(v),
        (NewValue::AtLeast(min), None) => put(&min.to_be_bytes()),
        (NewValue::AtLeast(min), Some(old)) => match <[u8; 8]>::try_from(old) {
            Ok(bytes) => put(&i64::from_be_bytes(bytes).max(*min).to_be_bytes()),
            Err(_) => put(old),
        },
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Bytes of the magic, row count and column count read so far.
    Prefix,
    /// Lengths of column `col` left to read, and the bytes its values take so far.
    Lengths {
        col: u16,
        left: u32,
        bytes: u64,
    },
    /// Bytes of column `col`'s values left.
    Values {
        col: u16,
        left: u64,
    },
    Done,
}

/// Checks a column-major entry fed in pieces of any size, keeping nothing but its state.
#[derive(Debug, Clone)]
pub struct Scanner {
    columns: u16,
    rows: u32,
    state: State,
    prefix: [u8; PREFIX],
    partial: [u8; 4],
    partial_len: usize,
    seen: usize,
}

impl Scanner {
    pub fn new(columns: usize) -> Result<Scanner, String> {
        Ok(Scanner {
            columns: pgcopy::column_count(columns)?,
            rows: 0,
            state: State::Prefix,
            prefix: [0; PREFIX],
            partial: [0; 4],
            partial_len: 0,
            seen: 0,
        })
    }

    /// The next column's lengths, or the end.
    fn next_column(&mut self, col: u16) {
        self.state = if col == self.columns {
            State::Done
        } else if self.rows == 0 {
            State::Values { col, left: 0 }
        } else {
            State::Lengths {
                col,
                left: self.rows,
                bytes: 0,
            }
        };
        if let State::Values { col, left: 0 } = self.state {
            self.next_column(col + 1);
        }
    }

    pub fn feed(&mut self, data: &[u8]) -> Result<(), String> {
        let mut at = 0;
        while at < data.len() {
            match self.state {
                State::Prefix => {
                    let n = (PREFIX - self.seen).min(data.len() - at);
                    self.prefix[self.seen..self.seen + n].copy_from_slice(&data[at..at + n]);
                    self.seen += n;
                    at += n;
                    if self.seen < PREFIX {
                        continue;
                    }
                    if self.prefix[..MAGIC.len()] != MAGIC {
                        return Err("it does not start as a column-major entry".into());
                    }
                    self.rows = be32(&self.prefix[MAGIC.len()..]);
                    let columns = u16::from_be_bytes([self.prefix[12], self.prefix[13]]);
                    if columns != self.columns {
                        return Err(format!(
                            "it has {columns} columns where the table has {}",
                            self.columns
                        ));
                    }
                    self.next_column(0);
                }
                State::Lengths { col, left, bytes }
                    if self.partial_len == 0 && data.len() - at >= 4 =>
                {
                    // Whole lengths in this piece: sum them in one loop.
                    let whole = ((data.len() - at) / 4).min(left as usize);
                    let mut sum = bytes;
                    for len in data[at..at + whole * 4].chunks_exact(4) {
                        let len = be32(len);
                        if len != u32::MAX {
                            if len > i32::MAX as u32 {
                                return Err(format!(
                                    "a field has the negative length {}",
                                    len as i32
                                ));
                            }
                            sum += u64::from(len);
                        }
                    }
                    at += whole * 4;
                    let left = left - whole as u32;
                    if left > 0 {
                        self.state = State::Lengths {
                            col,
                            left,
                            bytes: sum,
                        };
                    } else if sum == 0 {
                        self.next_column(col + 1);
                    } else {
                        self.state = State::Values { col, left: sum };
                    }
                }
                State::Lengths { col, left, bytes } => {
                    let n = (4 - self.partial_len).min(data.len() - at);
                    self.partial[self.partial_len..self.partial_len + n]
                        .copy_from_slice(&data[at..at + n]);
                    self.partial_len += n;
                    at += n;
                    if self.partial_len < 4 {
                        continue;
                    }
                    self.partial_len = 0;
                    let len = be32(&self.partial);
                    let bytes = match len {
                        u32::MAX => bytes,
                        l if l > i32::MAX as u32 => {
                            return Err(format!("a field has the negative length {}", l as i32))
                        }
                        l => bytes + u64::from(l),
                    };
                    if left > 1 {
                        self.state = State::Lengths {
                            col,
                            left: left - 1,
                            bytes,
                        };
                    } else if bytes == 0 {
                        self.next_column(col + 1);
                    } else {
                        self.state = State::Values { col, left: bytes };
                    }
                }
                State::Values { col, left } => {
                    let n = (left.min((data.len() - at) as u64)) as usize;
                    at += n;
                    if left > n as u64 {
                        self.state = State::Values {
                            col,
                            left: left - n as u64,
                        };
                    } else {
                        self.next_column(col + 1);
                    }
                }
                State::Done => return Err("data follows its last column".into()),
            }
        }
        Ok(())
    }

    /// The rows of a complete entry; an error if it stopped short.
    pub fn finish(&self) -> Result<u64, String> {
        match self.state {
            State::Done => Ok(u64::from(self.rows)),
            _ => Err("it ends before its last column does".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy_file(rows: &[[Option<&[u8]>; 3]]) -> Vec<u8> {
        let mut out = pgcopy::HEADER.to_vec();
        for row in rows {
            out.extend_from_slice(&3u16.to_be_bytes());
            for f in row {
                match f {
                    Some(v) => {
                        out.extend_from_slice(&(v.len() as i32).to_be_bytes());
                        out.extend_from_slice(v);
                    }
                    None => out.extend_from_slice(&(-1i32).to_be_bytes()),
                }
            }
        }
        out.extend_from_slice(&pgcopy::TRAILER);
        out
    }

    fn sample() -> Vec<u8> {
        copy_file(&[
            [Some(b"\0\0\0\x01"), None, Some(b"first")],
            [Some(b"\0\0\0\x02"), Some(b""), None],
            [Some(b"\0\0\0\x03"), Some(b"x"), Some(b"third row")],
        ])
    }

    #[test]
    fn writes_the_copy_file_in_parts_of_whole_rows() {
        let file = sample();
        let entry = from_copy(&file, 3, 3).unwrap();
        let rows = Rows::of(&entry, 3).unwrap();
        assert_eq!(rows.copy_len(), file.len());
        for part in [1, 30, 40, usize::MAX] {
            let mut parts: Vec<Vec<u8>> = Vec::new();
            rows.write(part, None, |p| {
                parts.push(p.to_vec());
                Ok::<(), ()>(())
            })
            .unwrap();
            assert_eq!(parts.concat(), file, "parts of {part}");
            if part == 1 {
                // One part per row, the last one with the trailer.
                assert_eq!(parts.len(), 4, "parts of {part}");
            }
        }
        let failed = rows.write(1, None, |_| Err("server gone"));
        assert_eq!(failed, Err("server gone"));
    }

    #[test]
    fn an_edit_changes_the_rows_it_matches_and_no_others() {
        let ts = |v: i64| v.to_be_bytes().to_vec();
        let file = copy_file(&[
            [Some(b"running"), Some(b"w1"), Some(&ts(10))],
            [Some(b"queued"), None, Some(&ts(10))],
            [Some(b"queued"), Some(b"w2"), None],
            [Some(b"runnin"), None, Some(&ts(99))],
            [Some(b"running"), None, Some(b"odd")],
        ]);
        let edit = Edit {
            when: vec![(0, Some(b"running".to_vec())), (1, None)],
            set: vec![
                (0, NewValue::Bytes(b"queued".to_vec())),
                (1, NewValue::Null),
                (2, NewValue::AtLeast(50)),
            ],
        };
        let want = copy_file(&[
            [Some(b"queued"), None, Some(&ts(50))],
            [Some(b"queued"), None, Some(&ts(10))],
            [Some(b"queued"), None, Some(&ts(50))],
            [Some(b"runnin"), None, Some(&ts(99))],
            [Some(b"queued"), None, Some(b"odd")],
        ]);
        let entry = from_copy(&file, 3, 5).unwrap();
        let rows = Rows::of(&entry, 3).unwrap();
        for part in [1, 40, usize::MAX] {
            let mut out = Vec::new();
            let changed = rows
                .write(part, Some(&edit), |p| {
                    out.extend_from_slice(p);
                    Ok::<(), ()>(())
                })
                .unwrap();
            assert_eq!(changed, 3, "parts of {part}");
            assert_eq!(out, want, "parts of {part}");
        }
        // A later value is kept; an edit naming columns the entry lacks changes nothing.
        let later = Edit {
            when: vec![(2, Some(ts(99)))],
            set: vec![(2, NewValue::AtLeast(5))],
        };
        let outside = Edit {
            when: vec![(7, None)],
            set: vec![(9, NewValue::Null)],
        };
        for (edit, changed) in [(later, 1), (outside, 0)] {
            let mut out = Vec::new();
            let n = rows
                .write(usize::MAX, Some(&edit), |p| {
                    out.extend_from_slice(p);
                    Ok::<(), ()>(())
                })
                .unwrap();
            assert_eq!((n, out == file), (changed, true));
        }
    }

    #[test]
    fn round_trips_and_checks_in_pieces_of_any_size() {
        let file = sample();
        let entry = from_copy(&file, 3, 3).unwrap();
        assert!(entry.starts_with(&MAGIC));
        assert_eq!(entry.len(), file.len() + PREFIX - 19 - 2 - 6);
        assert_eq!(to_copy(&entry, 3).unwrap(), file);
        for piece in [1, 2, 3, 5, 64] {
            let mut s = Scanner::new(3).unwrap();
            for p in entry.chunks(piece) {
                s.feed(p).unwrap();
            }
            assert_eq!(s.finish(), Ok(3), "pieces of {piece}");
        }
        let empty = copy_file(&[]);
        let entry = from_copy(&empty, 3, 0).unwrap();
        assert_eq!(to_copy(&entry, 3).unwrap(), empty);
    }

    #[test]
    fn refuses_malformed_entries() {
        let entry = from_copy(&sample(), 3, 3).unwrap();
        let mut more_rows = entry.clone();
        more_rows[11] = 4;
        let mut fewer_columns = entry.clone();
        fewer_columns[13] = 2;
        let mut negative = entry.clone();
        negative[PREFIX..PREFIX + 4].copy_from_slice(&(-5i32).to_be_bytes());
        let mut after = entry.clone();
        after.push(0);
        let short = entry[..entry.len() - 1].to_vec();
        let mut magic = entry.clone();
        magic[0] = b'X';
        for (what, e) in [
            ("more rows", more_rows),
            ("fewer columns", fewer_columns),
            ("negative", negative),
            ("after", after),
            ("short", short),
            ("magic", magic),
        ] {
            let mut s = Scanner::new(3).unwrap();
            let fed = s.feed(&e);
            assert!(fed.is_err() || s.finish().is_err(), "{what}");
            assert!(to_copy(&e, 3).is_err(), "{what}");
        }
    }

    #[test]
    fn an_entry_above_the_limit_stays_row_major() {
        let big = vec![7u8; MAX_BYTES];
        let file = copy_file(&[[Some(&big), None, None]]);
        assert_eq!(from_copy(&file, 3, 1), None);
    }
}
