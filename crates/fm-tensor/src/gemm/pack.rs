//! Packing: copying blocks of A and B from any strides into the contiguous micro-panel order the
//! micro-kernels read, into reusable 64-byte-aligned buffers.
//!
//! A block of A (`mc × kc`) becomes `⌈mc/MR⌉` micro-panels; micro-panel `q` holds, step by step
//! along k, the `MR` values `A[q·MR + i, p]`. A block of B (`kc × nc`) becomes `⌈nc/NR⌉`
//! micro-panels; micro-panel `q` holds, step by step, the `NR` values `B[p, q·NR + j]`, zero past the
//! last column (the kernels load whole vectors). Each copy has a fast path for the operand's
//! contiguous axis and a general path for any strides (negative and zero included), so callers never
//! make operands contiguous themselves.
//!
//! The buffers live in thread-locals and are only ever grown, so the hot path allocates nothing
//! after the first call of a given size on a given thread.

use std::cell::Cell;
use std::mem::MaybeUninit;
use std::thread::LocalKey;

use crate::element::Element;

/// A read-only strided matrix: element `(i, j)` lives at `ptr + i·rs + j·cs`.
#[derive(Debug)]
pub struct MatRef<T> {
    /// Element `(0, 0)`.
    pub ptr: *const T,
    /// Row stride in elements.
    pub rs: isize,
    /// Column stride in elements.
    pub cs: isize,
}

impl<T> Clone for MatRef<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for MatRef<T> {}

// SAFETY: a `MatRef` is a borrowed read-only view; the GEMM entry points hold the borrow of the
// ndarray views for the whole call, and `T: Sync` (f32/f64) makes shared reads from threads fine.
unsafe impl<T: Sync> Send for MatRef<T> {}
// SAFETY: as above.
unsafe impl<T: Sync> Sync for MatRef<T> {}

impl<T> MatRef<T> {
    /// The view of the transpose (no copy).
    pub fn t(self) -> Self {
        MatRef {
            ptr: self.ptr,
            rs: self.cs,
            cs: self.rs,
        }
    }

    /// The sub-matrix starting at `(i, j)`.
    ///
    /// # Safety
    /// `(i, j)` must lie within the matrix (or one past, for empty ranges).
    #[inline]
    pub unsafe fn at(self, i: usize, j: usize) -> Self {
        // SAFETY: the caller keeps (i, j) inside the viewed allocation.
        let ptr = unsafe { self.ptr.offset(i as isize * self.rs + j as isize * self.cs) };
        MatRef { ptr, ..self }
    }
}

/// A writable strided matrix, shared between threads that write disjoint tiles.
#[derive(Debug)]
pub struct MatMut<T> {
    /// Element `(0, 0)`.
    pub ptr: *mut T,
    /// Row stride in elements.
    pub rs: isize,
    /// Column stride in elements.
    pub cs: isize,
}

impl<T> Clone for MatMut<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for MatMut<T> {}

// SAFETY: the GEMM loops hand each task a disjoint set of C tiles, so no element is written by two
// threads; the mutable borrow of the ndarray view is held for the whole call.
unsafe impl<T: Send> Send for MatMut<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for MatMut<T> {}

impl<T> MatMut<T> {
    /// The view of the transpose (no copy).
    pub fn t(self) -> Self {
        MatMut {
            ptr: self.ptr,
            rs: self.cs,
            cs: self.rs,
        }
    }

    /// Pointer to element `(i, j)`.
    ///
    /// # Safety
    /// `(i, j)` must lie within the matrix.
    #[inline]
    pub unsafe fn at(self, i: usize, j: usize) -> *mut T {
        // SAFETY: the caller keeps (i, j) inside the viewed allocation.
        unsafe { self.ptr.offset(i as isize * self.rs + j as isize * self.cs) }
    }
}

