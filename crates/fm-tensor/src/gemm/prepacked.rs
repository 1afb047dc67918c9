//! Operands packed once and multiplied many times: [`PackedLhs`], [`PackedRhs`] and
//! [`gemm_prepacked`].
//!
//! [`gemm`](super::gemm) packs both operands into micro-panel order on every call. When the same
//! block meets many others — a block of keys against every block of queries in attention, a
//! weight against many small batches — that copy is repeated for nothing: in fm-attention's fused
//! kernels it was a quarter of the time. Pack such a block once with [`PackedLhs::new`] or
//! [`PackedRhs::new`] and pass it to [`gemm_prepacked`] as often as needed; the other operand may
//! be a plain view, packed on the fly as usual — except a left operand with contiguous rows or
//! columns that meets at most four B micro-panels (N ≤ 128 for f32 on AVX-512), which the
//! micro-kernel reads in place: packing it would copy all of A to serve only that many passes.
//!
//! ```
//! use fm_tensor::gemm::{gemm, gemm_prepacked, PackedRhs};
//! use ndarray::{Array2, ShapeBuilder};
//!
//! let keys = Array2::from_shape_fn((128, 64), |(i, j)| ((i * 7 + j) % 5) as f32 - 2.0);
//! let kt = PackedRhs::new(keys.t()); // Kᵀ, packed once
//! for block in 0..3 {
//!     let q = Array2::from_elem((16, 64), block as f32);
//!     let mut scores = Array2::zeros((16, 128));
//!     gemm_prepacked(1.0, q.view(), &kt, 0.0, scores.view_mut())?;
//!     let mut want = Array2::zeros((16, 128));
//!     gemm(1.0, q.view(), keys.t(), 0.0, want.view_mut())?;
//!     assert_eq!(scores, want); // the same kernel, the same bits
//! }
//! # Ok::<(), fm_tensor::TensorError>(())
//! ```
//!
//! The product runs on the calling thread (it is meant for blocks inside a loop that is already
//! parallel) with the whole depth in one pass; results equal [`gemm`](super::gemm)'s bit for bit
//! when C has contiguous rows, both m and n exceed 1 and the depth fits one of gemm's depth slices
//! (up to 1024 for f32 with AVX-512), since the same micro-kernel then sees the same values in the
//! same order (gemm turns a column-major C into a transposed product, and m = 1 or n = 1 into a
//! matrix-vector one, which round differently).

use std::fmt;

use ndarray::{ArrayView2, ArrayViewMut2};

use super::check_product;
use super::dispatch::selected_kernel;
use super::kernels::{KernelSpec, MicroKernelFn, MicroTile};
use super::pack::{with_buffer, MatRef, PackBuffer, A_BUFFER, B_BUFFER};
use crate::element::Element;
use crate::error::{Result, TensorError};

/// A left operand (`m × k`) packed into the selected kernel's micro-panels.
pub struct PackedLhs<T: Element> {
    spec: &'static KernelSpec<T>,
    rows: usize,
    depth: usize,
    data: PackBuffer,
}

/// A right operand (`k × n`) packed into the selected kernel's micro-panels.
pub struct PackedRhs<T: Element> {
    spec: &'static KernelSpec<T>,
    depth: usize,
    cols: usize,
    data: PackBuffer,
}

fn spec_for<T: Element>() -> &'static KernelSpec<T> {
    T::kernel_spec(selected_kernel()).expect("the selected kernel is compiled in")
}

fn matref<T>(a: &ArrayView2<'_, T>) -> MatRef<T> {
    MatRef {
        ptr: a.as_ptr(),
        rs: a.strides()[0],
        cs: a.strides()[1],
    }
}

/// Packs all of `b` (`depth × cols`) into `⌈cols/NR⌉` micro-panels of `depth` steps at `dst`.
///
/// # Safety
/// `dst` is valid for `⌈cols/NR⌉·NR·depth` values.
unsafe fn pack_rhs<T: Element>(spec: &KernelSpec<T>, dst: *mut T, b: &ArrayView2<'_, T>) {
    let (depth, cols) = b.dim();
    let src = matref(b);
    for q in 0..cols.div_ceil(spec.nr) {
        let c0 = q * spec.nr;
        // SAFETY: columns c0.. (at most NR of them) of the live view; panel q's slot of depth·NR
        // values lies inside `dst` by the contract.
        unsafe {
            (spec.pack_b)(
                dst.add(q * spec.nr * depth),
                src.at(0, c0),
                depth,
                spec.nr.min(cols - c0),
            )
        };
    }
}

