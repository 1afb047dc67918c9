//! The per-row building blocks of the softmax-based losses: a row's maximum, its shifted exponentials
//! `exp(x - max)` and their sum, and the final rescaling into a gradient.
//!
//! For `f32` rows these are vectorised: a branch-free `exp` (Cody–Waite range reduction and a degree-5
//! minimax polynomial, about 1 ulp on the non-positive arguments a shifted row produces) in loops that
//! keep 32 independent partial sums, compiled for AVX-512F and for AVX2+FMA and chosen at run time,
//! with a portable build of the same code as the fallback. `f64` rows use the standard library's `exp`
//! (they serve gradient checks and reference tests, where accuracy matters more than speed).
//!
//! Partial sums are combined in a fixed order, so a row's result does not depend on threads. NaN is
//! never hidden: a NaN or `+inf` logit makes the row's sum NaN, which the callers turn into an error.

use std::any::TypeId;

use fm_tensor::Element;

/// Independent accumulators per loop: two 512-bit vectors of `f32`, enough to hide add latency.
const LANES: usize = 32;

/// Reinterprets a slice of `T` as `f32` when `T` is `f32`.
#[inline]
fn as_f32<T: 'static>(x: &[T]) -> Option<&[f32]> {
    if TypeId::of::<T>() == TypeId::of::<f32>() {
        // SAFETY: `T` is `f32` (equal type ids), so the slice's elements are `f32`.
        Some(unsafe { std::slice::from_raw_parts(x.as_ptr().cast::<f32>(), x.len()) })
    } else {
        None
    }
}

/// Mutable counterpart of [`as_f32`].
#[inline]
fn as_f32_mut<T: 'static>(x: &mut [T]) -> Option<&mut [f32]> {
    if TypeId::of::<T>() == TypeId::of::<f32>() {
        // SAFETY: `T` is `f32` (equal type ids), and the borrow is handed on unchanged.
        Some(unsafe { std::slice::from_raw_parts_mut(x.as_mut_ptr().cast::<f32>(), x.len()) })
    } else {
        None
    }
}

/// `exp(x)` for `x <= 0` (or NaN), branch-free so loops over it vectorise.
///
/// Arguments below about −87.3 give 0 (the exact value would be subnormal); NaN gives NaN.
#[inline(always)]
pub(crate) fn exp_nonpositive_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split so that n · LN2_HI is exact for |n| < 2^15 (LN2_HI has 9 significant bits).
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 · 2^23: adding it rounds a float of magnitude < 2^22 to an integer held in the low bits.
    const ROUND: f32 = 12_582_912.0;
    // exp(r) ≈ 1 + r + r² · P(r) on |r| <= ln2 / 2 (minimax coefficients).
    const P0: f32 = 1.987_569_2e-4;
    const P1: f32 = 1.398_2e-3;
    const P2: f32 = 8.333_452e-3;
    const P3: f32 = 4.166_579_6e-2;
    const P4: f32 = 1.666_666_5e-1;
    const P5: f32 = 0.5;

    // Below −88, n reaches −127 and the scale 2^n built below is exactly 0.
    let x = if x < -88.0 { -88.0 } else { x };
    let t = x * LOG2E + ROUND;
    let n_float = t - ROUND;
    let n = t.to_bits() as i32 - ROUND.to_bits() as i32;
    let r = x - n_float * LN2_HI - n_float * LN2_LO;
    let p = ((((P0 * r + P1) * r + P2) * r + P3) * r + P4) * r + P5;
    let y = p * (r * r) + r + 1.0;
    let scale = f32::from_bits(((n + 127).max(0) as u32) << 23);
    y * scale
}

#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, PartialEq, Eq)]
enum SimdLevel {
    Avx512,
    Avx2,
    Baseline,
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn simd_level() -> SimdLevel {
    // std caches the CPUID results, so this is a couple of loads.
    if std::is_x86_feature_detected!("avx512f") {
        SimdLevel::Avx512
    } else if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        SimdLevel::Avx2
    } else {
        SimdLevel::Baseline
    }
}

/// Defines `$name`, which runs `$body` compiled for the widest vector ISA the CPU has.
macro_rules! multiversion {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty = $body:ident;) => {
        $(#[$doc])*
        fn $name($($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                unsafe fn avx512($($arg: $ty),*) -> $ret {
                    $body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) -> $ret {
                    $body($($arg),*)
                }
                match simd_level() {
                    // SAFETY: the CPU reports AVX-512F.
                    SimdLevel::Avx512 => return unsafe { avx512($($arg),*) },
                    // SAFETY: the CPU reports AVX2 and FMA.
                    SimdLevel::Avx2 => return unsafe { avx2($($arg),*) },
                    SimdLevel::Baseline => {}
                }
            }
            $body($($arg),*)
        }
    };
}

