//! # fm-attention
//!
//! Attention for Transformers on the CPU, as a crate of its own: fused, tiled scaled dot-product
//! attention on plain ndarray (forward and backward), masks, positional encodings, a KV cache for
//! decoding, and multi-head attention usable inside fm-tensor's autograd through its public
//! custom-op extension point.
//!
//! (Crate tour and runnable example: written as the modules land.)

pub mod error;
pub mod kv_cache;
pub mod positional;

pub use error::{AttentionError, Result};
pub use kv_cache::KvCache;