/// Packs `rows × kc` of `a` into micro-panels of `MR` rows at `dst`, packing each micro-panel
/// with `panel(dst, a_rows, h, kc)` (`h ≤ MR` rows).
///
/// # Safety
/// `a` is valid for `rows × kc` elements; `dst` for `⌈rows/MR⌉·MR·kc` elements; `panel` upholds
/// the contract of [`pack_a_panel`].
#[inline(always)]
pub(crate) unsafe fn pack_a_block<T: Element, const MR: usize>(
    dst: *mut T,
    a: MatRef<T>,
    rows: usize,
    kc: usize,
    panel: impl Fn(*mut T, MatRef<T>, usize, usize),
) {
    let mut i0 = 0;
    if a.rs == 1 && rows >= 2 * MR {
        // Column-major A (Aᵀ of a row-major matrix, as in `dW = dYᵀ·X`): each step is a contiguous
        // run of `rows` values, a whole row of the stored matrix. Copy it into every full
        // micro-panel at once, reading each cache line once and in order, instead of walking all
        // `kc` rows (a page apart) once per micro-panel; prefetch the rows a few steps ahead,
        // which the hardware does not do for strides over 2 KiB.
        let full = rows / MR;
        // SAFETY: step p's run of `full·MR ≤ rows` values lies inside `a`; micro-panel q has room
        // for kc·MR values at dst + q·MR·kc; prefetching never faults.
        unsafe {
            for p in 0..kc {
                let src = a.ptr.offset(p as isize * a.cs);
                prefetch_run(
                    src.wrapping_offset(PREFETCH_STEPS as isize * a.cs),
                    full * MR,
                );
                for q in 0..full {
                    let step = src.add(q * MR).cast::<[T; MR]>().read_unaligned();
                    dst.add((q * kc + p) * MR)
                        .cast::<[T; MR]>()
                        .write_unaligned(step);
                }
            }
        }
        i0 = full * MR;
    }
    while i0 < rows {
        // SAFETY: rows i0..i0+h exist in `a`; micro-panel i0/MR has room for kc·MR values.
        unsafe { panel(dst.add(i0 * kc), a.at(i0, 0), (rows - i0).min(MR), kc) };
        i0 += MR;
    }
}

/// How many steps ahead [`pack_a_block`] prefetches the rows of a column-major A.
const PREFETCH_STEPS: usize = 8;

/// Hints the `len` values from `p` into the cache, one line at a time (never faults; a no-op off
/// x86-64).
#[inline(always)]
fn prefetch_run<T>(p: *const T, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        let bytes = len * std::mem::size_of::<T>();
        let start = p.cast::<u8>();
        for offset in (0..bytes).step_by(64) {
            // SAFETY: prefetching is a hint and never faults, whatever the address.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    start.wrapping_add(offset).cast(),
                )
            };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (p, len);
}

/// Packs one micro-panel of A: `h ≤ MR` rows × `kc` steps into `kc` steps of `MR` values.
/// Rows `h..MR` are not written (the edge kernels do not read them).
///
/// # Safety
/// `a` is valid for `h × kc` elements, `dst` for `kc·MR`.
#[inline(always)]
pub(crate) unsafe fn pack_a_panel<T: Element, const MR: usize>(
    dst: *mut T,
    a: MatRef<T>,
    h: usize,
    kc: usize,
) {
    // SAFETY: in bounds by the contract.
    unsafe {
        if a.rs == 1 && h == MR {
            // Columns contiguous along i (column-major A): one fixed-size copy per step.
            for p in 0..kc {
                let step = a
                    .ptr
                    .offset(p as isize * a.cs)
                    .cast::<[T; MR]>()
                    .read_unaligned();
                dst.add(p * MR).cast::<[T; MR]>().write_unaligned(step);
            }
        } else if a.cs == 1 {
            // Rows contiguous along k (row-major A): read each row, scatter with stride MR.
            // (The SIMD kernels replace this with in-register transposes for whole panels.)
            for i in 0..h {
                let row = a.ptr.offset(i as isize * a.rs);
                for p in 0..kc {
                    *dst.add(p * MR + i) = *row.add(p);
                }
            }
        } else {
            for p in 0..kc {
                for i in 0..h {
                    *dst.add(p * MR + i) = *a.ptr.offset(i as isize * a.rs + p as isize * a.cs);
                }
            }
        }
    }
}

