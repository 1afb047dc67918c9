//! The one error type of fm-data.
//!
//! Every public function that can be handed bad input returns [`Result`]. Variants carry what a user
//! needs to act: the file, and the line and column for a malformed JSON file; the id and the
//! vocabulary size for an unknown token id; the setting and why it was refused for a bad
//! configuration. Panics are reserved for broken internal invariants.

use std::path::PathBuf;

/// Result alias used throughout fm-data.
pub type Result<T, E = DataError> = std::result::Result<T, E>;

/// What went wrong while reading, writing, training or applying a tokenizer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// An I/O failure, with the file it happened on.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file being read or written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON file that does not parse, or does not have the expected structure.
    #[error("{}:{line}:{column}: {message}", .path.display())]
    Json {
        /// The file (or `<memory>` for a string).
        path: PathBuf,
        /// 1-based line of the error, as serde_json reports it (0 when it has none).
        line: usize,
        /// 1-based column of the error (0 when it has none).
        column: usize,
        /// What serde_json found wrong.
        message: String,
    },
    /// A well-formed tokenizer file whose content is inconsistent (a merge of tokens that are not in
    /// the vocabulary, two tokens with one id, ...).
    #[error("{}: invalid tokenizer: {reason}", .path.display())]
    InvalidTokenizer {
        /// The file (or `<memory>`).
        path: PathBuf,
        /// What is inconsistent.
        reason: String,
    },
    /// A tokenizer file that uses a feature this crate does not implement (a normalizer, a
    /// template post-processor, a non-byte-level model, ...), so encoding it here would not give
    /// the ids its authors' tools give.
    #[error("{}: unsupported tokenizer: {feature}", .path.display())]
    UnsupportedTokenizer {
        /// The file (or `<memory>`).
        path: PathBuf,
        /// The feature and its value.
        feature: String,
    },
    /// A token id that is not in the vocabulary.
    #[error("unknown token id {id} (vocabulary has ids 0..{vocab_size})")]
    UnknownTokenId {
        /// The id given.
        id: u32,
        /// One past the largest id of the vocabulary.
        vocab_size: usize,
    },
    /// A character that a character-level tokenizer without an unknown token cannot encode.
    #[error("character {ch:?} (U+{:04X}) at byte {position} is not in the vocabulary", *.ch as u32)]
    UnknownCharacter {
        /// The character.
        ch: char,
        /// Its byte offset in the text.
        position: usize,
    },
    /// A file that is not a valid token shard (wrong magic, a header that disagrees with the file's
    /// length, ...).
    #[error("{}: invalid token shard: {reason}", .path.display())]
    InvalidTokenShard {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A range of positions that does not fit in what it indexes.
    #[error("{what}: range {start}..{start}+{len} is out of bounds for length {size}")]
    OutOfRange {
        /// What was indexed.
        what: &'static str,
        /// First position asked for.
        start: usize,
        /// Number of positions asked for.
        len: usize,
        /// Number of positions there are.
        size: usize,
    },
    /// Items that cannot go into one batch or array together (windows of different lengths, a
    /// matrix with the wrong number of columns, ...); names both shapes.
    #[error("{what}: expected {expected}, found {found}")]
    ShapeMismatch {
        /// What was being built.
        what: &'static str,
        /// The shape or length expected.
        expected: String,
        /// The shape or length found.
        found: String,
    },
    /// A malformed CSV record (wrong column count, a value that is not a number, an unclosed
    /// quote) when the caller chose to stop on it.
    #[error("{}:{line}: {reason}", .path.display())]
    Csv {
        /// The CSV file.
        path: PathBuf,
        /// 1-based line where the record starts.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A configuration value outside its domain (a vocabulary too small for its alphabet, an empty
    /// special token, ...).
    #[error("{what}: {reason}")]
    InvalidConfig {
        /// The setting or the builder that refused it.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// A line of a text source that is not valid UTF-8 (when the caller chose to stop on it).
    #[error("{}:{line}: invalid UTF-8", .path.display())]
    InvalidUtf8 {
        /// The source file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
    },
    /// A record of a source that cannot be read as a document (a malformed JSON line, a JSON line
    /// without the text field, a CSV row with the wrong number of columns), when the caller chose
    /// to stop on it.
    #[error("{}:{line}: {reason}", .path.display())]
    MalformedRecord {
        /// The source file.
        path: PathBuf,
        /// 1-based line where the record starts.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A glob pattern for a directory walk that does not parse.
    #[error("glob pattern {pattern:?}: {reason}")]
    InvalidGlob {
        /// The pattern as given.
        pattern: String,
        /// What globset found wrong.
        reason: String,
    },
}

impl DataError {
    /// A serde_json error on `path`, keeping its line and column.
    pub(crate) fn json(path: impl Into<PathBuf>, error: &serde_json::Error) -> Self {
        // serde_json's Display appends " at line L column C"; the fields carry those already.
        let mut message = error.to_string();
        if error.line() > 0 {
            if let Some(cut) = message.rfind(" at line ") {
                message.truncate(cut);
            }
        }
        DataError::Json {
            path: path.into(),
            line: error.line(),
            column: error.column(),
            message,
        }
    }

    /// An I/O error on `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            source,
        }
    }

    /// A configuration value outside its domain.
    pub(crate) fn config(what: &'static str, reason: impl Into<String>) -> Self {
        DataError::InvalidConfig {
            what,
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_error_names_file_line_and_column() {
        let err = serde_json::from_str::<serde_json::Value>("{\n  \"a\": [1, 2,\n}").unwrap_err();
        let e = DataError::json("tok.json", &err);
        let text = e.to_string();
        assert!(text.starts_with("tok.json:3:1: "), "{text}");
        assert!(!text.contains(" at line "), "{text}");
    }

    #[test]
    fn unknown_id_names_id_and_range() {
        let e = DataError::UnknownTokenId {
            id: 70000,
            vocab_size: 4096,
        };
        assert_eq!(
            e.to_string(),
            "unknown token id 70000 (vocabulary has ids 0..4096)"
        );
    }
}
