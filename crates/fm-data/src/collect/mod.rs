//! Collection: streaming documents out of files with provenance and a caller-chosen error policy.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use crate::dedup::fnv1a64;
use crate::DataError;

/// What to do with a bad record (e.g. a line that is not valid UTF-8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorPolicy {
    /// Skip the record and count it in [`LineReader::skipped`].
    Skip,
    /// Stop with an error naming file and line.
    Stop,
}

/// A document and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// The text.
    pub text: String,
    /// Source file.
    pub path: PathBuf,
    /// 1-based line number in the source.
    pub line: usize,
    /// FNV-1a 64 hash of the text bytes.
    pub hash: u64,
}

/// Streams one document per non-empty line of a file; memory holds one line at a time.
pub struct LineReader<R> {
    reader: R,
    path: PathBuf,
    line: usize,
    policy: ErrorPolicy,
    /// Records skipped under [`ErrorPolicy::Skip`].
    pub skipped: usize,
}

impl LineReader<std::io::BufReader<std::fs::File>> {
    /// Opens `path` for streaming.
    pub fn open(path: &Path, policy: ErrorPolicy) -> Result<Self, DataError> {
        let f = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
        Ok(Self::new(std::io::BufReader::new(f), path, policy))
    }
}

impl<R: BufRead> LineReader<R> {
    /// Wraps any buffered reader; `path` is recorded as provenance.
    pub fn new(reader: R, path: &Path, policy: ErrorPolicy) -> Self {
        Self {
            reader,
            path: path.to_path_buf(),
            line: 0,
            policy,
            skipped: 0,
        }
    }
}

impl<R: BufRead> Iterator for LineReader<R> {
    type Item = Result<Document, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match self.reader.read_until(b'\n', &mut buf) {
                Ok(0) => return None,
                Ok(_) => self.line += 1,
                Err(e) => return Some(Err(DataError::io(&self.path, e))),
            }
            while buf.last().is_some_and(|&b| b == b'\n' || b == b'\r') {
                buf.pop();
            }
            match String::from_utf8(std::mem::take(&mut buf)) {
                Ok(text) if text.trim().is_empty() => continue,
                Ok(text) => {
                    let hash = fnv1a64(text.as_bytes());
                    return Some(Ok(Document {
                        text,
                        path: self.path.clone(),
                        line: self.line,
                        hash,
                    }));
                }
                Err(_) if self.policy == ErrorPolicy::Skip => self.skipped += 1,
                Err(_) => {
                    return Some(Err(DataError::InvalidUtf8 {
                        path: self.path.clone(),
                        line: self.line,
                    }))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INPUT: &[u8] = b"first\n\xff\xfe bad\n\nthird\r\n";

    #[test]
    fn skip_counts_bad_lines() {
        let mut r = LineReader::new(INPUT, Path::new("t.txt"), ErrorPolicy::Skip);
        let docs: Vec<Document> = r.by_ref().map(|d| d.unwrap()).collect();
        assert_eq!(docs.len(), 2);
        assert_eq!((docs[1].text.as_str(), docs[1].line), ("third", 4));
        assert_eq!(docs[0].hash, fnv1a64(b"first"));
        assert_eq!(r.skipped, 1);
    }

    #[test]
    fn stop_names_file_and_line() {
        let r = LineReader::new(INPUT, Path::new("t.txt"), ErrorPolicy::Stop);
        let err = r
            .map(|d| d.map(|_| ()))
            .find(|d| d.is_err())
            .unwrap()
            .unwrap_err();
        assert_eq!(err.to_string(), "t.txt:2: invalid UTF-8");
    }
}