/// Packs the `kc × cols` strip of `b` (`cols ≤ NR`) into one micro-panel at `dst`, zero-padding
/// columns `cols..NR`.
///
/// # Safety
/// `b` is valid for `kc × cols` elements; `dst` for `kc·NR` elements.
#[inline(always)]
pub(crate) unsafe fn pack_b_panel<T: Element, const NR: usize>(
    dst: *mut T,
    b: MatRef<T>,
    kc: usize,
    cols: usize,
) {
    // SAFETY: in bounds by the contract.
    unsafe {
        if b.cs == 1 && cols == NR {
            // Rows contiguous along n (row-major B): one fixed-size copy per step.
            for p in 0..kc {
                let step = b
                    .ptr
                    .offset(p as isize * b.rs)
                    .cast::<[T; NR]>()
                    .read_unaligned();
                dst.add(p * NR).cast::<[T; NR]>().write_unaligned(step);
            }
        } else if b.rs == 1 {
            // Columns contiguous along k (B = Wᵀ of a row-major W): read columns, scatter.
            // (The SIMD kernels replace this with in-register transposes for whole panels.)
            for j in 0..cols {
                let col = b.ptr.offset(j as isize * b.cs);
                for p in 0..kc {
                    *dst.add(p * NR + j) = *col.add(p);
                }
            }
            for p in 0..kc {
                for j in cols..NR {
                    *dst.add(p * NR + j) = T::zero();
                }
            }
        } else {
            for p in 0..kc {
                for j in 0..NR {
                    *dst.add(p * NR + j) = if j < cols {
                        *b.ptr.offset(p as isize * b.rs + j as isize * b.cs)
                    } else {
                        T::zero()
                    };
                }
            }
        }
    }
}

/// One cache line; the unit in which packing buffers are allocated, so they are 64-byte aligned.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct CacheLine([u8; 64]);

/// A growable, 64-byte-aligned scratch buffer for packed panels.
///
/// New memory is not cleared: the packing routines write every value a micro-kernel later reads
/// (B panels are zero-padded explicitly; the rows past the edge of a last A micro-panel are
/// neither written nor read), and [`PackedLhs`](super::PackedLhs) / [`PackedRhs`](super::PackedRhs)
/// allocate one buffer per operand, where a clearing pass cost as much as the packing itself.
#[derive(Default)]
pub(crate) struct PackBuffer {
    lines: Vec<MaybeUninit<CacheLine>>,
}

impl PackBuffer {
    /// Grows (never shrinks) to hold at least `len` values of `T`, returning the start. New memory
    /// holds no particular values (NaN in test builds, so a read of an unwritten value shows).
    pub fn reserve<T>(&mut self, len: usize) -> *mut T {
        let lines = (len * std::mem::size_of::<T>()).div_ceil(64);
        if self.lines.len() < lines {
            let mut fresh = Vec::with_capacity(lines);
            // SAFETY: `MaybeUninit` values need no initialisation, and the capacity is `lines`.
            unsafe { fresh.set_len(lines) };
            if cfg!(test) {
                // All-ones bytes are NaN as f32 and as f64.
                fresh.fill(MaybeUninit::new(CacheLine([0xff; 64])));
            }
            self.lines = fresh;
        }
        self.lines.as_mut_ptr().cast()
    }

    /// The start of the buffer, for reading what was packed into it.
    pub fn as_ptr<T>(&self) -> *const T {
        self.lines.as_ptr().cast()
    }
}

