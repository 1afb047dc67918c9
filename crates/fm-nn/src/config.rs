//! Model configurations, as serde JSON: [`GptConfig`] (decoder language model) and
//! [`EncoderConfig`] (bidirectional encoder with a classification head).
//!
//! Both are plain structs with public fields, validated when a model is built ([`GptConfig::validate`]).
//! `new` gives GPT-2 style defaults (GELU, LayerNorm, learned positions, biases, tied embeddings,
//! MLP 4×, no dropout); change fields for other families:
//!
//! ```
//! use fm_nn::{Activation, GptConfig, NormKind, PositionEncoding};
//!
//! let mut llama_like = GptConfig::new(4096, 256, 256, 4, 8);
//! llama_like.n_kv_heads = Some(2);
//! llama_like.positions = PositionEncoding::Rotary;
//! llama_like.activation = Activation::SwiGlu;
//! llama_like.norm = NormKind::RmsNorm;
//! llama_like.bias = false;
//! llama_like.validate()?;
//! let json = serde_json::to_string(&llama_like).unwrap();
//! assert_eq!(serde_json::from_str::<GptConfig>(&json).unwrap(), llama_like);
//! # Ok::<(), fm_nn::NnError>(())
//! ```

use serde::{Deserialize, Serialize};

use crate::attention::AttentionConfig;
use crate::block::BlockConfig;
use crate::error::{NnError, Result};
use crate::mlp::Activation;
use crate::norm::NormKind;

/// How positions enter the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PositionEncoding {
    /// A learned `[context, d_model]` table added to the token embeddings (GPT-2).
    Learned,
    /// Rotary embeddings applied to queries and keys in every layer (Llama).
    Rotary,
}

/// How an encoder turns its sequence of hidden states into one vector per example.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// Mean over the real (non-padding) tokens.
    Mean,
    /// The first token's state (a `[CLS]` token).
    First,
}

fn default_mlp_ratio() -> f64 {
    4.0
}
fn default_rope_theta() -> f64 {
    10_000.0
}
fn default_init_std() -> f64 {
    0.02
}
fn default_true() -> bool {
    true
}

/// A GPT-style decoder language model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GptConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Longest sequence (including a cached prefix) the model accepts.
    pub context_length: usize,
    /// Model width.
    pub d_model: usize,
    /// Number of Transformer blocks.
    pub n_layers: usize,
    /// Query heads per attention layer.
    pub n_heads: usize,
    /// Key/value heads (grouped-query attention); `None` means `n_heads`.
    #[serde(default)]
    pub n_kv_heads: Option<usize>,
    /// MLP hidden width as a multiple of `d_model` (rounded to the nearest integer).
    #[serde(default = "default_mlp_ratio")]
    pub mlp_ratio: f64,
    /// MLP nonlinearity.
    pub activation: Activation,
    /// Learned or rotary positions.
    pub positions: PositionEncoding,
    /// Base θ of the rotary embeddings.
    #[serde(default = "default_rope_theta")]
    pub rope_theta: f64,
    /// Use the token embedding as the output projection (no `lm_head.weight`).
    pub tie_embeddings: bool,
    /// Dropout probability on embeddings and residual branches (training only).
    #[serde(default)]
    pub dropout: f64,
    /// LayerNorm or RMSNorm.
    pub norm: NormKind,
    /// Biases on the attention and GELU-MLP projections (SwiGLU never has them).
    #[serde(default = "default_true")]
    pub bias: bool,
    /// Standard deviation of the initial weights.
    #[serde(default = "default_init_std")]
    pub init_std: f64,
}

impl GptConfig {
    /// GPT-2 style defaults with the given sizes.
    pub fn new(
        vocab_size: usize,
        context_length: usize,
        d_model: usize,
        n_layers: usize,
        n_heads: usize,
    ) -> Self {
        GptConfig {
            vocab_size,
            context_length,
            d_model,
            n_layers,
            n_heads,
            n_kv_heads: None,
            mlp_ratio: default_mlp_ratio(),
            activation: Activation::Gelu,
            positions: PositionEncoding::Learned,
            rope_theta: default_rope_theta(),
            tie_embeddings: true,
            dropout: 0.0,
            norm: NormKind::LayerNorm,
            bias: true,
            init_std: default_init_std(),
        }
    }

    /// Key/value heads actually used.
    pub fn kv_heads(&self) -> usize {
        self.n_kv_heads.unwrap_or(self.n_heads)
    }

    /// MLP hidden width.
    pub fn mlp_hidden(&self) -> usize {
        (self.mlp_ratio * self.d_model as f64).round() as usize
    }

    /// Checks every constraint, with a message naming the values.
    pub fn validate(&self) -> Result<()> {
        validate_backbone(&Backbone::from(self))
    }

    pub(crate) fn block_config(&self, causal: bool) -> BlockConfig {
        Backbone::from(self).block_config(causal)
    }
}

/// A bidirectional encoder with a pooled classification head (sentiment and similar tasks).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncoderConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Longest sequence accepted.
    pub context_length: usize,
    /// Model width.
    pub d_model: usize,
    /// Number of Transformer blocks.
    pub n_layers: usize,
    /// Query heads per attention layer.
    pub n_heads: usize,
    /// Key/value heads; `None` means `n_heads`.
    #[serde(default)]
    pub n_kv_heads: Option<usize>,
    /// MLP hidden width as a multiple of `d_model`.
    #[serde(default = "default_mlp_ratio")]
    pub mlp_ratio: f64,
    /// MLP nonlinearity.
    pub activation: Activation,
    /// Learned or rotary positions.
    pub positions: PositionEncoding,
    /// Base θ of the rotary embeddings.
    #[serde(default = "default_rope_theta")]
    pub rope_theta: f64,
    /// Dropout probability (training only).
    #[serde(default)]
    pub dropout: f64,
    /// LayerNorm or RMSNorm.
    pub norm: NormKind,
    /// Biases on the projections.
    #[serde(default = "default_true")]
    pub bias: bool,
    /// Standard deviation of the initial weights.
    #[serde(default = "default_init_std")]
    pub init_std: f64,
    /// Number of output classes.
    pub num_classes: usize,
    /// How the sequence is pooled before the head.
    pub pooling: Pooling,
}

