//! fm-attention's integration tests, one module per topic, built as a single test binary: the
//! modules share one compile of the library's generic code instead of one per file.

mod common;
mod determinism;
mod errors;
mod fused_vs_naive;
mod gradients;
mod mha_torch;
mod rope_torch;
