//! Kernels on plain ndarray: the ops a Transformer needs, forward and backward as separate functions.
//!
//! Every kernel takes `ndarray` views (usually [`ArrayViewD`](ndarray::ArrayViewD)) and returns new
//! arrays in standard layout; nothing here knows about autograd, which wraps these functions. A
//! backward function sits beside its forward, takes what it needs (inputs and/or forward output,
//! plus the output's gradient) and returns the gradients of the inputs. Bad input (mismatched
//! shapes, an axis past the rank) is an error naming the op and the shapes, never a panic.
//!
//! # Map
//! - [`broadcast`]: NumPy broadcasting rules ([`broadcast_shape`](broadcast::broadcast_shape)) and
//!   their adjoint, [`sum_to_shape`](broadcast::sum_to_shape).
//! - [`elementwise`]: the op table (traits [`UnaryOp`](elementwise::UnaryOp) and
//!   [`BinaryOp`](elementwise::BinaryOp), each op declared once with its derivative) and the
//!   arithmetic ops: `add sub mul div pow maximum minimum`, `neg exp log sqrt rsqrt abs square
//!   reciprocal`, `add_scalar mul_scalar powf`.
//! - [`activation`]: `relu gelu gelu_tanh silu tanh sigmoid`, declared in the same table.
//! - [`special`]: `erf` and `erfc` in f32 and f64, for the exact GELU.
//! - [`reduce`]: `sum mean max min` over chosen axes with `keepdim`, and over everything.
//! - [`softmax`]: `softmax` and `log_softmax` along an axis.
//! - [`norm`]: `layer_norm` and `rms_norm` over the last axis, returning the statistics their
//!   backward passes need.
//! - [`shape`]: `reshape transpose permute slice_axis concat split chunk index_select squeeze
//!   unsqueeze broadcast_to`, and [`normalize_axis`](shape::normalize_axis) for negative axes.
//! - [`embedding`]: row lookup by token id, with a deterministic scatter-add backward.
//! - [`dropout`]: seeded inverted dropout whose mask depends only on the seed and element index.
//!
//! # Threads and determinism
//! Kernels run in the caller's rayon pool (see [`Compute`](crate::Compute)) and go parallel only
//! above a size threshold. Work is split over independent outputs (elements, rows, column blocks),
//! never along a reduction; where partial sums are combined (long reductions, the parameter
//! gradients of the norms) the partition is fixed by the shape. Every result is therefore bitwise
//! the same for any number of threads.

pub mod activation;
pub mod broadcast;
pub mod dropout;
pub mod elementwise;
pub mod embedding;
pub mod norm;
pub(crate) mod parallel;
pub mod reduce;
pub mod shape;
pub mod softmax;
pub mod special;

#[cfg(test)]
pub(crate) mod testing;
