//! [`SelfAttention`]: multi-head self-attention with a fused QKV projection, optional grouped-query
//! heads, optional rotary positions, causal or bidirectional masking, key padding, and a KV cache.
//!
//! The projection `qkv_proj` maps `d_model` to `(n_heads + 2·n_kv_heads)·head_dim` in one GEMM; the
//! result is split into queries, keys and values, and each key/value head serves
//! `n_heads / n_kv_heads` query heads. Rotary embeddings use the "rotate half" layout (the first
//! and second halves of each head form the pairs), as Hugging Face's Llama and GPT-NeoX do.
//!
//! The computation comes from fm-attention: the fused, tiled scaled dot-product attention op
//! ([`fm_attention::autograd::attention`]: causal masking aligned bottom-right for cached decoding,
//! key padding, grouped-query heads natively, no `T×T` score matrix), rotary embeddings as one op
//! ([`fm_attention::positional::RotaryEmbedding`]), and per-layer [`fm_attention::KvCache`] buffers
//! allocated once for the whole context. This file is the one place that knows that.

use fm_attention::positional::RotaryEmbedding;
use fm_attention::AttentionOptions;
use fm_tensor::autograd::{concat, Var};
use fm_tensor::init::Initializer;
use fm_tensor::Element;
use ndarray::{ArrayView2, Ix4};

use crate::error::{NnError, Result};
use crate::linear::Linear;
use crate::module::{ForwardContext, Module, ParamBuilder, ParamRef};

/// Shape of an attention layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttentionConfig {
    /// Model width.
    pub d_model: usize,
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads (divides `n_heads`; equal for plain multi-head attention).
    pub n_kv_heads: usize,
    /// Biases on the projections.
    pub bias: bool,
    /// Each position attends only to itself and earlier positions.
    pub causal: bool,
    /// Rotary embeddings with this base (θ), or none.
    pub rope_theta: Option<f64>,
}

impl AttentionConfig {
    /// Width of one head.
    pub fn head_dim(&self) -> usize {
        self.d_model / self.n_heads
    }

    /// Checks divisibility (and an even head width for rotary embeddings).
    pub fn validate(&self) -> Result<()> {
        if self.n_heads == 0 || self.n_kv_heads == 0 {
            return Err(NnError::InvalidConfig(
                "n_heads and n_kv_heads must be at least 1".into(),
            ));
        }
        if !self.d_model.is_multiple_of(self.n_heads) {
            return Err(NnError::InvalidConfig(format!(
                "d_model ({}) must be divisible by n_heads ({})",
                self.d_model, self.n_heads
            )));
        }
        if !self.n_heads.is_multiple_of(self.n_kv_heads) {
            return Err(NnError::InvalidConfig(format!(
                "n_heads ({}) must be divisible by n_kv_heads ({})",
                self.n_heads, self.n_kv_heads
            )));
        }
        if self.rope_theta.is_some() && !self.head_dim().is_multiple_of(2) {
            return Err(NnError::InvalidConfig(format!(
                "rotary embeddings need an even head dimension, got {}",
                self.head_dim()
            )));
        }
        Ok(())
    }
}

/// Keys and values of earlier positions, one [`fm_attention::KvCache`] per layer, for incremental
/// decoding.
///
/// Each layer keeps `[batch, n_kv_heads, len, head_dim]` keys (after rotary embedding) and values in
/// buffers of `capacity` positions, allocated when the layer first runs (its batch size is known
/// then). [`len`](Self::len) is the number of positions cached.
#[derive(Debug, Clone)]
pub struct KvCache<T: Element> {
    layers: Vec<Option<fm_attention::KvCache<T>>>,
    capacity: usize,
}

impl<T: Element> KvCache<T> {
    /// An empty cache for `n_layers` layers of up to `capacity` positions.
    pub fn new(n_layers: usize, capacity: usize) -> Self {
        KvCache {
            layers: vec![None; n_layers],
            capacity,
        }
    }

    /// Number of layers the cache holds.
    pub fn n_layers(&self) -> usize {
        self.layers.len()
    }