impl<T: Element> PackedLhs<T> {
    /// Packs `a` (any strides) for use as the left operand of [`gemm_prepacked`].
    pub fn new(a: ArrayView2<'_, T>) -> Self {
        let spec = spec_for::<T>();
        let (rows, depth) = a.dim();
        let mut data = PackBuffer::default();
        let len = rows.div_ceil(spec.mr) * spec.mr * depth;
        if len > 0 {
            let dst = data.reserve::<T>(len);
            // SAFETY: `a` is a live view of rows × depth elements; `dst` holds ⌈rows/MR⌉·MR·depth.
            unsafe { (spec.pack_a)(dst, matref(&a), rows, depth) };
        }
        PackedLhs {
            spec,
            rows,
            depth,
            data,
        }
    }

    /// `[rows, depth]` of the packed matrix.
    pub fn dim(&self) -> (usize, usize) {
        (self.rows, self.depth)
    }

    /// The first `rows` rows and `depth` columns, as an operand (no copy).
    ///
    /// # Errors
    /// [`TensorError::ShapeMismatch`] when the corner is larger than the matrix.
    pub fn leading(&self, rows: usize, depth: usize) -> Result<PackedLhsRef<'_, T>> {
        check_corner("PackedLhs::leading", [self.rows, self.depth], [rows, depth])?;
        Ok(PackedLhsRef {
            packed: self,
            rows,
            depth,
        })
    }
}

/// Errors unless `corner` fits inside `full`.
fn check_corner(op: &'static str, full: [usize; 2], corner: [usize; 2]) -> Result<()> {
    if corner[0] > full[0] || corner[1] > full[1] {
        return Err(TensorError::shape_mismatch(
            op,
            &full,
            &corner,
            "the leading corner must fit inside the packed matrix".to_string(),
        ));
    }
    Ok(())
}

impl<T: Element> PackedRhs<T> {
    /// Packs `b` (any strides, `b.t()` of a row-major matrix included) for use as the right
    /// operand of [`gemm_prepacked`].
    pub fn new(b: ArrayView2<'_, T>) -> Self {
        let spec = spec_for::<T>();
        let (depth, cols) = b.dim();
        let mut data = PackBuffer::default();
        let panels = cols.div_ceil(spec.nr);
        if panels > 0 && depth > 0 {
            let dst = data.reserve::<T>(panels * spec.nr * depth);
            // SAFETY: the buffer was just reserved for every panel of this view.
            unsafe { pack_rhs(spec, dst, &b) };
        }
        PackedRhs {
            spec,
            depth,
            cols,
            data,
        }
    }

    /// `[depth, cols]` of the packed matrix.
    pub fn dim(&self) -> (usize, usize) {
        (self.depth, self.cols)
    }

    /// The first `depth` rows and `cols` columns, as an operand (no copy).
    ///
    /// # Errors
    /// [`TensorError::ShapeMismatch`] when the corner is larger than the matrix.
    pub fn leading(&self, depth: usize, cols: usize) -> Result<PackedRhsRef<'_, T>> {
        check_corner("PackedRhs::leading", [self.depth, self.cols], [depth, cols])?;
        Ok(PackedRhsRef {
            packed: self,
            depth,
            cols,
        })
    }
}

impl<T: Element> fmt::Debug for PackedLhs<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PackedLhs")
            .field("rows", &self.rows)
            .field("depth", &self.depth)
            .field("kernel", &self.spec.kernel)
            .finish()
    }
}

impl<T: Element> fmt::Debug for PackedRhs<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PackedRhs")
            .field("depth", &self.depth)
            .field("cols", &self.cols)
            .field("kernel", &self.spec.kernel)
            .finish()
    }
}

/// The leading `rows × depth` corner of a [`PackedLhs`] ([`PackedLhs::leading`]).
#[derive(Debug, Clone, Copy)]
pub struct PackedLhsRef<'a, T: Element> {
    packed: &'a PackedLhs<T>,
    rows: usize,
    depth: usize,
}

/// The leading `depth × cols` corner of a [`PackedRhs`] ([`PackedRhs::leading`]).
#[derive(Debug, Clone, Copy)]
pub struct PackedRhsRef<'a, T: Element> {
    packed: &'a PackedRhs<T>,
    depth: usize,
    cols: usize,
}

