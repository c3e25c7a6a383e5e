//! PostgreSQL's binary COPY format, as far as the archive needs it: where rows end (to cut a
//! table's stream into entries), how many there are, and whether an entry is well formed
//! (header, rows of the table's column count, trailer, nothing after it) before any of it
//! reaches a server. What a field holds is checked by the server's receive functions.
//!
//! Every entry of a binary table is a complete binary COPY file: the header jobdbctl writes
//! (no OIDs, no header extension), rows, the trailer.

/// The header of every binary entry: signature, flags 0 (no OIDs), header extension length 0.
pub const HEADER: [u8; 19] = *b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// A field count of -1 ends the data.
pub const TRAILER: [u8; 2] = [0xff, 0xff];

/// A table's column count as binary COPY carries it; PostgreSQL allows at most 1664.
pub fn column_count(columns: usize) -> Result<u16, String> {
    u16::try_from(columns)
        .ok()
        .filter(|c| *c <= 1664)
        .ok_or_else(|| format!("a table of {columns} columns is not possible"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Bytes of the header matched so far.
    Header(usize),
    /// Before a row's field count.
    Row,
    /// Before a field's length; fields left in the row, this one included.
    Length(u16),
    /// Inside a field's bytes: bytes left, fields left after this one.
    Field(u32, u16),
    /// After the trailer.
    Ended,
}

/// Walks a binary COPY stream fed in pieces of any size.
#[derive(Debug, Clone)]
pub struct Scanner {
    columns: u16,
    state: State,
    /// A field count or length split across pieces.
    partial: [u8; 4],
    partial_len: usize,
    /// Bytes fed so far.
    offset: u64,
    rows: u64,
    /// Offset just past the last complete row (or the header).
    boundary: u64,
}

impl Scanner {
    pub fn new(columns: usize) -> Result<Scanner, String> {
        Ok(Scanner {
            columns: column_count(columns)?,
            state: State::Header(0),
            partial: [0; 4],
            partial_len: 0,
            offset: 0,
            rows: 0,
            boundary: 0,
        })
    }

    /// Complete rows seen.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Bytes from the start of the stream to the end of the last complete row (or of the
    /// header, before the first row).
    pub fn boundary(&self) -> u64 {
        self.boundary
    }

    /// The length of the row `data` starts with, if all of it is there.
    fn whole_row(&self, data: &[u8]) -> Result<Option<usize>, String> {
        let Some(count) = data.get(..2) else {
            return Ok(None);
        };
        let count = u16::from_be_bytes([count[0], count[1]]);
        if count == 0xffff {
            return Ok(None);
        }
        if count != self.columns {
            return Err(format!(
                "a row has {count} fields where the table has {}",
                self.columns
            ));
        }
        let mut at = 2;
        for _ in 0..count {
            let Some(len) = data.get(at..at + 4) else {
                return Ok(None);
            };
            let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]);
            at += 4;
            if len == u32::MAX {
                continue;
            }
            if len > i32::MAX as u32 {
                return Err(format!("a field has the negative length {}", len as i32));
            }
            at += len as usize;
            if at > data.len() {
                return Ok(None);
            }
        }
        Ok(Some(at))
    }

    /// Reads `want` bytes of a big-endian integer from `data` at `*at`, across calls.
    fn take(&mut self, data: &[u8], at: &mut usize, want: usize) -> Option<u32> {
        let n = (want - self.partial_len).min(data.len() - *at);
        self.partial[self.partial_len..self.partial_len + n].copy_from_slice(&data[*at..*at + n]);
        self.partial_len += n;
        *at += n;
        if self.partial_len < want {
            return None;
        }
        self.partial_len = 0;
        Some(
            self.partial[..want]
                .iter()
                .fold(0u32, |v, b| (v << 8) | u32::from(*b)),
        )
    }

    fn row_done(&mut self, at: usize) {
        self.rows += 1;
        self.state = State::Row;
        self.boundary = self.offset + at as u64;
    }

    pub fn feed(&mut self, data: &[u8]) -> Result<(), String> {
        let mut at = 0;
        while at < data.len() {
            // Most rows lie whole inside one piece: walk them without the state machine.
            if self.state == State::Row && self.partial_len == 0 {
                if let Some(n) = self.whole_row(&data[at..])? {
                    at += n;
                    self.row_done(at);
                    continue;
                }
            }
            match self.state {
                State::Header(seen) => {
                    let n = (HEADER.len() - seen).min(data.len() - at);
                    if data[at..at + n] != HEADER[seen..seen + n] {
                        return Err("its binary COPY header is not the one jobdbctl writes".into());
                    }
                    at += n;
                    if seen + n == HEADER.len() {
                        self.state = State::Row;
                        self.boundary = self.offset + at as u64;
                    } else {
                        self.state = State::Header(seen + n);
                    }
                }
                State::Row => {
                    let Some(count) = self.take(data, &mut at, 2) else {
                        break;
                    };
                    if count == 0xffff {
                        self.state = State::Ended;
                    } else if count != u32::from(self.columns) {
                        return Err(format!(
                            "a row has {count} fields where the table has {}",
                            self.columns
                        ));
                    } else if count == 0 {
                        self.row_done(at);
                    } else {
                        self.state = State::Length(self.columns);
                    }
                }
                State::Length(left) => {
                    let Some(len) = self.take(data, &mut at, 4) else {
                        break;
                    };
                    if len > i32::MAX as u32 && len != u32::MAX {
                        return Err(format!("a field has the negative length {}", len as i32));
                    }
                    // -1 is NULL; NULL and empty fields have no bytes.
                    if len == u32::MAX || len == 0 {
                        if left == 1 {
                            self.row_done(at);
                        } else {
                            self.state = State::Length(left - 1);
                        }
                    } else {
                        self.state = State::Field(len, left - 1);
                    }
                }
                State::Field(bytes, left) => {
                    let n = (bytes as usize).min(data.len() - at);
                    at += n;
                    let rest = bytes - n as u32;
                    if rest > 0 {
                        self.state = State::Field(rest, left);
                    } else if left == 0 {
                        self.row_done(at);
                    } else {
                        self.state = State::Length(left);
                    }
                }
                State::Ended => return Err("data follows the binary COPY trailer".into()),
            }
        }
        self.offset += data.len() as u64;
        Ok(())
    }

    /// The rows of a complete stream; an error if it stopped before its trailer.
    pub fn finish(&self) -> Result<u64, String> {
        match self.state {
            State::Ended => Ok(self.rows),
            State::Header(_) => Err("it ends inside its binary COPY header".into()),
            _ => Err("it ends before its binary COPY trailer".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream of rows of two fields: an int4 and a text that may be NULL.
    fn stream(rows: &[(i32, Option<&str>)]) -> Vec<u8> {
        let mut out = HEADER.to_vec();
        for (n, s) in rows {
            out.extend_from_slice(&2u16.to_be_bytes());
            out.extend_from_slice(&4i32.to_be_bytes());
            out.extend_from_slice(&n.to_be_bytes());
            match s {
                Some(s) => {
                    out.extend_from_slice(&(s.len() as i32).to_be_bytes());
                    out.extend_from_slice(s.as_bytes());
                }
                None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
        out.extend_from_slice(&TRAILER);
        out
    }

    #[test]
    fn counts_rows_fed_in_pieces_of_any_size() {
        let data = stream(&[
            (1, Some("a")),
            (2, None),
            (3, Some("")),
            (4, Some("long text")),
        ]);
        for piece in [1, 2, 3, 5, 7, 64] {
            let mut s = Scanner::new(2).unwrap();
            let mut boundaries = vec![];
            for p in data.chunks(piece) {
                s.feed(p).unwrap();
                boundaries.push(s.boundary());
            }
            assert_eq!(s.finish(), Ok(4), "pieces of {piece}");
            assert_eq!(s.boundary(), data.len() as u64 - 2);
            assert!(boundaries.windows(2).all(|w| w[0] <= w[1]));
        }
    }

    #[test]
    fn boundaries_fall_on_row_ends() {
        let data = stream(&[(1, Some("abc")), (2, Some("de"))]);
        let mut s = Scanner::new(2).unwrap();
        s.feed(&data[..HEADER.len() + 2 + 4 + 4 + 4 + 2]).unwrap();
        assert_eq!(s.boundary(), HEADER.len() as u64);
        s.feed(&data[HEADER.len() + 16..HEADER.len() + 17]).unwrap();
        assert_eq!(s.boundary(), (HEADER.len() + 17) as u64);
        assert_eq!(s.rows(), 1);
    }

    #[test]
    fn refuses_what_jobdbctl_never_writes() {
        let good = stream(&[(1, Some("a"))]);
        let mut bad_header = good.clone();
        bad_header[11] = 1; // the OIDs flag
        let mut wrong_count = good.clone();
        wrong_count[HEADER.len() + 1] = 3;
        let mut negative = good.clone();
        negative[HEADER.len() + 2..HEADER.len() + 6].copy_from_slice(&(-2i32).to_be_bytes());
        let mut after = good.clone();
        after.push(0);
        for (what, data) in [
            ("header", bad_header),
            ("count", wrong_count),
            ("negative", negative),
            ("after", after),
        ] {
            let mut s = Scanner::new(2).unwrap();
            assert!(s.feed(&data).is_err(), "{what}");
        }
        let mut s = Scanner::new(2).unwrap();
        s.feed(&good[..good.len() - 1]).unwrap();
        assert!(s.finish().is_err());
        let mut s = Scanner::new(2).unwrap();
        s.feed(&good[..5]).unwrap();
        assert!(s.finish().is_err());
    }
}
