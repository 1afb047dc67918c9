//! Collection: documents streamed out of files and directories, each with its provenance.
//!
//! Sources are read lazily: a [`LineReader`] or [`JsonlReader`] holds one line, a [`CsvReader`] one
//! row, and a directory walk ([`DirectorySource`]) one file (or, with
//! [`DirectorySource::batches`], one batch of files converted in parallel). Memory is bounded by
//! what is in flight, not by the corpus.
//!
//! Every [`Document`] carries its source path, its 1-based line and byte offset in that source,
//! and a hash of its text. A record that cannot be read (invalid UTF-8, a malformed JSON line, a
//! CSV row with the wrong number of columns) follows the caller's [`ErrorPolicy`]: skipped and
//! counted in [`CollectStats`], or an error naming the file and line. Nothing is dropped silently:
//! every record read is either a document or a count.
//!
//! ```
//! use fm_data::collect::{ErrorPolicy, JsonlFields, JsonlReader};
//!
//! let input = "{\"text\": \"hello\", \"label\": \"greeting\"}\nnot json\n";
//! let fields = JsonlFields::new("text").with_label("label");
//! let mut reader = JsonlReader::new(input.as_bytes(), "mem.jsonl", fields, ErrorPolicy::Skip);
//! let docs: Vec<_> = reader.by_ref().collect::<Result<_, _>>()?;
//! assert_eq!(docs[0].text, "hello");
//! assert_eq!(docs[0].label.as_deref(), Some("greeting"));
//! assert_eq!(reader.stats().malformed_json, 1);
//! # Ok::<(), fm_data::DataError>(())
//! ```

mod csv_source;
mod directory;
mod jsonl;
mod lines;
mod whole_file;

use std::path::Path;
use std::sync::Arc;

pub use csv_source::{CsvColumn, CsvColumns, CsvReader};
pub use directory::{
    DirectoryBatches, DirectoryDocuments, DirectorySource, FileFormat, FormatOptions,
};
pub use jsonl::{JsonlFields, JsonlReader};
pub use lines::LineReader;
pub use whole_file::{read_file_document, read_utf8_file};

use crate::dedup::fnv1a64;

/// What to do with a bad record (invalid UTF-8, a malformed JSON line, a short CSV row).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ErrorPolicy {
    /// Skip the record and count it in [`CollectStats`].
    Skip,
    /// Stop with an error naming file and line.
    Stop,
}

/// A document and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// The text.
    pub text: String,
    /// Source file (shared by all documents of one file).
    pub path: Arc<Path>,
    /// 1-based line where the document starts in its source.
    pub line: usize,
    /// Byte offset where the document's record starts in its source.
    pub byte_offset: u64,
    /// FNV-1a 64 hash of the text bytes as collected (before cleaning).
    pub hash: u64,
    /// The label, for sources that have one (a JSONL label field, a CSV label column).
    pub label: Option<String>,
}

impl Document {
    /// A document with its provenance; the hash is computed from `text`.
    pub fn new(text: String, path: Arc<Path>, line: usize, byte_offset: u64) -> Self {
        let hash = fnv1a64(text.as_bytes());
        Self {
            text,
            path,
            line,
            byte_offset,
            hash,
            label: None,
        }
    }

    /// The same document with a label.
    pub fn with_label(mut self, label: Option<String>) -> Self {
        self.label = label;
        self
    }
}

/// Counts of what a reader read and what it skipped, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CollectStats {
    /// Files opened.
    pub files: usize,
    /// Documents produced.
    pub documents: usize,
    /// Bytes of text in the documents produced.
    pub text_bytes: u64,
    /// Records (lines, rows or files) empty after reading, skipped without being an error.
    pub empty: usize,
    /// Records skipped because they are not valid UTF-8.
    pub invalid_utf8: usize,
    /// JSON lines skipped because they do not parse or are not objects.
    pub malformed_json: usize,
    /// Records skipped because the text field or column is missing or not a string.
    pub missing_field: usize,
    /// CSV rows skipped because they have the wrong number of columns.
    pub wrong_column_count: usize,
}

impl CollectStats {
    /// Adds another reader's counts to these.
    pub fn merge(&mut self, other: &CollectStats) {
        self.files += other.files;
        self.documents += other.documents;
        self.text_bytes += other.text_bytes;
        self.empty += other.empty;
        self.invalid_utf8 += other.invalid_utf8;
        self.malformed_json += other.malformed_json;
        self.missing_field += other.missing_field;
        self.wrong_column_count += other.wrong_column_count;
    }

    /// Records skipped for any reason other than being empty.
    pub fn skipped(&self) -> usize {
        self.invalid_utf8 + self.malformed_json + self.missing_field + self.wrong_column_count
    }

    pub(crate) fn count_document(&mut self, doc: &Document) {
        self.documents += 1;
        self.text_bytes += doc.text.len() as u64;
    }
}
