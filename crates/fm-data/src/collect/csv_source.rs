//! CSV sources: chosen columns of each row joined into a document, an optional label column.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use super::{CollectStats, Document, ErrorPolicy};
use crate::DataError;

/// A column, by header name or 0-based index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CsvColumn {
    /// The column whose header is this name (the file must have a header row).
    Name(String),
    /// The column at this 0-based index.
    Index(usize),
}

/// Which columns make the text (joined with a newline, in this order) and which holds the label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvColumns {
    /// Text columns.
    pub text: Vec<CsvColumn>,
    /// Label column, if any.
    pub label: Option<CsvColumn>,
    /// Whether the first row is a header (required to choose columns by name).
    pub has_header: bool,
}

impl CsvColumns {
    /// Text from the named columns of a file with a header row.
    pub fn named<S: Into<String>>(text: impl IntoIterator<Item = S>) -> Self {
        Self {
            text: text
                .into_iter()
                .map(|s| CsvColumn::Name(s.into()))
                .collect(),
            label: None,
            has_header: true,
        }
    }

    /// Also read a label from `label`.
    pub fn with_label(mut self, label: CsvColumn) -> Self {
        self.label = Some(label);
        self
    }
}

impl Default for CsvColumns {
    fn default() -> Self {
        Self::named(["text"])
    }
}

/// Streams documents out of a CSV file; holds one row in memory.
///
/// Every row must have as many fields as the header (or, without a header, as the first row); a
/// row that does not, or that is not valid UTF-8, follows the [`ErrorPolicy`].
pub struct CsvReader<R> {
    reader: csv::Reader<R>,
    path: Arc<Path>,
    text_idx: Vec<usize>,
    label_idx: Option<usize>,
    width: Option<usize>,
    policy: ErrorPolicy,
    stats: CollectStats,
    record: csv::ByteRecord,
    failed: bool,
}

impl CsvReader<std::fs::File> {
    /// Opens `path` for streaming.
    pub fn open(path: &Path, columns: &CsvColumns, policy: ErrorPolicy) -> Result<Self, DataError> {
        let f = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
        let mut reader = Self::new(f, path, columns, policy)?;
        reader.stats.files = 1;
        Ok(reader)
    }
}

impl<R: Read> CsvReader<R> {
    /// Wraps any reader; reads the header (if any) and resolves the column names.
    pub fn new(
        reader: R,
        path: impl AsRef<Path>,
        columns: &CsvColumns,
        policy: ErrorPolicy,
    ) -> Result<Self, DataError> {
        let path: Arc<Path> = Arc::from(path.as_ref());
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(columns.has_header)
            .flexible(true)
            .from_reader(reader);
        let header: Vec<String> = if columns.has_header {
            let h = reader.byte_headers().map_err(|e| csv_error(&path, &e))?;
            h.iter()
                .map(|f| String::from_utf8_lossy(f).into_owned())
                .collect()
        } else {
            Vec::new()
        };
        let resolve =
            |c: &CsvColumn| -> Result<usize, DataError> {
                match c {
                    CsvColumn::Index(i) => Ok(*i),
                    CsvColumn::Name(n) => header.iter().position(|h| h == n).ok_or_else(|| {
                        DataError::MalformedRecord {
                            path: path.to_path_buf(),
                            line: 1,
                            reason: format!("no column {n:?} in header {header:?}"),
                        }
                    }),
                }
            };
        if columns.text.is_empty() {
            return Err(DataError::config("CsvColumns", "no text column chosen"));
        }
        let text_idx = columns.text.iter().map(resolve).collect::<Result<_, _>>()?;
        let label_idx = columns.label.as_ref().map(resolve).transpose()?;
        let width = columns.has_header.then_some(header.len());
        Ok(Self {
            reader,
            path,
            text_idx,
            label_idx,
            width,
            policy,
            stats: CollectStats::default(),
            record: csv::ByteRecord::new(),
            failed: false,
        })
    }

    /// What was read and skipped so far.
    pub fn stats(&self) -> &CollectStats {
        &self.stats
    }
}

