//! fm-loss's integration tests, one module per topic, built as a single test binary: the
//! modules share one compile of the library's generic code instead of one per file.

mod gradcheck;
mod numerics;
mod torch_reference;