#[inline(always)]
fn max_f32_body(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = x.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..LANES {
            // Written as a comparison (not f32::max) so it maps to one vector max; NaN is skipped
            // here and caught by the sum of exponentials.
            acc[i] = if c[i] > acc[i] { c[i] } else { acc[i] };
        }
    }
    let mut m = f32::NEG_INFINITY;
    for &v in acc.iter().chain(rest) {
        m = if v > m { v } else { m };
    }
    m
}

#[inline(always)]
fn exp_sum_f32_body(x: &[f32], m: f32) -> f64 {
    let mut acc = [0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..LANES {
            acc[i] += exp_nonpositive_f32(c[i] - m);
        }
    }
    let tail: f64 = rest
        .iter()
        .map(|&v| exp_nonpositive_f32(v - m) as f64)
        .sum();
    acc.iter().map(|&a| a as f64).sum::<f64>() + tail
}

#[inline(always)]
fn exp_into_f32_body(x: &[f32], m: f32, dst: &mut [f32]) -> f64 {
    let mut acc = [0f32; LANES];
    let mut chunks_dst = dst.chunks_exact_mut(LANES);
    let chunks_x = x.chunks_exact(LANES);
    let rest_x = chunks_x.remainder();
    for (c, d) in chunks_x.zip(&mut chunks_dst) {
        for i in 0..LANES {
            let e = exp_nonpositive_f32(c[i] - m);
            d[i] = e;
            acc[i] += e;
        }
    }
    let mut tail = 0f64;
    for (&v, d) in rest_x.iter().zip(chunks_dst.into_remainder()) {
        let e = exp_nonpositive_f32(v - m);
        *d = e;
        tail += e as f64;
    }
    acc.iter().map(|&a| a as f64).sum::<f64>() + tail
}

#[inline(always)]
fn exp_in_place_f32_body(buf: &mut [f32], m: f32) -> f64 {
    let mut acc = [0f32; LANES];
    let mut chunks = buf.chunks_exact_mut(LANES);
    for c in &mut chunks {
        for i in 0..LANES {
            let e = exp_nonpositive_f32(c[i] - m);
            c[i] = e;
            acc[i] += e;
        }
    }
    let mut tail = 0f64;
    for v in chunks.into_remainder() {
        let e = exp_nonpositive_f32(*v - m);
        *v = e;
        tail += e as f64;
    }
    acc.iter().map(|&a| a as f64).sum::<f64>() + tail
}

#[inline(always)]
fn scale_f32_body(buf: &mut [f32], coef: f32, shift: f32) {
    for v in buf.iter_mut() {
        *v = coef * *v - shift;
    }
}

#[inline(always)]
fn scale_weighted_f32_body(buf: &mut [f32], coef: f32, shift: f32, weights: &[f32]) {
    for (v, &w) in buf.iter_mut().zip(weights) {
        *v = coef * *v - shift * w;
    }
}

multiversion! {
    fn max_f32(x: &[f32]) -> f32 = max_f32_body;
}
multiversion! {
    fn exp_sum_f32(x: &[f32], m: f32) -> f64 = exp_sum_f32_body;
}
multiversion! {
    fn exp_into_f32(x: &[f32], m: f32, dst: &mut [f32]) -> f64 = exp_into_f32_body;
}
multiversion! {
    fn exp_in_place_f32(buf: &mut [f32], m: f32) -> f64 = exp_in_place_f32_body;
}
multiversion! {
    fn scale_f32(buf: &mut [f32], coef: f32, shift: f32) -> () = scale_f32_body;
}
multiversion! {
    fn scale_weighted_f32(buf: &mut [f32], coef: f32, shift: f32, weights: &[f32]) -> () = scale_weighted_f32_body;
}

/// The largest value of a row (NaN entries are skipped; −∞ for an empty row).
pub(crate) fn row_max<T: Element>(x: &[T]) -> T {
    if let Some(x) = as_f32(x) {
        return T::from_f64_lossy(max_f32(x) as f64);
    }
    x.iter()
        .fold(T::neg_infinity(), |m, &v| if v > m { v } else { m })
}

/// `Σ exp(x - m)`.
pub(crate) fn exp_sum<T: Element>(x: &[T], m: T) -> f64 {
    if let Some(x) = as_f32(x) {
        return exp_sum_f32(x, m.to_f64_lossless() as f32);
    }
    x.iter().map(|&v| (v - m).exp().to_f64_lossless()).sum()
}

