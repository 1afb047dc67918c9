//! Gradient clipping and what to do with non-finite gradients.
//!
//! An optimizer configured with a [`GradClip`] clips while it updates: each gradient element is first
//! clamped to `[−max_value, max_value]`, then all gradients are scaled by
//! `min(1, max_norm / (‖g‖ + 1e-6))` where `‖g‖` is the global L2 norm over every parameter (of the
//! value-clamped gradients) — PyTorch's `clip_grad_value_` followed by `clip_grad_norm_`. The
//! gradients themselves are not modified (the scale is folded into the update), which saves a pass
//! over memory.
//!
//! For gradients you own and want clipped in place, [`clip_grad_norm`] and [`clip_grad_value`] work
//! on any list of mutable ndarray views.
//!
//! Norms are summed in `f64` over fixed-size chunks combined in a fixed order, so the result is the
//! same bits for any number of threads.

use ndarray::{ArrayViewD, ArrayViewMutD};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{check_positive, OptimError, Result};
use crate::rule::interleaved_blocks;
use crate::scalar::Scalar;

/// Elements per chunk of the parallel norm and finiteness check (1 MiB of `f32`: long enough for the
/// four read streams of a chunk to reach full speed); fixed, so the summation order is too.
pub(crate) const NORM_CHUNK: usize = 1 << 18;

/// Gradient clipping settings (both off by default).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct GradClip {
    /// Largest global L2 norm of all gradients together.
    pub max_norm: Option<f64>,
    /// Largest absolute value of any gradient element.
    pub max_value: Option<f64>,
}

impl GradClip {
    /// No clipping.
    pub fn none() -> Self {
        GradClip::default()
    }

    /// Clips by global norm.
    pub fn by_norm(max_norm: f64) -> Result<Self> {
        check_positive("GradClip", "max_norm", max_norm)?;
        Ok(GradClip {
            max_norm: Some(max_norm),
            max_value: None,
        })
    }

    /// Clips each element by value.
    pub fn by_value(max_value: f64) -> Result<Self> {
        check_positive("GradClip", "max_value", max_value)?;
        Ok(GradClip {
            max_norm: None,
            max_value: Some(max_value),
        })
    }

    /// Adds value clipping (applied before norm clipping).
    pub fn and_value(mut self, max_value: f64) -> Result<Self> {
        check_positive("GradClip", "max_value", max_value)?;
        self.max_value = Some(max_value);
        Ok(self)
    }

    /// Checks both bounds (for settings read from a file).
    pub fn validate(&self) -> Result<()> {
        if let Some(v) = self.max_norm {
            check_positive("GradClip", "max_norm", v)?;
        }
        if let Some(v) = self.max_value {
            check_positive("GradClip", "max_value", v)?;
        }
        Ok(())
    }
}

/// What a step does when a gradient holds NaN or ±infinity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum NonFinitePolicy {
    /// Refuse the step with [`OptimError::NonFiniteGradient`]; nothing is updated. Costs one read of
    /// the gradients before the update (free when clipping by norm, which reads them anyway).
    #[default]
    Error,
    /// Skip the step: nothing is updated, the step counter does not advance, and the step's report
    /// says so (what mixed-precision loss scaling wants).
    Skip,
    /// Do not check: a non-finite gradient propagates into its parameter. For callers who check
    /// elsewhere and want the last few percent of bandwidth.
    Unchecked,
}

/// `clamp(x, −bound, bound)` that lets NaN through (so it is never silently replaced).
#[inline(always)]
pub(crate) fn clamp_abs<T: Scalar>(x: T, bound: T) -> T {
    if x > bound {
        bound
    } else if x < -bound {
        -bound
    } else {
        x
    }
}

/// Independent accumulators of the vectorised reductions (eight `f64` lanes: one 512-bit vector).
const LANES: usize = 8;

/// Sum of squares of `clamp(g)` over one chunk (in `f64`, eight lanes combined in a fixed order), and
/// whether every element was finite. The chunk is read as four interleaved streams (see
/// [`interleaved_blocks`]), which keeps more memory reads in flight than one.
#[inline(always)]
fn chunk_sum_sq_body<T: Scalar>(g: &[T], bound: T) -> (f64, bool) {
    let mut sum = [0.0f64; LANES];
    // `x · 0` is ±0 for a finite x and NaN for ±inf or NaN, and a NaN stays in a lane's sum.
    let mut non_finite = [T::zero(); LANES];
    let mut rest_sum = 0.0;
    for range in interleaved_blocks::<4>(g.len()) {
        let chunks = g[range].chunks_exact(LANES);
        for &v in chunks.remainder() {
            non_finite[0] = non_finite[0] + v * T::zero();
            let c = clamp_abs(v, bound).to_f64_lossless();
            rest_sum += c * c;
        }
        for c in chunks {
            for i in 0..LANES {
                non_finite[i] = non_finite[i] + c[i] * T::zero();
                let v = clamp_abs(c[i], bound).to_f64_lossless();
                sum[i] += v * v;
            }
        }
    }
    let total = sum.iter().sum::<f64>() + rest_sum;
    (total, non_finite.iter().all(|&x| x == T::zero()))
}

