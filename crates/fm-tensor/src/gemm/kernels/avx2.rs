//! The AVX2 + FMA micro-kernels (x86-64): 256-bit registers, 16 of them.
//!
//! Tiles: f32 6×16 and f64 6×8 — two vectors along N per row of C, six rows, so 12 accumulator
//! registers plus two for the B row and one broadcast (15 of 16). Twelve independent FMA chains
//! cover the 4-cycle latency of two FMA pipes.

use std::arch::x86_64::*;

use super::{
    gemv_cols_body, gemv_rows_body, tile_body, with_const_rows, GemvCall, KernelSpec, MicroTile,
    SimdVec,
};
use crate::gemm::dispatch::GemmKernel;
use crate::gemm::pack::{pack_a_block, pack_a_panel, pack_b_panel, MatRef};

/// Rows of the register tile (both types).
const MR: usize = 6;
/// Vectors per tile row.
const NV: usize = 2;

/// Eight `f32` lanes.
#[derive(Clone, Copy)]
pub(crate) struct F32x8(__m256);

/// Four `f64` lanes.
#[derive(Clone, Copy)]
pub(crate) struct F64x4(__m256d);

/// Lane mask with the first `n` of eight 32-bit lanes set.
///
/// # Safety
/// AVX2 must be enabled in the caller.
#[inline(always)]
unsafe fn mask32(n: usize) -> __m256i {
    // SAFETY: AVX2 is enabled in the calling entry point.
    unsafe {
        _mm256_cmpgt_epi32(
            _mm256_set1_epi32(n as i32),
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
        )
    }
}

/// Lane mask with the first `n` of four 64-bit lanes set.
///
/// # Safety
/// AVX2 must be enabled in the caller.
#[inline(always)]
unsafe fn mask64(n: usize) -> __m256i {
    // SAFETY: AVX2 is enabled in the calling entry point.
    unsafe { _mm256_cmpgt_epi64(_mm256_set1_epi64x(n as i64), _mm256_setr_epi64x(0, 1, 2, 3)) }
}

