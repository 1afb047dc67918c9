//! The AVX-512F micro-kernels (x86-64): 512-bit registers, 32 of them.
//!
//! Tiles: f32 14×32 and f64 14×16 — two vectors along N per row of C, 14 rows, so 28 accumulator
//! registers plus two for the B row and one broadcast. With an FMA latency of 4 cycles and two FMA
//! pipes, 8 independent chains would suffice; 28 leave room to hide the loads (per step: 2 vector
//! loads of B and 14 broadcasts of A for 28 FMAs).

use std::arch::x86_64::*;

use super::{gemv_cols_body, gemv_rows_body, tile_body, with_const_rows, GemvCall, KernelSpec, MicroTile, SimdVec};
use crate::gemm::dispatch::GemmKernel;

/// Rows of the register tile (both types).
const MR: usize = 14;
/// Vectors per tile row.
const NV: usize = 2;

/// Sixteen `f32` lanes.
#[derive(Clone, Copy)]
pub(crate) struct F32x16(__m512);

/// Eight `f64` lanes.
#[derive(Clone, Copy)]
pub(crate) struct F64x8(__m512d);

// SAFETY: every method uses AVX-512F instructions only; the entry points below enable the feature
// and are only reached after `GemmKernel::Avx512.is_available()`.
unsafe impl SimdVec<f32> for F32x16 {
    const LANES: usize = 16;
    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: AVX-512F is enabled in the calling entry point.
        unsafe { F32x16(_mm512_setzero_ps()) }
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> Self {
        // SAFETY: as above.
        unsafe { F32x16(_mm512_set1_ps(x)) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: the caller guarantees 16 readable elements.
        unsafe { F32x16(_mm512_loadu_ps(p)) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: the caller guarantees 16 writable elements.
        unsafe { _mm512_storeu_ps(p, self.0) }
    }
    #[inline(always)]
    unsafe fn load_partial(p: *const f32, n: usize) -> Self {
        // SAFETY: masked-off lanes are not accessed (no fault), the first n are readable.
        unsafe { F32x16(_mm512_maskz_loadu_ps(((1u32 << n) - 1) as __mmask16, p)) }
    }
    #[inline(always)]
    unsafe fn store_partial(self, p: *mut f32, n: usize) {
        // SAFETY: masked-off lanes are not written, the first n are writable.
        unsafe { _mm512_mask_storeu_ps(p, ((1u32 << n) - 1) as __mmask16, self.0) }
    }
    #[inline(always)]
    unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self {
        // SAFETY: AVX-512F is enabled in the calling entry point.
        unsafe { F32x16(_mm512_fmadd_ps(a.0, b.0, c.0)) }
    }
    #[inline(always)]
    unsafe fn mul(a: Self, b: Self) -> Self {
        // SAFETY: as above.
        unsafe { F32x16(_mm512_mul_ps(a.0, b.0)) }
    }
    #[inline(always)]
    unsafe fn add(a: Self, b: Self) -> Self {
        // SAFETY: as above.
        unsafe { F32x16(_mm512_add_ps(a.0, b.0)) }
    }
    #[inline(always)]
    unsafe fn reduce_sum(self) -> f32 {
        // SAFETY: as above.
        unsafe { _mm512_reduce_add_ps(self.0) }
    }
    #[inline(always)]
    unsafe fn prefetch(p: *const f32) {
        // SAFETY: prefetching never faults.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast()) }
    }
}

// SAFETY: as for `F32x16`.
unsafe impl SimdVec<f64> for F64x8 {
    const LANES: usize = 8;
    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: AVX-512F is enabled in the calling entry point.
        unsafe { F64x8(_mm512_setzero_pd()) }
    }
    #[inline(always)]
    unsafe fn splat(x: f64) -> Self {
        // SAFETY: as above.
        unsafe { F64x8(_mm512_set1_pd(x)) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f64) -> Self {
        // SAFETY: the caller guarantees 8 readable elements.
        unsafe { F64x8(_mm512_loadu_pd(p)) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f64) {
        // SAFETY: the caller guarantees 8 writable elements.
        unsafe { _mm512_storeu_pd(p, self.0) }
    }
    #[inline(always)]
    unsafe fn load_partial(p: *const f64, n: usize) -> Self {
        // SAFETY: masked-off lanes are not accessed, the first n are readable.
        unsafe { F64x8(_mm512_maskz_loadu_pd(((1u32 << n) - 1) as __mmask8, p)) }
    }
    #[inline(always)]
    unsafe fn store_partial(self, p: *mut f64, n: usize) {
        // SAFETY: masked-off lanes are not written, the first n are writable.
        unsafe { _mm512_mask_storeu_pd(p, ((1u32 << n) - 1) as __mmask8, self.0) }
    }
    #[inline(always)]
    unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self {
        // SAFETY: AVX-512F is enabled in the calling entry point.
        unsafe { F64x8(_mm512_fmadd_pd(a.0, b.0, c.0)) }
    }
    #[inline(always)]
    unsafe fn mul(a: Self, b: Self) -> Self {
        // SAFETY: as above.
        unsafe { F64x8(_mm512_mul_pd(a.0, b.0)) }
    }
    #[inline(always)]
    unsafe fn add(a: Self, b: Self) -> Self {
        // SAFETY: as above.
        unsafe { F64x8(_mm512_add_pd(a.0, b.0)) }
    }
    #[inline(always)]
    unsafe fn reduce_sum(self) -> f64 {
        // SAFETY: as above.
        unsafe { _mm512_reduce_add_pd(self.0) }
    }
    #[inline(always)]
    unsafe fn prefetch(p: *const f64) {
        // SAFETY: prefetching never faults.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast()) }
    }
}

/// f32 micro-kernel, 14×32.
///
/// # Safety
/// See [`super::MicroKernelFn`]; the CPU has AVX-512F.
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn micro_f32(tile: &MicroTile<f32>) {
    // SAFETY: forwarded contract; `rows` is in 1..=MR.
    unsafe {
        with_const_rows!(tile.rows, |R| tile_body::<f32, F32x16, MR, R, NV>(tile), [1 2 3 4 5 6 7 8 9 10 11 12 13 14])
    }
}

/// f64 micro-kernel, 14×16.
///
/// # Safety
/// See [`super::MicroKernelFn`]; the CPU has AVX-512F.
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn micro_f64(tile: &MicroTile<f64>) {
    // SAFETY: forwarded contract; `rows` is in 1..=MR.
    unsafe {
        with_const_rows!(tile.rows, |R| tile_body::<f64, F64x8, MR, R, NV>(tile), [1 2 3 4 5 6 7 8 9 10 11 12 13 14])
    }
}

/// Matrix-vector, contiguous rows of B, f32.
///
/// # Safety
/// See [`super::GemvFn`]; the CPU has AVX-512F.
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn gemv_rows_f32(call: &GemvCall<f32>) {
    // SAFETY: forwarded contract.
    unsafe { gemv_rows_body::<f32, F32x16>(call) }
}

/// Matrix-vector, contiguous columns of B, f32.
///
/// # Safety
/// See [`super::GemvFn`]; the CPU has AVX-512F.
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn gemv_cols_f32(call: &GemvCall<f32>) {
    // SAFETY: forwarded contract.
    unsafe { gemv_cols_body::<f32, F32x16>(call) }
}

/// Matrix-vector, contiguous rows of B, f64.
///
/// # Safety
/// See [`super::GemvFn`]; the CPU has AVX-512F.
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn gemv_rows_f64(call: &GemvCall<f64>) {
    // SAFETY: forwarded contract.
    unsafe { gemv_rows_body::<f64, F64x8>(call) }
}

/// Matrix-vector, contiguous columns of B, f64.
///
/// # Safety
/// See [`super::GemvFn`]; the CPU has AVX-512F.
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn gemv_cols_f64(call: &GemvCall<f64>) {
    // SAFETY: forwarded contract.
    unsafe { gemv_cols_body::<f64, F64x8>(call) }
}

/// f32 on AVX-512F.
///
/// KC = 256: the 256×32 B micro-panel is 32 KiB, which stays in the 48 KiB L1 while 14-row A
/// micro-panels stream from L2. MC = 336 (24 micro-panels): the 336×256 A block is 336 KiB, a third
/// of the 1 MiB L2. NC = 4096: a 4 MiB B block in L3, so A is packed once for N ≤ 4096.
pub(crate) static F32: KernelSpec<f32> = KernelSpec {
    kernel: GemmKernel::Avx512,
    mr: MR,
    nr: NV * 16,
    kc: 256,
    mc: MR * 24,
    nc: 4096,
    micro: micro_f32,
    gemv_rows: gemv_rows_f32,
    gemv_cols: gemv_cols_f32,
};

/// f64 on AVX-512F: same tile in registers, half the columns; KC = 256 keeps the B micro-panel
/// at 32 KiB, MC = 168 keeps the A block at 336 KiB.
pub(crate) static F64: KernelSpec<f64> = KernelSpec {
    kernel: GemmKernel::Avx512,
    mr: MR,
    nr: NV * 8,
    kc: 256,
    mc: MR * 12,
    nc: 2048,
    micro: micro_f64,
    gemv_rows: gemv_rows_f64,
    gemv_cols: gemv_cols_f64,
};