/// Whether every element of a chunk is finite (the check alone, when no norm is needed), reading it
/// as four interleaved streams.
#[inline(always)]
fn chunk_finite_body<T: Scalar>(g: &[T]) -> bool {
    const WIDE: usize = 2 * LANES;
    // As above: a lane's sum of `x · 0` is 0 exactly when all its elements were finite.
    let mut non_finite = [T::zero(); WIDE];
    for range in interleaved_blocks::<4>(g.len()) {
        let chunks = g[range].chunks_exact(WIDE);
        for &v in chunks.remainder() {
            non_finite[0] = non_finite[0] + v * T::zero();
        }
        for c in chunks {
            for i in 0..WIDE {
                non_finite[i] = non_finite[i] + c[i] * T::zero();
            }
        }
    }
    non_finite.iter().all(|&x| x == T::zero())
}

crate::rule::multiversion! {
    fn chunk_sum_sq_simd<T>(g: &[T], bound: T) -> (f64, bool) = chunk_sum_sq_body;
}
crate::rule::multiversion! {
    fn chunk_finite_simd<T>(g: &[T]) -> bool = chunk_finite_body;
}

/// One chunk's sum of squares (0 when `want_sum` is false) and finiteness.
fn chunk_sum_sq<T: Scalar>(g: &[T], bound: T, want_sum: bool) -> (f64, bool) {
    if want_sum {
        chunk_sum_sq_simd(g, bound)
    } else {
        (0.0, chunk_finite_simd(g))
    }
}

/// Sum of squares (of value-clamped elements) of one gradient, and whether it is finite, in a
/// deterministic order: fixed chunks, in parallel, combined sequentially. `partials` is scratch space
/// reused across calls.
pub(crate) fn grad_sum_sq<T: Scalar>(
    grad: &ArrayViewD<'_, T>,
    bound: T,
    want_sum: bool,
    partials: &mut Vec<(f64, bool)>,
) -> (f64, bool) {
    let Some(g) = grad.as_slice_memory_order() else {
        // Not contiguous: sequential, in logical order.
        let mut sum = 0.0;
        let mut finite = true;
        for &v in grad.iter() {
            finite &= v.is_finite();
            let c = clamp_abs(v, bound).to_f64_lossless();
            sum += c * c;
        }
        return (sum, finite);
    };
    if g.len() <= NORM_CHUNK {
        return chunk_sum_sq(g, bound, want_sum);
    }
    let chunks = g.len().div_ceil(NORM_CHUNK);
    partials.clear();
    partials.resize(chunks, (0.0, true));
    partials
        .par_iter_mut()
        .zip(g.par_chunks(NORM_CHUNK))
        .for_each(|(out, chunk)| *out = chunk_sum_sq(chunk, bound, want_sum));
    partials
        .iter()
        .fold((0.0, true), |(s, f), &(cs, cf)| (s + cs, f && cf))
}

