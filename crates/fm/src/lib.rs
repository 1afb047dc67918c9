//! # fm
//!
//! One dependency for the whole fm stack: re-exports each stage's crate under a short name.
//! See the README for the crate map.

pub use fm_tensor as tensor;
