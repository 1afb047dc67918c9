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

/// f32 micro-kernel, 6×16 (A packed, or read in place without `PACKED_A`).
///
/// # Safety
/// See [`super::MicroKernelFn`]; the CPU has AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn micro_f32<const PACKED_A: bool>(tile: &MicroTile<f32>) {
    // SAFETY: forwarded contract; `rows` is in 1..=MR.
    unsafe {
        with_const_rows!(tile.rows, |R| tile_body::<f32, F32x8, MR, R, NV, PACKED_A>(tile), [1 2 3 4 5 6])
    }
}

/// f64 micro-kernel, 6×8 (A packed, or read in place without `PACKED_A`).
///
/// # Safety
/// See [`super::MicroKernelFn`]; the CPU has AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn micro_f64<const PACKED_A: bool>(tile: &MicroTile<f64>) {
    // SAFETY: forwarded contract; `rows` is in 1..=MR.
    unsafe {
        with_const_rows!(tile.rows, |R| tile_body::<f64, F64x4, MR, R, NV, PACKED_A>(tile), [1 2 3 4 5 6])
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

/// In-register transpose of an 8×8 block of f32: `out[c]` lane `r` = `rows[r]` lane `c`.
///
/// # Safety
/// AVX must be enabled in the caller.
#[inline(always)]
unsafe fn transpose_8x8(r: [__m256; 8]) -> [__m256; 8] {
    // SAFETY: AVX is enabled in the calling entry point.
    unsafe {
        // A loop, not `array::from_fn`: a closure loses the target features and its intrinsics
        // would become calls.
        let mut t = [_mm256_setzero_ps(); 8];
        for i in 0..8 {
            t[i] = {
                let (a, b) = (r[i & !1], r[i | 1]);
                if i % 2 == 0 {
                    _mm256_unpacklo_ps(a, b)
                } else {
                    _mm256_unpackhi_ps(a, b)
                }
            };
        }
        // u[4g + c]: rows 4g..4g+4 of column c (low 128 bits) and c + 4 (high 128 bits).
        // A loop, not `array::from_fn`: a closure loses the target features and its intrinsics
        // would become calls.
        let mut u = [_mm256_setzero_ps(); 8];
        for i in 0..8 {
            u[i] = {
                let g = i / 4 * 4;
                let (a, b) = (t[g + (i % 4) / 2], t[g + 2 + (i % 4) / 2]);
                if i % 2 == 0 {
                    _mm256_shuffle_ps::<0x44>(a, b)
                } else {
                    _mm256_shuffle_ps::<0xEE>(a, b)
                }
            };
        }
        let mut out = [_mm256_setzero_ps(); 8];
        for c in 0..4 {
            out[c] = _mm256_permute2f128_ps::<0x20>(u[c], u[c + 4]);
            out[c + 4] = _mm256_permute2f128_ps::<0x31>(u[c], u[c + 4]);
        }
        out
    }
}

/// Transposing copy of `H ≤ 8` rows contiguous along k (row stride `rs`): step `p` of the output,
/// at `dst + p·ld_out`, holds the `H` values of column `p`; 8 steps at a time in registers.
///
/// # Safety
/// `src` is valid for `H` rows of `kc` elements at stride `rs`; `dst` for `(kc-1)·ld_out + H`
/// elements; AVX2 is enabled in the caller.
#[inline(always)]
unsafe fn transpose_rows_f32<const H: usize>(
    dst: *mut f32,
    ld_out: usize,
    src: *const f32,
    rs: isize,
    kc: usize,
) {
    // SAFETY: in bounds by the contract; masked-off lanes are not written.
    unsafe {
        let mask = mask32(H);
        let mut p = 0;
        while p + 8 <= kc {
            // A loop, not `array::from_fn`: a closure loses the target features and its intrinsics
            // would become calls.
            let mut rows = [_mm256_setzero_ps(); 8];
            for i in 0..8 {
                rows[i] = {
                    if i < H {
                        _mm256_loadu_ps(src.offset(i as isize * rs).add(p))
                    } else {
                        _mm256_setzero_ps()
                    }
                };
            }
            for (u, col) in transpose_8x8(rows).iter().enumerate() {
                if H == 8 {
                    _mm256_storeu_ps(dst.add((p + u) * ld_out), *col);
                } else {
                    _mm256_maskstore_ps(dst.add((p + u) * ld_out), mask, *col);
                }
            }
            p += 8;
        }
        for p in p..kc {
            for i in 0..H {
                *dst.add(p * ld_out + i) = *src.offset(i as isize * rs).add(p);
            }
        }
    }
}

/// In-register transpose of a 4×4 block of f64.
///
/// # Safety
/// AVX must be enabled in the caller.
#[inline(always)]
unsafe fn transpose_4x4(r: [__m256d; 4]) -> [__m256d; 4] {
    // SAFETY: AVX is enabled in the calling entry point.
    unsafe {
        let t0 = _mm256_unpacklo_pd(r[0], r[1]);
        let t1 = _mm256_unpackhi_pd(r[0], r[1]);
        let t2 = _mm256_unpacklo_pd(r[2], r[3]);
        let t3 = _mm256_unpackhi_pd(r[2], r[3]);
        [
            _mm256_permute2f128_pd::<0x20>(t0, t2),
            _mm256_permute2f128_pd::<0x20>(t1, t3),
            _mm256_permute2f128_pd::<0x31>(t0, t2),
            _mm256_permute2f128_pd::<0x31>(t1, t3),
        ]
    }
}

/// As [`transpose_rows_f32`], for `H ≤ 4` rows of f64, 4 steps at a time.
///
/// # Safety
/// As [`transpose_rows_f32`].
#[inline(always)]
unsafe fn transpose_rows_f64<const H: usize>(
    dst: *mut f64,
    ld_out: usize,
    src: *const f64,
    rs: isize,
    kc: usize,
) {
    // SAFETY: in bounds by the contract; masked-off lanes are not written.
    unsafe {
        let mask = mask64(H);
        let mut p = 0;
        while p + 4 <= kc {
            // A loop, not `array::from_fn`: a closure loses the target features and its intrinsics
            // would become calls.
            let mut rows = [_mm256_setzero_pd(); 4];
            for i in 0..4 {
                rows[i] = {
                    if i < H {
                        _mm256_loadu_pd(src.offset(i as isize * rs).add(p))
                    } else {
                        _mm256_setzero_pd()
                    }
                };
            }
            for (u, col) in transpose_4x4(rows).iter().enumerate() {
                if H == 4 {
                    _mm256_storeu_pd(dst.add((p + u) * ld_out), *col);
                } else {
                    _mm256_maskstore_pd(dst.add((p + u) * ld_out), mask, *col);
                }
            }
            p += 4;
        }
        for p in p..kc {
            for i in 0..H {
                *dst.add(p * ld_out + i) = *src.offset(i as isize * rs).add(p);
            }
        }
    }
}

/// Packs an f32 A block; whole panels of a row-major A are transposed in registers.
///
/// # Safety
/// See [`super::PackAFn`]; the CPU has AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn pack_a_f32(dst: *mut f32, a: MatRef<f32>, rows: usize, kc: usize) {
    // SAFETY: `pack_a_block` hands each panel its own rows and slot.
    let panel = |d, a: MatRef<f32>, h, kc| unsafe {
        if a.cs == 1 && h == MR {
            transpose_rows_f32::<MR>(d, MR, a.ptr, a.rs, kc)
        } else {
            pack_a_panel::<f32, MR>(d, a, h, kc)
        }
    };
    // SAFETY: forwarded contract.
    unsafe { pack_a_block::<f32, MR>(dst, a, rows, kc, panel) }
}

