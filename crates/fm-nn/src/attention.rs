//! [`SelfAttention`]: multi-head self-attention with a fused QKV projection, optional grouped-query
//! heads, optional rotary positions, causal or bidirectional masking, key padding, and a KV cache.
//!
//! The projection `qkv_proj` maps `d_model` to `(n_heads + 2·n_kv_heads)·head_dim` in one GEMM; the
//! result is split into queries, keys and values, and each key/value head serves
//! `n_heads / n_kv_heads` query heads. Rotary embeddings use the "rotate half" layout (the first
//! and second halves of each head form the pairs), as Hugging Face's Llama and GPT-NeoX do.
//!
//! This file is the one place that knows how attention is computed, so that the kernel behind it can
//! change without touching the blocks and models.

use fm_tensor::autograd::{concat, Var};
use fm_tensor::init::Initializer;
use fm_tensor::Element;
use ndarray::{ArrayD, ArrayView2, IxDyn};

use crate::error::{NnError, Result};
use crate::linear::Linear;
use crate::module::{ForwardContext, Module, ParamBuilder, ParamRef};

/// Added to the scores of masked keys: large enough that `exp` underflows to exactly 0, finite so
/// that a row with every key masked stays finite (uniform) instead of NaN.
const MASKED_SCORE: f64 = -1e9;

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

/// Keys and values of earlier positions, one entry per layer, for incremental decoding.
///
/// Each layer keeps `[batch, n_kv_heads, cached_len, head_dim]` keys (after rotary embedding) and
/// values. [`len`](Self::len) is the number of positions cached.
#[derive(Debug, Clone)]
pub struct KvCache<T: Element> {
    layers: Vec<Option<(ArrayD<T>, ArrayD<T>)>>,
}

impl<T: Element> KvCache<T> {
    /// An empty cache for `n_layers` layers.
    pub fn new(n_layers: usize) -> Self {
        KvCache {
            layers: vec![None; n_layers],
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
            .map_or(0, |(k, _)| k.shape()[2])
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
        let slot = self.layers.get_mut(index).ok_or_else(|| {
            NnError::InvalidArgument(format!("KV cache has {n} layers, asked for layer {index}"))
        })?;
        Ok(LayerKv { slot })
    }
}

/// One layer's slot in a [`KvCache`].
pub struct LayerKv<'c, T: Element> {
    slot: &'c mut Option<(ArrayD<T>, ArrayD<T>)>,
}

impl<T: Element> LayerKv<'_, T> {
    fn len(&self) -> usize {
        self.slot.as_ref().map_or(0, |(k, _)| k.shape()[2])
    }
}

/// Self-attention over `[batch, seq, d_model]` hidden states.
#[derive(Debug, Clone)]
pub struct SelfAttention {
    qkv_proj: Linear,
    out_proj: Linear,
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
        if let Some(theta) = self.config.rope_theta {
            q = apply_rotary(q, start, theta)?;
            k = apply_rotary(k, start, theta)?;
        }
        let (k, v) = match cache.as_mut() {
            Some(layer) => {
                let tape = ctx.tape();
                let (k_all, v_all) = match layer.slot.take() {
                    Some((k_past, v_past)) => (
                        concat(&[tape.constant(k_past), k], 2)?,
                        concat(&[tape.constant(v_past), v], 2)?,
                    ),
                    None => (k, v),
                };
                *layer.slot = Some((k_all.value().array().clone(), v_all.value().array().clone()));
                (k_all, v_all)
            }
            None => (k, v),
        };
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
        let out =
            scaled_dot_product_attention(ctx, q, k, v, self.config.causal, start, key_padding)?;
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

/// softmax(q·kᵀ/√d + mask)·v for `q` `[B, H, Tq, D]`, `k`, `v` `[B, Hkv, Tk, D]`; query `i` sits at
/// position `start + i` of the keys.
fn scaled_dot_product_attention<'t, T: Element>(
    ctx: &ForwardContext<'t, '_, T>,
    q: Var<'t, T>,
    k: Var<'t, T>,
    v: Var<'t, T>,
    causal: bool,
    start: usize,
    key_padding: Option<ArrayView2<'_, bool>>,
) -> Result<Var<'t, T>> {
    let (qs, ks) = (q.shape(), k.shape());
    let (batch, h, tq, d) = (qs[0], qs[1], qs[2], qs[3]);
    let (hkv, tk) = (ks[1], ks[2]);
    let (k, v) = if h != hkv {
        let group = h / hkv;
        let map: Vec<usize> = (0..h).map(|head| head / group).collect();
        (k.index_select(1, &map)?, v.index_select(1, &map)?)
    } else {
        (k, v)
    };
    let scale = T::from_f64_lossy(1.0 / (d as f64).sqrt());
    let scores = q.matmul(k.transpose(-1, -2)?)?.mul_scalar(scale)?;
    // With one query (decoding) every cached key is in its past: no causal mask to build.
    let causal = causal && tq > 1;
    let scores = if causal || key_padding.is_some() {
        let masked = T::from_f64_lossy(MASKED_SCORE);
        let rows = if key_padding.is_some() { batch } else { 1 };
        let mut mask = ArrayD::<T>::zeros(IxDyn(&[rows, 1, tq, tk]));
        for ((b, _, i, j), m) in mask
            .view_mut()
            .into_dimensionality::<ndarray::Ix4>()
            .expect("rank 4")
            .indexed_iter_mut()
        {
            let future = causal && j > start + i;
            let padded = key_padding.is_some_and(|p| !p[[b, j]]);
            if future || padded {
                *m = masked;
            }
        }
        scores.add(ctx.tape().constant(mask))?
    } else {
        scores
    };
    Ok(scores.softmax(-1)?.matmul(v)?)
}

/// Rotates `x` `[B, H, T, D]` at positions `start..start + T` ("rotate half" pairs `(i, i + D/2)`).
fn apply_rotary<'t, T: Element>(x: Var<'t, T>, start: usize, theta: f64) -> Result<Var<'t, T>> {
    let shape = x.shape();
    let (t, d) = (shape[2], shape[3]);
    let half = d / 2;
    let mut cos = ArrayD::<T>::zeros(IxDyn(&[t, d]));
    let mut sin = ArrayD::<T>::zeros(IxDyn(&[t, d]));
    for pos in 0..t {
        for i in 0..half {
            let inv_freq = theta.powf(-(2.0 * i as f64) / d as f64);
            let angle = (start + pos) as f64 * inv_freq;
            for j in [i, i + half] {
                cos[[pos, j]] = T::from_f64_lossy(angle.cos());
                sin[[pos, j]] = T::from_f64_lossy(angle.sin());
            }
        }
    }
    let tape = x.tape();
    let halves = x.split(-1, &[half, half])?;
    let rotated = concat(&[halves[1].neg()?, halves[0]], -1)?;
    Ok(x.mul(tape.constant(cos))?
        .add(rotated.mul(tape.constant(sin))?)?)
}
