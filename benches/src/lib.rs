//! Shared helpers for fm benchmarks and reports.
