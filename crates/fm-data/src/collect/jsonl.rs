//! JSON Lines sources: one JSON object per line, with a chosen text field and optional label field.

use std::io::BufRead;
use std::path::Path;

use serde_json::Value;

use super::lines::RawLines;
use super::{CollectStats, Document, ErrorPolicy};
use crate::DataError;

/// Which fields of each JSON object hold the text and the label.
///
/// A name is a top-level key; a name starting with `/` is a JSON Pointer into nested objects
/// (`/meta/text`). A label may be a string or a number (written as its JSON text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonlFields {
    /// The text field.
    pub text: String,
    /// The label field, if any; a line without it gets no label (it is not an error).
    pub label: Option<String>,
}

impl JsonlFields {
    /// Text from `text`, no label.
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            label: None,
        }
    }

    /// Also read a label from `label`.
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }
}

impl Default for JsonlFields {
    fn default() -> Self {
        Self::new("text")
    }
}

fn field<'v>(value: &'v Value, name: &str) -> Option<&'v Value> {
    if name.starts_with('/') {
        value.pointer(name)
    } else {
        value.get(name)
    }
}

/// Streams documents out of a JSON Lines file; holds one line in memory.
pub struct JsonlReader<R> {
    lines: RawLines<R>,
    fields: JsonlFields,
    policy: ErrorPolicy,
    stats: CollectStats,
    failed: bool,
}

impl JsonlReader<std::io::BufReader<std::fs::File>> {
    /// Opens `path` for streaming.
    pub fn open(path: &Path, fields: JsonlFields, policy: ErrorPolicy) -> Result<Self, DataError> {
        let f = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
        let mut reader = Self::new(std::io::BufReader::new(f), path, fields, policy);
        reader.stats.files = 1;
        Ok(reader)
    }
}

impl<R: BufRead> JsonlReader<R> {
    /// Wraps any buffered reader; `path` is recorded as provenance.
    pub fn new(
        reader: R,
        path: impl AsRef<Path>,
        fields: JsonlFields,
        policy: ErrorPolicy,
    ) -> Self {
        Self {
            lines: RawLines::new(reader, path.as_ref()),
            fields,
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

/// Why one line is not a document.
enum LineFault {
    Empty,
    Utf8,
    Json(String),
    Field(String),
}

impl<R: BufRead> Iterator for JsonlReader<R> {
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
            let parsed = parse_line(bytes, &self.fields);
            let fault = match parsed {
                Ok((text, label)) => {
                    let doc = Document::new(text, self.lines.path.clone(), line, offset)
                        .with_label(label);
                    self.stats.count_document(&doc);
                    return Some(Ok(doc));
                }
                Err(fault) => fault,
            };
            let path = self.lines.path.to_path_buf();
            let error = match fault {
                LineFault::Empty => {
                    self.stats.empty += 1;
                    continue;
                }
                LineFault::Utf8 => {
                    self.stats.invalid_utf8 += 1;
                    DataError::InvalidUtf8 { path, line }
                }
                LineFault::Json(reason) => {
                    self.stats.malformed_json += 1;
                    DataError::MalformedRecord { path, line, reason }
                }
                LineFault::Field(reason) => {
                    self.stats.missing_field += 1;
                    DataError::MalformedRecord { path, line, reason }
                }
            };
            if self.policy == ErrorPolicy::Stop {
                self.failed = true;
                return Some(Err(error));
            }
        }
    }
}

fn parse_line(bytes: &[u8], fields: &JsonlFields) -> Result<(String, Option<String>), LineFault> {
    let text = std::str::from_utf8(bytes).map_err(|_| LineFault::Utf8)?;
    if text.trim().is_empty() {
        return Err(LineFault::Empty);
    }
    let value: Value =
        serde_json::from_str(text).map_err(|e| LineFault::Json(format!("malformed JSON: {e}")))?;
    if !value.is_object() {
        return Err(LineFault::Json("a JSON line must be an object".into()));
    }
    let body = match field(&value, &fields.text) {
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            return Err(LineFault::Field(format!(
                "field {:?} is not a string",
                fields.text
            )))
        }
        None => return Err(LineFault::Field(format!("no field {:?}", fields.text))),
    };
    let label = match fields.label.as_deref().and_then(|name| field(&value, name)) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    };
    Ok((body, label))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INPUT: &str = concat!(
        "{\"text\": \"one\", \"y\": \"pos\"}\n",
        "{\"text\": \"two\", \"y\": 3}\n",
        "{\"text\": broken\n",
        "\n",
        "[1, 2]\n",
        "{\"body\": \"no text field\"}\n",
        "{\"text\": 5}\n",
        "{\"meta\": {\"t\": \"nested\"}, \"text\": \"four\"}\n",
    );

    #[test]
    fn skip_counts_each_fault_and_keeps_labels() {
        let fields = JsonlFields::new("text").with_label("y");
        let mut r = JsonlReader::new(INPUT.as_bytes(), "d.jsonl", fields, ErrorPolicy::Skip);
        let docs: Vec<Document> = r.by_ref().map(Result::unwrap).collect();
        let texts: Vec<&str> = docs.iter().map(|d| d.text.as_str()).collect();
        assert_eq!(texts, ["one", "two", "four"]);
        assert_eq!(docs[0].label.as_deref(), Some("pos"));
        assert_eq!(docs[1].label.as_deref(), Some("3"));
        assert_eq!(docs[2].label, None);
        assert_eq!(docs[2].line, 8);
        let s = r.stats();
        assert_eq!(
            (s.malformed_json, s.missing_field, s.empty, s.documents),
            (2, 2, 1, 3)
        );
    }

    #[test]
    fn nested_pointer_field() {
        let r = JsonlReader::new(
            INPUT.as_bytes(),
            "d.jsonl",
            JsonlFields::new("/meta/t"),
            ErrorPolicy::Skip,
        );
        let texts: Vec<String> = r.map(|d| d.unwrap().text).collect();
        assert_eq!(texts, ["nested"]);
    }

    #[test]
    fn stop_names_file_and_line() {
        let r = JsonlReader::new(
            INPUT.as_bytes(),
            "d.jsonl",
            JsonlFields::default(),
            ErrorPolicy::Stop,
        );
        let err = r.filter_map(Result::err).next().unwrap();
        let msg = err.to_string();
        assert!(msg.starts_with("d.jsonl:3: malformed JSON"), "{msg}");
    }

    #[test]
    fn invalid_utf8_line_is_counted() {
        let input: &[u8] = b"{\"text\": \"a\"}\n{\"text\": \"\xff\"}\n";
        let mut r = JsonlReader::new(input, "u.jsonl", JsonlFields::default(), ErrorPolicy::Skip);
        assert_eq!(r.by_ref().count(), 1);
        assert_eq!(r.stats().invalid_utf8, 1);
    }
}
