//! GEMM: `C = α·A·B + β·C`, the one matrix product everything in fm goes through.
//!
//! [`gemm`] takes ndarray views with any strides — transposed (`a.t()`), sliced with steps,
//! reversed, broadcast — and never asks the caller to copy; [`matmul`] allocates the result;
//! [`batched_matmul`] broadcasts over leading batch dimensions like `numpy.matmul`.
//!
//! ```
//! use fm_tensor::gemm::{gemm, matmul};
//! use ndarray::array;
//!
//! let a = array![[1.0f32, 2.0], [3.0, 4.0]];
//! let b = array![[5.0f32, 6.0], [7.0, 8.0]];
//! assert_eq!(matmul(a.view(), b.view())?, array![[19.0, 22.0], [43.0, 50.0]]);
//!
//! // Accumulate Aᵀ·B into an existing C (as a backward pass does), reading A transposed in place.
//! let mut c = array![[1.0f32, 1.0], [1.0, 1.0]];
//! gemm(1.0, a.t(), b.view(), 1.0, c.view_mut())?;
//! assert_eq!(c, array![[27.0, 31.0], [39.0, 45.0]]);
//! # Ok::<(), fm_tensor::TensorError>(())
//! ```
//!
//! # How it is organised
//! - `loops.rs`: the five BLIS loops and the split into rayon tasks;
//! - `pack.rs`: copying blocks of A and B from any strides into micro-panel order;
//! - `kernels/`: the register-tile micro-kernels, one file per instruction set (`avx512.rs`,
//!   `avx2.rs`, `portable.rs`, and the `scalar.rs` reference);
//! - `dispatch.rs`: which kernel this CPU gets ([`selected_kernel`]), detected once;
//! - `gemv.rs`: matrix-vector products (M = 1 or N = 1), memory-bound, both cores streaming;
//! - `batched.rs`: [`batched_matmul`];
//! - `prepacked.rs`: operands packed once and multiplied many times ([`gemm_prepacked`]).
//!
//! # Threads and determinism
//! Large products split C into blocks over the current rayon pool (cap it with
//! [`Compute::with_threads`](crate::Compute::with_threads)); the depth K is never split, so results
//! are bitwise identical for any number of threads. Small products run on the calling thread.
//! Different kernels ([`GemmKernel`]) may differ in the last bits (FMA or not, tile shapes).

mod batched;
mod dispatch;
mod gemv;
mod kernels;
mod loops;
mod pack;
mod prepacked;

use ndarray::{Array2, ArrayView2, ArrayViewMut2};

use crate::element::Element;
use crate::error::{Result, TensorError};

pub use batched::batched_matmul;
pub use dispatch::{selected_kernel, GemmKernel};
pub use prepacked::{gemm_prepacked, Lhs, PackedLhs, PackedLhsRef, PackedRhs, PackedRhsRef, Rhs};

use kernels::KernelSpec;
use pack::{MatMut, MatRef};

mod sealed {
    use super::kernels::{self, KernelSpec};
    use super::GemmKernel;

    /// Seals [`GemmElement`](super::GemmElement) and carries the per-type kernel tables.
    pub trait Sealed: Sized + 'static {
        /// The kernel family's table for this type, if this build has it.
        fn kernel_spec(kernel: GemmKernel) -> Option<&'static KernelSpec<Self>>;
    }

    impl Sealed for f32 {
        fn kernel_spec(kernel: GemmKernel) -> Option<&'static KernelSpec<f32>> {
            match kernel {
                GemmKernel::Scalar => Some(&kernels::scalar::F32),
                GemmKernel::Portable => Some(&kernels::portable::F32),
                #[cfg(target_arch = "x86_64")]
                GemmKernel::Avx2 => Some(&kernels::avx2::F32),
                #[cfg(target_arch = "x86_64")]
                GemmKernel::Avx512 => Some(&kernels::avx512::F32),
                #[cfg(not(target_arch = "x86_64"))]
                GemmKernel::Avx2 | GemmKernel::Avx512 => None,
            }
        }
    }

    impl Sealed for f64 {
        fn kernel_spec(kernel: GemmKernel) -> Option<&'static KernelSpec<f64>> {
            match kernel {
                GemmKernel::Scalar => Some(&kernels::scalar::F64),
                GemmKernel::Portable => Some(&kernels::portable::F64),
                #[cfg(target_arch = "x86_64")]
                GemmKernel::Avx2 => Some(&kernels::avx2::F64),
                #[cfg(target_arch = "x86_64")]
                GemmKernel::Avx512 => Some(&kernels::avx512::F64),
                #[cfg(not(target_arch = "x86_64"))]
                GemmKernel::Avx2 | GemmKernel::Avx512 => None,
            }
        }
    }
}