// SAFETY: every method uses AVX/AVX2/FMA instructions only; the entry points below enable them and
// are only reached after `GemmKernel::Avx2.is_available()`.
unsafe impl SimdVec<f32> for F32x8 {
    const LANES: usize = 8;
    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: AVX is enabled in the calling entry point.
        unsafe { F32x8(_mm256_setzero_ps()) }
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        // SAFETY: as above.
        unsafe { F32x8(_mm256_set1_ps(x)) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the caller guarantees 8 readable elements.
        unsafe { F32x8(_mm256_loadu_ps(p)) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: the caller guarantees 8 writable elements.
        unsafe { _mm256_storeu_ps(p, self.0) }
    }
    #[inline(always)]
    unsafe fn load_partial(p: *const f32, n: usize) -> Self {
        // SAFETY: masked-off lanes are not accessed (no fault), the first n are readable.
        unsafe { F32x8(_mm256_maskload_ps(p, mask32(n))) }
    }
    #[inline(always)]
    unsafe fn store_partial(self, p: *mut f32, n: usize) {
        // SAFETY: masked-off lanes are not written, the first n are writable.
        unsafe { _mm256_maskstore_ps(p, mask32(n), self.0) }
    }
    #[inline(always)]
    unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self {
        // SAFETY: FMA is enabled in the calling entry point.
        unsafe { F32x8(_mm256_fmadd_ps(a.0, b.0, c.0)) }
    }
    #[inline(always)]
    unsafe fn mul(a: Self, b: Self) -> Self {
        // SAFETY: AVX is enabled in the calling entry point.
        unsafe { F32x8(_mm256_mul_ps(a.0, b.0)) }
    }
    #[inline(always)]
    unsafe fn add(a: Self, b: Self) -> Self {
        // SAFETY: as above.
        unsafe { F32x8(_mm256_add_ps(a.0, b.0)) }
    }
    #[inline(always)]
    unsafe fn reduce_sum(self) -> f32 {
        // SAFETY: AVX is enabled in the calling entry point.
        unsafe {
            let quad = _mm_add_ps(
                _mm256_castps256_ps128(self.0),
                _mm256_extractf128_ps::<1>(self.0),
            );
            let pair = _mm_add_ps(quad, _mm_movehl_ps(quad, quad));
            _mm_cvtss_f32(_mm_add_ss(pair, _mm_shuffle_ps::<1>(pair, pair)))
        }
    }
    #[inline(always)]
    unsafe fn prefetch(p: *const f32) {
        // SAFETY: prefetching never faults.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast()) }
    }
}

// SAFETY: as for `F32x8`.
unsafe impl SimdVec<f64> for F64x4 {
    const LANES: usize = 4;
    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: AVX is enabled in the calling entry point.
        unsafe { F64x4(_mm256_setzero_pd()) }
    }
    #[inline(always)]
    unsafe fn splat(x: f64) -> Self {
        // SAFETY: as above.
        unsafe { F64x4(_mm256_set1_pd(x)) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f64) -> Self {
        // SAFETY: the caller guarantees 4 readable elements.
        unsafe { F64x4(_mm256_loadu_pd(p)) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f64) {
        // SAFETY: the caller guarantees 4 writable elements.
        unsafe { _mm256_storeu_pd(p, self.0) }
    }
    #[inline(always)]
    unsafe fn load_partial(p: *const f64, n: usize) -> Self {
        // SAFETY: masked-off lanes are not accessed, the first n are readable.
        unsafe { F64x4(_mm256_maskload_pd(p, mask64(n))) }
    }
    #[inline(always)]
    unsafe fn store_partial(self, p: *mut f64, n: usize) {
        // SAFETY: masked-off lanes are not written, the first n are writable.
        unsafe { _mm256_maskstore_pd(p, mask64(n), self.0) }
    }
    #[inline(always)]
    unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self {
        // SAFETY: FMA is enabled in the calling entry point.
        unsafe { F64x4(_mm256_fmadd_pd(a.0, b.0, c.0)) }
    }
    #[inline(always)]
    unsafe fn mul(a: Self, b: Self) -> Self {
        // SAFETY: AVX is enabled in the calling entry point.
        unsafe { F64x4(_mm256_mul_pd(a.0, b.0)) }
    }
    #[inline(always)]
    unsafe fn add(a: Self, b: Self) -> Self {
        // SAFETY: as above.
        unsafe { F64x4(_mm256_add_pd(a.0, b.0)) }
    }
    #[inline(always)]
    unsafe fn reduce_sum(self) -> f64 {
        // SAFETY: AVX is enabled in the calling entry point.
        unsafe {
            let pair = _mm_add_pd(
                _mm256_castpd256_pd128(self.0),
                _mm256_extractf128_pd::<1>(self.0),
            );
            _mm_cvtsd_f64(_mm_add_sd(pair, _mm_unpackhi_pd(pair, pair)))
        }
    }
    #[inline(always)]
    unsafe fn prefetch(p: *const f64) {
        // SAFETY: prefetching never faults.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast()) }
    }
}

/// f32 micro-kernel, 6×16.
///
/// # Safety
/// See [`super::MicroKernelFn`]; the CPU has AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn micro_f32(tile: &MicroTile<f32>) {
    // SAFETY: forwarded contract; `rows` is in 1..=MR.
    unsafe {
        with_const_rows!(tile.rows, |R| tile_body::<f32, F32x8, MR, R, NV>(tile), [1 2 3 4 5 6])
    }
}

/// f64 micro-kernel, 6×8.
///
/// # Safety
/// See [`super::MicroKernelFn`]; the CPU has AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn micro_f64(tile: &MicroTile<f64>) {
    // SAFETY: forwarded contract; `rows` is in 1..=MR.
    unsafe {
        with_const_rows!(tile.rows, |R| tile_body::<f64, F64x4, MR, R, NV>(tile), [1 2 3 4 5 6])
    }
}