/// The left operand of [`gemm_prepacked`]: a view (packed during the call) or packed beforehand.
#[derive(Debug, Clone, Copy)]
pub enum Lhs<'a, T: Element> {
    /// Packed during the call.
    View(ArrayView2<'a, T>),
    /// Packed beforehand (all of a [`PackedLhs`], or its leading corner).
    Packed(PackedLhsRef<'a, T>),
}

/// The right operand of [`gemm_prepacked`]: a view (packed during the call) or packed beforehand.
#[derive(Debug, Clone, Copy)]
pub enum Rhs<'a, T: Element> {
    /// Packed during the call.
    View(ArrayView2<'a, T>),
    /// Packed beforehand (all of a [`PackedRhs`], or its leading corner).
    Packed(PackedRhsRef<'a, T>),
}

impl<'a, T: Element> From<ArrayView2<'a, T>> for Lhs<'a, T> {
    fn from(a: ArrayView2<'a, T>) -> Self {
        Lhs::View(a)
    }
}
impl<'a, T: Element> From<&'a PackedLhs<T>> for Lhs<'a, T> {
    fn from(a: &'a PackedLhs<T>) -> Self {
        Lhs::Packed(PackedLhsRef {
            packed: a,
            rows: a.rows,
            depth: a.depth,
        })
    }
}
impl<'a, T: Element> From<PackedLhsRef<'a, T>> for Lhs<'a, T> {
    fn from(a: PackedLhsRef<'a, T>) -> Self {
        Lhs::Packed(a)
    }
}
impl<'a, T: Element> From<ArrayView2<'a, T>> for Rhs<'a, T> {
    fn from(b: ArrayView2<'a, T>) -> Self {
        Rhs::View(b)
    }
}
impl<'a, T: Element> From<&'a PackedRhs<T>> for Rhs<'a, T> {
    fn from(b: &'a PackedRhs<T>) -> Self {
        Rhs::Packed(PackedRhsRef {
            packed: b,
            depth: b.depth,
            cols: b.cols,
        })
    }
}
impl<'a, T: Element> From<PackedRhsRef<'a, T>> for Rhs<'a, T> {
    fn from(b: PackedRhsRef<'a, T>) -> Self {
        Rhs::Packed(b)
    }
}

impl<T: Element> Lhs<'_, T> {
    fn dim(&self) -> (usize, usize) {
        match self {
            Lhs::View(a) => a.dim(),
            Lhs::Packed(a) => (a.rows, a.depth),
        }
    }
}

impl<T: Element> Rhs<'_, T> {
    fn dim(&self) -> (usize, usize) {
        match self {
            Rhs::View(b) => b.dim(),
            Rhs::Packed(b) => (b.depth, b.cols),
        }
    }
}

