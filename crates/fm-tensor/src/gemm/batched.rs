//! Batched matrix products with broadcasting over leading dimensions, as `numpy.matmul` and
//! `torch.matmul` do for operands of rank ≥ 2.
//!
//! The last two axes of each operand are the matrices; the leading (batch) axes are aligned from
//! the right and broadcast (each pair equal, or one of them 1). When B has no real batch axes (the
//! weight of a linear layer) and A's batch axes can be folded into its rows, the whole batch is one
//! large GEMM. Otherwise each batch entry is its own GEMM: in parallel over entries when the
//! matrices are small, one after another (each parallel inside) when they are large.

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use rayon::prelude::*;

use super::loops::PARALLEL_MIN_MACS;
use super::pack::{MatMut, MatRef};
use super::{gemm_raw, selected_kernel};
use crate::element::Element;
use crate::error::{Result, TensorError};

/// `A·B` over broadcast batch dimensions: `[..., m, k] × [..., k, n] → [..., m, n]`.
///
/// Both operands need rank ≥ 2. Batch dimensions broadcast as in NumPy, so
/// `[4, 1, 5, 6] × [3, 6, 7] → [4, 3, 5, 7]` and `[2, 5, 6] × [6, 7] → [2, 5, 7]`.
///
/// # Errors
/// [`TensorError::ShapeMismatch`] (naming both shapes) when a rank is below 2, the inner dimensions
/// differ, or the batch dimensions do not broadcast.
///
/// ```
/// use fm_tensor::gemm::batched_matmul;
/// use ndarray::{ArrayD, IxDyn};
///
/// let a = ArrayD::<f32>::ones(IxDyn(&[4, 1, 5, 6]));
/// let b = ArrayD::<f32>::ones(IxDyn(&[3, 6, 7]));
/// let c = batched_matmul(a.view(), b.view())?;
/// assert_eq!(c.shape(), &[4, 3, 5, 7]);
/// assert!(c.iter().all(|&x| x == 6.0));
/// # Ok::<(), fm_tensor::TensorError>(())
/// ```
pub fn batched_matmul<T: Element>(a: ArrayViewD<'_, T>, b: ArrayViewD<'_, T>) -> Result<ArrayD<T>> {
    let op = "batched_matmul";
    let (ra, rb) = (a.ndim(), b.ndim());
    if ra < 2 || rb < 2 {
        return Err(TensorError::shape_mismatch(
            op,
            a.shape(),
            b.shape(),
            "both operands need rank >= 2",
        ));
    }
    let (m, k) = (a.shape()[ra - 2], a.shape()[ra - 1]);
    let (k2, n) = (b.shape()[rb - 2], b.shape()[rb - 1]);
    if k != k2 {
        return Err(TensorError::shape_mismatch(
            op,
            a.shape(),
            b.shape(),
            format!("inner dimensions {k} and {k2} differ"),
        ));
    }
    // Batch axes, right-aligned; a missing axis acts as size 1 (stride 0).
    let rank = ra.max(rb) - 2;
    let mut batch = vec![0usize; rank];
    let mut a_strides = vec![0isize; rank];
    let mut b_strides = vec![0isize; rank];
    for d in 0..rank {
        let da = (d + ra - 2)
            .checked_sub(rank)
            .map(|i| (a.shape()[i], a.strides()[i]));
        let db = (d + rb - 2)
            .checked_sub(rank)
            .map(|i| (b.shape()[i], b.strides()[i]));
        let (sa, ta) = da.unwrap_or((1, 0));
        let (sb, tb) = db.unwrap_or((1, 0));
        batch[d] = match (sa, sb) {
            _ if sa == sb => sa,
            (1, _) => sb,
            (_, 1) => sa,
            _ => {
                return Err(TensorError::shape_mismatch(
                    op,
                    a.shape(),
                    b.shape(),
                    format!("batch dimensions {sa} and {sb} do not broadcast"),
                ))
            }
        };
        a_strides[d] = if sa == 1 { 0 } else { ta };
        b_strides[d] = if sb == 1 { 0 } else { tb };
    }
    let mut out_shape = batch.clone();
    out_shape.extend([m, n]);
    let mut c = ArrayD::<T>::zeros(IxDyn(&out_shape));
    let entries: usize = batch.iter().product();
    if entries == 0 || m == 0 || n == 0 || k == 0 {
        return Ok(c);
    }
    let spec = T::kernel_spec(selected_kernel()).expect("the selected kernel is compiled in");
    let (a_rs, a_cs) = (a.strides()[ra - 2], a.strides()[ra - 1]);
    let (b_rs, b_cs) = (b.strides()[rb - 2], b.strides()[rb - 1]);
    let c_ptr = c.as_mut_ptr();
    let (one, zero) = (T::one(), T::zero());

    // B shared by every entry and A's entries laid out as consecutive row blocks: one big GEMM.
    if b_strides.iter().all(|&s| s == 0) {
        if let Some(rows_stride) = folded_row_stride(&batch, &a_strides, m, a_rs) {
            let a = MatRef {
                ptr: a.as_ptr(),
                rs: rows_stride,
                cs: a_cs,
            };
            let b = MatRef {
                ptr: b.as_ptr(),
                rs: b_rs,
                cs: b_cs,
            };
            let out = MatMut {
                ptr: c_ptr,
                rs: n as isize,
                cs: 1,
            };
            // SAFETY: A's entries tile `entries·m` rows at stride `rows_stride` inside A's
            // allocation (checked by `folded_row_stride`); C is a fresh standard-layout array.
            unsafe { gemm_raw(spec, entries * m, n, k, one, a, b, zero, out) };
            return Ok(c);
        }
    }

    let (a_ptr, b_ptr) = (
        MatRef {
            ptr: a.as_ptr(),
            rs: a_rs,
            cs: a_cs,
        },
        MatRef {
            ptr: b.as_ptr(),
            rs: b_rs,
            cs: b_cs,
        },
    );
    let c_all = MatMut {
        ptr: c_ptr,
        rs: n as isize,
        cs: 1,
    };
    let entry = |e: usize| {
        let (a_ptr, b_ptr, c_all) = (a_ptr, b_ptr, c_all);
        let (mut rem, mut oa, mut ob) = (e, 0isize, 0isize);
        for d in (0..rank).rev() {
            let i = (rem % batch[d]) as isize;
            rem /= batch[d];
            oa += i * a_strides[d];
            ob += i * b_strides[d];
        }
        // SAFETY: the offsets index entry `e` inside A's and B's allocations (strides from their
        // views, 0 on broadcast axes); entry e of C is its own m × n block of the fresh array, so
        // parallel entries write disjoint memory.
        unsafe {
            let a = MatRef {
                ptr: a_ptr.ptr.offset(oa),
                ..a_ptr
            };
            let b = MatRef {
                ptr: b_ptr.ptr.offset(ob),
                ..b_ptr
            };
            let c = MatMut {
                ptr: c_all.ptr.add(e * m * n),
                ..c_all
            };
            gemm_raw(spec, m, n, k, one, a, b, zero, c);
        }
    };
    if m * n * k < PARALLEL_MIN_MACS && entries > 1 {
        // Small matrices: one entry per task, at least ~PARALLEL_MIN_MACS of work per rayon split.
        let min_len = (PARALLEL_MIN_MACS / (m * n * k)).clamp(1, entries);
        (0..entries)
            .into_par_iter()
            .with_min_len(min_len)
            .for_each(entry);
    } else {
        (0..entries).for_each(entry);
    }
    Ok(c)
}

/// If A's batch axes and row axis together step through memory with one stride (entry `e`, row `i`
/// at `(e·m + i)·rs`), returns that stride.
fn folded_row_stride(batch: &[usize], a_strides: &[isize], m: usize, a_rs: isize) -> Option<isize> {
    let mut expected = a_rs * m as isize;
    for d in (0..batch.len()).rev() {
        if batch[d] != 1 && a_strides[d] != expected {
            return None;
        }
        expected *= batch[d] as isize;
    }
    Some(a_rs)
}
