//! Row operations of the online softmax: maximum, and `exp(x − shift)` with its sum, in place.
//!
//! The exponential dominates attention's non-GEMM time (one per score, forward and backward), so the
//! `f32` path uses a branch-free polynomial `exp` that the compiler vectorises, instantiated behind
//! `#[target_feature]` for AVX-512 and AVX2 (chosen with fm-tensor's GEMM kernel detection). `f64`
//! (gradient checks, reference tests) uses the standard library. Sums use a fixed number of lanes
//! in a fixed order, so results do not depend on threads.

use std::any::TypeId;

use fm_tensor::gemm::{selected_kernel, GemmKernel};
use fm_tensor::Element;

/// Lanes of the partial sums (one AVX-512 vector of `f32`).
const LANES: usize = 16;

/// The largest value of a row (`−∞` for an empty or fully masked row).
pub(crate) fn max_of<T: Element>(row: &[T]) -> T {
    if let Some(row) = as_f32(row) {
        return T::from_f64_lossy(f32_path::max_of(row) as f64);
    }
    row.iter()
        .fold(T::neg_infinity(), |m, &x| if x > m { x } else { m })
}

/// `row[j] = exp(row[j] − shift)` (exactly 0 for `−∞`), returning the sum of the new row.
pub(crate) fn exp_shifted_sum<T: Element>(row: &mut [T], shift: T) -> T {
    if let Some(row) = as_f32_mut(row) {
        let sum = f32_path::exp_shifted_sum(row, shift.to_f64_lossless() as f32);
        return T::from_f64_lossy(sum as f64);
    }
    let mut sum = T::zero();
    for x in row.iter_mut() {
        *x = (*x - shift).exp();
        sum = sum + *x;
    }
    sum
}

fn as_f32<T: 'static>(row: &[T]) -> Option<&[f32]> {
    (TypeId::of::<T>() == TypeId::of::<f32>()).then(|| {
        // SAFETY: T is f32 (checked above), so the slice's memory holds `len` valid f32 values.
        unsafe { std::slice::from_raw_parts(row.as_ptr().cast::<f32>(), row.len()) }
    })
}

fn as_f32_mut<T: 'static>(row: &mut [T]) -> Option<&mut [f32]> {
    (TypeId::of::<T>() == TypeId::of::<f32>()).then(|| {
        // SAFETY: T is f32 (checked above); the mutable borrow is moved into the new slice.
        unsafe { std::slice::from_raw_parts_mut(row.as_mut_ptr().cast::<f32>(), row.len()) }
    })
}

mod f32_path {
    use super::*;

    /// Below this, `exp` is 0 in the result (e^−87 ≈ 1.6e−38 is at the edge of normal f32).
    const EXP_MIN: f32 = -87.0;
    /// Above this, 2^n would overflow the exponent field.
    const EXP_MAX: f32 = 88.0;

    /// e^x for `x ≤ 0`-ish inputs: `2^n · p(r)` with `n = round(x·log2 e)`, `r = x − n·ln 2` in
    /// `[−ln2/2, ln2/2]` and `p` the degree-6 Taylor polynomial (relative error ≈ 1.5e−7).
    #[inline(always)]
    fn exp_approx(x: f32) -> f32 {
        const LOG2E: f32 = std::f32::consts::LOG2_E;
        const LN2_HI: f32 = 0.693_145_75;
        const LN2_LO: f32 = 1.428_606_8e-6;
        // Adding 1.5·2^23 rounds to an integer without a call to `round` (vectorises).
        const ROUNDER: f32 = 12_582_912.0;
        let xc = x.clamp(EXP_MIN, EXP_MAX);
        let n = (xc * LOG2E + ROUNDER) - ROUNDER;
        let r = (xc - n * LN2_HI) - n * LN2_LO;
        let mut p = 1.0 / 720.0;
        p = p * r + 1.0 / 120.0;
        p = p * r + 1.0 / 24.0;
        p = p * r + 1.0 / 6.0;
        p = p * r + 0.5;
        p = p * r + 1.0;
        p = p * r + 1.0;
        let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
        if x < EXP_MIN {
            0.0
        } else {
            p * scale
        }
    }

