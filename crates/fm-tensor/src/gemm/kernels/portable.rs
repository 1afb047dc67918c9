//! The portable micro-kernels: plain Rust over fixed-size arrays, which the compiler turns into
//! whatever 128-bit SIMD the target has (SSE2 on any x86-64, NEON on aarch64). The fast path on
//! targets without a dedicated kernel.
//!
//! Tile: 6 rows × two 16-byte vectors (6×8 for f32, 6×4 for f64): twelve accumulators fit the
//! sixteen registers of SSE2 with room for the B row and the broadcast.

use super::{
    gemv_cols_body, gemv_rows_body, tile_body, with_const_rows, GemvCall, KernelSpec, MicroTile,
    SimdVec,
};
use crate::element::Element;
use crate::gemm::dispatch::GemmKernel;
use crate::gemm::pack::{pack_a_block, pack_a_panel, pack_b_panel, MatRef};

/// Rows of the register tile.
const MR: usize = 6;
/// Vectors per tile row.
const NV: usize = 2;

/// `W` lanes of `T` as a plain array; each operation is a loop the compiler vectorises.
#[derive(Clone, Copy)]
pub(crate) struct Lanes<T, const W: usize>([T; W]);

// SAFETY: plain Rust, no special instructions; pointer contracts are the caller's.
unsafe impl<T: Element, const W: usize> SimdVec<T> for Lanes<T, W> {
    const LANES: usize = W;
    #[inline(always)]
    unsafe fn zero() -> Self {
        Lanes([T::zero(); W])
    }
    #[inline(always)]
    unsafe fn splat(x: T) -> Self {
        Lanes([x; W])
    }
    #[inline(always)]
    unsafe fn load(p: *const T) -> Self {
        // SAFETY: the caller guarantees W readable elements.
        Lanes(unsafe { p.cast::<[T; W]>().read_unaligned() })
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut T) {
        // SAFETY: the caller guarantees W writable elements.
        unsafe { p.cast::<[T; W]>().write_unaligned(self.0) }
    }
    #[inline(always)]
    unsafe fn load_partial(p: *const T, n: usize) -> Self {
        let mut out = [T::zero(); W];
        for (i, o) in out.iter_mut().enumerate().take(n) {
            // SAFETY: the caller guarantees n readable elements.
            *o = unsafe { *p.add(i) };
        }
        Lanes(out)
    }
    #[inline(always)]
    unsafe fn store_partial(self, p: *mut T, n: usize) {
        for (i, &v) in self.0.iter().enumerate().take(n) {
            // SAFETY: the caller guarantees n writable elements.
            unsafe { *p.add(i) = v };
        }
    }
    #[inline(always)]
    unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self {
        // Unfused: `mul_add` would be a library call without hardware FMA.
        Lanes(std::array::from_fn(|i| a.0[i] * b.0[i] + c.0[i]))
    }
    #[inline(always)]
    unsafe fn mul(a: Self, b: Self) -> Self {
        Lanes(std::array::from_fn(|i| a.0[i] * b.0[i]))
    }
    #[inline(always)]
    unsafe fn add(a: Self, b: Self) -> Self {
        Lanes(std::array::from_fn(|i| a.0[i] + b.0[i]))
    }
    #[inline(always)]
    unsafe fn reduce_sum(self) -> T {
        self.0.iter().fold(T::zero(), |s, &x| s + x)
    }
}

/// Packs a block of A into MR-row micro-panels.
///
/// # Safety
/// See [`super::PackAFn`].
unsafe fn pack_a<T: Element>(dst: *mut T, a: MatRef<T>, rows: usize, kc: usize) {
    // SAFETY: `pack_a_block` hands each panel its own rows and slot.
    let panel = |d, a, h, kc| unsafe { pack_a_panel::<T, MR>(d, a, h, kc) };
    // SAFETY: forwarded contract.
    unsafe { pack_a_block::<T, MR>(dst, a, rows, kc, panel) }
}

/// Packs one f32 micro-panel of B.
///
/// # Safety
/// See [`super::PackBFn`].
unsafe fn pack_b_f32(dst: *mut f32, b: MatRef<f32>, kc: usize, cols: usize) {
    // SAFETY: forwarded contract.
    unsafe { pack_b_panel::<f32, { NV * 4 }>(dst, b, kc, cols) }
}