/// Scalar types with GEMM kernels (`f32` and `f64`). Sealed: implemented here only; it carries
/// each type's table of micro-kernels.
pub trait GemmElement: sealed::Sealed + Copy {}
impl GemmElement for f32 {}
impl GemmElement for f64 {}

/// `C = α·A·B + β·C` for any strides of A, B and C (pass `a.t()` for Aᵀ).
///
/// A is `m × k`, B is `k × n`, C must be `m × n`. When `beta` is exactly zero, C is only written
/// (NaN or garbage in C is overwritten); when `k == 0` the result is `β·C`. Runs in the current
/// rayon pool with the kernel of [`selected_kernel`].
///
/// # Errors
/// [`TensorError::ShapeMismatch`] when the inner dimensions differ (naming both shapes) or C is not
/// `m × n`.
///
/// ```
/// use fm_tensor::gemm::gemm;
/// use ndarray::{array, s, Array2};
///
/// let a = Array2::from_shape_fn((4, 3), |(i, j)| (i + j) as f64);
/// let b = Array2::from_shape_fn((6, 2), |(i, j)| (i * j) as f64);
/// let mut c = Array2::from_elem((4, 2), f64::NAN);
/// // Every other row of B; β = 0 overwrites the NaNs.
/// gemm(2.0, a.view(), b.slice(s![..;2, ..]), 0.0, c.view_mut())?;
/// assert_eq!(c, 2.0 * a.dot(&b.slice(s![..;2, ..])));
/// # Ok::<(), fm_tensor::TensorError>(())
/// ```
pub fn gemm<T: Element>(
    alpha: T,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    beta: T,
    c: ArrayViewMut2<'_, T>,
) -> Result<()> {
    let spec = T::kernel_spec(selected_kernel()).expect("the selected kernel is compiled in");
    gemm_with_spec(spec, alpha, a, b, beta, c)
}

/// [`gemm`] with a chosen kernel family instead of the detected one (for tests and benchmarks).
///
/// # Errors
/// As [`gemm`], and [`TensorError::InvalidArgument`] when this CPU cannot run `kernel`.
///
/// ```
/// use fm_tensor::gemm::{gemm_with_kernel, GemmKernel};
/// use ndarray::{array, Array2};
///
/// let a = array![[1.0f32, 2.0]];
/// let b = array![[3.0f32], [4.0]];
/// let mut c = Array2::zeros((1, 1));
/// gemm_with_kernel(GemmKernel::Scalar, 1.0, a.view(), b.view(), 0.0, c.view_mut())?;
/// assert_eq!(c[[0, 0]], 11.0);
/// # Ok::<(), fm_tensor::TensorError>(())
/// ```
pub fn gemm_with_kernel<T: Element>(
    kernel: GemmKernel,
    alpha: T,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    beta: T,
    c: ArrayViewMut2<'_, T>,
) -> Result<()> {
    let spec = T::kernel_spec(kernel)
        .filter(|_| kernel.is_available())
        .ok_or_else(|| {
            TensorError::invalid_argument(
                "gemm_with_kernel",
                format!("this CPU cannot run the {kernel} kernel"),
            )
        })?;
    gemm_with_spec(spec, alpha, a, b, beta, c)
}

/// `A·B` into a new (row-major) array: the entry point for users who only want the product.
///
/// # Errors
/// [`TensorError::ShapeMismatch`] when the inner dimensions differ, naming both shapes.
///
/// ```
/// use fm_tensor::gemm::matmul;
/// use ndarray::Array2;
/// let x = Array2::<f32>::ones((2, 3));
/// let w = Array2::<f32>::ones((4, 3));
/// assert_eq!(matmul(x.view(), w.t())?, Array2::from_elem((2, 4), 3.0)); // x·Wᵀ without a copy
/// # Ok::<(), fm_tensor::TensorError>(())
/// ```
pub fn matmul<T: Element>(a: ArrayView2<'_, T>, b: ArrayView2<'_, T>) -> Result<Array2<T>> {
    check_inner("matmul", a.shape(), b.shape())?;
    let mut c = Array2::zeros((a.nrows(), b.ncols()));
    gemm(T::one(), a, b, T::zero(), c.view_mut())?;
    Ok(c)
}

