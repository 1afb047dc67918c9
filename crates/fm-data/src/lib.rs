//! fm-data: text data for foundation models (collection, cleaning, dedup, labels, datasets).
//!
//! This branch holds the cleaning core; see [`clean`].
//!
//! ```
//! let (text, counts) = fm_data::clean::normalize_whitespace("a \t b\u{7}\n\n\n\nc");
//! assert_eq!(text, "a b\n\nc");
//! assert_eq!(counts.control_removed, 1);
//! ```

pub mod clean;
pub mod collect;
pub mod dedup;
pub mod error;
pub mod labels;

pub use error::DataError;
