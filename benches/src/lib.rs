//! Shared helpers for fm benchmarks and reports.

pub mod rust_docs;
