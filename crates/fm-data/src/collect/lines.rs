//! Line-oriented sources: one document per non-empty line, and the raw line scanner that the
//! JSON Lines reader shares.

use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;

use super::{CollectStats, Document, ErrorPolicy};
use crate::DataError;

/// One raw line: its bytes without the line end, its 1-based number and its start offset.
pub(crate) type RawLine<'a> = (&'a [u8], usize, u64);

/// Reads a stream line by line, keeping the 1-based line number and the byte offset of each
/// line's start; holds one line in memory.
pub(crate) struct RawLines<R> {
    reader: R,
    pub(crate) path: Arc<Path>,
    next_line: usize,
    next_offset: u64,
    buf: Vec<u8>,
}

impl<R: BufRead> RawLines<R> {
    pub(crate) fn new(reader: R, path: &Path) -> Self {
        Self {
            reader,
            path: Arc::from(path),
            next_line: 1,
            next_offset: 0,
            buf: Vec::new(),
        }
    }

    /// The next line without its `\n` / `\r\n`, with its line number and offset; `None` at the end.
    pub(crate) fn next_line(&mut self) -> Option<Result<RawLine<'_>, DataError>> {
        self.buf.clear();
        match self.reader.read_until(b'\n', &mut self.buf) {
            Ok(0) => None,
            Ok(n) => {
                let (line, offset) = (self.next_line, self.next_offset);
                self.next_line += 1;
                self.next_offset += n as u64;
                let mut end = self.buf.len();
                while end > 0 && (self.buf[end - 1] == b'\n' || self.buf[end - 1] == b'\r') {
                    end -= 1;
                }
                Some(Ok((&self.buf[..end], line, offset)))
            }
            Err(e) => Some(Err(DataError::io(self.path.to_path_buf(), e))),
        }
    }
}

/// Streams one document per non-empty line of a text file.
pub struct LineReader<R> {
    lines: RawLines<R>,
    policy: ErrorPolicy,
    stats: CollectStats,
    failed: bool,
}

impl LineReader<std::io::BufReader<std::fs::File>> {
    /// Opens `path` for streaming.
    pub fn open(path: &Path, policy: ErrorPolicy) -> Result<Self, DataError> {
        let f = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
        let mut reader = Self::new(std::io::BufReader::new(f), path, policy);
        reader.stats.files = 1;
        Ok(reader)
    }
}

impl<R: BufRead> LineReader<R> {
    /// Wraps any buffered reader; `path` is recorded as provenance.
    pub fn new(reader: R, path: impl AsRef<Path>, policy: ErrorPolicy) -> Self {
        Self {
            lines: RawLines::new(reader, path.as_ref()),
            policy,
            stats: CollectStats::default(),
            failed: false,
        }
    }

    /// What was read and skipped so far.
    pub fn stats(&self) -> &CollectStats {
        &self.stats
    }
}

impl<R: BufRead> Iterator for LineReader<R> {
    type Item = Result<Document, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            let (bytes, line, offset) = match self.lines.next_line()? {
                Ok(l) => l,
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            };
            match std::str::from_utf8(bytes) {
                Ok(text) if text.trim().is_empty() => self.stats.empty += 1,
                Ok(text) => {
                    let doc =
                        Document::new(text.to_string(), self.lines.path.clone(), line, offset);
                    self.stats.count_document(&doc);
                    return Some(Ok(doc));
                }
                Err(_) => {
                    self.stats.invalid_utf8 += 1;
                    if self.policy == ErrorPolicy::Stop {
                        self.failed = true;
                        return Some(Err(DataError::InvalidUtf8 {
                            path: self.lines.path.to_path_buf(),
                            line,
                        }));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedup::fnv1a64;

    const INPUT: &[u8] = b"first\n\xff\xfe bad\n\nthird\r\n";

    #[test]
    fn skip_counts_bad_lines_and_keeps_provenance() {
        let mut r = LineReader::new(INPUT, "t.txt", ErrorPolicy::Skip);
        let docs: Vec<Document> = r.by_ref().map(|d| d.unwrap()).collect();
        assert_eq!(docs.len(), 2);
        assert_eq!((docs[1].text.as_str(), docs[1].line), ("third", 4));
        assert_eq!(docs[1].byte_offset, 14);
        assert_eq!(&*docs[1].path, Path::new("t.txt"));
        assert_eq!(docs[0].hash, fnv1a64(b"first"));
        let s = r.stats();
        assert_eq!((s.invalid_utf8, s.empty, s.documents), (1, 1, 2));
    }

    #[test]
    fn stop_names_file_and_line_then_ends() {
        let mut r = LineReader::new(INPUT, "t.txt", ErrorPolicy::Stop);
        assert_eq!(r.next().unwrap().unwrap().text, "first");
        let err = r.next().unwrap().unwrap_err();
        assert_eq!(err.to_string(), "t.txt:2: invalid UTF-8");
        assert!(r.next().is_none());
    }
}
