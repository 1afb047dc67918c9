//! [`MhaConfig`]: the shape and options of a multi-head attention layer, validated when the layer is
//! built.

use crate::error::{AttentionError, Result};

/// Shape and options of a [`MultiHeadAttention`](crate::MultiHeadAttention) layer.
///
/// Built with [`MhaConfig::new`] and chained setters; checked by [`validate`](Self::validate) (which
/// building the layer calls).
///
/// ```
/// use fm_attention::MhaConfig;
/// let config = MhaConfig::new(256, 8).kv_heads(2).causal(true).rope(10_000.0);
/// assert_eq!(config.head_dim(), 32);
/// assert!(config.validate().is_ok());
/// let err = MhaConfig::new(256, 8).kv_heads(3).validate().unwrap_err();
/// assert!(err.to_string().contains("n_heads 8 is not divisible by n_kv_heads 3"));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct MhaConfig {
    /// Model width: the input and output feature size.
    pub d_model: usize,
    /// Query heads; `head_dim = d_model / n_heads`.
    pub n_heads: usize,
    /// Key/value heads, dividing `n_heads`: equal for plain multi-head attention, fewer for
    /// grouped-query attention (each KV head serves `n_heads / n_kv_heads` consecutive query heads),
    /// 1 for multi-query attention.
    pub n_kv_heads: usize,
    /// Biases on the four projections.
    pub bias: bool,
    /// Each query sees only keys at its position or earlier (bottom-right aligned when decoding).
    pub causal: bool,
    /// Rotary embeddings with this base on queries and keys of self-attention, or none.
    pub rope: Option<f64>,
    /// ALiBi biases (the paper's slopes for `n_heads`).
    pub alibi: bool,
    /// Attention dropout probability in `[0, 1)`, applied only in training calls (with a seed).
    pub dropout: f64,
}

impl MhaConfig {
    /// Plain multi-head attention: `n_kv_heads = n_heads`, biases on, not causal, no positions, no
    /// dropout.
    pub fn new(d_model: usize, n_heads: usize) -> Self {
        MhaConfig {
            d_model,
            n_heads,
            n_kv_heads: n_heads,
            bias: true,
            causal: false,
            rope: None,
            alibi: false,
            dropout: 0.0,
        }
    }

    /// Sets the number of key/value heads (GQA; 1 for MQA).
    pub fn kv_heads(mut self, n_kv_heads: usize) -> Self {
        self.n_kv_heads = n_kv_heads;
        self
    }

    /// Turns projection biases on or off.
    pub fn bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }

    /// Turns causal masking on or off.
    pub fn causal(mut self, causal: bool) -> Self {
        self.causal = causal;
        self
    }

    /// Uses rotary embeddings with `base`.
    pub fn rope(mut self, base: f64) -> Self {
        self.rope = Some(base);
        self
    }

    /// Turns ALiBi on or off.
    pub fn alibi(mut self, alibi: bool) -> Self {
        self.alibi = alibi;
        self
    }

    /// Sets the attention dropout probability.
    pub fn dropout(mut self, p: f64) -> Self {
        self.dropout = p;
        self
    }

    /// Width of one head, `d_model / n_heads` (0 when `n_heads` is 0; `validate` refuses that).
    pub fn head_dim(&self) -> usize {
        self.d_model.checked_div(self.n_heads).unwrap_or(0)
    }

    /// Queries per key/value head.
    pub fn group_size(&self) -> usize {
        self.n_heads.checked_div(self.n_kv_heads).unwrap_or(0)
    }

    /// Checks every setting; the error names the values that do not fit.
    pub fn validate(&self) -> Result<()> {
        let MhaConfig {
            d_model,
            n_heads,
            n_kv_heads,
            ..
        } = *self;
        if d_model == 0 || n_heads == 0 || n_kv_heads == 0 {
            return Err(AttentionError::config(
                "MhaConfig",
                format!("d_model {d_model}, n_heads {n_heads} and n_kv_heads {n_kv_heads} must all be at least 1"),
            ));
        }
        if !d_model.is_multiple_of(n_heads) {
            return Err(AttentionError::config(
                "MhaConfig",
                format!("d_model {d_model} is not divisible by n_heads {n_heads}"),
            ));
        }
        if !n_heads.is_multiple_of(n_kv_heads) {
            return Err(AttentionError::config(
                "MhaConfig",
                format!("n_heads {n_heads} is not divisible by n_kv_heads {n_kv_heads}"),
            ));
        }
        if let Some(base) = self.rope {
            if !self.head_dim().is_multiple_of(2) {
                return Err(AttentionError::config(
                    "MhaConfig",
                    format!("rotary embeddings need an even head_dim, got {} (d_model {d_model} / n_heads {n_heads})", self.head_dim()),
                ));
            }
            if !(base.is_finite() && base > 1.0) {
                return Err(AttentionError::config(
                    "MhaConfig",
                    format!("rope base must be finite and above 1, got {base}"),
                ));
            }
            if self.alibi {
                return Err(AttentionError::config(
                    "MhaConfig",
                    "rope and alibi are two ways to encode positions: choose one",
                ));
            }
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(AttentionError::config(
                "MhaConfig",
                format!("dropout must lie in [0, 1), got {}", self.dropout),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_values() {
        let msg = |c: MhaConfig| c.validate().unwrap_err().to_string();
        assert!(msg(MhaConfig::new(10, 3)).contains("d_model 10 is not divisible by n_heads 3"));
        assert!(msg(MhaConfig::new(12, 4).kv_heads(3))
            .contains("n_heads 4 is not divisible by n_kv_heads 3"));
        assert!(msg(MhaConfig::new(12, 4).kv_heads(0)).contains("n_kv_heads 0"));
        assert!(msg(MhaConfig::new(12, 4).rope(10_000.0)).contains("even head_dim, got 3"));
        assert!(msg(MhaConfig::new(16, 4).rope(10_000.0).alibi(true)).contains("choose one"));
        assert!(msg(MhaConfig::new(16, 4).dropout(1.0)).contains("[0, 1)"));
        assert!(MhaConfig::new(16, 4)
            .kv_heads(1)
            .rope(1e4)
            .dropout(0.1)
            .validate()
            .is_ok());
        assert_eq!(MhaConfig::new(16, 4).kv_heads(2).group_size(), 2);
    }
}
