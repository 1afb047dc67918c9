//! Shared helpers for fm benchmarks and reports.
pub mod loss_optim;
