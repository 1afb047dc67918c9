//! The AVX-512F micro-kernels (x86-64): 512-bit registers, 32 of them.
//!
//! Tiles: f32 14×32 and f64 14×16 — two vectors along N per row of C, 14 rows, so 28 accumulator
//! registers plus two for the B row and one broadcast. With an FMA latency of 4 cycles and two FMA
//! pipes, 8 independent chains would suffice; 28 leave room to hide the loads (per step: 2 vector
//! loads of B and 14 broadcasts of A for 28 FMAs).

use std::arch::x86_64::*;

use super::{
    gemv_cols_body, gemv_rows_body, tile_body, with_const_rows, GemvCall, KernelSpec, MicroTile,
    SimdVec,
};
use crate::gemm::dispatch::GemmKernel;
use crate::gemm::pack::{pack_a_block, pack_a_panel, pack_b_panel, MatRef};

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

/// f32 micro-kernel, 14×32 (A packed, or read in place without `PACKED_A`).
///
/// # Safety
/// See [`super::MicroKernelFn`]; the CPU has AVX-512F.
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn micro_f32<const PACKED_A: bool>(tile: &MicroTile<f32>) {
    // SAFETY: forwarded contract; `rows` is in 1..=MR.
    unsafe {
        with_const_rows!(tile.rows, |R| tile_body::<f32, F32x16, MR, R, NV, PACKED_A>(tile), [1 2 3 4 5 6 7 8 9 10 11 12 13 14])
    }
}

