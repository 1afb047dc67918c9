//! The plain entry point for the common case: `softmax(Q·Kᵀ/√d)·V`, optionally causal, in `f32`.

use ndarray::{Array4, ArrayView4};

use crate::error::Result;
use crate::kernels::attention_forward;
use crate::options::AttentionOptions;

/// Scaled dot-product attention on `[batch, heads, seq, head_dim]` arrays (K and V may have fewer
/// heads than Q, dividing them), with scale `1/√head_dim` and, if `causal`, the bottom-right-aligned
/// causal mask. For masks, biases, dropout or the backward pass use [`attention_forward`] and
/// [`attention_backward`](crate::attention_backward).
///
/// # Errors
/// As [`attention_forward`].
///
/// ```
/// use ndarray::Array4;
/// let q = Array4::<f32>::ones((1, 2, 5, 8));
/// let out = fm_attention::scaled_dot_product_attention(q.view(), q.view(), q.view(), true)?;
/// assert_eq!(out.shape(), &[1, 2, 5, 8]);
/// assert!(out.iter().all(|&x| (x - 1.0).abs() < 1e-6)); // averages of ones
/// # Ok::<(), fm_attention::AttentionError>(())
/// ```
pub fn scaled_dot_product_attention(
    q: ArrayView4<'_, f32>,
    k: ArrayView4<'_, f32>,
    v: ArrayView4<'_, f32>,
    causal: bool,
) -> Result<Array4<f32>> {
    Ok(attention_forward(q, k, v, &AttentionOptions::new().causal(causal))?.output)
}
