//! Gradient statistics and in-place clipping for the gradients accumulated in a [`ParamStore`].
//!
//! [`GradStats::of`] reads every trainable parameter's accumulated gradient once and reports the
//! global L2 norm (summed by fm-optim in a fixed order, so it is the same bits for any thread count),
//! the largest absolute element, and which parameters hold a NaN or an infinity — what a NaN guard
//! and a training log need. [`clip_grad_norm`] scales the gradients in place with PyTorch's
//! `clip_grad_norm_` rule, as [`fm_optim::clip_grad_norm`] does for plain views.

use fm_tensor::{Element, ParamStore};
use ndarray::ArrayViewD;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};

/// What the accumulated gradients look like before a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradStats {
    /// Global L2 norm over every gradient (NaN or infinite when some element is).
    pub norm: f64,
    /// Largest absolute finite element.
    pub max_abs: f64,
    /// Parameters that have a gradient.
    pub params: usize,
    /// Total gradient elements.
    pub elements: usize,
    /// Names of the parameters whose gradient holds a NaN or an infinity, in store order.
    pub non_finite: Vec<String>,
}

impl GradStats {
    /// Statistics of the gradients accumulated in `store` (trainable parameters only).
    pub fn of<T: Element + fm_optim::Scalar>(store: &ParamStore<T>) -> GradStats {
        let mut views: Vec<ArrayViewD<'_, T>> = Vec::new();
        let mut max_abs = 0.0f64;
        let mut elements = 0;
        let mut non_finite = Vec::new();
        for (_, param) in store.iter().filter(|(_, p)| p.is_trainable()) {
            let Some(grad) = param.grad() else { continue };
            elements += grad.len();
            let (finite, largest) = match grad.as_slice_memory_order() {
                Some(slice) => finite_and_max_abs(slice.iter().copied()),
                // Iterating an `IxDyn` array element by element is several times slower than a
                // slice, so this path is only for non-contiguous gradients.
                None => finite_and_max_abs(grad.iter().copied()),
            };
            max_abs = max_abs.max(largest);
            if !finite {
                non_finite.push(param.name().to_string());
            }
            views.push(grad.view());
        }
        GradStats {
            norm: fm_optim::global_grad_norm(&views),
            max_abs,
            params: views.len(),
            elements,
            non_finite,
        }
    }

    /// Whether every gradient element is finite.
    pub fn is_finite(&self) -> bool {
        self.non_finite.is_empty()
    }
}

/// Whether every value is finite, and the largest absolute finite value.
fn finite_and_max_abs<T: Element>(values: impl Iterator<Item = T>) -> (bool, f64) {
    let mut finite = true;
    let mut max_abs = 0.0f64;
    for g in values {
        let v = Element::to_f64_lossless(g).abs();
        // NaN and infinity both fail `v < ∞`.
        if v < f64::INFINITY {
            max_abs = max_abs.max(v);
        } else {
            finite = false;
        }
    }
    (finite, max_abs)
}

/// Scales the accumulated gradients so that their global L2 norm is at most `max_norm` (factor
/// `min(1, max_norm / (norm + 1e-6))`, PyTorch's `clip_grad_norm_`), given the norm from
/// [`GradStats`]. Returns the factor applied (1 when nothing was clipped).
///
/// Errors when `max_norm` is not positive or `norm` is not finite (clip after the NaN guard).
pub fn clip_grad_norm<T: Element>(
    store: &mut ParamStore<T>,
    norm: f64,
    max_norm: f64,
) -> Result<f64> {
    if !(max_norm.is_finite() && max_norm > 0.0) {
        return Err(TrainError::config(
            "clip_grad_norm",
            "max_norm",
            max_norm,
            "must be finite and > 0",
        ));
    }
    if !norm.is_finite() {
        return Err(TrainError::config(
            "clip_grad_norm",
            "norm",
            norm,
            "must be finite (check gradients with GradStats and the NaN guard first)",
        ));
    }
    let factor = (max_norm / (norm + 1e-6)).min(1.0);
    if factor < 1.0 {
        store.scale_grads(T::from_f64_lossy(factor));
    }
    Ok(factor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fm_tensor::autograd::Tape;
    use ndarray::array;

    fn store_with_grads(g: [f32; 2]) -> ParamStore<f32> {
        let mut store = ParamStore::<f32>::new();
        let w = store.add("w", array![1.0f32, 1.0]).unwrap();
        let tape = Tape::new();
        let wv = tape.param(&store, w).unwrap();
        let loss = wv
            .mul(tape.constant(array![g[0], g[1]]))
            .unwrap()
            .sum()
            .unwrap();
        let grads = tape.backward(loss).unwrap();
        store.accumulate(&grads).unwrap();
        store
    }

    #[test]
    fn norm_max_and_clipping() {
        let mut store = store_with_grads([3.0, -4.0]);
        let stats = GradStats::of(&store);
        assert_eq!(stats.norm, 5.0);
        assert_eq!(stats.max_abs, 4.0);
        assert!(stats.is_finite());
        assert_eq!((stats.params, stats.elements), (1, 2));
        let factor = clip_grad_norm(&mut store, stats.norm, 1.0).unwrap();
        assert!((factor - 1.0 / (5.0 + 1e-6)).abs() < 1e-15);
        let after = GradStats::of(&store);
        assert!((after.norm - 1.0).abs() < 1e-5);
        assert_eq!(clip_grad_norm(&mut store, after.norm, 10.0).unwrap(), 1.0);
    }

    #[test]
    fn non_finite_gradients_are_named() {
        let store = store_with_grads([f32::NAN, 1.0]);
        let stats = GradStats::of(&store);
        assert_eq!(stats.non_finite, ["w"]);
        assert!(stats.norm.is_nan());
        let mut store = store;
        assert!(clip_grad_norm(&mut store, stats.norm, 1.0).is_err());
    }
}