/// f64 micro-kernel, 14×16 (A packed, or read in place without `PACKED_A`).
///
/// # Safety
/// See [`super::MicroKernelFn`]; the CPU has AVX-512F.
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn micro_f64<const PACKED_A: bool>(tile: &MicroTile<f64>) {
    // SAFETY: forwarded contract; `rows` is in 1..=MR.
    unsafe {
        with_const_rows!(tile.rows, |R| tile_body::<f64, F64x8, MR, R, NV, PACKED_A>(tile), [1 2 3 4 5 6 7 8 9 10 11 12 13 14])
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

/// In-register transpose of a 16×16 block of f32: `out[c]` lane `r` = `rows[r]` lane `c`.
///
/// # Safety
/// AVX-512F must be enabled in the caller.
#[inline(always)]
unsafe fn transpose_16x16(r: [__m512; 16]) -> [__m512; 16] {
    // SAFETY: AVX-512F is enabled in the calling entry point.
    unsafe {
        // Interleave pairs of rows, then pairs of pairs: u[4g + c] holds, in its four 128-bit lanes,
        // rows 4g..4g+4 of columns c, c+4, c+8, c+12.
        // A loop, not `array::from_fn`: a closure loses the target features and its intrinsics
        // would become calls.
        let mut t = [_mm512_setzero_ps(); 16];
        for i in 0..16 {
            t[i] = {
                let (a, b) = (r[i & !1], r[i | 1]);
                if i % 2 == 0 {
                    _mm512_unpacklo_ps(a, b)
                } else {
                    _mm512_unpackhi_ps(a, b)
                }
            };
        }
        // A loop, not `array::from_fn`: a closure loses the target features and its intrinsics
        // would become calls.
        let mut u = [_mm512_setzero_ps(); 16];
        for i in 0..16 {
            u[i] = {
                let g = i / 4 * 4;
                let (a, b) = (
                    _mm512_castps_pd(t[g + (i % 4) / 2]),
                    _mm512_castps_pd(t[g + 2 + (i % 4) / 2]),
                );
                _mm512_castpd_ps(if i % 2 == 0 {
                    _mm512_unpacklo_pd(a, b)
                } else {
                    _mm512_unpackhi_pd(a, b)
                })
            };
        }
        // Gather 128-bit lanes across row groups: v[2c'], v[2c'+1] from (u[c'], u[c'+4]), ...
        // A loop, not `array::from_fn`: a closure loses the target features and its intrinsics
        // would become calls.
        let mut v = [_mm512_setzero_ps(); 16];
        for i in 0..16 {
            v[i] = {
                let base = if i < 8 { 0 } else { 8 };
                let c = (i % 8) / 2;
                let (a, b) = (u[base + c], u[base + 4 + c]);
                if i % 2 == 0 {
                    _mm512_shuffle_f32x4::<0x88>(a, b)
                } else {
                    _mm512_shuffle_f32x4::<0xDD>(a, b)
                }
            };
        }
        // v[2c] = [R0-3 col c, R0-3 col c+8, R4-7 col c, R4-7 col c+8] (c over 0,1,2,3 in the
        // order u delivers them: 0, 1, 2, 3 → columns 0, 1, 2, 3 with +4 in the odd v).
        let mut out = [_mm512_setzero_ps(); 16];
        for i in 0..8 {
            let lo = _mm512_shuffle_f32x4::<0x88>(v[i], v[i + 8]);
            let hi = _mm512_shuffle_f32x4::<0xDD>(v[i], v[i + 8]);
            let col = COLUMN_OF_V[i];
            out[col] = lo;
            out[col + 8] = hi;
        }
        out
    }
}

/// The column (0..8) that `v[i]` of [`transpose_16x16`] holds in its even 128-bit lanes.
const COLUMN_OF_V: [usize; 8] = [0, 4, 1, 5, 2, 6, 3, 7];

/// Transposing copy of `H ≤ 16` rows that are contiguous along k (row stride `rs`): step `p` of
/// the output, at `dst + p·ld_out`, holds the `H` values of column `p`. This is the packing of a
/// row-major A (or of B = Wᵀ) — a transpose — done 16 steps at a time in registers.
///
/// # Safety
/// `src` is valid for `H` rows of `kc` elements at stride `rs`; `dst` for `(kc-1)·ld_out + H`
/// elements; AVX-512F is enabled in the caller.
#[inline(always)]
unsafe fn transpose_rows_f32<const H: usize>(
    dst: *mut f32,
    ld_out: usize,
    src: *const f32,
    rs: isize,
    kc: usize,
) {
    let mask = ((1u32 << H) - 1) as __mmask16;
    // SAFETY: in bounds by the contract.
    unsafe {
        let mut p = 0;
        while p + 16 <= kc {
            // A loop, not `array::from_fn`: a closure loses the target features and its intrinsics
            // would become calls.
            let mut rows = [_mm512_setzero_ps(); 16];
            for i in 0..16 {
                rows[i] = {
                    if i < H {
                        _mm512_loadu_ps(src.offset(i as isize * rs).add(p))
                    } else {
                        _mm512_setzero_ps()
                    }
                };
            }
            let cols = transpose_16x16(rows);
            for (u, col) in cols.iter().enumerate() {
                _mm512_mask_storeu_ps(dst.add((p + u) * ld_out), mask, *col);
            }
            p += 16;
        }
        for p in p..kc {
            for i in 0..H {
                *dst.add(p * ld_out + i) = *src.offset(i as isize * rs).add(p);
            }
        }
    }
}

/// In-register transpose of an 8×8 block of f64.
///
/// # Safety
/// AVX-512F must be enabled in the caller.
#[inline(always)]
unsafe fn transpose_8x8(r: [__m512d; 8]) -> [__m512d; 8] {
    // SAFETY: AVX-512F is enabled in the calling entry point.
    unsafe {
        // t[2j] / t[2j+1]: rows 2j, 2j+1 of the even / odd columns, one column pair per 128-bit lane.
        // A loop, not `array::from_fn`: a closure loses the target features and its intrinsics
        // would become calls.
        let mut t = [_mm512_setzero_pd(); 8];
        for i in 0..8 {
            t[i] = {
                let (a, b) = (r[i & !1], r[i | 1]);
                if i % 2 == 0 {
                    _mm512_unpacklo_pd(a, b)
                } else {
                    _mm512_unpackhi_pd(a, b)
                }
            };
        }
        // u[0..4] rows 0-3, u[4..8] rows 4-7: columns (0,4), (2,6), (1,5), (3,7) per lane pair.
        // A loop, not `array::from_fn`: a closure loses the target features and its intrinsics
        // would become calls.
        let mut u = [_mm512_setzero_pd(); 8];
        for i in 0..8 {
            u[i] = {
                let g = i / 4 * 4;
                let (a, b) = (t[g + (i % 4) / 2], t[g + 2 + (i % 4) / 2]);
                if i % 2 == 0 {
                    _mm512_shuffle_f64x2::<0x88>(a, b)
                } else {
                    _mm512_shuffle_f64x2::<0xDD>(a, b)
                }
            };
        }
        let mut out = [_mm512_setzero_pd(); 8];
        for (i, &col) in [0usize, 2, 1, 3].iter().enumerate() {
            out[col] = _mm512_shuffle_f64x2::<0x88>(u[i], u[i + 4]);
            out[col + 4] = _mm512_shuffle_f64x2::<0xDD>(u[i], u[i + 4]);
        }
        out
    }
}

/// As [`transpose_rows_f32`], for `H ≤ 8` rows of f64, 8 steps at a time.
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
    let mask = ((1u32 << H) - 1) as __mmask8;
    // SAFETY: in bounds by the contract.
    unsafe {
        let mut p = 0;
        while p + 8 <= kc {
            // A loop, not `array::from_fn`: a closure loses the target features and its intrinsics
            // would become calls.
            let mut rows = [_mm512_setzero_pd(); 8];
            for i in 0..8 {
                rows[i] = {
                    if i < H {
                        _mm512_loadu_pd(src.offset(i as isize * rs).add(p))
                    } else {
                        _mm512_setzero_pd()
                    }
                };
            }
            let cols = transpose_8x8(rows);
            for (u, col) in cols.iter().enumerate() {
                _mm512_mask_storeu_pd(dst.add((p + u) * ld_out), mask, *col);
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

/// Packs an f32 A block; whole panels of a row-major A are transposed in registers.
///
/// # Safety
/// See [`super::PackAFn`]; the CPU has AVX-512F.
#[target_feature(enable = "avx512f,avx2,fma")]
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

/// Packs an f64 A block; whole panels of a row-major A are transposed in registers (rows 0..8
/// and 8..14 separately).
///
/// # Safety
/// See [`super::PackAFn`]; the CPU has AVX-512F.
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn pack_a_f64(dst: *mut f64, a: MatRef<f64>, rows: usize, kc: usize) {
    // SAFETY: `pack_a_block` hands each panel its own rows and slot; rows 8..14 start 8 rows
    // down and 8 values into each step.
    let panel = |d: *mut f64, a: MatRef<f64>, h, kc| unsafe {
        if a.cs == 1 && h == MR {
            transpose_rows_f64::<8>(d, MR, a.ptr, a.rs, kc);
            transpose_rows_f64::<{ MR - 8 }>(d.add(8), MR, a.ptr.offset(8 * a.rs), a.rs, kc);
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
/// See [`super::PackBFn`]; the CPU has AVX-512F.
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn pack_b_f32(dst: *mut f32, b: MatRef<f32>, kc: usize, cols: usize) {
    const NR: usize = NV * 16;
    // SAFETY: forwarded contract; the two halves are columns 0..16 and 16..32.
    unsafe {
        if b.rs == 1 && b.cs != 1 && cols == NR {
            transpose_rows_f32::<16>(dst, NR, b.ptr, b.cs, kc);
            transpose_rows_f32::<16>(dst.add(16), NR, b.ptr.offset(16 * b.cs), b.cs, kc);
        } else {
            pack_b_panel::<f32, NR>(dst, b, kc, cols)
        }
    }
}

/// Packs one f64 B micro-panel; a B with contiguous columns (Wᵀ) is transposed in registers.
///
/// # Safety
/// See [`super::PackBFn`]; the CPU has AVX-512F.
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn pack_b_f64(dst: *mut f64, b: MatRef<f64>, kc: usize, cols: usize) {
    const NR: usize = NV * 8;
    // SAFETY: forwarded contract; the two halves are columns 0..8 and 8..16.
    unsafe {
        if b.rs == 1 && b.cs != 1 && cols == NR {
            transpose_rows_f64::<8>(dst, NR, b.ptr, b.cs, kc);
            transpose_rows_f64::<8>(dst.add(8), NR, b.ptr.offset(8 * b.cs), b.cs, kc);
        } else {
            pack_b_panel::<f64, NR>(dst, b, kc, cols)
        }
    }
}

/// f32 on AVX-512F.
///
/// KC = 1024: long enough that C is loaded and stored rarely (once for K ≤ 1024) and the
/// per-tile overhead vanishes; the 1024×32 B micro-panel (128 KiB) and the 14×1024 A micro-panel
/// stream from L2, which the 4 B/cycle of A and 9 B/cycle of B per FMA pair sustain easily.
/// MC = 112 (8 micro-panels): the 112×1024 A block is 448 KiB, half the 1 MiB L2, leaving room for
/// the B micro-panel. NC = 4096: the 1024×4096 B block (16 MiB) sits in L3, and A is packed
/// once for N ≤ 4096. Measured on Zen 5 against KC ∈ {256, 512, 1024, 2048} and
/// MC ∈ {56, 112, 224}: within noise of each other from KC = 512 on; 256 and below lose 5–10%.
pub(crate) static F32: KernelSpec<f32> = KernelSpec {
    kernel: GemmKernel::Avx512,
    mr: MR,
    nr: NV * 16,
    kc: 1024,
    mc: MR * 8,
    nc: 4096,
    micro: micro_f32::<true>,
    micro_unpacked_a: Some(micro_f32::<false>),
    pack_a: pack_a_f32,
    pack_b: pack_b_f32,
    gemv_rows: gemv_rows_f32,
    gemv_cols: gemv_cols_f32,
};

/// f64 on AVX-512F: the same tile in registers holds half the columns; KC = 512 keeps the panels
/// at the f32 byte sizes (B micro-panel 64 KiB, A block 448 KiB), NC = 2048 the B block at 8 MiB.
pub(crate) static F64: KernelSpec<f64> = KernelSpec {
    kernel: GemmKernel::Avx512,
    mr: MR,
    nr: NV * 8,
    kc: 512,
    mc: MR * 8,
    nc: 2048,
    micro: micro_f64::<true>,
    micro_unpacked_a: Some(micro_f64::<false>),
    pack_a: pack_a_f64,
    pack_b: pack_b_f64,
    gemv_rows: gemv_rows_f64,
    gemv_cols: gemv_cols_f64,
};