/// Errors unless `[m, k] × [k, n]` fit.
fn check_inner(op: &'static str, a: &[usize], b: &[usize]) -> Result<()> {
    if a[a.len() - 1] != b[b.len() - 2] {
        return Err(TensorError::shape_mismatch(
            op,
            a,
            b,
            format!(
                "inner dimensions {} and {} differ",
                a[a.len() - 1],
                b[b.len() - 2]
            ),
        ));
    }
    Ok(())
}

/// Shape checks, then the product with one kernel family.
fn gemm_with_spec<T: Element>(
    spec: &KernelSpec<T>,
    alpha: T,
    a: ArrayView2<'_, T>,
    b: ArrayView2<'_, T>,
    beta: T,
    c: ArrayViewMut2<'_, T>,
) -> Result<()> {
    let (m, k) = a.dim();
    let n = b.ncols();
    let Some(mut c) = check_product("gemm", a.dim(), b.dim(), alpha, beta, c)? else {
        return Ok(());
    };
    let a = MatRef {
        ptr: a.as_ptr(),
        rs: a.strides()[0],
        cs: a.strides()[1],
    };
    let b = MatRef {
        ptr: b.as_ptr(),
        rs: b.strides()[0],
        cs: b.strides()[1],
    };
    let c = MatMut {
        ptr: c.as_mut_ptr(),
        rs: c.strides()[0],
        cs: c.strides()[1],
    };
    // SAFETY: the pointers and strides come from live ndarray views of the stated shapes, borrowed
    // for this whole call; C is borrowed mutably, so it overlaps neither A nor B.
    unsafe { gemm_raw(spec, m, n, k, alpha, a, b, beta, c) };
    Ok(())
}

/// The checks every product entry point makes, and the products with nothing to multiply: errors
/// unless `A (m × k) · B (k × n)` fit each other and C; `Ok(None)` when the call is complete (m or
/// n is zero: nothing to do; k or α is zero: `C = β·C`), else C back for the real product.
fn check_product<'c, T: Element>(
    op: &'static str,
    (m, k): (usize, usize),
    (kb, n): (usize, usize),
    alpha: T,
    beta: T,
    c: ArrayViewMut2<'c, T>,
) -> Result<Option<ArrayViewMut2<'c, T>>> {
    check_inner(op, &[m, k], &[kb, n])?;
    if c.dim() != (m, n) {
        return Err(TensorError::shape_mismatch(
            op,
            &[m, n],
            c.shape(),
            format!("C must be [rows of A, columns of B] = [{m}, {n}]"),
        ));
    }
    if m == 0 || n == 0 {
        return Ok(None);
    }
    if k == 0 || alpha == T::zero() {
        scale(beta, c);
        return Ok(None);
    }
    Ok(Some(c))
}

/// `C = β·C` (zero-filling when β is zero, so NaN in C does not survive).
fn scale<T: Element>(beta: T, mut c: ArrayViewMut2<'_, T>) {
    if beta == T::zero() {
        c.fill(T::zero());
    } else if beta != T::one() {
        c.map_inplace(|x| *x = *x * beta);
    }
}

/// The product on raw strided operands, `m, n, k ≥ 1`: orientation, then the matrix-vector or the
/// blocked path.
///
/// # Safety
/// `a` is valid for `m × k` elements, `b` for `k × n`, `c` for `m × n` and overlaps neither.
pub(crate) unsafe fn gemm_raw<T: Element>(
    spec: &KernelSpec<T>,
    m: usize,
    n: usize,
    k: usize,
    alpha: T,
    a: MatRef<T>,
    b: MatRef<T>,
    beta: T,
    c: MatMut<T>,
) {
    // The kernels store rows of C as vectors. If C's columns are the contiguous axis, compute
    // Cᵀ = Bᵀ·Aᵀ instead, which turns them into rows (no copy: strides swap).
    let (m, n, a, b, c) = if c.rs.unsigned_abs() < c.cs.unsigned_abs() {
        (n, m, b.t(), a.t(), c.t())
    } else {
        (m, n, a, b, c)
    };
    // SAFETY: forwarded contract (shapes and validity are unchanged by transposition).
    unsafe {
        if m == 1 && gemv::gemv(spec, k, n, alpha, a, b, beta, c) {
            return;
        }
        // N = 1: Cᵀ (1 × m) = bᵀ (1 × k) · Aᵀ (k × m).
        if n == 1 && gemv::gemv(spec, k, m, alpha, b.t(), a.t(), beta, c.t()) {
            return;
        }
        loops::gemm_blocked(spec, m, n, k, alpha, a, b, beta, c);
    }
}

#[cfg(test)]
mod tests;
