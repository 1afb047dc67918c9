//! Matrix-vector products (M = 1, as in decoding; N = 1 by transposition): memory-bound, so a
//! dedicated path that reads B exactly once, in its own layout, without packing.
//!
//! `y = α·xᵀB + β·y` with B stored either row by row (unit column stride: [`GemvFn`] `rows`, which
//! streams whole rows) or column by column (unit row stride: `cols`, dot products — the case of
//! `x · Wᵀ` for a row-major weight W). The outputs are split into contiguous ranges, one per thread,
//! so both cores stream their share of B; each output is computed by the same sequence of
//! operations whatever the split, so results do not depend on the thread count. Operands with
//! neither axis contiguous go through the blocked path instead, whose packing handles any strides.
//!
//! [`GemvFn`]: super::kernels::GemvFn

use rayon::prelude::*;

use super::kernels::{GemvCall, KernelSpec};
use super::pack::{MatMut, MatRef};
use crate::element::Element;

/// Matrix-vector products over fewer elements of B than this (`k·n`) run on the calling thread:
/// 64K elements is 256 KiB of f32, a few microseconds of streaming, about the cost of a rayon
/// round trip.
pub(crate) const GEMV_PARALLEL_MIN_ELEMENTS: usize = 1 << 16;

/// Output ranges start on multiples of this many elements, so each thread's share of a row of B
/// begins on a cache line (for f32; 2 lines for f64).
const GEMV_CHUNK_ALIGN: usize = 16;

/// `y(1 × n) = α·x(1 × k)·B(k × n) + β·y` for 1-row views `x` and `y` (any column strides).
///
/// Returns `false` (doing nothing) when neither axis of B is contiguous.
///
/// # Safety
/// `x` is valid for `1 × k` elements, `b` for `k × n`, `y` for `1 × n` and does not overlap the
/// inputs.
pub(crate) unsafe fn gemv<T: Element>(
    spec: &KernelSpec<T>,
    k: usize,
    n: usize,
    alpha: T,
    x: MatRef<T>,
    b: MatRef<T>,
    beta: T,
    y: MatMut<T>,
) -> bool {
    let (kernel, ldb) = if b.cs == 1 {
        (spec.gemv_rows, b.rs)
    } else if b.rs == 1 {
        (spec.gemv_cols, b.cs)
    } else {
        return false;
    };
    // x is read many times (once per output group): make it contiguous first if needed.
    let x_contiguous: Vec<T>;
    let x_ptr = if x.cs == 1 {
        x.ptr
    } else {
        // SAFETY: x is valid for k elements at stride x.cs.
        x_contiguous = (0..k)
            .map(|p| unsafe { *x.ptr.offset(p as isize * x.cs) })
            .collect();
        x_contiguous.as_ptr()
    };
    let x_shared = MatRef {
        ptr: x_ptr,
        rs: 0,
        cs: 1,
    };
    let threads = if k.saturating_mul(n) < GEMV_PARALLEL_MIN_ELEMENTS {
        1
    } else {
        rayon::current_num_threads()
    };
    let chunk = n.div_ceil(threads).div_ceil(GEMV_CHUNK_ALIGN) * GEMV_CHUNK_ALIGN;
    let run = |j0: usize| {
        let (x, b, y) = (x_shared, b, y);
        // SAFETY: columns j0..j0+w of B and outputs j0..j0+w of y are in bounds; distinct j0 give
        // disjoint output ranges.
        unsafe {
            let call = GemvCall {
                k,
                n: chunk.min(n - j0),
                x: x.ptr,
                b: b.at(0, j0).ptr,
                ldb,
                y: y.at(0, j0),
                incy: y.cs,
                alpha,
                beta,
            };
            kernel(&call);
        }
    };
    if threads > 1 && n > chunk {
        (0..n).into_par_iter().step_by(chunk.max(1)).for_each(run);
    } else {
        (0..n).step_by(chunk.max(1)).for_each(run);
    }
    true
}
