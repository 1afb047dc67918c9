//! Elementwise ops: each declared once, with its derivative beside it, in a table from which the
//! forward and backward kernels are generated.
//!
//! # Declaring an op
//! A unary op is a type implementing [`UnaryOp`]: `f(x)` and its derivative `df(x, y)`, where
//! `y = f(x)` is handed in so that ops like `exp` or `sigmoid` need not recompute it. A binary op
//! implements [`BinaryOp`]: `f(a, b)` and both partial derivatives `df(a, b) -> (∂f/∂a, ∂f/∂b)`. The
//! macros in this module write those impls and the public functions from one table entry, such as
//!
//! ```text
//! /// e^x.
//! Exp => exp, exp_backward;
//! f(x) = x.exp();
//! df(_x, y) = y;
//! ```
//!
//! The activations in [`activation`](super::activation) are declared the same way.
//!
//! # Conventions of the generated functions
//! - **Unary** `op(x) -> ArrayD` (cannot fail) and `op_backward(x, y, grad) -> Result<ArrayD>`:
//!   `x` the forward input, `y` the forward output, `grad` the gradient of the output; all three of one
//!   shape. An op's derivative may read only one of `x` and `y` (its doc says which); the other must
//!   still have the right shape, so a caller that did not keep it may pass any view of that shape.
//! - **Scalar-parameter unary** ops take the scalar last: `add_scalar(x, s)`,
//!   `add_scalar_backward(x, y, grad, s)`.
//! - **Binary** `op(a, b) -> Result<ArrayD>` broadcasts `a` and `b` as
//!   [`broadcast`](super::broadcast) describes and `op_backward(a, b, grad) -> Result<(ga, gb)>`
//!   returns the two gradients already summed back to the shapes of `a` and `b`. `grad` has the
//!   broadcast shape. For `add` and `sub` only the shapes of `a` and `b` matter: a caller that kept
//!   only shapes can call [`sum_to_shape`] on `grad` (and [`neg`] for `sub`'s second operand) instead.
//! - The generic [`unary`], [`unary_backward`], [`binary`] and [`binary_backward`] run any op value,
//!   e.g. `unary(&Exp, x)` or `unary(&MulScalar(0.5), x)`.
//!
//! # Speed and determinism
//! Operands in standard layout are read as flat slices and the output is written in full into a
//! buffer from [`buffers`](crate::buffers) (recycled or new), so each op is one tight loop that the
//! compiler vectorises; the f32 transcendental functions ([`special`](super::special)) are branch-free so
//! that they vectorise too. Operands in other layouts are copied to standard layout first, except
//! broadcast operands, which are read in place. There is no per-element dispatch or allocation.
//! Large arrays are split over rayon threads; every element is computed independently, so any
//! split gives the same bits. Outputs are always in standard layout. The binary backward for
//! broadcast operands materialises each gradient at the broadcast shape before summing it (one
//! temporary of the output's size per broadcast operand).
//!
//! ```
//! use fm_tensor::ops::elementwise::{add, add_backward, exp, exp_backward};
//! use ndarray::{array, ArrayD};
//!
//! let a = array![[1.0f64, 2.0, 3.0], [4.0, 5.0, 6.0]].into_dyn();
//! let b = array![10.0, 20.0, 30.0].into_dyn(); // broadcast along the rows
//! let c = add(a.view(), b.view())?;
//! assert_eq!(c, array![[11.0, 22.0, 33.0], [14.0, 25.0, 36.0]].into_dyn());
//! let (ga, gb) = add_backward(a.view(), b.view(), ArrayD::ones(c.shape()).view())?;
//! assert_eq!((ga.shape(), gb), (&[2usize, 3][..], array![2.0, 2.0, 2.0].into_dyn()));
//!
//! let y = exp(a.view());
//! let dx = exp_backward(a.view(), y.view(), ArrayD::ones(a.shape()).view())?;
//! assert_eq!(dx, y); // d/dx e^x = e^x
//! # Ok::<(), fm_tensor::TensorError>(())
//! ```

use ndarray::{ArrayD, ArrayViewD, Zip};

use super::broadcast::{broadcast_shape, sum_to_shape};
use super::parallel::{
    for_each_chunk_mut, for_each_chunk_pair_mut, worth_parallel, ELEMENTWISE_CHUNK,
};
use crate::element::Element;
use crate::error::{Result, TensorError};

/// An elementwise function of one value with its derivative.
pub trait UnaryOp<T: Element>: Sync {
    /// Name of the forward function, for error messages.
    const NAME: &'static str;
    /// Name of the backward function, for error messages.
    const BACKWARD_NAME: &'static str;
    /// The function.
    fn f(&self, x: T) -> T;
    /// Its derivative at `x`, where `y = f(x)`.
    fn df(&self, x: T, y: T) -> T;
}

/// An elementwise function of two values with its partial derivatives.
pub trait BinaryOp<T: Element>: Sync {
    /// Name of the forward function, for error messages.
    const NAME: &'static str;
    /// Name of the backward function, for error messages.
    const BACKWARD_NAME: &'static str;
    /// The function.
    fn f(&self, a: T, b: T) -> T;
    /// Its partial derivatives (∂f/∂a, ∂f/∂b) at `(a, b)`.
    fn df(&self, a: T, b: T) -> (T, T);
}

/// The elements of a standard-layout array as a slice.
fn contiguous<'a, T>(x: &'a ndarray::CowArray<'_, T, ndarray::IxDyn>) -> &'a [T] {
    x.as_slice()
        .expect("a standard-layout array is a contiguous slice")
}