/// Packs an f64 A block; whole panels of a row-major A are transposed in registers (rows 0..4
/// and 4..6 separately).
///
/// # Safety
/// See [`super::PackAFn`]; the CPU has AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn pack_a_f64(dst: *mut f64, a: MatRef<f64>, rows: usize, kc: usize) {
    // SAFETY: `pack_a_block` hands each panel its own rows and slot; rows 4..6 start 4 rows down
    // and 4 values into each step.
    let panel = |d: *mut f64, a: MatRef<f64>, h, kc| unsafe {
        if a.cs == 1 && h == MR {
            transpose_rows_f64::<4>(d, MR, a.ptr, a.rs, kc);
            transpose_rows_f64::<{ MR - 4 }>(d.add(4), MR, a.ptr.offset(4 * a.rs), a.rs, kc);
        } else {
            pack_a_panel::<f64, MR>(d, a, h, kc)
        }
    };
    // SAFETY: forwarded contract.
    unsafe { pack_a_block::<f64, MR>(dst, a, rows, kc, panel) }
}

/// Packs one f32 B micro-panel; a B with contiguous columns (Wᵀ) is transposed in registers.
///
/// # Safety
/// See [`super::PackBFn`]; the CPU has AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn pack_b_f32(dst: *mut f32, b: MatRef<f32>, kc: usize, cols: usize) {
    const NR: usize = NV * 8;
    // SAFETY: forwarded contract; the two halves are columns 0..8 and 8..16.
    unsafe {
        if b.rs == 1 && b.cs != 1 && cols == NR {
            transpose_rows_f32::<8>(dst, NR, b.ptr, b.cs, kc);
            transpose_rows_f32::<8>(dst.add(8), NR, b.ptr.offset(8 * b.cs), b.cs, kc);
        } else {
            pack_b_panel::<f32, NR>(dst, b, kc, cols)
        }
    }
}

/// Packs one f64 B micro-panel; a B with contiguous columns (Wᵀ) is transposed in registers.
///
/// # Safety
/// See [`super::PackBFn`]; the CPU has AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn pack_b_f64(dst: *mut f64, b: MatRef<f64>, kc: usize, cols: usize) {
    const NR: usize = NV * 4;
    // SAFETY: forwarded contract; the two halves are columns 0..4 and 4..8.
    unsafe {
        if b.rs == 1 && b.cs != 1 && cols == NR {
            transpose_rows_f64::<4>(dst, NR, b.ptr, b.cs, kc);
            transpose_rows_f64::<4>(dst.add(4), NR, b.ptr.offset(4 * b.cs), b.cs, kc);
        } else {
            pack_b_panel::<f64, NR>(dst, b, kc, cols)
        }
    }
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
    micro: micro_f32::<true>,
    micro_unpacked_a: Some(micro_f32::<false>),
    pack_a: pack_a_f32,
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
    micro: micro_f64::<true>,
    micro_unpacked_a: Some(micro_f64::<false>),
    pack_a: pack_a_f64,
    pack_b: pack_b_f64,
    gemv_rows: gemv_rows_f64,
    gemv_cols: gemv_cols_f64,
};