    /// Positions cached so far.
    pub fn len(&self) -> usize {
        self.layers
            .first()
            .and_then(|l| l.as_ref())
            .map_or(0, fm_attention::KvCache::len)
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every cached position.
    pub fn clear(&mut self) {
        self.layers.iter_mut().for_each(|l| *l = None);
    }

    /// The cache of layer `index`.
    pub fn layer(&mut self, index: usize) -> Result<LayerKv<'_, T>> {
        let n = self.layers.len();
        let capacity = self.capacity;
        let slot = self.layers.get_mut(index).ok_or_else(|| {
            NnError::InvalidArgument(format!("KV cache has {n} layers, asked for layer {index}"))
        })?;
        Ok(LayerKv { slot, capacity })
    }
}

/// One layer's slot in a [`KvCache`].
pub struct LayerKv<'c, T: Element> {
    slot: &'c mut Option<fm_attention::KvCache<T>>,
    capacity: usize,
}

impl<T: Element> LayerKv<'_, T> {
    fn len(&self) -> usize {
        self.slot.as_ref().map_or(0, fm_attention::KvCache::len)
    }

    /// Keys and values of the prefix and the new positions (`k`, `v` `[B, Hkv, new, D]`), with the
    /// new ones appended to the cache. The prefix enters the tape as a constant; gradients still
    /// reach the new positions.
    fn extend<'t>(&mut self, k: Var<'t, T>, v: Var<'t, T>) -> Result<(Var<'t, T>, Var<'t, T>)> {
        let cache = self.cache_for(&k.shape())?;
        let tape = k.tape();
        let (k_all, v_all) = if cache.is_empty() {
            (k, v)
        } else {
            (
                concat(&[tape.constant(cache.keys().to_owned().into_dyn()), k], 2)?,
                concat(&[tape.constant(cache.values().to_owned().into_dyn()), v], 2)?,
            )
        };
        let (k_new, v_new) = (k.value(), v.value());
        cache.append(as_rank4(&k_new)?, as_rank4(&v_new)?)?;
        Ok((k_all, v_all))
    }

    /// Appends the new positions' keys and values (`[B, Hkv, new, D]`) and returns the cache, whose
    /// views then hold the prefix and the new positions: the no-grad decode path, which reads the
    /// cache in place instead of copying it onto the tape every step.
    fn append(
        &mut self,
        k: &fm_tensor::Tensor<T>,
        v: &fm_tensor::Tensor<T>,
    ) -> Result<&fm_attention::KvCache<T>> {
        let cache = self.cache_for(k.shape())?;
        cache.append(as_rank4(k)?, as_rank4(v)?)?;
        Ok(cache)
    }

    /// The layer's cache, allocated on first use for keys shaped `[B, Hkv, new, D]`.
    fn cache_for(&mut self, key_shape: &[usize]) -> Result<&mut fm_attention::KvCache<T>> {
        let cache = match self.slot.take() {
            Some(cache) => cache,
            None => {
                fm_attention::KvCache::new(key_shape[0], key_shape[1], key_shape[3], self.capacity)?
            }
        };
        Ok(self.slot.insert(cache))
    }
}

/// Self-attention over `[batch, seq, d_model]` hidden states.
#[derive(Debug, Clone)]
pub struct SelfAttention {
    qkv_proj: Linear,
    out_proj: Linear,
    rope: Option<RotaryEmbedding>,
    config: AttentionConfig,
}

impl SelfAttention {
    /// Registers `qkv_proj` and `out_proj` under `builder`.
    pub fn new<T: Element>(
        builder: &mut ParamBuilder<'_, T>,
        config: AttentionConfig,
        init: Initializer,
        out_init: Initializer,
    ) -> Result<Self> {
        config.validate()?;
        let head_dim = config.head_dim();
        let qkv_width = (config.n_heads + 2 * config.n_kv_heads) * head_dim;
        Ok(SelfAttention {
            qkv_proj: Linear::new(
                &mut builder.scope("qkv_proj"),
                config.d_model,
                qkv_width,
                config.bias,
                init,
            )?,
            out_proj: Linear::new(
                &mut builder.scope("out_proj"),
                config.n_heads * head_dim,
                config.d_model,
                config.bias,
                out_init,
            )?,
            rope: match config.rope_theta {
                Some(theta) => Some(RotaryEmbedding::new(head_dim, theta)?),
                None => None,
            },
            config,
        })
    }

    /// The layer's shape.
    pub fn config(&self) -> &AttentionConfig {
        &self.config
    }