/// `out[i] = f(a[i], b[i], c[i])` over equally long slices, as one flat loop the compiler
/// vectorises. Ops with fewer operands pass a slice again in the unused places (the closure ignores
/// it, and the compiler drops those loads). Large inputs are split into chunks over the threads
/// (each element on its own, so any split gives the same bits).
///
/// The output comes from [`buffers`](crate::buffers) and is written in full: an explicit slice loop
/// vectorises reliably even for large op bodies (the erf-based GELU derivative), where collecting
/// from an iterator was measured 4× slower.
fn map_slices<T: Element>(
    a: &[T],
    b: &[T],
    c: &[T],
    f: impl Fn(T, T, T) -> T + Sync + Send,
) -> Vec<T> {
    let (b, c) = (&b[..a.len()], &c[..a.len()]);
    let mut out = crate::buffers::vec_for_overwrite(a.len());
    for_each_chunk_mut(
        &mut out,
        ELEMENTWISE_CHUNK,
        worth_parallel(a.len()),
        |chunk_index, chunk| {
            let range =
                chunk_index * ELEMENTWISE_CHUNK..chunk_index * ELEMENTWISE_CHUNK + chunk.len();
            map_chunk_dispatch(chunk, &a[range.clone()], &b[range.clone()], &c[range], &f);
        },
    );
    out
}

/// `out[i] = f(a[i], b[i], c[i])`, the loop every elementwise kernel runs.
#[inline(always)]
fn map_chunk<T: Copy>(out: &mut [T], a: &[T], b: &[T], c: &[T], f: &impl Fn(T, T, T) -> T) {
    for (o, ((&x, &y), &z)) in out.iter_mut().zip(a.iter().zip(b).zip(c)) {
        *o = f(x, y, z);
    }
}

/// [`map_chunk`] compiled for the widest vector instructions the CPU has (AVX-512F, else AVX2+FMA,
/// else the baseline), chosen at run time: the op bodies are inlined into each copy, so GELU's
/// polynomials and the adds run 16 or 8 lanes wide instead of SSE's 4. Rust never contracts
/// `a·b + c` into an FMA on its own, so every copy computes the same bits.
fn map_chunk_dispatch<T: Copy>(
    out: &mut [T],
    a: &[T],
    b: &[T],
    c: &[T],
    f: &impl Fn(T, T, T) -> T,
) {
    #[cfg(target_arch = "x86_64")]
    {
        /// `map_chunk` compiled with the named target features, as the function `$name`.
        macro_rules! map_chunk_for {
            ($features:literal, $name:ident) => {
                #[target_feature(enable = $features)]
                unsafe fn $name<T: Copy>(
                    out: &mut [T],
                    a: &[T],
                    b: &[T],
                    c: &[T],
                    f: &impl Fn(T, T, T) -> T,
                ) {
                    map_chunk(out, a, b, c, f)
                }
            };
        }
        map_chunk_for!("avx512f", avx512);
        map_chunk_for!("avx2,fma", avx2);
        if std::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU reports AVX-512F.
            return unsafe { avx512(out, a, b, c, f) };
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU reports AVX2 and FMA.
            return unsafe { avx2(out, a, b, c, f) };
        }
    }
    map_chunk(out, a, b, c, f)
}

/// `acc += g` for two arrays of one shape: the gradient sums of autograd (a value used twice, a
/// parameter bound twice, gradients accumulated across steps). Standard-layout operands are added as
/// flat slices, split over the threads when large (each element on its own: the same bits for any
/// split); other layouts go through ndarray's `Zip` on the calling thread.
pub(crate) fn add_assign<T: Element>(acc: &mut ArrayD<T>, g: &ArrayViewD<'_, T>) {
    debug_assert_eq!(acc.shape(), g.shape());
    if let (Some(a), Some(b)) = (acc.as_slice_mut(), g.as_slice()) {
        let parallel = worth_parallel(a.len());
        for_each_chunk_mut(a, ELEMENTWISE_CHUNK, parallel, |chunk_index, chunk| {
            let start = chunk_index * ELEMENTWISE_CHUNK;
            let src = &b[start..start + chunk.len()];
            add_chunk_dispatch(chunk, src);
        });
        return;
    }
    Zip::from(acc).and(g).for_each(|a, &g| *a = *a + g);
}

/// `acc[i] += g[i]`, compiled for the widest vector instructions the CPU has (as
/// [`map_chunk_dispatch`]).
fn add_chunk_dispatch<T: Element>(acc: &mut [T], g: &[T]) {
    #[inline(always)]
    fn add_chunk<T: Element>(acc: &mut [T], g: &[T]) {
        for (a, &g) in acc.iter_mut().zip(g) {
            *a = *a + g;
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f")]
        unsafe fn avx512<T: Element>(acc: &mut [T], g: &[T]) {
            add_chunk(acc, g)
        }
        #[target_feature(enable = "avx2")]
        unsafe fn avx2<T: Element>(acc: &mut [T], g: &[T]) {
            add_chunk(acc, g)
        }
        if std::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU reports AVX-512F.
            return unsafe { avx512(acc, g) };
        }
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU reports AVX2.
            return unsafe { avx2(acc, g) };
        }
    }
    add_chunk(acc, g)
}

/// Applies `op` to every element of `x`.
pub fn unary<T: Element, Op: UnaryOp<T>>(op: &Op, x: ArrayViewD<'_, T>) -> ArrayD<T> {
    let x = x.as_standard_layout();
    let xs = contiguous(&x);
    let out = map_slices(
        xs,
        xs,
        xs,
        #[inline(always)]
        |v, _, _| op.f(v),
    );
    ArrayD::from_shape_vec(x.shape(), out).expect("output has the input's shape")
}