/// Matrix-vector, contiguous rows of B, f32.
///
/// # Safety
/// See [`super::GemvFn`]; the CPU has AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn gemv_rows_f32(call: &GemvCall<f32>) {
    // SAFETY: forwarded contract.
    unsafe { gemv_rows_body::<f32, F32x8>(call) }
}

/// Matrix-vector, contiguous columns of B, f32.
///
/// # Safety
/// See [`super::GemvFn`]; the CPU has AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn gemv_cols_f32(call: &GemvCall<f32>) {
    // SAFETY: forwarded contract.
    unsafe { gemv_cols_body::<f32, F32x8>(call) }
}

/// Matrix-vector, contiguous rows of B, f64.
///
/// # Safety
/// See [`super::GemvFn`]; the CPU has AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn gemv_rows_f64(call: &GemvCall<f64>) {
    // SAFETY: forwarded contract.
    unsafe { gemv_rows_body::<f64, F64x4>(call) }
}

/// Matrix-vector, contiguous columns of B, f64.
///
/// # Safety
/// See [`super::GemvFn`]; the CPU has AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn gemv_cols_f64(call: &GemvCall<f64>) {
    // SAFETY: forwarded contract.
    unsafe { gemv_cols_body::<f64, F64x4>(call) }
}

/// Packs a block of A (generic packing compiled for AVX2).
///
/// # Safety
/// See [`super::PackAFn`]; the CPU has AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn pack_a<T: crate::element::Element>(dst: *mut T, a: MatRef<T>, rows: usize, kc: usize) {
    // SAFETY: `pack_a_block` hands each panel its own rows and slot.
    let panel = |d, a, h, kc| unsafe { pack_a_panel::<T, MR>(d, a, h, kc) };
    // SAFETY: forwarded contract.
    unsafe { pack_a_block::<T, MR>(dst, a, rows, kc, panel) }
}

/// Packs one f32 micro-panel of B.
///
/// # Safety
/// See [`super::PackBFn`]; the CPU has AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn pack_b_f32(dst: *mut f32, b: MatRef<f32>, kc: usize, cols: usize) {
    // SAFETY: forwarded contract.
    unsafe { pack_b_panel::<f32, { NV * 8 }>(dst, b, kc, cols) }
}

/// Packs one f64 micro-panel of B.
///
/// # Safety
/// See [`super::PackBFn`]; the CPU has AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn pack_b_f64(dst: *mut f64, b: MatRef<f64>, kc: usize, cols: usize) {
    // SAFETY: forwarded contract.
    unsafe { pack_b_panel::<f64, { NV * 4 }>(dst, b, kc, cols) }
}

/// f32 on AVX2: KC = 1024 (a 64 KiB B micro-panel streamed from L2, C touched once for K ≤ 1024),
/// MC = 96 (a 384 KiB A block in L2), NC = 4096 (a 16 MiB B block in L3).
pub(crate) static F32: KernelSpec<f32> = KernelSpec {
    kernel: GemmKernel::Avx2,
    mr: MR,
    nr: NV * 8,
    kc: 1024,
    mc: MR * 16,
    nc: 4096,
    micro: micro_f32,
    pack_a: pack_a::<f32>,
    pack_b: pack_b_f32,
    gemv_rows: gemv_rows_f32,
    gemv_cols: gemv_cols_f32,
};

/// f64 on AVX2: the same blocking in bytes as f32.
pub(crate) static F64: KernelSpec<f64> = KernelSpec {
    kernel: GemmKernel::Avx2,
    mr: MR,
    nr: NV * 4,
    kc: 512,
    mc: MR * 16,
    nc: 2048,
    micro: micro_f64,
    pack_a: pack_a::<f64>,
    pack_b: pack_b_f64,
    gemv_rows: gemv_rows_f64,
    gemv_cols: gemv_cols_f64,
};