/// `C = α·A·B + β·C` where either operand may be packed beforehand ([`PackedLhs`], [`PackedRhs`])
/// or be a plain view; on the calling thread (see the [module docs](self)).
///
/// # Errors
/// [`TensorError::ShapeMismatch`] when the inner dimensions differ or C is not `[m, n]`, naming
/// the shapes.
pub fn gemm_prepacked<'a, 'b, T: Element>(
    alpha: T,
    a: impl Into<Lhs<'a, T>>,
    b: impl Into<Rhs<'b, T>>,
    beta: T,
    c: ArrayViewMut2<'_, T>,
) -> Result<()> {
    let (a, b) = (a.into(), b.into());
    let (m, k) = a.dim();
    let n = b.dim().1;
    let Some(mut c) = check_product("gemm_prepacked", a.dim(), b.dim(), alpha, beta, c)? else {
        return Ok(());
    };
    let spec = match (&a, &b) {
        (Lhs::Packed(p), _) => p.packed.spec,
        (_, Rhs::Packed(p)) => p.packed.spec,
        _ => spec_for::<T>(),
    };
    if let (Lhs::Packed(pa), Rhs::Packed(pb)) = (&a, &b) {
        // Both were packed with the kernel selected for this process, so this cannot differ;
        // checked because the layouts would silently disagree if it did.
        if !std::ptr::eq(pa.packed.spec, pb.packed.spec) {
            return Err(TensorError::invalid_argument(
                "gemm_prepacked",
                "the operands were packed for different kernels".to_string(),
            ));
        }
    }
    let (rs, cs) = (c.strides()[0], c.strides()[1]);
    let c_ptr = c.as_mut_ptr();
    // A packed operand's micro-panels hold its full depth; a leading corner uses the first `k`
    // steps of each, so panels are `stride` steps apart. For an A read in place by
    // `micro_unpacked_a`, `a_stride` is its row stride and `a_cs` its column stride (else unused).
    let run = |kernel: MicroKernelFn<T>,
               apack: *const T,
               a_stride: usize,
               a_cs: isize,
               bpack: *const T,
               b_stride: usize| {
        let (mr, nr) = (spec.mr, spec.nr);
        for q in 0..n.div_ceil(nr) {
            let col = q * nr;
            for ir in (0..m).step_by(mr) {
                // SAFETY: panel q of B starts at col·stride and holds ≥ k steps of NR values,
                // panel ir/MR of A likewise (or, read in place, rows ir.. of the A view start
                // ir·a_stride elements in and span k columns at a_cs); the tile's rows ir.. and
                // columns col.. (clipped to m, n) lie inside the live C view, which is borrowed
                // mutably for this call.
                unsafe {
                    let tile = MicroTile {
                        kc: k,
                        a: apack.add(ir * a_stride),
                        rsa: a_stride as isize,
                        csa: a_cs,
                        b: bpack.add(col * b_stride),
                        c: c_ptr.offset(ir as isize * rs + col as isize * cs),
                        rsc: rs,
                        csc: cs,
                        rows: mr.min(m - ir),
                        cols: nr.min(n - col),
                        alpha,
                        beta,
                    };
                    kernel(&tile);
                }
            }
        }
    };
    let with_b = |kernel: MicroKernelFn<T>, apack: *const T, a_stride: usize, a_cs: isize| match b {
        Rhs::Packed(pb) => run(
            kernel,
            apack,
            a_stride,
            a_cs,
            pb.packed.data.as_ptr(),
            pb.packed.depth,
        ),
        Rhs::View(view) => {
            let panels = n.div_ceil(spec.nr);
            with_buffer::<T, _>(&B_BUFFER, panels * spec.nr * k, |dst| {
                // SAFETY: this thread's buffer has room for every panel of the view.
                unsafe { pack_rhs(spec, dst, &view) };
                run(kernel, apack, a_stride, a_cs, dst, k)
            })
        }
    };
    match a {
        Lhs::Packed(pa) => with_b(spec.micro, pa.packed.data.as_ptr(), pa.packed.depth, 0),
        Lhs::View(view) if read_in_place(spec, &view, n) => {
            let micro_unpacked_a = spec.micro_unpacked_a.expect("checked by read_in_place");
            // Rows `ir..` start `ir·rs` elements in: the kernel reads them there.
            let (rs, cs) = (view.strides()[0], view.strides()[1]);
            with_b(micro_unpacked_a, view.as_ptr(), rs as usize, cs)
        }
        Lhs::View(view) => {
            with_buffer::<T, _>(&A_BUFFER, m.div_ceil(spec.mr) * spec.mr * k, |dst| {
                // SAFETY: as in `PackedLhs::new`, into this thread's buffer of that size.
                unsafe { (spec.pack_a)(dst, matref(&view), m, k) };
                with_b(spec.micro, dst, k, 0)
            })
        }
    }
    Ok(())
}

/// Whether a plain left operand is multiplied in place rather than packed: its rows or its columns
/// are contiguous (the other stride non-negative), the kernel family can read it so, and few B
/// panels meet it — packing reads and writes all of A to serve only that many passes over it.
fn read_in_place<T: Element>(spec: &KernelSpec<T>, a: &ArrayView2<'_, T>, n: usize) -> bool {
    let (rs, cs) = (a.strides()[0], a.strides()[1]);
    spec.micro_unpacked_a.is_some()
        && rs >= 0
        && cs >= 0
        && (rs == 1 || cs == 1)
        && n.div_ceil(spec.nr) <= IN_PLACE_MAX_PANELS
}

/// Most B panels for which a plain A with contiguous rows or columns is read in place (see
/// [`read_in_place`]).
const IN_PLACE_MAX_PANELS: usize = 4;

#[cfg(test)]
mod tests {
    use ndarray::{s, Array2};

    use super::*;
    use crate::gemm::gemm;