/// `grad * op.df(x, y)` elementwise: the gradient of [`unary`] with respect to `x`.
pub fn unary_backward<T: Element, Op: UnaryOp<T>>(
    op: &Op,
    x: ArrayViewD<'_, T>,
    y: ArrayViewD<'_, T>,
    grad: ArrayViewD<'_, T>,
) -> Result<ArrayD<T>> {
    if x.shape() != y.shape() {
        return Err(TensorError::shape_mismatch(
            Op::BACKWARD_NAME,
            x.shape(),
            y.shape(),
            "the input and the forward output must have the same shape",
        ));
    }
    if x.shape() != grad.shape() {
        return Err(TensorError::shape_mismatch(
            Op::BACKWARD_NAME,
            x.shape(),
            grad.shape(),
            "the gradient must have the input's shape",
        ));
    }
    let (x, y, grad) = (
        x.as_standard_layout(),
        y.as_standard_layout(),
        grad.as_standard_layout(),
    );
    let out = map_slices(
        contiguous(&x),
        contiguous(&y),
        contiguous(&grad),
        #[inline(always)]
        |xv, yv, g| g * op.df(xv, yv),
    );
    Ok(ArrayD::from_shape_vec(x.shape(), out).expect("output has the input's shape"))
}

/// Runs a [`Zip`] over broadcast operands into a new array, in parallel when it is large.
macro_rules! collect_zip {
    ($zip:expr, $len:expr, $f:expr) => {{
        let zip = $zip;
        let f = $f;
        if worth_parallel($len) {
            zip.par_map_collect(f)
        } else {
            zip.map_collect(f)
        }
    }};
}

/// Applies `op` to `a` and `b` broadcast together.
pub fn binary<T: Element, Op: BinaryOp<T>>(
    op: &Op,
    a: ArrayViewD<'_, T>,
    b: ArrayViewD<'_, T>,
) -> Result<ArrayD<T>> {
    let shape = broadcast_shape(Op::NAME, a.shape(), b.shape())?;
    let len = shape.iter().product::<usize>();
    if a.shape() == b.shape() {
        let (a, b) = (a.as_standard_layout(), b.as_standard_layout());
        let (xs, ys) = (contiguous(&a), contiguous(&b));
        let out = map_slices(
            xs,
            ys,
            ys,
            #[inline(always)]
            |x, y, _| op.f(x, y),
        );
        return Ok(ArrayD::from_shape_vec(shape, out).expect("output has the operands' shape"));
    }
    // Broadcast operands are read in place (stride 0 along broadcast axes); the rest are made
    // standard so that the output comes out in standard layout.
    let (a, b) = (a.as_standard_layout(), b.as_standard_layout());
    let a_full = a
        .broadcast(shape.clone())
        .expect("a broadcasts to the broadcast shape");
    let b_full = b
        .broadcast(shape)
        .expect("b broadcasts to the broadcast shape");
    let out = collect_zip!(Zip::from(&a_full).and(&b_full), len, |&x: &T, &y: &T| op
        .f(x, y));
    Ok(if out.is_standard_layout() {
        out
    } else {
        out.as_standard_layout().into_owned()
    })
}

/// Gradients of [`binary`]: `(grad * ∂f/∂a, grad * ∂f/∂b)`, each summed back to its operand's shape.
pub fn binary_backward<T: Element, Op: BinaryOp<T>>(
    op: &Op,
    a: ArrayViewD<'_, T>,
    b: ArrayViewD<'_, T>,
    grad: ArrayViewD<'_, T>,
) -> Result<(ArrayD<T>, ArrayD<T>)> {
    let shape = broadcast_shape(Op::BACKWARD_NAME, a.shape(), b.shape())?;
    if grad.shape() != shape.as_slice() {
        return Err(TensorError::shape_mismatch(
            Op::BACKWARD_NAME,
            grad.shape(),
            &shape,
            format!(
                "the gradient must have the broadcast shape of {:?} and {:?}",
                a.shape(),
                b.shape()
            ),
        ));
    }
    let parallel = worth_parallel(grad.len());
    if a.shape() == b.shape() {
        let (a, b, grad) = (
            a.as_standard_layout(),
            b.as_standard_layout(),
            grad.as_standard_layout(),
        );
        let (xs, ys, gs) = (contiguous(&a), contiguous(&b), contiguous(&grad));
        let mut ga = crate::buffers::vec_for_overwrite(xs.len());
        let mut gb = crate::buffers::vec_for_overwrite(xs.len());
        for_each_chunk_pair_mut(
            &mut ga,
            &mut gb,
            ELEMENTWISE_CHUNK,
            parallel,
            |c, ca, cb| {
                let range = c * ELEMENTWISE_CHUNK..c * ELEMENTWISE_CHUNK + ca.len();
                let inputs = xs[range.clone()]
                    .iter()
                    .zip(&ys[range.clone()])
                    .zip(&gs[range]);
                for ((da, db), ((&x, &y), &g)) in ca.iter_mut().zip(cb.iter_mut()).zip(inputs) {
                    let (pa, pb) = op.df(x, y);
                    *da = g * pa;
                    *db = g * pb;
                }
            },
        );
        let ga = ArrayD::from_shape_vec(shape.clone(), ga).expect("gradient has the input shape");
        let gb = ArrayD::from_shape_vec(shape, gb).expect("gradient has the input shape");
        return Ok((ga, gb));
    }
    // Each gradient at the broadcast shape (one pass each, written straight into new memory),
    // then summed over the axes its operand was broadcast along.
    let grad = grad.as_standard_layout();
    let a_full = a
        .broadcast(shape.clone())
        .expect("a broadcasts to the broadcast shape");
    let b_full = b
        .broadcast(shape)
        .expect("b broadcasts to the broadcast shape");
    let zip = || Zip::from(&grad).and(&a_full).and(&b_full);
    let ga = collect_zip!(zip(), grad.len(), |&g: &T, &x: &T, &y: &T| g * op
        .df(x, y)
        .0);
    let gb = collect_zip!(zip(), grad.len(), |&g: &T, &x: &T, &y: &T| g * op
        .df(x, y)
        .1);
    let ga = if ga.shape() == a.shape() {
        ga
    } else {
        sum_to_shape(ga.view(), a.shape())?
    };
    let gb = if gb.shape() == b.shape() {
        gb
    } else {
        sum_to_shape(gb.view(), b.shape())?
    };
    Ok((ga, gb))
}

