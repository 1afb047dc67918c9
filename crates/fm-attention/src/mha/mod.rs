//! Multi-head attention as a module: Q/K/V/O projections around the fused kernel, on fm-tensor's tape.
//!
//! [`MultiHeadAttention`] holds the ids of its parameters, which live in a caller's
//! [`ParamStore`] under stable names (`"<prefix>.q_proj.weight"`, `.k_proj`, `.v_proj`, `.o_proj`,
//! each `[out, in]` as in PyTorch, plus `.bias` when the config has biases). A call binds them to the
//! input's tape and records:
//!
//! ```text
//! x [batch, seq, d_model] ─ q_proj ─ split heads ─ RoPE? ─┐
//! x or memory ─ k_proj ─ split heads (n_kv_heads) ─ RoPE? ─┼─ attention (causal? padding? ALiBi? dropout?)
//! x or memory ─ v_proj ─ split heads (n_kv_heads) ─────────┘        └─ merge heads ─ o_proj ─ out
//! ```
//!
//! The attention itself is [`crate::autograd::attention`], fm-attention's fused kernel recorded through
//! fm-tensor's public custom-op extension point; fm-tensor has no special case for it.
//!
//! Three entry points:
//! - [`forward`](MultiHeadAttention::forward): self-attention over a whole sequence (training, prefill
//!   without a cache).
//! - [`forward_cross`](MultiHeadAttention::forward_cross): queries from `x`, keys and values from a
//!   `memory` (encoder–decoder attention). Rotary embeddings and ALiBi describe positions within one
//!   sequence, so they apply to self-attention only.
//! - [`decode_step`](MultiHeadAttention::decode_step): the next `new` tokens of a sequence whose
//!   earlier keys and values sit in a [`KvCache`]. It computes the projections only for the new
//!   tokens and attends over the cache, so a step costs a fixed part plus a part linear in the cache
//!   length. It is for generation: the cached keys and values enter the tape as constants.

mod config;
mod projection;
#[cfg(test)]
mod tests;

pub use config::MhaConfig;

use fm_tensor::autograd::{ParamId, ParamStore, Tape, Var};
use fm_tensor::Element;
use ndarray::{ArrayView2, Ix4};

use crate::autograd::attention;
use crate::error::{AttentionError, Result};
use crate::kv_cache::KvCache;
use crate::positional::{alibi_slopes, RopePositions, RotaryEmbedding};
use crate::{attention_forward, AttentionOptions};
use projection::{BoundProjection, Projection};

/// Per-call inputs of a [`MultiHeadAttention`] call besides the hidden states.
///
/// ```
/// use fm_attention::MhaOptions;
/// use ndarray::array;
/// let padding = array![[true, true, false]]; // batch 1: the third key is padding
/// let opts = MhaOptions::new().key_padding(padding.view()).training(42);
/// # let _ = opts;
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct MhaOptions<'a> {
    key_padding: Option<ArrayView2<'a, bool>>,
    position_ids: Option<ArrayView2<'a, usize>>,
    dropout_seed: Option<u64>,
}

impl<'a> MhaOptions<'a> {
    /// No padding, positions from 0 (or the cache length), no dropout.
    pub fn new() -> Self {
        Self::default()
    }

    /// `[batch, seq_k]`, `true` where the key is real. For [`decode_step`](MultiHeadAttention::decode_step)
    /// `seq_k` is the cache length after the step.
    pub fn key_padding(mut self, mask: ArrayView2<'a, bool>) -> Self {
        self.key_padding = Some(mask);
        self
    }

    /// `[batch, seq_q]` positions for the rotary embeddings (left-padded batches); otherwise queries sit
    /// at `0..seq` (or after the cached positions when decoding).
    pub fn position_ids(mut self, ids: ArrayView2<'a, usize>) -> Self {
        self.position_ids = Some(ids);
        self
    }

    /// A training call: attention dropout (the config's probability) with this seed. Without it a call
    /// applies no dropout.
    pub fn training(mut self, seed: u64) -> Self {
        self.dropout_seed = Some(seed);
        self
    }
}

/// Multi-head attention with Q/K/V/O projections, grouped-query heads, optional RoPE or ALiBi, masks,
/// dropout, and incremental decoding with a [`KvCache`].
///
/// ```
/// use fm_attention::{MhaConfig, MhaOptions, MultiHeadAttention};
/// use fm_tensor::autograd::{ParamStore, Tape};
/// use ndarray::Array3;
///
/// let mut store = ParamStore::<f32>::new();
/// let config = MhaConfig::new(16, 4).kv_heads(2).causal(true).rope(10_000.0);
/// let mha = MultiHeadAttention::new(&mut store, "layer0.attn", config, 7)?;
/// assert!(store.id("layer0.attn.q_proj.weight").is_some());
///
/// let tape = Tape::new();
/// let x = tape.constant(Array3::<f32>::ones((2, 5, 16)));
/// let y = mha.forward(&store, x, &MhaOptions::new())?;
/// assert_eq!(y.shape(), vec![2, 5, 16]);
/// store.accumulate(&tape.backward(y.sum()?)?)?; // gradients for all projection weights
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct MultiHeadAttention {
    config: MhaConfig,
    q_proj: Projection,
    k_proj: Projection,
    v_proj: Projection,
    o_proj: Projection,
    rope: Option<RotaryEmbedding>,
    alibi_slopes: Option<Vec<f64>>,
}