/// The global L2 norm of several gradients (deterministic for any thread count).
pub fn global_grad_norm<T: Scalar>(grads: &[ArrayViewD<'_, T>]) -> f64 {
    let mut partials = Vec::new();
    grads
        .iter()
        .map(|g| grad_sum_sq(g, T::infinity(), true, &mut partials).0)
        .sum::<f64>()
        .sqrt()
}

/// Scales `grads` in place so that their global L2 norm is at most `max_norm` (PyTorch's
/// `clip_grad_norm_`: factor `min(1, max_norm / (norm + 1e-6))`). Returns the norm before clipping.
///
/// A non-finite norm is an error and leaves the gradients unchanged.
pub fn clip_grad_norm<T: Scalar>(grads: &mut [ArrayViewMutD<'_, T>], max_norm: f64) -> Result<f64> {
    check_positive("clip_grad_norm", "max_norm", max_norm)?;
    let views: Vec<ArrayViewD<'_, T>> = grads.iter().map(|g| g.view()).collect();
    let norm = global_grad_norm(&views);
    if !norm.is_finite() {
        return Err(OptimError::NonFiniteGradient {
            param: "(clip_grad_norm input)".into(),
        });
    }
    let coef = (max_norm / (norm + 1e-6)).min(1.0);
    if coef < 1.0 {
        let c = T::from_f64_lossy(coef);
        for g in grads.iter_mut() {
            g.mapv_inplace(|v| v * c);
        }
    }
    Ok(norm)
}

/// Clamps every element of `grads` to `[−max_value, max_value]` in place (PyTorch's
/// `clip_grad_value_`). NaN stays NaN.
pub fn clip_grad_value<T: Scalar>(
    grads: &mut [ArrayViewMutD<'_, T>],
    max_value: f64,
) -> Result<()> {
    check_positive("clip_grad_value", "max_value", max_value)?;
    let bound = T::from_f64_lossy(max_value);
    for g in grads.iter_mut() {
        g.mapv_inplace(|v| clamp_abs(v, bound));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, ArrayD, IxDyn};

    #[test]
    fn norm_clipping_matches_pytorch_formula() {
        let mut a = array![3.0f64, 0.0].into_dyn();
        let mut b = array![[4.0f64]].into_dyn();
        let norm = clip_grad_norm(&mut [a.view_mut(), b.view_mut()], 1.0).unwrap();
        assert_eq!(norm, 5.0);
        let coef = 1.0 / (5.0 + 1e-6);
        assert_eq!(a, array![3.0 * coef, 0.0].into_dyn());
        assert_eq!(b, array![[4.0 * coef]].into_dyn());
        // Below the bound nothing changes.
        let norm = clip_grad_norm(&mut [a.view_mut()], 10.0).unwrap();
        assert!((norm - 3.0 * coef).abs() < 1e-15);
        assert_eq!(a[[0]], 3.0 * coef);
    }

    #[test]
    fn value_clipping_keeps_nan_visible() {
        let mut a = array![3.0f32, -7.0, 0.5, f32::NAN].into_dyn();
        clip_grad_value(&mut [a.view_mut()], 1.0).unwrap();
        assert_eq!(&a.as_slice().unwrap()[..3], &[1.0, -1.0, 0.5]);
        assert!(a[[3]].is_nan());
        assert!(clip_grad_value(&mut [a.view_mut()], -1.0).is_err());
    }

    #[test]
    fn non_finite_values_are_found_in_every_stream_and_the_tail() {
        // Lengths around the interleaved blocks' edges (4 streams of 64-element blocks, a tail).
        for len in [1usize, 7, 8, 63, 64, 255, 256, 257, 1000, 4099] {
            let g: Vec<f32> = (0..len).map(|i| ((i % 13) as f32 - 6.0) * 0.25).collect();
            let naive: f64 = g.iter().map(|&v| (v as f64) * (v as f64)).sum();
            let (sum, finite) = chunk_sum_sq(&g, f32::INFINITY, true);
            assert!(
                finite && (sum - naive).abs() <= 1e-12 * naive.max(1.0),
                "{len}"
            );
            assert!(chunk_sum_sq(&g, f32::INFINITY, false).1, "{len}");
            let positions = [
                0,
                len / 4,
                len / 2,
                3 * len / 4,
                len.saturating_sub(9),
                len - 1,
            ];
            for pos in positions {
                for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                    let mut h = g.clone();
                    h[pos] = bad;
                    assert!(
                        !chunk_sum_sq(&h, f32::INFINITY, false).1,
                        "{len} {pos} {bad}"
                    );
                    // Clamping by value turns ±inf into the bound but still reports it.
                    assert!(!chunk_sum_sq(&h, 1.0, true).1, "{len} {pos} {bad}");
                }
            }
        }
        // Clamped sum of squares: every element counts at most bound².
        let g = vec![3.0f64; 1000];
        assert_eq!(chunk_sum_sq(&g, 2.0, true), (4000.0, true));
    }

    #[test]
    fn large_norms_are_deterministic_across_threads() {
        let g = ArrayD::from_shape_fn(IxDyn(&[1_000_003]), |i| {
            ((i[0] * 7919) % 1000) as f32 * 1e-3
        });
        let run = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| global_grad_norm(&[g.view()]))
        };
        assert_eq!(run(1).to_bits(), run(2).to_bits());
        let naive: f64 = g
            .iter()
            .map(|&v| (v as f64) * (v as f64))
            .sum::<f64>()
            .sqrt();
        assert!((run(2) - naive).abs() / naive < 1e-12);
    }
}
