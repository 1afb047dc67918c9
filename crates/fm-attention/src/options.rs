//! [`AttentionOptions`]: everything about an attention call besides Q, K and V.
//!
//! Built with a small builder so the common case stays short:
//!
//! ```
//! use fm_attention::AttentionOptions;
//! let opts = AttentionOptions::new().causal(true).scale(0.125);
//! assert!(opts.causal);
//! assert_eq!(opts.scale_for(64), 0.125);
//! assert_eq!(AttentionOptions::new().scale_for(64), 0.125); // default 1/√head_dim
//! ```

use ndarray::{Array2, ArrayD};

use fm_tensor::Element;

/// Attention dropout: each attention weight is kept with probability `1 − p` (and scaled by
/// `1/(1 − p)`), decided by a counter-based hash of `(seed, batch, head, query, key)`, so the mask does
/// not depend on tiling or threads and the backward pass regenerates it instead of storing it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttentionDropout {
    /// Probability of dropping a weight, in `[0, 1)`.
    pub p: f64,
    /// Seed of the mask.
    pub seed: u64,
}

/// Masks, biases, scale and dropout of one attention call (shapes are checked when the call runs).
///
/// Scores are `s_ij = scale · q_i·k_j + alibi + additive_mask`, with masked pairs (causal, padding,
/// or an additive `-∞`) removed from the softmax. A query row whose keys are all masked gives a zero
/// output row and zero gradients, never NaN.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct AttentionOptions {
    /// Causal masking, aligned bottom-right: with `seq_q` queries and `seq_k` keys, query `i` sees
    /// keys `j ≤ i + (seq_k − seq_q)` (the queries are the last `seq_q` positions, as when decoding
    /// with a KV cache).
    pub causal: bool,
    /// `[batch, seq_k]`, `true` where the key is real; `false` keys are masked for every query.
    pub key_padding: Option<Array2<bool>>,
    /// Added to the scores; broadcastable (numpy rules, aligned right) to
    /// `[batch, heads, seq_q, seq_k]`. Stored in `f64` and converted to the computing type.
    pub additive_mask: Option<ArrayD<f64>>,
    /// One ALiBi slope per (query) head: the bias `−slope·|pos_q − j|`, with `pos_q = i + seq_k − seq_q`.
    pub alibi_slopes: Option<Vec<f64>>,
    /// Score scale; `None` means `1/√head_dim`.
    pub scale: Option<f64>,
    /// Attention dropout, off by default.
    pub dropout: Option<AttentionDropout>,
}

impl AttentionOptions {
    /// No mask, no bias, scale `1/√head_dim`, no dropout.
    pub fn new() -> Self {
        Self::default()
    }

    /// Turns causal masking on or off (see [`AttentionOptions::causal`](struct@AttentionOptions)).
    pub fn causal(mut self, causal: bool) -> Self {
        self.causal = causal;
        self
    }

    /// Sets the key padding mask, `[batch, seq_k]`, `true` = real key.
    pub fn key_padding(mut self, mask: Array2<bool>) -> Self {
        self.key_padding = Some(mask);
        self
    }

    /// Sets an additive mask broadcastable to `[batch, heads, seq_q, seq_k]` (`f32` or `f64`).
    pub fn additive_mask<T: Element>(mut self, mask: ArrayD<T>) -> Self {
        self.additive_mask = Some(mask.mapv(|x| x.to_f64_lossless()));
        self
    }

    /// Sets one ALiBi slope per query head.
    pub fn alibi_slopes(mut self, slopes: Vec<f64>) -> Self {
        self.alibi_slopes = Some(slopes);
        self
    }

    /// Sets the score scale (instead of `1/√head_dim`).
    pub fn scale(mut self, scale: f64) -> Self {
        self.scale = Some(scale);
        self
    }

    /// Turns on attention dropout with probability `p` (checked to lie in `[0, 1)` when the call runs)
    /// and a seed; `p = 0` is the same as no dropout.
    pub fn dropout(mut self, p: f64, seed: u64) -> Self {
        self.dropout = Some(AttentionDropout { p, seed });
        self
    }

    /// The scale used for a given head dimension.
    pub fn scale_for(&self, head_dim: usize) -> f64 {
        self.scale
            .unwrap_or_else(|| 1.0 / (head_dim.max(1) as f64).sqrt())
    }

    /// The dropout in effect (`None` when off or `p = 0`).
    pub(crate) fn active_dropout(&self) -> Option<AttentionDropout> {
        self.dropout.filter(|d| d.p > 0.0)
    }
}