thread_local! {
    /// Each thread's buffer for packed A blocks.
    pub(crate) static A_BUFFER: Cell<Option<PackBuffer>> = const { Cell::new(None) };
    /// The calling thread's buffer for the packed B block shared by a call's tasks.
    pub(crate) static B_BUFFER: Cell<Option<PackBuffer>> = const { Cell::new(None) };
    /// Each thread's buffer for one B micro-panel packed right before use (small M).
    pub(crate) static B_PANEL_BUFFER: Cell<Option<PackBuffer>> = const { Cell::new(None) };
}

/// Runs `work` with this thread's buffer from `key`, grown to `len` values of `T`.
///
/// The buffer is taken out of the thread-local for the duration, so a re-entrant call on the same
/// thread (rayon may run another GEMM task while this one waits) gets a fresh buffer instead of
/// aliasing this one.
pub(crate) fn with_buffer<T, R>(
    key: &'static LocalKey<Cell<Option<PackBuffer>>>,
    len: usize,
    work: impl FnOnce(*mut T) -> R,
) -> R {
    let mut buffer = key.with(|cell| cell.take()).unwrap_or_default();
    let result = work(buffer.reserve::<T>(len));
    key.with(|cell| cell.set(Some(buffer)));
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{s, Array2};

    fn mat(a: &ndarray::ArrayView2<'_, f64>) -> MatRef<f64> {
        MatRef {
            ptr: a.as_ptr(),
            rs: a.strides()[0],
            cs: a.strides()[1],
        }
    }

    fn sample(rows: usize, cols: usize) -> Array2<f64> {
        Array2::from_shape_fn((rows, cols), |(i, j)| (i * 100 + j) as f64)
    }

    #[test]
    fn a_block_is_laid_out_by_micro_panel_for_every_layout() {
        let base = sample(13, 9);
        let col_major = base.t().as_standard_layout().reversed_axes().to_owned();
        let views = [
            base.view(),
            col_major.view(),
            base.slice(s![..;-1, ..]),
            base.slice(s![.., ..;-1]),
        ];
        for a in &views {
            let (rows, kc, mr) = (a.nrows(), a.ncols(), 4);
            let mut dst = vec![-1.0; rows.div_ceil(mr) * mr * kc];
            // SAFETY: sizes as documented.
            unsafe {
                pack_a_block::<f64, 4>(dst.as_mut_ptr(), mat(a), rows, kc, |d, a, h, kc| {
                    pack_a_panel::<f64, 4>(d, a, h, kc)
                })
            };
            for i in 0..rows {
                for p in 0..kc {
                    assert_eq!(dst[(i / mr) * mr * kc + p * mr + i % mr], a[[i, p]]);
                }
            }
        }
    }

    #[test]
    fn b_panel_is_laid_out_by_step_and_zero_padded() {
        for width in [5, 8] {
            let base = sample(7, width);
            let strided = sample(7, 2 * width);
            let col_major = base.t().as_standard_layout().reversed_axes().to_owned();
            let views = [
                base.view(),
                col_major.view(),
                strided.slice(s![.., ..;2]),
                base.slice(s![..;-1, ..;-1]),
            ];
            for b in &views {
                let (kc, cols, nr) = (b.nrows(), b.ncols(), 8);
                let mut dst = vec![-1.0; kc * nr];
                // SAFETY: sizes as documented.
                unsafe { pack_b_panel::<f64, 8>(dst.as_mut_ptr(), mat(b), kc, cols) };
                for p in 0..kc {
                    for j in 0..nr {
                        let want = if j < cols { b[[p, j]] } else { 0.0 };
                        assert_eq!(dst[p * nr + j], want);
                    }
                }
            }
        }
    }

    #[test]
    fn buffers_are_aligned_and_reentrant() {
        with_buffer::<f32, _>(&A_BUFFER, 100, |outer| {
            assert_eq!(outer as usize % 64, 0);
            with_buffer::<f32, _>(&A_BUFFER, 100, |inner| assert_ne!(outer, inner));
        });
    }
}
