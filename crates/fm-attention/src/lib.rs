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
//!
//! ## Memory and threads
//!
//! The kernels never allocate a `[seq_q, seq_k]` matrix for long sequences; the forward keeps one
//! log-sum-exp per query row for the backward. Work is split over outputs only, so results are
//! bitwise identical for any number of threads.

pub mod autograd;
pub mod error;
mod fused;
mod kernels;
pub mod kv_cache;
pub mod naive;
mod options;
pub mod positional;
mod problem;
mod sdpa;

pub use error::{AttentionError, Result};
pub use kernels::{attention_backward, attention_forward, AttentionGrads, AttentionOutput};
pub use kv_cache::KvCache;
pub use options::{AttentionDropout, AttentionOptions};
pub use sdpa::scaled_dot_product_attention;
