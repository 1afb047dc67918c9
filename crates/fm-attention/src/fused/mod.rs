//! The fused kernels (first cut: the per-head reference, replaced by the tiled kernels next).

use ndarray::{ArrayView3, ArrayView4};

use fm_tensor::Element;

use crate::error::Result;
use crate::kernels::{AttentionGrads, AttentionOutput};
use crate::naive;
use crate::options::AttentionOptions;

pub(crate) fn forward<T: Element>(
    q: ArrayView4<'_, T>,
    k: ArrayView4<'_, T>,
    v: ArrayView4<'_, T>,
    opts: &AttentionOptions,
) -> Result<AttentionOutput<T>> {
    naive::attention_forward(q, k, v, opts)
}

pub(crate) fn backward<T: Element>(
    q: ArrayView4<'_, T>,
    k: ArrayView4<'_, T>,
    v: ArrayView4<'_, T>,
    output: ArrayView4<'_, T>,
    lse: ArrayView3<'_, T>,
    grad_output: ArrayView4<'_, T>,
    opts: &AttentionOptions,
) -> Result<AttentionGrads<T>> {
    naive::attention_backward(q, k, v, output, lse, grad_output, opts)
}
