//! # fm-attention
//!
//! Attention for Transformers on the CPU, as a crate of its own: fused, tiled scaled dot-product
//! attention on plain ndarray (forward and backward), masks, positional encodings, a KV cache for
//! decoding, and multi-head attention usable inside fm-tensor's autograd through its public
//! custom-op extension point.
//!
//! ## A first example: attention weights you can read
//!
//! Three tokens with values `e1, e2, e3`. Token 1 attends to them with weights `w1 = [0.3, 0.5, 0.2]`,
//! token 2 with `w2 = [0.4, 0.4, 0.2]`, token 3 with `w3 = [0.1, 0.5, 0.4]`, so its output is
//! `z_i = Σ_j w_ij·e_j`. Scores `s_ij = ln w_ij` have exactly these weights as their softmax (each
//! row of weights sums to one); we get them as `q_i·k_j` with `q_i = ln w_i`, `k_j` the j-th unit
//! vector and scale 1:
//!
//! ```
//! use fm_attention::{attention_forward, AttentionOptions};
//! use ndarray::{array, Array4};
//!
//! let w = array![[0.3, 0.5, 0.2], [0.4, 0.4, 0.2], [0.1, 0.5, 0.4]];
//! let e = array![[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]; // e1, e2, e3
//! let q = w.mapv(f64::ln).into_shape_with_order((1, 1, 3, 3))?;
//! let k = Array4::from_shape_fn((1, 1, 3, 3), |(_, _, j, d)| if j == d { 1.0 } else { 0.0 });
//! let v = e.clone().into_shape_with_order((1, 1, 3, 2))?;
//!
//! let out = attention_forward(q.view(), k.view(), v.view(), &AttentionOptions::new().scale(1.0))?;
//! // z1 = 0.3·e1 + 0.5·e2 + 0.2·e3 = [0.5, 0.7], z2 = [0.6, 0.6], z3 = [0.5, 0.9].
//! let z = array![[0.5, 0.7], [0.6, 0.6], [0.5, 0.9]];
//! for i in 0..3 {
//!     for c in 0..2 {
//!         assert!((out.output[[0, 0, i, c]] - z[[i, c]]).abs() < 1e-12);
//!     }
//!     // log Σ_j exp(ln w_ij) = ln 1 = 0.
//!     assert!(out.lse[[0, 0, i]].abs() < 1e-12);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Where to look next
//!
//! 1. [`scaled_dot_product_attention`]: the common case (`f32`, optionally causal) in one call.
//! 2. [`attention_forward`] and [`attention_backward`] with [`AttentionOptions`]: causal masks
//!    (also for `seq_q ≠ seq_k`), key padding, additive masks, ALiBi, scale, seeded dropout,
//!    grouped-query attention; `f32` or `f64`.
//! 3. [`autograd::attention`]: the same on fm-tensor's tape, differentiable.
//! 4. [`naive`]: the reference that materialises the scores, for tests and benchmarks.
//! 5. [`MultiHeadAttention`] and [`MhaConfig`]: the attention layer (projections, GQA/MQA, masks,
//!    RoPE or ALiBi, dropout), self- and cross-attention, [`decode_step`](MultiHeadAttention::decode_step).
//! 6. [`positional`]: sinusoidal, learned, rotary (RoPE) and ALiBi encodings.
//! 7. [`KvCache`]: bounded per-layer key/value cache for incremental decoding.
//!
//! ## Modules: multi-head attention, positions, decoding
//!
//! Above the kernels sit the pieces a Transformer layer is made of:
//!
//! - [`MultiHeadAttention`] with [`MhaConfig`]: Q/K/V/O projections whose weights live in a
//!   [`ParamStore`](fm_tensor::ParamStore) under stable names (`"<prefix>.q_proj.weight"`, ...),
//!   grouped-query and multi-query heads, causal and key-padding masks, RoPE or ALiBi, attention
//!   dropout; self- and cross-attention on fm-tensor's tape through [`autograd::attention`].
//! - [`positional`]: sinusoidal and learned absolute encodings, rotary embeddings (a custom op whose
//!   backward is the inverse rotation), ALiBi slopes and biases.
//! - [`KvCache`]: one layer's keys and values for incremental decoding, bounded, with
//!   [`AttentionError::CacheFull`] when full; [`MultiHeadAttention::decode_step`] uses it.
//!
//! Train on whole sequences, then generate token by token; each step equals the last row of a full
//! recomputation:
//!
//! ```
//! use fm_attention::{MhaConfig, MhaOptions, MultiHeadAttention};
//! use fm_tensor::autograd::{ParamStore, Tape};
//! use ndarray::{s, Array3};
//!
//! let mut store = ParamStore::<f64>::new();
//! let config = MhaConfig::new(16, 4).kv_heads(2).causal(true).rope(10_000.0);
//! let attn = MultiHeadAttention::new(&mut store, "attn", config, 0)?;
//! let x = Array3::from_shape_fn((1, 6, 16), |(_, t, i)| ((t * 16 + i) as f64 * 0.1).sin());
//!
//! // Training: the whole sequence on a recording tape, gradients for the four projections.
//! let tape = Tape::new();
//! let y = attn.forward(&store, tape.constant(x.clone()), &MhaOptions::new())?;
//! store.accumulate(&tape.backward(y.square()?.mean()?)?)?;
//! assert!(store.grad(store.id("attn.k_proj.weight").unwrap()).is_some());
//!
//! // Generation: one token per step with a cache of up to 6 positions.
//! let mut cache = attn.new_cache::<f64>(1, 6)?;
//! for t in 0..6 {
//!     let step = Tape::no_grad();
//!     let token = step.constant(x.slice(s![.., t..t + 1, ..]).to_owned());
//!     let out = attn.decode_step(&store, token, &mut cache, &MhaOptions::new())?.value();
//!     let full = y.value().into_dimensionality::<ndarray::Ix3>()?;
//!     for (a, b) in out.view().iter().zip(full.slice(s![.., t, ..])) {
//!         assert!((a - b).abs() < 1e-12);
//!     }
//! }
//! let step = Tape::no_grad();
//! let one_more = step.constant(Array3::zeros((1, 1, 16)));
//! assert!(attn.decode_step(&store, one_more, &mut cache, &MhaOptions::new()).is_err()); // cache full
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Memory and threads
//!
//! The kernels never allocate a `[seq_q, seq_k]` matrix for long sequences; the forward keeps one
//! log-sum-exp per query row for the backward. Their scratch memory (tiles, and the blocks of Q, K,
//! V and dO packed once for the GEMM micro-kernels) grows linearly with the sequence length. Work is split over outputs only, so results are
//! bitwise identical for any number of threads.

pub mod autograd;
pub mod error;
mod fused;
mod kernels;
pub mod kv_cache;
pub mod mha;
pub mod naive;
mod options;
pub mod positional;
mod problem;
mod sdpa;

pub use error::{AttentionError, Result};
pub use kernels::{attention_backward, attention_forward, AttentionGrads, AttentionOutput};
pub use kv_cache::KvCache;
pub use mha::{MhaConfig, MhaOptions, MultiHeadAttention};
pub use options::{AttentionDropout, AttentionOptions};
pub use sdpa::scaled_dot_product_attention;