/// Declares a unary op from its table entry: the op type, its [`UnaryOp`] impl and the public
/// forward/backward functions. A parameter in parentheses makes it a scalar-parameter op.
macro_rules! unary_op {
    (
        $(#[doc = $doc:literal])+
        $Op:ident => $forward:ident, $backward:ident;
        f($x:ident) = $f:expr;
        df($dx:ident, $dy:ident) = $df:expr;
    ) => {
        $(#[doc = $doc])+
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $Op;

        impl<T: $crate::element::Element> $crate::ops::elementwise::UnaryOp<T> for $Op {
            const NAME: &'static str = stringify!($forward);
            const BACKWARD_NAME: &'static str = stringify!($backward);
            #[inline(always)]
            fn f(&self, $x: T) -> T {
                $f
            }
            #[inline(always)]
            fn df(&self, $dx: T, $dy: T) -> T {
                $df
            }
        }

        #[doc = concat!("[`", stringify!($Op), "`] of every element of `x`.")]
        pub fn $forward<T: $crate::element::Element>(x: ::ndarray::ArrayViewD<'_, T>) -> ::ndarray::ArrayD<T> {
            $crate::ops::elementwise::unary(&$Op, x)
        }

        #[doc = concat!(
            "Gradient of [`", stringify!($forward), "`]: `grad` times the derivative of [`",
            stringify!($Op), "`], from the forward input `x` and output `y` (all of one shape)."
        )]
        pub fn $backward<T: $crate::element::Element>(
            x: ::ndarray::ArrayViewD<'_, T>,
            y: ::ndarray::ArrayViewD<'_, T>,
            grad: ::ndarray::ArrayViewD<'_, T>,
        ) -> $crate::error::Result<::ndarray::ArrayD<T>> {
            $crate::ops::elementwise::unary_backward(&$Op, x, y, grad)
        }
    };
    (
        $(#[doc = $doc:literal])+
        $Op:ident($param:ident) => $forward:ident, $backward:ident;
        f($x:ident) = $f:expr;
        df($dx:ident, $dy:ident) = $df:expr;
    ) => {
        $(#[doc = $doc])+
        #[derive(Clone, Copy, Debug, Default, PartialEq)]
        pub struct $Op<T>(pub T);

        impl<T: $crate::element::Element> $crate::ops::elementwise::UnaryOp<T> for $Op<T> {
            const NAME: &'static str = stringify!($forward);
            const BACKWARD_NAME: &'static str = stringify!($backward);
            #[inline(always)]
            #[allow(unused_variables)]
            fn f(&self, $x: T) -> T {
                let $param = self.0;
                $f
            }
            #[inline(always)]
            #[allow(unused_variables)]
            fn df(&self, $dx: T, $dy: T) -> T {
                let $param = self.0;
                $df
            }
        }

        #[doc = concat!("[`", stringify!($Op), "`] of every element of `x`.")]
        pub fn $forward<T: $crate::element::Element>(
            x: ::ndarray::ArrayViewD<'_, T>,
            $param: T,
        ) -> ::ndarray::ArrayD<T> {
            $crate::ops::elementwise::unary(&$Op($param), x)
        }

        #[doc = concat!(
            "Gradient of [`", stringify!($forward), "`]: `grad` times the derivative of [`",
            stringify!($Op), "`], from the forward input `x` and output `y` (all of one shape)."
        )]
        pub fn $backward<T: $crate::element::Element>(
            x: ::ndarray::ArrayViewD<'_, T>,
            y: ::ndarray::ArrayViewD<'_, T>,
            grad: ::ndarray::ArrayViewD<'_, T>,
            $param: T,
        ) -> $crate::error::Result<::ndarray::ArrayD<T>> {
            $crate::ops::elementwise::unary_backward(&$Op($param), x, y, grad)
        }
    };
}
#[allow(unused_imports)] // used by the activation table
pub(crate) use unary_op;

/// Declares a binary op from its table entry: the op type, its [`BinaryOp`] impl and the public
/// forward/backward functions.
macro_rules! binary_op {
    (
        $(#[doc = $doc:literal])+
        $Op:ident => $forward:ident, $backward:ident;
        f($a:ident, $b:ident) = $f:expr;
        df($da:ident, $db:ident) = $df:expr;
    ) => {
        $(#[doc = $doc])+
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $Op;

        impl<T: Element> BinaryOp<T> for $Op {
            const NAME: &'static str = stringify!($forward);
            const BACKWARD_NAME: &'static str = stringify!($backward);
            #[inline(always)]
            fn f(&self, $a: T, $b: T) -> T {
                $f
            }
            #[inline(always)]
            fn df(&self, $da: T, $db: T) -> (T, T) {
                $df
            }
        }

        #[doc = concat!("[`", stringify!($Op), "`] of `a` and `b` broadcast together.")]
        pub fn $forward<T: Element>(a: ArrayViewD<'_, T>, b: ArrayViewD<'_, T>) -> Result<ArrayD<T>> {
            binary(&$Op, a, b)
        }

        #[doc = concat!(
            "Gradients of [`", stringify!($forward), "`] with respect to `a` and `b`, summed back to ",
            "their shapes; `grad` has the broadcast shape."
        )]
        pub fn $backward<T: Element>(
            a: ArrayViewD<'_, T>,
            b: ArrayViewD<'_, T>,
            grad: ArrayViewD<'_, T>,
        ) -> Result<(ArrayD<T>, ArrayD<T>)> {
            binary_backward(&$Op, a, b, grad)
        }
    };
}