impl EncoderConfig {
    /// BERT-style defaults (GELU, LayerNorm, learned positions, mean pooling) with the given sizes.
    pub fn new(
        vocab_size: usize,
        context_length: usize,
        d_model: usize,
        n_layers: usize,
        n_heads: usize,
        num_classes: usize,
    ) -> Self {
        EncoderConfig {
            vocab_size,
            context_length,
            d_model,
            n_layers,
            n_heads,
            n_kv_heads: None,
            mlp_ratio: default_mlp_ratio(),
            activation: Activation::Gelu,
            positions: PositionEncoding::Learned,
            rope_theta: default_rope_theta(),
            dropout: 0.0,
            norm: NormKind::LayerNorm,
            bias: true,
            init_std: default_init_std(),
            num_classes,
            pooling: Pooling::Mean,
        }
    }

    /// Checks every constraint, with a message naming the values.
    pub fn validate(&self) -> Result<()> {
        if self.num_classes < 2 {
            return Err(NnError::InvalidConfig(format!(
                "num_classes must be at least 2, got {}",
                self.num_classes
            )));
        }
        validate_backbone(&Backbone::from(self))
    }

    pub(crate) fn block_config(&self) -> BlockConfig {
        Backbone::from(self).block_config(false)
    }
}

/// The fields both configurations share.
struct Backbone {
    vocab_size: usize,
    context_length: usize,
    d_model: usize,
    n_layers: usize,
    n_heads: usize,
    n_kv_heads: usize,
    mlp_ratio: f64,
    activation: Activation,
    positions: PositionEncoding,
    rope_theta: f64,
    dropout: f64,
    norm: NormKind,
    bias: bool,
    init_std: f64,
}

macro_rules! backbone_from {
    ($config:ty) => {
        impl From<&$config> for Backbone {
            fn from(c: &$config) -> Self {
                Backbone {
                    vocab_size: c.vocab_size,
                    context_length: c.context_length,
                    d_model: c.d_model,
                    n_layers: c.n_layers,
                    n_heads: c.n_heads,
                    n_kv_heads: c.n_kv_heads.unwrap_or(c.n_heads),
                    mlp_ratio: c.mlp_ratio,
                    activation: c.activation,
                    positions: c.positions,
                    rope_theta: c.rope_theta,
                    dropout: c.dropout,
                    norm: c.norm,
                    bias: c.bias,
                    init_std: c.init_std,
                }
            }
        }
    };
}
backbone_from!(GptConfig);
backbone_from!(EncoderConfig);

impl Backbone {
    fn mlp_hidden(&self) -> usize {
        (self.mlp_ratio * self.d_model as f64).round() as usize
    }

    fn block_config(&self, causal: bool) -> BlockConfig {
        BlockConfig {
            attention: AttentionConfig {
                d_model: self.d_model,
                n_heads: self.n_heads,
                n_kv_heads: self.n_kv_heads,
                bias: self.bias,
                causal,
                rope_theta: (self.positions == PositionEncoding::Rotary).then_some(self.rope_theta),
            },
            mlp_hidden: self.mlp_hidden(),
            activation: self.activation,
            norm: self.norm,
            dropout: self.dropout,
            init_std: self.init_std,
            out_init_std: self.init_std / (2.0 * self.n_layers.max(1) as f64).sqrt(),
        }
    }
}

fn validate_backbone(c: &Backbone) -> Result<()> {
    let positive = [
        ("vocab_size", c.vocab_size),
        ("context_length", c.context_length),
        ("d_model", c.d_model),
        ("n_layers", c.n_layers),
        ("n_heads", c.n_heads),
        ("n_kv_heads", c.n_kv_heads),
    ];
    for (name, value) in positive {
        if value == 0 {
            return Err(NnError::InvalidConfig(format!("{name} must be at least 1")));
        }
    }
    if c.vocab_size > u32::MAX as usize {
        return Err(NnError::InvalidConfig(format!(
            "vocab_size {} does not fit token ids of 32 bits",
            c.vocab_size
        )));
    }
    if !(c.mlp_ratio.is_finite() && c.mlp_ratio > 0.0) || c.mlp_hidden() == 0 {
        return Err(NnError::InvalidConfig(format!(
            "mlp_ratio must give an MLP width of at least 1, got {} × {}",
            c.mlp_ratio, c.d_model
        )));
    }
    if !(0.0..1.0).contains(&c.dropout) {
        return Err(NnError::InvalidConfig(format!(
            "dropout must be in [0, 1), got {}",
            c.dropout
        )));
    }
    if !(c.rope_theta.is_finite() && c.rope_theta > 1.0) {
        return Err(NnError::InvalidConfig(format!(
            "rope_theta must be a finite number above 1, got {}",
            c.rope_theta
        )));
    }
    if !(c.init_std.is_finite() && c.init_std >= 0.0) {
        return Err(NnError::InvalidConfig(format!(
            "init_std must be finite and non-negative, got {}",
            c.init_std
        )));
    }
    c.block_config(true).attention.validate()
}
