//! Positional encodings: how a model learns where each token sits.
//!
//! Attention itself is blind to order; each scheme here puts position back in a different place:
//!
//! | scheme | where position enters | type |
//! |---|---|---|
//! | sinusoidal ("Attention Is All You Need") | added to the token embeddings, fixed | [`SinusoidalPositionalEncoding`], [`sinusoidal_table`] |
//! | learned | added to the token embeddings, trained | [`LearnedPositionalEmbedding`] |
//! | rotary (RoPE) | rotates queries and keys, so scores depend on the offset | [`RotaryEmbedding`] |
//! | ALiBi | a per-head linear penalty on attention scores | [`alibi_slopes`], [`alibi_bias`] |
//!
//! Every encoding takes a start position (or explicit position ids), so the same code serves training
//! on whole sequences and decoding one token at a time with a [`KvCache`](crate::KvCache).

mod alibi;
mod learned;
mod rotary;
mod sinusoidal;

pub use alibi::{alibi_bias, alibi_slopes};
pub use learned::LearnedPositionalEmbedding;
pub use rotary::{rope_backward, rope_forward, RopePositions, RotaryEmbedding, DEFAULT_ROPE_BASE};
pub use sinusoidal::{sinusoidal_table, SinusoidalPositionalEncoding, DEFAULT_SINUSOIDAL_BASE};