/// `dst = exp(x - m)`, returning `Σ dst`.
pub(crate) fn exp_into<T: Element>(x: &[T], m: T, dst: &mut [T]) -> f64 {
    debug_assert_eq!(x.len(), dst.len());
    if let (Some(x), Some(dst)) = (as_f32(x), as_f32_mut(dst)) {
        return exp_into_f32(x, m.to_f64_lossless() as f32, dst);
    }
    let mut sum = 0.0;
    for (&v, d) in x.iter().zip(dst) {
        *d = (v - m).exp();
        sum += d.to_f64_lossless();
    }
    sum
}

/// `buf = exp(buf - m)`, returning the sum.
pub(crate) fn exp_in_place<T: Element>(buf: &mut [T], m: T) -> f64 {
    if let Some(buf) = as_f32_mut(buf) {
        return exp_in_place_f32(buf, m.to_f64_lossless() as f32);
    }
    let mut sum = 0.0;
    for v in buf {
        *v = (*v - m).exp();
        sum += v.to_f64_lossless();
    }
    sum
}

/// `buf[j] = coef · buf[j] − shift · weights[j]` (or `− shift` without weights).
pub(crate) fn scale_and_shift<T: Element>(buf: &mut [T], coef: T, shift: T, weights: Option<&[T]>) {
    match weights {
        None => {
            if let Some(b) = as_f32_mut(buf) {
                let (c, s) = (
                    coef.to_f64_lossless() as f32,
                    shift.to_f64_lossless() as f32,
                );
                return scale_f32(b, c, s);
            }
            for v in buf {
                *v = coef * *v - shift;
            }
        }
        Some(w) => {
            debug_assert_eq!(w.len(), buf.len());
            if let (Some(b), Some(w32)) = (as_f32_mut(buf), as_f32(w)) {
                let (c, s) = (
                    coef.to_f64_lossless() as f32,
                    shift.to_f64_lossless() as f32,
                );
                return scale_weighted_f32(b, c, s, w32);
            }
            for (v, &wj) in buf.iter_mut().zip(w) {
                *v = coef * *v - shift * wj;
            }
        }
    }
}

/// `Σ w_j (x_j − m)` in `f64` (`w_j = 1` without weights): the smoothing term's weighted sum of
/// shifted logits. Only needed with label smoothing, so kept simple.
pub(crate) fn weighted_shifted_sum<T: Element>(x: &[T], m: T, weights: Option<&[T]>) -> f64 {
    let m = m.to_f64_lossless();
    match weights {
        None => x.iter().map(|&v| v.to_f64_lossless() - m).sum(),
        Some(w) => x
            .iter()
            .zip(w)
            .map(|(&v, &wj)| wj.to_f64_lossless() * (v.to_f64_lossless() - m))
            .sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_is_within_two_ulp_of_std_on_its_domain() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x <= 0.0 {
            let fast = exp_nonpositive_f32(x) as f64;
            let exact = (x as f64).exp();
            let ulp = (exact as f32).abs() as f64 * f32::EPSILON as f64;
            worst = worst.max((fast - exact).abs() / ulp);
            x += 0.001_37;
        }
        assert!(worst < 2.0, "worst error {worst} ulp");
        assert_eq!(exp_nonpositive_f32(0.0), 1.0);
        assert_eq!(exp_nonpositive_f32(-200.0), 0.0);
        assert_eq!(exp_nonpositive_f32(f32::NEG_INFINITY), 0.0);
        assert!(exp_nonpositive_f32(f32::NAN).is_nan());
    }

    #[test]
    fn f32_rows_agree_with_f64_rows() {
        // Lengths that exercise the vector body and the tail.
        for len in [1usize, 7, 32, 33, 100, 1000] {
            let x64: Vec<f64> = (0..len)
                .map(|i| ((i * 37) % 101) as f64 * 0.173 - 8.0)
                .collect();
            let x32: Vec<f32> = x64.iter().map(|&v| v as f32).collect();
            let (m64, m32) = (row_max(&x64), row_max(&x32));
            assert_eq!(m64 as f32, m32);
            let s64 = exp_sum(&x64, m64);
            let s32 = exp_sum(&x32, m32);
            assert!((s64 - s32).abs() / s64 < 1e-6, "{len}: {s64} vs {s32}");
            let mut d32 = vec![0f32; len];
            let s_into = exp_into(&x32, m32, &mut d32);
            assert_eq!(s_into, s32);
            let mut b32 = x32.clone();
            assert_eq!(exp_in_place(&mut b32, m32), s32);
            assert_eq!(b32, d32);
        }
    }

    #[test]
    fn nan_and_infinite_logits_poison_the_sum() {
        let x = [1.0f32, f32::NAN, 2.0];
        assert!(exp_sum(&x, row_max(&x)).is_nan());
        let x = [1.0f32, f32::INFINITY, 2.0];
        assert!(exp_sum(&x, row_max(&x)).is_nan());
        let x = [f32::NEG_INFINITY; 40];
        assert!(exp_sum(&x, row_max(&x)).is_nan());
    }
}