    #[inline(always)]
    fn exp_shifted_sum_body(row: &mut [f32], shift: f32) -> f32 {
        let mut acc = [0f32; LANES];
        let mut chunks = row.chunks_exact_mut(LANES);
        for chunk in &mut chunks {
            for l in 0..LANES {
                let e = exp_approx(chunk[l] - shift);
                chunk[l] = e;
                acc[l] += e;
            }
        }
        for (l, x) in chunks.into_remainder().iter_mut().enumerate() {
            let e = exp_approx(*x - shift);
            *x = e;
            acc[l] += e;
        }
        acc.iter().sum()
    }

    #[inline(always)]
    fn max_of_body(row: &[f32]) -> f32 {
        let mut acc = [f32::NEG_INFINITY; LANES];
        let mut chunks = row.chunks_exact(LANES);
        for chunk in &mut chunks {
            for l in 0..LANES {
                acc[l] = if chunk[l] > acc[l] { chunk[l] } else { acc[l] };
            }
        }
        for (l, &x) in chunks.remainder().iter().enumerate() {
            acc[l] = if x > acc[l] { x } else { acc[l] };
        }
        acc.iter()
            .fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m })
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    fn exp_shifted_sum_avx512(row: &mut [f32], shift: f32) -> f32 {
        exp_shifted_sum_body(row, shift)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn exp_shifted_sum_avx2(row: &mut [f32], shift: f32) -> f32 {
        exp_shifted_sum_body(row, shift)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    fn max_of_avx512(row: &[f32]) -> f32 {
        max_of_body(row)
    }

    pub(super) fn exp_shifted_sum(row: &mut [f32], shift: f32) -> f32 {
        #[cfg(target_arch = "x86_64")]
        match selected_kernel() {
            // SAFETY: the GEMM dispatch selected AVX-512 only after detecting avx512f, avx2 and fma.
            GemmKernel::Avx512 => return unsafe { exp_shifted_sum_avx512(row, shift) },
            // SAFETY: selected only after detecting avx2 and fma.
            GemmKernel::Avx2 => return unsafe { exp_shifted_sum_avx2(row, shift) },
            _ => {}
        }
        exp_shifted_sum_body(row, shift)
    }

    pub(super) fn max_of(row: &[f32]) -> f32 {
        #[cfg(target_arch = "x86_64")]
        if selected_kernel() == GemmKernel::Avx512 {
            // SAFETY: the GEMM dispatch selected AVX-512 only after detecting avx512f, avx2 and fma.
            return unsafe { max_of_avx512(row) };
        }
        max_of_body(row)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn polynomial_exp_is_accurate_and_zero_below_range() {
            for i in -9000..=880 {
                let x = i as f32 * 0.01;
                let exact = (x as f64).exp();
                let got = exp_approx(x) as f64;
                assert!(
                    (got - exact).abs() <= 4e-7 * exact + 1e-37,
                    "x = {x}: {got} vs {exact}"
                );
            }
            assert_eq!(exp_approx(f32::NEG_INFINITY), 0.0);
            assert_eq!(exp_approx(-100.0), 0.0);
        }

        #[test]
        fn dispatched_paths_agree_with_std() {
            let mut row: Vec<f32> = (0..37).map(|i| -(i as f32) * 0.37).collect();
            row[5] = f32::NEG_INFINITY;
            assert_eq!(max_of(&row), 0.0);
            let expected: f32 = row.iter().map(|&x| (x - 0.5).exp()).sum();
            let sum = exp_shifted_sum(&mut row, 0.5);
            assert!((sum - expected).abs() < 1e-6 * expected);
            assert_eq!(row[5], 0.0);
        }
    }
}
