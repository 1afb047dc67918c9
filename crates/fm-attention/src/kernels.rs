//! The kernels' public face: [`attention_forward`] and [`attention_backward`] on plain ndarray, and the
//! arrays they return.
//!
//! Shapes: Q `[batch, heads, seq_q, head_dim]`, K `[batch, kv_heads, seq_k, head_dim]`, V `[batch,
//! kv_heads, seq_k, v_dim]` with `heads % kv_heads == 0` (grouped-query attention; `kv_heads = 1` is
//! multi-query). Query head `h` reads KV head `h / (heads / kv_heads)`.

use ndarray::{Array3, Array4, ArrayView3, ArrayView4};

use fm_tensor::Element;

use crate::error::Result;
use crate::fused;
use crate::options::AttentionOptions;

/// What the forward pass returns.
#[derive(Debug, Clone, PartialEq)]
pub struct AttentionOutput<T> {
    /// `[batch, heads, seq_q, v_dim]`.
    pub output: Array4<T>,
    /// `[batch, heads, seq_q]`: the log-sum-exp of each query row's scores (before dropout), all the
    /// backward pass needs to rebuild the softmax; `−∞` for a fully masked row.
    pub lse: Array3<T>,
}

/// What the backward pass returns: ∂loss/∂Q, ∂loss/∂K, ∂loss/∂V, each shaped like its input.
#[derive(Debug, Clone, PartialEq)]
pub struct AttentionGrads<T> {
    /// Like Q.
    pub dq: Array4<T>,
    /// Like K (summed over the query heads sharing each KV head).
    pub dk: Array4<T>,
    /// Like V (summed likewise).
    pub dv: Array4<T>,
}

/// `softmax(scale·Q·Kᵀ + bias + mask)·V`, fused and tiled (see the [crate docs](crate) for the
/// algorithm and its memory).
///
/// # Errors
/// [`AttentionError::Shape`](crate::AttentionError::Shape) when Q, K, V or a mask do not fit together
/// (naming every shape), or a sequence or head_dim is empty; `InvalidConfig` when the heads are not
/// divisible by the KV heads or dropout's `p` is outside `[0, 1)`.
pub fn attention_forward<T: Element>(
    q: ArrayView4<'_, T>,
    k: ArrayView4<'_, T>,
    v: ArrayView4<'_, T>,
    opts: &AttentionOptions,
) -> Result<AttentionOutput<T>> {
    fused::forward(q, k, v, opts)
}

/// Gradients of [`attention_forward`] given its `output`, its `lse` and ∂loss/∂output.
///
/// # Errors
/// As [`attention_forward`], and a shape error when `output`, `lse` or `grad_output` do not have the
/// shapes the forward pass produces.
pub fn attention_backward<T: Element>(
    q: ArrayView4<'_, T>,
    k: ArrayView4<'_, T>,
    v: ArrayView4<'_, T>,
    output: ArrayView4<'_, T>,
    lse: ArrayView3<'_, T>,
    grad_output: ArrayView4<'_, T>,
    opts: &AttentionOptions,
) -> Result<AttentionGrads<T>> {
    fused::backward(q, k, v, output, lse, grad_output, opts)
}