/// Packs one f64 micro-panel of B.
///
/// # Safety
/// See [`super::PackBFn`].
unsafe fn pack_b_f64(dst: *mut f64, b: MatRef<f64>, kc: usize, cols: usize) {
    // SAFETY: forwarded contract.
    unsafe { pack_b_panel::<f64, { NV * 2 }>(dst, b, kc, cols) }
}

/// f32: four lanes per vector.
type F32x4 = Lanes<f32, 4>;
/// f64: two lanes per vector.
type F64x2 = Lanes<f64, 2>;

/// f32 micro-kernel, 6×8 (A packed, or read in place without `PACKED_A`).
///
/// # Safety
/// See [`super::MicroKernelFn`].
unsafe fn micro_f32<const PACKED_A: bool>(tile: &MicroTile<f32>) {
    // SAFETY: forwarded contract; `rows` is in 1..=MR.
    unsafe {
        with_const_rows!(tile.rows, |R| tile_body::<f32, F32x4, MR, R, NV, PACKED_A>(tile), [1 2 3 4 5 6])
    }
}

/// f64 micro-kernel, 6×4 (A packed, or read in place without `PACKED_A`).
///
/// # Safety
/// See [`super::MicroKernelFn`].
unsafe fn micro_f64<const PACKED_A: bool>(tile: &MicroTile<f64>) {
    // SAFETY: forwarded contract; `rows` is in 1..=MR.
    unsafe {
        with_const_rows!(tile.rows, |R| tile_body::<f64, F64x2, MR, R, NV, PACKED_A>(tile), [1 2 3 4 5 6])
    }
}

/// Matrix-vector, contiguous rows of B, f32.
///
/// # Safety
/// See [`super::GemvFn`].
unsafe fn gemv_rows_f32(call: &GemvCall<f32>) {
    // SAFETY: forwarded contract.
    unsafe { gemv_rows_body::<f32, Lanes<f32, 8>>(call) }
}

/// Matrix-vector, contiguous columns of B, f32.
///
/// # Safety
/// See [`super::GemvFn`].
unsafe fn gemv_cols_f32(call: &GemvCall<f32>) {
    // SAFETY: forwarded contract.
    unsafe { gemv_cols_body::<f32, Lanes<f32, 8>>(call) }
}

/// Matrix-vector, contiguous rows of B, f64.
///
/// # Safety
/// See [`super::GemvFn`].
unsafe fn gemv_rows_f64(call: &GemvCall<f64>) {
    // SAFETY: forwarded contract.
    unsafe { gemv_rows_body::<f64, Lanes<f64, 4>>(call) }
}

/// Matrix-vector, contiguous columns of B, f64.
///
/// # Safety
/// See [`super::GemvFn`].
unsafe fn gemv_cols_f64(call: &GemvCall<f64>) {
    // SAFETY: forwarded contract.
    unsafe { gemv_cols_body::<f64, Lanes<f64, 4>>(call) }
}

/// f32, portable: the AVX2 blocking (KC = 1024, MC = 96, NC = 4096).
pub(crate) static F32: KernelSpec<f32> = KernelSpec {
    kernel: GemmKernel::Portable,
    mr: MR,
    nr: NV * 4,
    kc: 1024,
    mc: MR * 16,
    nc: 4096,
    micro: micro_f32::<true>,
    micro_unpacked_a: Some(micro_f32::<false>),
    pack_a: pack_a::<f32>,
    pack_b: pack_b_f32,
    gemv_rows: gemv_rows_f32,
    gemv_cols: gemv_cols_f32,
};

/// f64, portable: the same blocking in bytes as f32.
pub(crate) static F64: KernelSpec<f64> = KernelSpec {
    kernel: GemmKernel::Portable,
    mr: MR,
    nr: NV * 2,
    kc: 512,
    mc: MR * 16,
    nc: 2048,
    micro: micro_f64::<true>,
    micro_unpacked_a: Some(micro_f64::<false>),
    pack_a: pack_a::<f64>,
    pack_b: pack_b_f64,
    gemv_rows: gemv_rows_f64,
    gemv_cols: gemv_cols_f64,
};
