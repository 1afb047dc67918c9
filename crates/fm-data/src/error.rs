//! The one error type of fm-data.

/// Errors from fm-data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    // ---- data-clean (collection / cleaning / dedup / labels / datasets) ----
    /// A configuration value is out of range.
    #[error("invalid config: {0}")]
    InvalidConfig(String),
}
