//! fm-data's integration tests, one module per topic, built as a single test binary: the
//! modules share one compile of the library's generic code instead of one per file.

mod code_layout;
mod dataset_loader;
mod near_dup_recall;
mod tabular_sklearn;
mod tokenizer_hf_interop;
mod tokenizer_roundtrip;
