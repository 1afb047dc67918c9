//! fm-tensor's integration tests, one module per topic, built as a single test binary: the
//! modules share one compile of the library's generic code instead of one per file.

mod autograd_gradcheck;
mod safetensors_interop;
