//! The scalar reference kernels: simple loops, no SIMD, no cleverness.
//!
//! Every other kernel is tested against these (through the same packing and loops). Tile 4×4.

use super::{GemvCall, KernelSpec, MicroTile};
use crate::element::Element;
use crate::gemm::dispatch::GemmKernel;
use crate::gemm::pack::{pack_a_block, pack_a_panel, pack_b_panel, MatRef};

/// Rows of the tile.
const MR: usize = 4;
/// Columns of the tile.
const NR: usize = 4;

/// The reference micro-kernel: `acc[i][j] += a[p][i]·b[p][j]` for every step, then the write-back.
///
/// # Safety
/// See [`super::MicroKernelFn`].
unsafe fn micro<T: Element>(tile: &MicroTile<T>) {
    let mut acc = [[T::zero(); NR]; MR];
    for p in 0..tile.kc {
        for i in 0..tile.rows {
            // SAFETY: the packed panels hold `kc` steps of MR (A) and NR (B) values.
            let a = unsafe { *tile.a.add(p * MR + i) };
            for j in 0..NR {
                // SAFETY: as above.
                let b = unsafe { *tile.b.add(p * NR + j) };
                acc[i][j] = acc[i][j] + a * b;
            }
        }
    }
    let beta_is_zero = tile.beta == T::zero();
    for i in 0..tile.rows {
        for j in 0..tile.cols {
            // SAFETY: the C tile is valid for `rows × cols` elements at its strides.
            unsafe {
                let c = tile.c.offset(i as isize * tile.rsc + j as isize * tile.csc);
                let ab = tile.alpha * acc[i][j];
                *c = if beta_is_zero {
                    ab
                } else {
                    tile.beta * *c + ab
                };
            }
        }
    }
}

/// Reference matrix-vector product for B with contiguous rows: one dot product per output.
///
/// # Safety
/// See [`super::GemvFn`].
unsafe fn gemv_rows<T: Element>(call: &GemvCall<T>) {
    // SAFETY: forwarded contract; B's column stride is 1.
    unsafe { gemv_strided(call, call.ldb, 1) }
}

/// Reference matrix-vector product for B with contiguous columns.
///
/// # Safety
/// See [`super::GemvFn`].
unsafe fn gemv_cols<T: Element>(call: &GemvCall<T>) {
    // SAFETY: forwarded contract; B's row stride is 1.
    unsafe { gemv_strided(call, 1, call.ldb) }
}

/// `y[j] = α·Σ_p x[p]·B[p, j] + β·y[j]` with B at strides (`rsb`, `csb`).
///
/// # Safety
/// B is valid for `k × n` elements at those strides, `x` for `k`, `y` for `n` at `incy`.
unsafe fn gemv_strided<T: Element>(call: &GemvCall<T>, rsb: isize, csb: isize) {
    let beta_is_zero = call.beta == T::zero();
    for j in 0..call.n {
        let mut sum = T::zero();
        for p in 0..call.k {
            // SAFETY: in bounds by the contract.
            unsafe {
                sum = sum + *call.x.add(p) * *call.b.offset(p as isize * rsb + j as isize * csb)
            };
        }
        // SAFETY: in bounds by the contract.
        unsafe {
            let y = call.y.offset(j as isize * call.incy);
            *y = if beta_is_zero {
                call.alpha * sum
            } else {
                call.alpha * sum + call.beta * *y
            };
        }
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
    unsafe { pack_b_panel::<f32, { NR }>(dst, b, kc, cols) }
}

/// Packs one f64 micro-panel of B.
///
/// # Safety
/// See [`super::PackBFn`].
unsafe fn pack_b_f64(dst: *mut f64, b: MatRef<f64>, kc: usize, cols: usize) {
    // SAFETY: forwarded contract.
    unsafe { pack_b_panel::<f64, { NR }>(dst, b, kc, cols) }
}

/// f32 reference: small blocks so the tests exercise many block boundaries.
pub(crate) static F32: KernelSpec<f32> = KernelSpec {
    kernel: GemmKernel::Scalar,
    mr: MR,
    nr: NR,
    kc: 64,
    mc: MR * 8,
    nc: NR * 16,
    micro: micro::<f32>,
    micro_unpacked_a: None,
    pack_a: pack_a::<f32>,
    pack_b: pack_b_f32,
    gemv_rows: gemv_rows::<f32>,
    gemv_cols: gemv_cols::<f32>,
};

/// f64 reference.
pub(crate) static F64: KernelSpec<f64> = KernelSpec {
    kernel: GemmKernel::Scalar,
    mr: MR,
    nr: NR,
    kc: 64,
    mc: MR * 8,
    nc: NR * 16,
    micro: micro::<f64>,
    micro_unpacked_a: None,
    pack_a: pack_a::<f64>,
    pack_b: pack_b_f64,
    gemv_rows: gemv_rows::<f64>,
    gemv_cols: gemv_cols::<f64>,
};