// ---------------------------------------------------------------------------------------------
// The table: arithmetic. (Activations live in `activation`.)
// ---------------------------------------------------------------------------------------------

unary_op! {
    /// −x. The derivative reads neither `x` nor `y`.
    Neg => neg, neg_backward;
    f(x) = -x;
    df(_x, _y) = -T::one();
}

unary_op! {
    /// eˣ (in f32 the vectorisable [`special::exp`](super::special::exp)). The derivative reads `y`.
    Exp => exp, exp_backward;
    f(x) = super::special::exp(x);
    df(_x, y) = y;
}

unary_op! {
    /// Natural logarithm (NaN below 0, −∞ at 0). The derivative reads `x`.
    Log => log, log_backward;
    f(x) = x.ln();
    df(x, _y) = x.recip();
}

unary_op! {
    /// Square root (NaN below 0). The derivative, 1/(2√x), reads `y` (∞ at 0).
    Sqrt => sqrt, sqrt_backward;
    f(x) = x.sqrt();
    df(_x, y) = (y + y).recip();
}

unary_op! {
    /// 1/√x. The derivative, −y³/2, reads `y`.
    Rsqrt => rsqrt, rsqrt_backward;
    f(x) = x.sqrt().recip();
    df(_x, y) = -(y * y * y) * T::from_f64_lossy(0.5);
}

unary_op! {
    /// |x|. The derivative is the sign of `x`, taken as 0 at 0 (as PyTorch does).
    Abs => abs, abs_backward;
    f(x) = x.abs();
    df(x, _y) = if x > T::zero() { T::one() } else if x < T::zero() { -T::one() } else { T::zero() };
}

unary_op! {
    /// x². The derivative reads `x`.
    Square => square, square_backward;
    f(x) = x * x;
    df(x, _y) = x + x;
}

unary_op! {
    /// 1/x. The derivative, −y², reads `y`.
    Reciprocal => reciprocal, reciprocal_backward;
    f(x) = x.recip();
    df(_x, y) = -(y * y);
}

unary_op! {
    /// x + s for a scalar `s`. The derivative reads neither `x` nor `y`.
    AddScalar(s) => add_scalar, add_scalar_backward;
    f(x) = x + s;
    df(_x, _y) = T::one();
}

unary_op! {
    /// x·s for a scalar `s`. The derivative reads neither `x` nor `y`.
    MulScalar(s) => mul_scalar, mul_scalar_backward;
    f(x) = x * s;
    df(_x, _y) = s;
}

unary_op! {
    /// xᵖ for a scalar exponent `p` (`powf`). The derivative, p·xᵖ⁻¹, reads `x`; it is 0 when p = 0.
    Powf(p) => powf, powf_backward;
    f(x) = x.powf(p);
    df(x, _y) = if p == T::zero() { T::zero() } else { p * x.powf(p - T::one()) };
}

binary_op! {
    /// a + b.
    Add => add, add_backward;
    f(a, b) = a + b;
    df(_a, _b) = (T::one(), T::one());
}

binary_op! {
    /// a − b.
    Sub => sub, sub_backward;
    f(a, b) = a - b;
    df(_a, _b) = (T::one(), -T::one());
}

binary_op! {
    /// a·b.
    Mul => mul, mul_backward;
    f(a, b) = a * b;
    df(a, b) = (b, a);
}

binary_op! {
    /// a / b.
    Div => div, div_backward;
    f(a, b) = a / b;
    df(a, b) = (b.recip(), -a / (b * b));
}

binary_op! {
    /// aᵇ with both operands tensors. ∂/∂a = b·aᵇ⁻¹; ∂/∂b = aᵇ·ln a, taken as 0 where a = 0 and
    /// b ≥ 0 (as PyTorch does) and NaN where a < 0.
    Pow => pow, pow_backward;
    f(a, b) = a.powf(b);
    df(a, b) = (
        b * a.powf(b - T::one()),
        if a == T::zero() && b >= T::zero() { T::zero() } else { a.powf(b) * a.ln() },
    );
}

binary_op! {
    /// The larger of a and b (NaN if either is NaN). On a tie each side gets half the gradient,
    /// as in PyTorch.
    Maximum => maximum, maximum_backward;
    f(a, b) = if a > b || a.is_nan() { a } else { b };
    df(a, b) = tie_split(a, b);
}

binary_op! {
    /// The smaller of a and b (NaN if either is NaN). On a tie each side gets half the gradient,
    /// as in PyTorch.
    Minimum => minimum, minimum_backward;
    f(a, b) = if a < b || a.is_nan() { a } else { b };
    df(a, b) = tie_split(b, a);
}