/// The four projections bound to one tape.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BoundMha<'t, T: Element> {
    pub(crate) q: BoundProjection<'t, T>,
    pub(crate) k: BoundProjection<'t, T>,
    pub(crate) v: BoundProjection<'t, T>,
    pub(crate) o: BoundProjection<'t, T>,
}

/// `"<prefix>.<name>"`, or `"<name>"` for an empty prefix.
fn param_name(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

impl MultiHeadAttention {
    /// Validates `config` and adds the projections to `store` under `prefix` (initialised as
    /// `nn.Linear`: U(−1/√in, 1/√in), seeded by `seed`).
    pub fn new<T: Element>(
        store: &mut ParamStore<T>,
        prefix: &str,
        config: MhaConfig,
        seed: u64,
    ) -> Result<Self> {
        config.validate()?;
        let (d, hd) = (config.d_model, config.head_dim());
        let (q_out, kv_out) = (config.n_heads * hd, config.n_kv_heads * hd);
        let mut create = |name: &str, i: usize, o: usize, salt: u64| {
            Projection::create(
                store,
                &param_name(prefix, name),
                i,
                o,
                config.bias,
                seed.wrapping_add(salt),
            )
        };
        let q_proj = create("q_proj", d, q_out, 1)?;
        let k_proj = create("k_proj", d, kv_out, 2)?;
        let v_proj = create("v_proj", d, kv_out, 3)?;
        let o_proj = create("o_proj", q_out, d, 4)?;
        Self::assemble(config, [q_proj, k_proj, v_proj, o_proj])
    }

    /// A layer over weights already in `store` under `prefix` (a loaded checkpoint); every name and
    /// shape the config implies is checked.
    pub fn from_store<T: Element>(
        store: &ParamStore<T>,
        prefix: &str,
        config: MhaConfig,
    ) -> Result<Self> {
        config.validate()?;
        let (d, hd) = (config.d_model, config.head_dim());
        let (q_out, kv_out) = (config.n_heads * hd, config.n_kv_heads * hd);
        let find = |name: &str, i: usize, o: usize| {
            Projection::find(store, &param_name(prefix, name), i, o, config.bias)
        };
        let projections = [
            find("q_proj", d, q_out)?,
            find("k_proj", d, kv_out)?,
            find("v_proj", d, kv_out)?,
            find("o_proj", q_out, d)?,
        ];
        Self::assemble(config, projections)
    }

    fn assemble(
        config: MhaConfig,
        [q_proj, k_proj, v_proj, o_proj]: [Projection; 4],
    ) -> Result<Self> {
        let rope = config
            .rope
            .map(|base| RotaryEmbedding::new(config.head_dim(), base))
            .transpose()?;
        let alibi_slopes = config
            .alibi
            .then(|| alibi_slopes(config.n_heads))
            .transpose()?;
        Ok(MultiHeadAttention {
            config,
            q_proj,
            k_proj,
            v_proj,
            o_proj,
            rope,
            alibi_slopes,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &MhaConfig {
        &self.config
    }

    /// Ids of every parameter: q, k, v, o weights, then their biases (if any).
    pub fn params(&self) -> Vec<ParamId> {
        let projections = [&self.q_proj, &self.k_proj, &self.v_proj, &self.o_proj];
        let weights = projections.iter().map(|p| p.weight);
        let biases = projections.iter().filter_map(|p| p.bias);
        weights.chain(biases).collect()
    }

    /// An empty cache sized for this layer: `batch` sequences of up to `capacity` positions.
    pub fn new_cache<T: Element>(&self, batch: usize, capacity: usize) -> Result<KvCache<T>> {
        KvCache::new(
            batch,
            self.config.n_kv_heads,
            self.config.head_dim(),
            capacity,
        )
    }

    fn bind<'t, T: Element>(
        &self,
        tape: &'t Tape<T>,
        store: &ParamStore<T>,
    ) -> Result<BoundMha<'t, T>> {
        Ok(BoundMha {
            q: self.q_proj.bind(tape, store)?,
            k: self.k_proj.bind(tape, store)?,
            v: self.v_proj.bind(tape, store)?,
            o: self.o_proj.bind(tape, store)?,
        })
    }

    /// Self-attention over `x` `[batch, seq, d_model]`; returns `[batch, seq, d_model]`.
    pub fn forward<'t, T: Element>(
        &self,
        store: &ParamStore<T>,
        x: Var<'t, T>,
        opts: &MhaOptions<'_>,
    ) -> Result<Var<'t, T>> {
        let weights = self.bind(x.tape(), store)?;
        self.forward_bound(&weights, x, None, opts)
    }

    /// Cross-attention: queries from `x` `[batch, seq_q, d_model]`, keys and values from `memory`
    /// `[batch, seq_k, d_model]`; returns `[batch, seq_q, d_model]`. No RoPE or ALiBi (see the module
    /// doc); a causal config masks bottom-right aligned.
    pub fn forward_cross<'t, T: Element>(
        &self,
        store: &ParamStore<T>,
        x: Var<'t, T>,
        memory: Var<'t, T>,
        opts: &MhaOptions<'_>,
    ) -> Result<Var<'t, T>> {
        let weights = self.bind(x.tape(), store)?;
        self.forward_bound(&weights, x, Some(memory), opts)
    }

    /// Checks that `x` is `[batch, seq, d_model]` and returns `(batch, seq)`.
    fn check_hidden(
        &self,
        op: &'static str,
        what: &str,
        shape: &[usize],
    ) -> Result<(usize, usize)> {
        match *shape {
            [batch, seq, d] if d == self.config.d_model && seq > 0 => Ok((batch, seq)),
            _ => Err(AttentionError::shape(
                op,
                format!(
                    "{what} {shape:?} must be [batch, seq ≥ 1, d_model {}]",
                    self.config.d_model
                ),
            )),
        }
    }

    /// `[batch, seq, heads · head_dim]` → `[batch, heads, seq, head_dim]`.
    fn split_heads<'t, T: Element>(&self, x: Var<'t, T>, heads: usize) -> Result<Var<'t, T>> {
        let shape = x.shape();
        let hd = self.config.head_dim() as isize;
        Ok(
            x.reshape(&[shape[0] as isize, shape[1] as isize, heads as isize, hd])?
                .permute(&[0, 2, 1, 3])?,
        )
    }

    /// `[batch, heads, seq, head_dim]` → `[batch, seq, heads · head_dim]`.
    fn merge_heads<'t, T: Element>(&self, x: Var<'t, T>) -> Result<Var<'t, T>> {
        let shape = x.shape();
        Ok(x.permute(&[0, 2, 1, 3])?.reshape(&[
            shape[0] as isize,
            shape[2] as isize,
            (shape[1] * shape[3]) as isize,
        ])?)
    }

    /// The kernel options of one call: causal, padding, ALiBi (self-attention only), dropout.
    fn attention_options(&self, opts: &MhaOptions<'_>, self_attention: bool) -> AttentionOptions {
        let mut attn = AttentionOptions::new().causal(self.config.causal);
        if let Some(mask) = opts.key_padding {
            attn = attn.key_padding(mask.to_owned());
        }
        if let (true, Some(slopes)) = (self_attention, &self.alibi_slopes) {
            attn = attn.alibi_slopes(slopes.clone());
        }
        if let (Some(seed), true) = (opts.dropout_seed, self.config.dropout > 0.0) {
            attn = attn.dropout(self.config.dropout, seed);
        }
        attn
    }

    fn rope_positions<'a>(&self, opts: &MhaOptions<'a>, start: usize) -> RopePositions<'a> {
        match opts.position_ids {
            Some(ids) => RopePositions::Ids(ids),
            None => RopePositions::Start(start),
        }
    }

    /// The whole forward with the weights already bound (gradient checks bind their own).
    pub(crate) fn forward_bound<'t, T: Element>(
        &self,
        w: &BoundMha<'t, T>,
        x: Var<'t, T>,
        memory: Option<Var<'t, T>>,
        opts: &MhaOptions<'_>,
    ) -> Result<Var<'t, T>> {
        let op = if memory.is_some() {
            "MultiHeadAttention::forward_cross"
        } else {
            "MultiHeadAttention::forward"
        };
        let (batch, _) = self.check_hidden(op, "input", &x.shape())?;
        let source = match memory {
            Some(m) => {
                let (memory_batch, _) = self.check_hidden(op, "memory", &m.shape())?;
                if memory_batch != batch {
                    return Err(AttentionError::shape(
                        op,
                        format!(
                            "input {:?} and memory {:?} have different batch sizes",
                            x.shape(),
                            m.shape()
                        ),
                    ));
                }
                m
            }
            None => x,
        };
        let mut q = self.split_heads(w.q.apply(x)?, self.config.n_heads)?;
        let mut k = self.split_heads(w.k.apply(source)?, self.config.n_kv_heads)?;
        let v = self.split_heads(w.v.apply(source)?, self.config.n_kv_heads)?;
        let self_attention = memory.is_none();
        if let (true, Some(rope)) = (self_attention, &self.rope) {
            let positions = self.rope_positions(opts, 0);
            q = rope.apply_at(q, positions)?;
            k = rope.apply_at(k, positions)?;
        }
        let out = attention(q, k, v, &self.attention_options(opts, self_attention))?;
        w.o.apply(self.merge_heads(out)?)
    }

    /// Attends the next `new` tokens `x` `[batch, new, d_model]` over the cached positions plus
    /// themselves, appending their keys and values to `cache`; returns `[batch, new, d_model]`, equal to
    /// the last `new` rows of [`forward`](Self::forward) on the whole sequence.
    ///
    /// Queries and keys sit at positions `cache.len() ..` (RoPE and ALiBi), or at
    /// [`MhaOptions::position_ids`]. On error the cache is unchanged — in particular
    /// [`AttentionError::CacheFull`] when the new tokens do not fit.
    ///
    /// Gradients do not flow into the cache: on a recording tape the cached keys and values are
    /// copied in as constants; on a [`Tape::no_grad`] tape the kernel reads the cache in place (the fast
    /// path for generation).
    pub fn decode_step<'t, T: Element>(
        &self,
        store: &ParamStore<T>,
        x: Var<'t, T>,
        cache: &mut KvCache<T>,
        opts: &MhaOptions<'_>,
    ) -> Result<Var<'t, T>> {
        const OP: &str = "MultiHeadAttention::decode_step";
        let (batch, new) = self.check_hidden(OP, "input", &x.shape())?;
        let (kvh, hd) = (self.config.n_kv_heads, self.config.head_dim());
        if (cache.batch(), cache.kv_heads(), cache.head_dim()) != (batch, kvh, hd) {
            return Err(AttentionError::shape(
                OP,
                format!(
                    "cache [batch {}, kv_heads {}, capacity {}, head_dim {}] does not fit input {:?} with n_kv_heads {kvh}, head_dim {hd}",
                    cache.batch(),
                    cache.kv_heads(),
                    cache.capacity(),
                    cache.head_dim(),
                    x.shape()
                ),
            ));
        }
        cache.check_append(OP, &[batch, kvh, new, hd])?;
        let tape = x.tape();
        let w = self.bind(tape, store)?;
        let start = cache.len();
        let mut q = self.split_heads(w.q.apply(x)?, self.config.n_heads)?;
        let mut k = self.split_heads(w.k.apply(x)?, kvh)?;
        let v = self.split_heads(w.v.apply(x)?, kvh)?;
        if let Some(rope) = &self.rope {
            let positions = self.rope_positions(opts, start);
            q = rope.apply_at(q, positions)?;
            k = rope.apply_at(k, positions)?;
        }
        let attn_opts = self.attention_options(
            &MhaOptions {
                dropout_seed: None,
                ..*opts
            },
            true,
        );
        // Check the kernel's inputs before touching the cache, so an error leaves it unchanged.
        if let Some(mask) = opts.key_padding {
            if mask.dim() != (batch, start + new) {
                return Err(AttentionError::shape(
                    OP,
                    format!(
                        "key padding {:?} must be [batch {batch}, cache length after the step {}]",
                        mask.shape(),
                        start + new
                    ),
                ));
            }
        }
        let (k_new, v_new) = (k.value(), v.value());
        cache.append(as_4d(k_new.view())?, as_4d(v_new.view())?)?;
        let out = if tape.is_grad_enabled() {
            let keys = tape.constant(cache.keys().to_owned());
            let values = tape.constant(cache.values().to_owned());
            attention(q, keys, values, &attn_opts)
        } else {
            let q_value = q.value();
            attention_forward(
                as_4d(q_value.view())?,
                cache.keys(),
                cache.values(),
                &attn_opts,
            )
            .map(|out| tape.constant(out.output))
        };
        let out = match out {
            Ok(out) => out,
            Err(e) => {
                // Roll the append back so a failed step leaves the cache as it was.
                cache.truncate(start)?;
                return Err(e);
            }
        };
        w.o.apply(self.merge_heads(out)?)
    }
}

fn as_4d<'a, T>(x: ndarray::ArrayViewD<'a, T>) -> Result<ndarray::ArrayView4<'a, T>> {
    let shape = x.shape().to_vec();
    x.into_dimensionality::<Ix4>().map_err(|_| {
        AttentionError::shape(
            "MultiHeadAttention",
            format!("expected 4 axes, got {shape:?}"),
        )
    })
}
