//! The one error type of fm-data.

/// Errors from fm-data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    // ---- data-clean (collection / cleaning / dedup / labels / datasets) ----
    /// A configuration value is out of range.
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    /// An I/O error, with the path.
    #[error("I/O error: {0}")]
    Io(String),
    /// A record that is not valid UTF-8.
    #[error("{path} line {line}: invalid UTF-8")]
    InvalidUtf8 {
        /// Source file.
        path: String,
        /// 1-based line.
        line: usize,
    },
}