    /// Attends `x` `[batch, seq, d_model]` to itself (and to the cached prefix, if `cache` is given,
    /// which then grows by `seq`). `key_padding` `[batch, keys]` marks real keys with `true`; with a
    /// cache it covers the prefix and the new positions together.
    pub fn forward<'t, T: Element>(
        &self,
        ctx: &ForwardContext<'t, '_, T>,
        x: Var<'t, T>,
        key_padding: Option<ArrayView2<'_, bool>>,
        mut cache: Option<LayerKv<'_, T>>,
    ) -> Result<Var<'t, T>> {
        let shape = x.shape();
        if shape.len() != 3 || shape[2] != self.config.d_model {
            return Err(NnError::ShapeMismatch {
                what: "attention input [batch, seq, d_model]".into(),
                expected: vec![0, 0, self.config.d_model],
                got: shape,
            });
        }
        let (batch, seq) = (shape[0], shape[1]);
        let (h, hkv, hd) = (
            self.config.n_heads,
            self.config.n_kv_heads,
            self.config.head_dim(),
        );
        let start = cache.as_ref().map_or(0, LayerKv::len);

        let qkv = self.qkv_proj.forward(ctx, x)?;
        let keys = start + seq;
        if let Some(mask) = key_padding {
            if mask.dim() != (batch, keys) {
                return Err(NnError::ShapeMismatch {
                    what: "key padding mask [batch, keys]".into(),
                    expected: vec![batch, keys],
                    got: mask.shape().to_vec(),
                });
            }
        }
        let mut options = AttentionOptions::new().causal(self.config.causal);
        if let Some(mask) = key_padding {
            options = options.key_padding(mask.to_owned());
        }
        if self.rope.is_none() && cache.is_none() {
            // Training and full-sequence evaluation: one op reads Q, K and V in place from the
            // projection and writes their gradients into one buffer.
            let out = fm_attention::autograd::attention_packed_qkv(qkv, h, hkv, hd, &options)?;
            return self.out_proj.forward(ctx, out);
        }
        let parts = qkv.split(-1, &[h * hd, hkv * hd, hkv * hd])?;
        let heads = |v: Var<'t, T>, n: usize| -> Result<Var<'t, T>> {
            Ok(
                v.reshape(&[batch as isize, seq as isize, n as isize, hd as isize])?
                    .permute(&[0, 2, 1, 3])?,
            )
        };
        let (mut q, mut k, v) = (
            heads(parts[0], h)?,
            heads(parts[1], hkv)?,
            heads(parts[2], hkv)?,
        );
        if let Some(rope) = &self.rope {
            q = rope.apply(q, start)?;
            k = rope.apply(k, start)?;
        }
        let tape = x.tape();
        let out = match cache.as_mut() {
            // Decoding without gradients: attend to the cache in place.
            Some(layer) if !tape.is_grad_enabled() => {
                let cache = layer.append(&k.value(), &v.value())?;
                let q = q.value();
                let out = fm_attention::attention_forward(
                    as_rank4(&q)?,
                    cache.keys(),
                    cache.values(),
                    &options,
                )?;
                tape.constant(out.output.into_dyn())
            }
            Some(layer) => {
                let (k, v) = layer.extend(k, v)?;
                fm_attention::autograd::attention(q, k, v, &options)?
            }
            None => fm_attention::autograd::attention(q, k, v, &options)?,
        };
        let out = out.permute(&[0, 2, 1, 3])?.reshape(&[
            batch as isize,
            seq as isize,
            (h * hd) as isize,
        ])?;
        self.out_proj.forward(ctx, out)
    }
}

impl Module for SelfAttention {
    fn parameters(&self) -> Vec<ParamRef> {
        let mut params = self.qkv_proj.parameters();
        params.extend(self.out_proj.parameters());
        params
    }
    fn set_training(&mut self, _training: bool) {}
    fn is_training(&self) -> bool {
        false
    }
}

/// A 4-axis view of a key or value tensor.
fn as_rank4<T: Element>(t: &fm_tensor::Tensor<T>) -> Result<ndarray::ArrayView4<'_, T>> {
    t.view()
        .into_dimensionality::<Ix4>()
        .map_err(|e| NnError::InvalidArgument(format!("KV cache append: {e}")))
}