    fn random(rows: usize, cols: usize, seed: u64) -> Array2<f64> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        Array2::from_shape_simple_fn((rows, cols), || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        })
    }

    /// Every combination of packed and plain operands, row-major, transposed and strided, equals
    /// `gemm` bit for bit where both take the blocked path (m, n > 1), and to 1e-12 elsewhere.
    #[test]
    fn prepacked_products_equal_gemm_on_odd_sizes_and_layouts() {
        let big_a = random(300, 300, 1);
        let big_b = random(300, 300, 2);
        for &(m, n, k) in &[
            (1, 1, 1),
            (1, 37, 5),
            (13, 1, 64),
            (14, 32, 64),
            (15, 33, 67),
            (67, 65, 17),
            (112, 128, 64),
            (29, 70, 130),
        ] {
            let layouts_a = [
                big_a.slice(s![..m, ..k]),
                big_a.slice(s![..k, ..m]).reversed_axes(),
                big_a.slice(s![..2 * m;2, 1..k + 1]),
            ];
            let layouts_b = [
                big_b.slice(s![..k, ..n]),
                big_b.slice(s![..n, ..k]).reversed_axes(),
                big_b.slice(s![..k;1, ..2 * n;2]),
            ];
            for a in &layouts_a {
                for b in &layouts_b {
                    let c0 = random(m, n, 3);
                    let mut want = c0.clone();
                    gemm(0.5, *a, *b, 2.0, want.view_mut()).unwrap();
                    let (pa, pb) = (PackedLhs::new(*a), PackedRhs::new(*b));
                    let results = [
                        (Lhs::View(*a), Rhs::View(*b)),
                        ((&pa).into(), Rhs::View(*b)),
                        (Lhs::View(*a), (&pb).into()),
                        ((&pa).into(), (&pb).into()),
                    ]
                    .map(|(x, y)| {
                        let mut c = c0.clone();
                        gemm_prepacked(0.5, x, y, 2.0, c.view_mut()).unwrap();
                        c
                    });
                    for got in &results {
                        if m > 1 && n > 1 {
                            assert_eq!(got, &want, "{m}×{n}×{k}");
                        } else {
                            for (g, w) in got.iter().zip(&want) {
                                assert!((g - w).abs() <= 1e-12 * w.abs().max(1.0), "{m}×{n}×{k}");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn packed_operands_are_reusable_and_f32_works() {
        let k = Array2::from_shape_fn((70, 64), |(i, j)| ((i * 3 + j) % 11) as f32 - 5.0);
        let kt = PackedRhs::new(k.t());
        assert_eq!(kt.dim(), (64, 70));
        for rows in [1, 14, 33] {
            let q = Array2::from_shape_fn((rows, 64), |(i, j)| ((i + 2 * j) % 7) as f32 * 0.25);
            let pq = PackedLhs::new(q.view());
            let mut got = Array2::zeros((rows, 70));
            gemm_prepacked(1.0, &pq, &kt, 0.0, got.view_mut()).unwrap();
            let want = q.dot(&k.t());
            assert_eq!(got, want, "small integers: exact in any order");
        }
    }

    /// Leading corners of packed operands (fewer rows, columns or depth steps) equal the product
    /// of the corresponding slices.
    #[test]
    fn leading_corners_equal_products_of_slices() {
        let a = random(47, 70, 4);
        let b = random(70, 69, 5);
        let (pa, pb) = (PackedLhs::new(a.view()), PackedRhs::new(b.t().t()));
        for &(m, k, n) in &[
            (47, 70, 69),
            (1, 1, 1),
            (30, 64, 33),
            (14, 37, 32),
            (15, 69, 1),
        ] {
            let (sa, sb) = (a.slice(s![..m, ..k]), b.slice(s![..k, ..n]));
            let mut want = Array2::zeros((m, n));
            gemm_prepacked(1.0, sa, sb, 0.0, want.view_mut()).unwrap();
            let mut got = Array2::zeros((m, n));
            let (ca, cb) = (pa.leading(m, k).unwrap(), pb.leading(k, n).unwrap());
            gemm_prepacked(1.0, ca, cb, 0.0, got.view_mut()).unwrap();
            assert_eq!(got, want, "{m}×{k}×{n}");
        }
        let err = pb.leading(71, 3).unwrap_err().to_string();
        assert!(err.contains("[70, 69]") && err.contains("[71, 3]"), "{err}");
        assert!(pa.leading(47, 71).is_err());
    }

    #[test]
    fn zero_depth_scales_c_and_shapes_are_checked() {
        let a = Array2::<f64>::zeros((3, 0));
        let b = Array2::<f64>::zeros((0, 4));
        let mut c = Array2::from_elem((3, 4), f64::NAN);
        gemm_prepacked(1.0, a.view(), &PackedRhs::new(b.view()), 0.0, c.view_mut()).unwrap();
        assert!(c.iter().all(|&x| x == 0.0), "β = 0 overwrites NaN");

        let a = Array2::<f64>::ones((3, 5));
        let b = Array2::<f64>::ones((4, 2));
        let err = gemm_prepacked(1.0, &PackedLhs::new(a.view()), b.view(), 0.0, c.view_mut())
            .unwrap_err()
            .to_string();
        assert!(err.contains("[3, 5]") && err.contains("[4, 2]"), "{err}");
        let b = Array2::<f64>::ones((5, 2));
        let err = gemm_prepacked(1.0, a.view(), b.view(), 0.0, c.view_mut())
            .unwrap_err()
            .to_string();
        assert!(err.contains("[3, 2]") && err.contains("[3, 4]"), "{err}");
    }
}