/// Partial derivatives of max(a, b): all to the larger operand, halves on a tie (or NaN).
#[inline(always)]
fn tie_split<T: Element>(a: T, b: T) -> (T, T) {
    if a > b {
        (T::one(), T::zero())
    } else if a < b {
        (T::zero(), T::one())
    } else {
        let half = T::from_f64_lossy(0.5);
        (half, half)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{
        assert_bitwise_eq_across_threads, check_gradient, random_array, random_in, weighted_sum,
    };
    use ndarray::array;

    /// `add_assign` adds elementwise: large standard-layout operands (split over threads, same bits
    /// for any thread count), odd lengths, and a transposed gradient (the `Zip` path).
    #[test]
    fn add_assign_adds_in_any_layout_with_the_same_bits_for_any_thread_count() {
        for shape in [vec![3usize, 5], vec![257, 301], vec![1]] {
            let acc0 = random_array::<f32>(&shape, 1);
            let g = random_array::<f32>(&shape, 2);
            let want = &acc0 + &g;
            let mut acc = acc0.clone();
            add_assign(&mut acc, &g.view());
            assert_eq!(acc, want, "{shape:?}");
            assert_bitwise_eq_across_threads(|| {
                let mut acc = acc0.clone();
                add_assign(&mut acc, &g.view());
                acc
            });
        }
        let acc0 = random_array::<f64>(&[4, 7], 3);
        let g_t = random_array::<f64>(&[7, 4], 4);
        let g = g_t.t();
        let mut acc = acc0.clone();
        add_assign(&mut acc, &g.view());
        assert_eq!(acc, &acc0 + &g);
    }

    /// The loop chosen at run time (AVX-512 / AVX2 copies on x86_64) gives the same bits as the
    /// baseline loop, for op bodies with polynomials, divisions and branches, on odd lengths. The
    /// bodies are forced inline, as in the kernels, so the wide copies really run them vectorised.
    #[test]
    fn dispatched_map_loop_equals_the_baseline_loop_bitwise() {
        use crate::ops::activation::{Gelu, GeluTanh, Sigmoid};
        fn check<T: Element>(f: impl Fn(T, T, T) -> T, len: usize, seed: u64) {
            let a: Vec<T> = random_in::<T>(&[len], seed, -6.0, 6.0)
                .into_raw_vec_and_offset()
                .0;
            let b: Vec<T> = random_in::<T>(&[len], seed + 1, -3.0, 3.0)
                .into_raw_vec_and_offset()
                .0;
            let c: Vec<T> = random_in::<T>(&[len], seed + 2, 0.5, 2.0)
                .into_raw_vec_and_offset()
                .0;
            let mut baseline = vec![T::zero(); len];
            map_chunk(&mut baseline, &a, &b, &c, &f);
            let mut dispatched = vec![T::zero(); len];
            map_chunk_dispatch(&mut dispatched, &a, &b, &c, &f);
            let same = baseline
                .iter()
                .zip(&dispatched)
                .all(|(x, y)| x.to_f64_lossless().to_bits() == y.to_f64_lossless().to_bits());
            assert!(same, "length {len}");
        }
        for len in (1..=67).chain([1000, 4099]) {
            let seed = len as u64;
            check::<f32>(
                #[inline(always)]
                |x, _, g| g * Gelu.df(x, x),
                len,
                seed,
            );
            check::<f32>(
                #[inline(always)]
                |x, _, _| Gelu.f(x),
                len,
                seed,
            );
            check::<f32>(
                #[inline(always)]
                |x, _, _| GeluTanh.f(x),
                len,
                seed,
            );
            check::<f32>(
                #[inline(always)]
                |x, _, g| g * Sigmoid.df(x, Sigmoid.f(x)),
                len,
                seed,
            );
            check::<f32>(
                #[inline(always)]
                |x, y, z| x / z + y,
                len,
                seed,
            );
            check::<f64>(
                #[inline(always)]
                |x, _, g| g * Gelu.df(x, x),
                len,
                seed,
            );
            check::<f64>(
                #[inline(always)]
                |x, y, z| x * y - z,
                len,
                seed,
            );
        }
    }

    type UnaryCase = (
        &'static str,
        fn(ArrayViewD<'_, f64>) -> ArrayD<f64>,
        BackwardFn,
        f64,
        f64,
    );
    type BackwardFn =
        fn(ArrayViewD<'_, f64>, ArrayViewD<'_, f64>, ArrayViewD<'_, f64>) -> Result<ArrayD<f64>>;

    /// Every parameterless unary op with the input range its gradient check uses.
    const UNARY_CASES: [UnaryCase; 8] = [
        ("neg", neg, neg_backward, -2.0, 2.0),
        ("exp", exp, exp_backward, -2.0, 2.0),
        ("log", log, log_backward, 0.2, 3.0),
        ("sqrt", sqrt, sqrt_backward, 0.2, 3.0),
        ("rsqrt", rsqrt, rsqrt_backward, 0.2, 3.0),
        ("abs", abs, abs_backward, -2.0, 2.0),
        ("square", square, square_backward, -2.0, 2.0),
        ("reciprocal", reciprocal, reciprocal_backward, 0.3, 3.0),
    ];

    type BinaryFn = fn(ArrayViewD<'_, f64>, ArrayViewD<'_, f64>) -> Result<ArrayD<f64>>;
    type BinaryBackwardFn = fn(
        ArrayViewD<'_, f64>,
        ArrayViewD<'_, f64>,
        ArrayViewD<'_, f64>,
    ) -> Result<(ArrayD<f64>, ArrayD<f64>)>;
    type BinaryCase = (
        &'static str,
        BinaryFn,
        BinaryBackwardFn,
        fn(f64, f64) -> f64,
    );
    const BINARY_CASES: [BinaryCase; 7] = [
        ("add", add, add_backward, |a, b| a + b),
        ("sub", sub, sub_backward, |a, b| a - b),
        ("mul", mul, mul_backward, |a, b| a * b),
        ("div", div, div_backward, |a, b| a / b),
        ("pow", pow, pow_backward, f64::powf),
        ("maximum", maximum, maximum_backward, f64::max),
        ("minimum", minimum, minimum_backward, f64::min),
    ];

    /// Shape pairs covering the three layouts: equal, repeating suffix (both ways), general.
    const SHAPE_PAIRS: [(&[usize], &[usize]); 8] = [
        (&[2, 3], &[2, 3]),
        (&[3, 1, 4], &[5, 1]),
        (&[2, 3, 4], &[3, 4]),
        (&[4], &[2, 3, 4]),
        (&[2, 3], &[]),
        (&[1], &[3, 2]),
        (&[1, 3], &[2, 1]),
        (&[2, 1, 3], &[1, 4, 1]),
    ];

    #[test]
    fn unary_values_by_hand() {
        let x = array![-2.0f64, -0.5, 0.0, 0.25, 4.0].into_dyn();
        assert_eq!(
            neg(x.view()),
            array![2.0, 0.5, -0.0, -0.25, -4.0].into_dyn()
        );
        assert_eq!(abs(x.view()), array![2.0, 0.5, 0.0, 0.25, 4.0].into_dyn());
        assert_eq!(
            square(x.view()),
            array![4.0, 0.25, 0.0, 0.0625, 16.0].into_dyn()
        );
        assert_eq!(reciprocal(x.view())[4], 0.25);
        assert_eq!(sqrt(x.view())[4], 2.0);
        assert!(sqrt(x.view())[0].is_nan());
        assert_eq!(rsqrt(x.view())[3], 2.0);
        assert_eq!(log(x.view())[2], f64::NEG_INFINITY);
        assert_eq!(exp(x.view())[2], 1.0);
        assert_eq!(add_scalar(x.view(), 1.5)[0], -0.5);
        assert_eq!(mul_scalar(x.view(), -2.0)[4], -8.0);
        assert_eq!(powf(x.view(), 0.5)[4], 2.0);
        assert_eq!(powf(x.view(), 3.0)[0], -8.0);
        let g = ArrayD::ones(vec![5]);
        let dabs = abs_backward(x.view(), abs(x.view()).view(), g.view()).unwrap();
        assert_eq!(dabs, array![-1.0, -1.0, 0.0, 1.0, 1.0].into_dyn());
        let dpow0 = powf_backward(x.view(), powf(x.view(), 0.0).view(), g.view(), 0.0).unwrap();
        assert!(dpow0.iter().all(|&d| d == 0.0));
    }

    #[test]
    fn binary_values_by_hand() {
        let a = array![[1.0f32, 2.0], [3.0, 4.0]].into_dyn();
        let b = array![10.0f32, 0.5].into_dyn();
        assert_eq!(
            add(a.view(), b.view()).unwrap(),
            array![[11.0, 2.5], [13.0, 4.5]].into_dyn()
        );
        assert_eq!(
            sub(b.view(), a.view()).unwrap(),
            array![[9.0, -1.5], [7.0, -3.5]].into_dyn()
        );
        assert_eq!(
            mul(a.view(), b.view()).unwrap(),
            array![[10.0, 1.0], [30.0, 2.0]].into_dyn()
        );
        assert_eq!(
            div(a.view(), b.view()).unwrap(),
            array![[0.1, 4.0], [0.3, 8.0]].into_dyn()
        );
        assert_eq!(pow(a.view(), b.view()).unwrap()[[1, 1]], 2.0);
        assert_eq!(
            maximum(a.view(), b.view()).unwrap(),
            array![[10.0, 2.0], [10.0, 4.0]].into_dyn()
        );
        assert_eq!(
            minimum(a.view(), b.view()).unwrap(),
            array![[1.0, 0.5], [3.0, 0.5]].into_dyn()
        );
        let nan = array![f32::NAN].into_dyn();
        assert!(maximum(a.view(), nan.view())
            .unwrap()
            .iter()
            .all(|v| v.is_nan()));
        assert!(minimum(nan.view(), a.view())
            .unwrap()
            .iter()
            .all(|v| v.is_nan()));
        // Ties split the gradient.
        let (ga, gb) = maximum_backward(b.view(), b.view(), ArrayD::ones(vec![2]).view()).unwrap();
        assert_eq!((ga[0], gb[0]), (0.5, 0.5));
        // d/db a^b at a = 0, b >= 0 is 0, not NaN.
        let zero = array![0.0f64].into_dyn();
        let two = array![2.0f64].into_dyn();
        let (ga, gb) = pow_backward(zero.view(), two.view(), ArrayD::ones(vec![1]).view()).unwrap();
        assert_eq!((ga[0], gb[0]), (0.0, 0.0));
    }

    #[test]
    fn broadcasting_matches_an_explicit_loop() {
        for (i, (sa, sb)) in SHAPE_PAIRS.into_iter().enumerate() {
            let a = random_in::<f64>(sa, 10 + i as u64, 0.5, 2.0);
            let b = random_in::<f64>(sb, 20 + i as u64, 0.5, 2.0);
            let shape = broadcast_shape("test", sa, sb).unwrap();
            let (ab, bb) = (
                a.broadcast(shape.clone()).unwrap(),
                b.broadcast(shape.clone()).unwrap(),
            );
            for (name, forward, _, reference) in BINARY_CASES {
                let got = forward(a.view(), b.view()).unwrap();
                assert_eq!(got.shape(), shape.as_slice(), "{name} {sa:?} {sb:?}");
                for ((&g, &x), &y) in got.iter().zip(ab.iter()).zip(bb.iter()) {
                    assert_eq!(g, reference(x, y), "{name} {sa:?} {sb:?}");
                }
            }
        }
    }

    #[test]
    fn unary_gradients_match_finite_differences() {
        for (seed, shape) in [&[3, 1, 4][..], &[5], &[1], &[2, 3]]
            .into_iter()
            .enumerate()
        {
            for (name, forward, backward, lo, hi) in UNARY_CASES {
                let x = random_in::<f64>(shape, seed as u64, lo, hi);
                let w = random_array::<f64>(shape, 50 + seed as u64);
                let dx = backward(x.view(), forward(x.view()).view(), w.view()).unwrap();
                check_gradient(name, &x, &dx, |x| weighted_sum(&forward(x.view()), &w));
            }
            let x = random_in::<f64>(shape, seed as u64, 0.2, 3.0);
            let w = random_array::<f64>(shape, 60 + seed as u64);
            for p in [-1.5, 0.5, 2.0, 3.0] {
                let dx = powf_backward(x.view(), powf(x.view(), p).view(), w.view(), p).unwrap();
                check_gradient("powf", &x, &dx, |x| weighted_sum(&powf(x.view(), p), &w));
            }
            let dx = add_scalar_backward(x.view(), x.view(), w.view(), 3.0).unwrap();
            check_gradient("add_scalar", &x, &dx, |x| {
                weighted_sum(&add_scalar(x.view(), 3.0), &w)
            });
            let dx = mul_scalar_backward(x.view(), x.view(), w.view(), -1.5).unwrap();
            check_gradient("mul_scalar", &x, &dx, |x| {
                weighted_sum(&mul_scalar(x.view(), -1.5), &w)
            });
        }
    }

    #[test]
    fn binary_gradients_match_finite_differences() {
        for (i, (sa, sb)) in SHAPE_PAIRS.into_iter().enumerate() {
            // Positive operands keep pow and div smooth; distinct ranges avoid max/min ties.
            let a = random_in::<f64>(sa, 30 + i as u64, 0.5, 2.0);
            let b = random_in::<f64>(sb, 40 + i as u64, 0.5, 2.0);
            let shape = broadcast_shape("test", sa, sb).unwrap();
            let w = random_array::<f64>(&shape, 70 + i as u64);
            for (name, forward, backward, _) in BINARY_CASES {
                let (ga, gb) = backward(a.view(), b.view(), w.view()).unwrap();
                assert_eq!((ga.shape(), gb.shape()), (sa, sb), "{name}");
                check_gradient(name, &a, &ga, |a| {
                    weighted_sum(&forward(a.view(), b.view()).unwrap(), &w)
                });
                check_gradient(name, &b, &gb, |b| {
                    weighted_sum(&forward(a.view(), b.view()).unwrap(), &w)
                });
            }
        }
    }

    #[test]
    fn shape_errors_name_the_op_and_both_shapes() {
        let a = ArrayD::<f32>::zeros(vec![2, 3]);
        let b = ArrayD::<f32>::zeros(vec![4, 3]);
        let err = mul(a.view(), b.view()).unwrap_err().to_string();
        assert!(
            err.starts_with("mul: shape mismatch between [2, 3] and [4, 3]"),
            "{err}"
        );
        let err = div_backward(a.view(), b.view(), a.view())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("div_backward: shape mismatch between [2, 3] and [4, 3]"),
            "{err}"
        );
        let c = ArrayD::<f32>::zeros(vec![3]);
        let err = add_backward(a.view(), c.view(), c.view())
            .unwrap_err()
            .to_string();
        assert!(err.contains("[3]") && err.contains("[2, 3]"), "{err}");
        let err = exp_backward(a.view(), c.view(), a.view())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("exp_backward: shape mismatch between [2, 3] and [3]"),
            "{err}"
        );
        let err = exp_backward(a.view(), a.view(), b.view())
            .unwrap_err()
            .to_string();
        assert!(err.contains("[4, 3]"), "{err}");
    }

    #[test]
    fn empty_and_zero_dimensional_arrays() {
        let empty = ArrayD::<f32>::zeros(vec![0, 3]);
        assert_eq!(exp(empty.view()).shape(), &[0, 3]);
        let row = ArrayD::<f32>::ones(vec![3]);
        assert_eq!(add(empty.view(), row.view()).unwrap().shape(), &[0, 3]);
        let (ga, gb) = add_backward(empty.view(), row.view(), empty.view()).unwrap();
        assert_eq!(ga.shape(), &[0, 3]);
        assert_eq!(gb, ArrayD::<f32>::zeros(vec![3]));
        let s = ArrayD::from_elem(vec![], 2.0f64);
        assert_eq!(
            mul(s.view(), s.view()).unwrap(),
            ArrayD::from_elem(vec![], 4.0)
        );
        assert_eq!(square(s.view()), ArrayD::from_elem(vec![], 4.0));
    }

    #[test]
    fn non_contiguous_inputs_give_the_same_result() {
        let a = random_array::<f32>(&[6, 5], 1);
        let b = random_array::<f32>(&[5, 6], 2);
        let bt = b.view().reversed_axes();
        let bt_copy = bt.to_owned();
        assert_eq!(
            mul(a.view(), bt.clone()).unwrap(),
            mul(a.view(), bt_copy.view()).unwrap()
        );
        assert_eq!(exp(bt.clone()), exp(bt_copy.view()));
        let stepped = a.slice(ndarray::s![.., ..;2]).into_dyn();
        assert_eq!(exp(stepped.clone()), exp(stepped.to_owned().view()));
        let g = random_array::<f32>(&[6, 5], 3);
        assert_eq!(
            mul_backward(a.view(), bt.clone(), g.view()).unwrap(),
            mul_backward(a.view(), bt_copy.view(), g.view()).unwrap()
        );
    }

    #[test]
    fn results_are_identical_for_any_thread_count() {
        let a = random_in::<f32>(&[64, 48, 40], 5, 0.5, 2.0);
        let same = random_in::<f32>(&[64, 48, 40], 6, 0.5, 2.0);
        let bias = random_in::<f32>(&[40], 7, 0.5, 2.0);
        let general = random_in::<f32>(&[64, 1, 40], 8, 0.5, 2.0);
        assert_bitwise_eq_across_threads(|| exp(a.view()));
        assert_bitwise_eq_across_threads(|| powf(a.view(), 1.5));
        for b in [&same, &bias, &general] {
            assert_bitwise_eq_across_threads(|| div(a.view(), b.view()).unwrap());
            assert_bitwise_eq_across_threads(|| pow(b.view(), a.view()).unwrap());
            assert_bitwise_eq_across_threads(|| {
                div_backward(a.view(), b.view(), same.view()).unwrap()
            });
        }
        assert_bitwise_eq_across_threads(|| exp_backward(a.view(), same.view(), a.view()).unwrap());
    }
}