fn csv_error(path: &Path, e: &csv::Error) -> DataError {
    match e.kind() {
        csv::ErrorKind::Io(_) => DataError::io(path, std::io::Error::other(e.to_string())),
        _ => DataError::MalformedRecord {
            path: path.to_path_buf(),
            line: e.position().map_or(0, |p| p.line() as usize),
            reason: e.to_string(),
        },
    }
}

impl<R: Read> Iterator for CsvReader<R> {
    type Item = Result<Document, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            match self.reader.read_byte_record(&mut self.record) {
                Ok(false) => return None,
                Ok(true) => {}
                Err(e) => {
                    self.failed = true;
                    return Some(Err(csv_error(&self.path, &e)));
                }
            }
            let (line, offset) = self
                .record
                .position()
                .map_or((0, 0), |p| (p.line() as usize, p.byte()));
            let width = *self.width.get_or_insert(self.record.len());
            let error = if self.record.len() != width {
                self.stats.wrong_column_count += 1;
                DataError::MalformedRecord {
                    path: self.path.to_path_buf(),
                    line,
                    reason: format!("row has {} columns, expected {width}", self.record.len()),
                }
            } else {
                let field = |i: usize| std::str::from_utf8(self.record.get(i).unwrap_or(b""));
                let parts: Result<Vec<&str>, _> = self.text_idx.iter().map(|&i| field(i)).collect();
                let label = self.label_idx.map(field).transpose();
                match (parts, label) {
                    (Ok(parts), Ok(label)) => {
                        let text = parts.join("\n");
                        if text.trim().is_empty() {
                            self.stats.empty += 1;
                            continue;
                        }
                        let doc = Document::new(text, self.path.clone(), line, offset)
                            .with_label(label.map(str::to_string));
                        self.stats.count_document(&doc);
                        return Some(Ok(doc));
                    }
                    _ => {
                        self.stats.invalid_utf8 += 1;
                        DataError::InvalidUtf8 {
                            path: self.path.to_path_buf(),
                            line,
                        }
                    }
                }
            };
            if self.policy == ErrorPolicy::Stop {
                self.failed = true;
                return Some(Err(error));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INPUT: &str = "id,title,body,y\n1,A,\"first, quoted\",x\n2,B\n3,C,third,z\n";

    #[test]
    fn columns_by_name_and_short_row_skipped() {
        let cols = CsvColumns::named(["title", "body"]).with_label(CsvColumn::Name("y".into()));
        let mut r = CsvReader::new(INPUT.as_bytes(), "t.csv", &cols, ErrorPolicy::Skip).unwrap();
        let docs: Vec<Document> = r.by_ref().map(Result::unwrap).collect();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].text, "A\nfirst, quoted");
        assert_eq!(docs[0].label.as_deref(), Some("x"));
        assert_eq!((docs[1].line, docs[1].text.as_str()), (4, "C\nthird"));
        assert_eq!(r.stats().wrong_column_count, 1);
    }

    #[test]
    fn stop_names_file_and_line() {
        let cols = CsvColumns::named(["body"]);
        let r = CsvReader::new(INPUT.as_bytes(), "t.csv", &cols, ErrorPolicy::Stop).unwrap();
        let err = r.filter_map(Result::err).next().unwrap();
        assert_eq!(err.to_string(), "t.csv:3: row has 2 columns, expected 4");
    }

    #[test]
    fn unknown_column_is_an_error() {
        let cols = CsvColumns::named(["nope"]);
        let err = CsvReader::new(INPUT.as_bytes(), "t.csv", &cols, ErrorPolicy::Stop)
            .err()
            .unwrap();
        assert!(err.to_string().contains("no column \"nope\""), "{err}");
    }

    #[test]
    fn by_index_without_header() {
        let cols = CsvColumns {
            text: vec![CsvColumn::Index(1)],
            label: None,
            has_header: false,
        };
        let r = CsvReader::new("a,b\nc,d\n".as_bytes(), "h.csv", &cols, ErrorPolicy::Stop).unwrap();
        let texts: Vec<String> = r.map(|d| d.unwrap().text).collect();
        assert_eq!(texts, ["b", "d"]);
    }
}
