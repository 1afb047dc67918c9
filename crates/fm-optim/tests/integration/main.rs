//! fm-optim's integration tests, one module per topic, built as a single test binary: the
//! modules share one compile of the library's generic code instead of one per file.

mod behaviour;
mod linear_regression;
