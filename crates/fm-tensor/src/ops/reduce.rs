//! Reductions: sum, mean, max and min over a set of axes (or all of them), with `keepdim`, and the
//! backward of each.
//!
//! Axes are given as a slice of axis numbers (`&[1]`, `&[0, 2]`); every axis must be in range and
//! appear once. Listing no axis reduces nothing (the result is a copy); listing them all gives a 0-d
//! array, and the `*_all` functions return that single value as a scalar. With `keepdim` the reduced
//! axes stay as axes of length 1, as in PyTorch.
//!
//! # Order of evaluation (determinism)
//! The input is read in row-major order and reduced one group of adjacent reduced axes at a time,
//! the innermost group first. A group that ends the row (contiguous elements) is folded with eight
//! interleaved accumulators combined in a fixed tree, in fixed chunks of [`SPLIT_LEN`] elements whose
//! partial results are then folded in order; a group followed by kept axes is accumulated row by row,
//! in index order. So the result depends only on the values and the shape, never on the memory
//! layout of the input or on the number of threads: threads only ever share independent outputs
//! (or independent fixed chunks).
//!
//! # Special values
//! `max`/`min` propagate NaN (a NaN anywhere in a reduced set makes that result NaN), like PyTorch;
//! they reject an empty reduced set with an error. `sum` of nothing is 0 and `mean` of nothing is NaN
//! (0/0), as in PyTorch.
//!
//! # Gradients
//! `sum_backward` and `mean_backward` need only the input's shape. `max_backward` / `min_backward`
//! send each output's gradient to exactly one input element: the **first** element (in row-major
//! order of the input) equal to the output, so ties give the whole gradient to the lowest index.
//!
//! ```
//! use fm_tensor::ops::reduce::{sum, max, max_backward};
//! use ndarray::{array, ArrayD};
//!
//! let x = array![[1.0f64, 5.0, 5.0], [4.0, 2.0, 0.0]].into_dyn();
//! assert_eq!(sum(x.view(), &[1], false)?, array![11.0, 6.0].into_dyn());
//! let m = max(x.view(), &[1], true)?;                      // [[5.0], [4.0]]
//! let g = ArrayD::ones(m.shape());
//! let dx = max_backward(x.view(), m.view(), g.view(), &[1], true)?;
//! assert_eq!(dx, array![[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]].into_dyn()); // the first 5.0 wins the tie
//! # Ok::<(), fm_tensor::TensorError>(())
//! ```

use std::borrow::Cow;

use ndarray::{ArrayD, ArrayViewD, Zip};

use super::parallel::{for_each_chunk_mut, map_indices, rows_per_task, worth_parallel};
use crate::element::Element;
use crate::error::{Result, TensorError};

/// Contiguous reduced runs longer than this are folded in fixed chunks of this length, whose partial
/// results are then folded in order. The chunks can run on different threads; the length is a
/// constant (not derived from the thread count), so the result is the same for any pool.
pub const SPLIT_LEN: usize = 1 << 15;

/// Column-block width when a reduced group is followed by kept axes: each block of accumulators
/// (8 KiB of f32) stays in L1 while the rows stream past.
const COLUMN_BLOCK: usize = 2048;

/// A combining operation with an identity: how a reduction folds two values.
pub(crate) trait Reducer<T: Element>: Copy + Send + Sync {
    /// The value that changes nothing when combined (0 for sum, -inf for max).
    fn identity() -> T;
    /// Folds `v` into the accumulator `acc`.
    fn combine(acc: T, v: T) -> T;
}

/// Addition.
#[derive(Clone, Copy)]
pub(crate) struct SumReducer;
/// Maximum, propagating NaN.
#[derive(Clone, Copy)]
pub(crate) struct MaxReducer;
/// Minimum, propagating NaN.
#[derive(Clone, Copy)]
pub(crate) struct MinReducer;

impl<T: Element> Reducer<T> for SumReducer {
    #[inline(always)]
    fn identity() -> T {
        T::zero()
    }
    #[inline(always)]
    fn combine(acc: T, v: T) -> T {
        acc + v
    }
}

impl<T: Element> Reducer<T> for MaxReducer {
    #[inline(always)]
    fn identity() -> T {
        T::neg_infinity()
    }
    #[inline(always)]
    fn combine(acc: T, v: T) -> T {
        // `v != v` is NaN: a NaN replaces the accumulator and, once there, is never replaced.
        #[allow(clippy::eq_op)]
        let v_is_nan = v != v;
        if v > acc || v_is_nan {
            v
        } else {
            acc
        }
    }
}

impl<T: Element> Reducer<T> for MinReducer {
    #[inline(always)]
    fn identity() -> T {
        T::infinity()
    }
    #[inline(always)]
    fn combine(acc: T, v: T) -> T {
        #[allow(clippy::eq_op)]
        let v_is_nan = v != v;
        if v < acc || v_is_nan {
            v
        } else {
            acc
        }
    }
}

/// Folds a contiguous slice with eight interleaved accumulators (which the compiler keeps in vector
/// registers) combined in a fixed tree, then the tail in order.
#[inline]
pub(crate) fn fold_slice<T: Element, R: Reducer<T>>(xs: &[T]) -> T {
    const LANES: usize = 8;
    let mut acc = [R::identity(); LANES];
    let mut chunks = xs.chunks_exact(LANES);
    for chunk in &mut chunks {
        for j in 0..LANES {
            acc[j] = R::combine(acc[j], chunk[j]);
        }
    }
    let low = R::combine(R::combine(acc[0], acc[4]), R::combine(acc[2], acc[6]));
    let high = R::combine(R::combine(acc[1], acc[5]), R::combine(acc[3], acc[7]));
    let mut total = R::combine(low, high);
    for &v in chunks.remainder() {
        total = R::combine(total, v);
    }
    total
}

/// Sum of a contiguous slice in the fixed order of [`fold_slice`].
#[inline]
pub(crate) fn sum_slice<T: Element>(xs: &[T]) -> T {
    fold_slice::<T, SumReducer>(xs)
}

/// Σ aᵢ·bᵢ over two equally long slices, with the same eight-accumulator order as [`fold_slice`].
#[inline]
pub(crate) fn dot_slice<T: Element>(a: &[T], b: &[T]) -> T {
    const LANES: usize = 8;
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [T::zero(); LANES];
    let (mut ca, mut cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    for (x, y) in (&mut ca).zip(&mut cb) {
        for j in 0..LANES {
            acc[j] = acc[j] + x[j] * y[j];
        }
    }
    let mut total =
        ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
    for (&x, &y) in ca.remainder().iter().zip(cb.remainder()) {
        total = total + x * y;
    }
    total
}

/// Maximum of a contiguous slice (NaN-propagating; -inf for an empty slice).
#[inline]
pub(crate) fn max_slice<T: Element>(xs: &[T]) -> T {
    fold_slice::<T, MaxReducer>(xs)
}

/// Reduces the middle axis of a row-major `[outer, mid, inner]` buffer.
fn reduce_middle<T: Element, R: Reducer<T>>(
    src: &[T],
    outer: usize,
    mid: usize,
    inner: usize,
) -> Vec<T> {
    let mut out = vec![R::identity(); outer * inner];
    if mid == 0 || out.is_empty() {
        return out;
    }
    let parallel = worth_parallel(outer * mid * inner);
    if inner == 1 && mid > SPLIT_LEN {
        // Long contiguous runs: fixed chunks folded independently, then their partials in order.
        let chunks = mid.div_ceil(SPLIT_LEN);
        let partials = map_indices(outer * chunks, parallel, |k| {
            let (o, c) = (k / chunks, k % chunks);
            let start = o * mid + c * SPLIT_LEN;
            let end = o * mid + ((c + 1) * SPLIT_LEN).min(mid);
            fold_slice::<T, R>(&src[start..end])
        });
        for (o, parts) in out.iter_mut().zip(partials.chunks(chunks)) {
            *o = parts
                .iter()
                .fold(R::identity(), |acc, &p| R::combine(acc, p));
        }
    } else if inner == 1 {
        let per_task = rows_per_task(mid);
        for_each_chunk_mut(&mut out, per_task, parallel, |t, outs| {
            for (k, o) in outs.iter_mut().enumerate() {
                let row = t * per_task + k;
                *o = fold_slice::<T, R>(&src[row * mid..(row + 1) * mid]);
            }
        });
    } else {
        // Each output row accumulates its `mid` source rows in index order; column blocks and output
        // rows are independent of each other.
        for_each_chunk_mut(&mut out, inner, parallel, |o, row| {
            for_each_chunk_mut(row, COLUMN_BLOCK, parallel, |b, block| {
                let base = o * mid * inner + b * COLUMN_BLOCK;
                block.copy_from_slice(&src[base..base + block.len()]);
                for m in 1..mid {
                    let next = &src[base + m * inner..base + m * inner + block.len()];
                    for (acc, &v) in block.iter_mut().zip(next) {
                        *acc = R::combine(*acc, v);
                    }
                }
            });
        });
    }
    out
}

/// Reduces the axes flagged in `reduced` and returns the result in row-major order of the kept axes
/// (the order of evaluation is described in the module doc). `reduced.len()` must equal `x.ndim()`.
pub(crate) fn reduce_axes<T: Element, R: Reducer<T>>(
    x: ArrayViewD<'_, T>,
    reduced: &[bool],
) -> Vec<T> {
    debug_assert_eq!(reduced.len(), x.ndim());
    let x = x.as_standard_layout();
    let data = x
        .as_slice()
        .expect("a standard-layout array is a contiguous slice");
    // Adjacent axes with the same flag act as one axis; axes of length 1 change nothing.
    let mut groups: Vec<(usize, bool)> = Vec::new();
    for (&len, &is_reduced) in x.shape().iter().zip(reduced) {
        if len == 1 {
            continue;
        }
        match groups.last_mut() {
            Some((group_len, flag)) if *flag == is_reduced => *group_len *= len,
            _ => groups.push((len, is_reduced)),
        }
    }
    let mut buffer: Cow<'_, [T]> = Cow::Borrowed(data);
    while let Some(g) = groups.iter().rposition(|&(_, is_reduced)| is_reduced) {
        let outer = groups[..g].iter().map(|&(len, _)| len).product();
        let inner = groups[g + 1..].iter().map(|&(len, _)| len).product();
        buffer = Cow::Owned(reduce_middle::<T, R>(&buffer, outer, groups[g].0, inner));
        groups.remove(g);
        if g > 0 && g < groups.len() && groups[g - 1].1 == groups[g].1 {
            groups[g - 1].0 *= groups[g].0;
            groups.remove(g);
        }
    }
    buffer.into_owned()
}

/// Turns an axis list into one flag per axis of `shape`, rejecting out-of-range and repeated axes.
pub(crate) fn axes_mask(op: &'static str, shape: &[usize], axes: &[usize]) -> Result<Vec<bool>> {
    let mut mask = vec![false; shape.len()];
    for &axis in axes {
        if axis >= shape.len() {
            return Err(TensorError::invalid_argument(
                op,
                format!(
                    "axis {axis} is out of range for shape {shape:?} ({} axes)",
                    shape.len()
                ),
            ));
        }
        if mask[axis] {
            return Err(TensorError::invalid_argument(
                op,
                format!("axis {axis} is listed twice in {axes:?}"),
            ));
        }
        mask[axis] = true;
    }
    Ok(mask)
}

/// The shape after reducing the flagged axes: length 1 with `keepdim`, removed otherwise.
fn reduced_shape(shape: &[usize], mask: &[bool], keepdim: bool) -> Vec<usize> {
    shape
        .iter()
        .zip(mask)
        .filter_map(|(&len, &reduced)| match (reduced, keepdim) {
            (false, _) => Some(len),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect()
}

/// Number of input elements folded into each output element.
fn reduced_count(shape: &[usize], mask: &[bool]) -> usize {
    shape
        .iter()
        .zip(mask)
        .filter(|&(_, &r)| r)
        .map(|(&len, _)| len)
        .product()
}

fn reduce_public<T: Element, R: Reducer<T>>(
    op: &'static str,
    x: ArrayViewD<'_, T>,
    axes: &[usize],
    keepdim: bool,
    needs_elements: bool,
) -> Result<ArrayD<T>> {
    let mask = axes_mask(op, x.shape(), axes)?;
    let out_shape = reduced_shape(x.shape(), &mask, keepdim);
    if needs_elements
        && reduced_count(x.shape(), &mask) == 0
        && out_shape.iter().product::<usize>() > 0
    {
        return Err(TensorError::invalid_shape(
            op,
            x.shape(),
            format!("reduces an empty set along axes {axes:?}"),
        ));
    }
    let data = reduce_axes::<T, R>(x, &mask);
    Ok(ArrayD::from_shape_vec(out_shape, data).expect("reduction output matches its shape"))
}

/// Sum over `axes`; with `keepdim` the reduced axes stay as length 1.
///
/// ```
/// use fm_tensor::ops::reduce::sum;
/// use ndarray::array;
/// let x = array![[1.0f32, 2.0], [3.0, 4.0]].into_dyn();
/// assert_eq!(sum(x.view(), &[0], false)?, array![4.0, 6.0].into_dyn());
/// assert_eq!(sum(x.view(), &[0, 1], true)?, array![[10.0]].into_dyn());
/// # Ok::<(), fm_tensor::TensorError>(())
/// ```
pub fn sum<T: Element>(x: ArrayViewD<'_, T>, axes: &[usize], keepdim: bool) -> Result<ArrayD<T>> {
    reduce_public::<T, SumReducer>("sum", x, axes, keepdim, false)
}

/// Mean over `axes` (sum divided by the number of reduced elements; NaN for an empty set).
pub fn mean<T: Element>(x: ArrayViewD<'_, T>, axes: &[usize], keepdim: bool) -> Result<ArrayD<T>> {
    let mask = axes_mask("mean", x.shape(), axes)?;
    let count = T::from_usize(reduced_count(x.shape(), &mask)).expect("counts convert to floats");
    let mut out = reduce_public::<T, SumReducer>("mean", x, axes, keepdim, false)?;
    out.mapv_inplace(|s| s / count);
    Ok(out)
}

/// Maximum over `axes` (NaN-propagating). An empty reduced set is an error.
pub fn max<T: Element>(x: ArrayViewD<'_, T>, axes: &[usize], keepdim: bool) -> Result<ArrayD<T>> {
    reduce_public::<T, MaxReducer>("max", x, axes, keepdim, true)
}

/// Minimum over `axes` (NaN-propagating). An empty reduced set is an error.
pub fn min<T: Element>(x: ArrayViewD<'_, T>, axes: &[usize], keepdim: bool) -> Result<ArrayD<T>> {
    reduce_public::<T, MinReducer>("min", x, axes, keepdim, true)
}

fn all_axes(x: &ArrayViewD<'_, impl Element>) -> Vec<usize> {
    (0..x.ndim()).collect()
}

/// Sum of all elements (0 for an empty array). Same value as [`sum`] over every axis.
pub fn sum_all<T: Element>(x: ArrayViewD<'_, T>) -> T {
    let mask = vec![true; x.ndim()];
    reduce_axes::<T, SumReducer>(x, &mask)[0]
}

/// Mean of all elements (NaN for an empty array).
pub fn mean_all<T: Element>(x: ArrayViewD<'_, T>) -> T {
    let count = T::from_usize(x.len()).expect("counts convert to floats");
    sum_all(x) / count
}

/// Maximum of all elements; an error for an empty array.
pub fn max_all<T: Element>(x: ArrayViewD<'_, T>) -> Result<T> {
    let axes = all_axes(&x);
    Ok(
        reduce_public::<T, MaxReducer>("max_all", x, &axes, false, true)?
            .into_iter()
            .next()
            .expect("a full reduction has one element"),
    )
}

/// Minimum of all elements; an error for an empty array.
pub fn min_all<T: Element>(x: ArrayViewD<'_, T>) -> Result<T> {
    let axes = all_axes(&x);
    Ok(
        reduce_public::<T, MinReducer>("min_all", x, &axes, false, true)?
            .into_iter()
            .next()
            .expect("a full reduction has one element"),
    )
}

/// Checks that `grad` has the shape the forward produced and views it with the reduced axes kept.
fn grad_with_kept_axes<'a, T: Element>(
    op: &'static str,
    grad: &'a ArrayViewD<'_, T>,
    input_shape: &[usize],
    mask: &[bool],
    keepdim: bool,
) -> Result<ndarray::CowArray<'a, T, ndarray::IxDyn>> {
    let expected = reduced_shape(input_shape, mask, keepdim);
    if grad.shape() != expected.as_slice() {
        return Err(TensorError::shape_mismatch(
            op,
            grad.shape(),
            &expected,
            format!("the gradient must have the reduced shape of input {input_shape:?}"),
        ));
    }
    let kept = reduced_shape(input_shape, mask, true);
    Ok(grad
        .to_shape(kept)
        .expect("inserting unit axes keeps the element count"))
}

/// Writes `scale(g)` for the broadcast gradient `g` into a new array of `input_shape`.
fn expand_grad<T: Element>(
    op: &'static str,
    grad: ArrayViewD<'_, T>,
    input_shape: &[usize],
    axes: &[usize],
    keepdim: bool,
    divisor: Option<T>,
) -> Result<ArrayD<T>> {
    let mask = axes_mask(op, input_shape, axes)?;
    let kept = grad_with_kept_axes(op, &grad, input_shape, &mask, keepdim)?;
    let mut out = crate::buffers::array_for_overwrite(ndarray::IxDyn(input_shape));
    let spread = kept
        .broadcast(input_shape)
        .expect("kept-axes gradient broadcasts to the input shape");
    let parallel = worth_parallel(out.len());
    let zip = Zip::from(&mut out).and(&spread);
    let write = |o: &mut T, &g: &T| *o = divisor.map_or(g, |d| g / d);
    if parallel {
        zip.par_for_each(write);
    } else {
        zip.for_each(write);
    }
    Ok(out)
}

/// Gradient of [`sum`]: `grad` (of the reduced shape) copied along the reduced axes.
pub fn sum_backward<T: Element>(
    grad: ArrayViewD<'_, T>,
    input_shape: &[usize],
    axes: &[usize],
    keepdim: bool,
) -> Result<ArrayD<T>> {
    expand_grad("sum_backward", grad, input_shape, axes, keepdim, None)
}

/// Gradient of [`mean`]: `grad` divided by the number of reduced elements, copied along the axes.
pub fn mean_backward<T: Element>(
    grad: ArrayViewD<'_, T>,
    input_shape: &[usize],
    axes: &[usize],
    keepdim: bool,
) -> Result<ArrayD<T>> {
    let mask = axes_mask("mean_backward", input_shape, axes)?;
    let count = T::from_usize(reduced_count(input_shape, &mask)).expect("counts convert to floats");
    expand_grad(
        "mean_backward",
        grad,
        input_shape,
        axes,
        keepdim,
        Some(count),
    )
}

/// Sends each output's gradient to the first input element (row-major) equal to that output.
fn route_to_first_match<T: Element>(
    op: &'static str,
    x: ArrayViewD<'_, T>,
    out: ArrayViewD<'_, T>,
    grad: ArrayViewD<'_, T>,
    axes: &[usize],
    keepdim: bool,
) -> Result<ArrayD<T>> {
    let mask = axes_mask(op, x.shape(), axes)?;
    let expected = reduced_shape(x.shape(), &mask, keepdim);
    if out.shape() != expected.as_slice() {
        return Err(TensorError::shape_mismatch(
            op,
            x.shape(),
            out.shape(),
            format!("the forward output must have the reduced shape {expected:?}"),
        ));
    }
    if grad.shape() != expected.as_slice() {
        return Err(TensorError::shape_mismatch(
            op,
            out.shape(),
            grad.shape(),
            "the gradient must have the shape of the forward output",
        ));
    }
    let xs = x.as_standard_layout();
    let xs = xs.as_slice().expect("standard layout is contiguous");
    let targets = out.as_standard_layout();
    let targets = targets.as_slice().expect("standard layout is contiguous");
    let grads = grad.as_standard_layout();
    let grads = grads.as_slice().expect("standard layout is contiguous");

    // A 0-d input is one row of one element.
    let shape: Vec<usize> = if x.ndim() == 0 {
        vec![1]
    } else {
        x.shape().to_vec()
    };
    let mask = if x.ndim() == 0 { vec![true] } else { mask };
    // Strides of the output (with kept unit axes) in row-major order; 0 along reduced axes.
    let mut out_strides = vec![0usize; shape.len()];
    let mut stride = 1;
    for d in (0..shape.len()).rev() {
        if !mask[d] {
            out_strides[d] = stride;
            stride *= shape[d];
        }
    }
    let mut dx = crate::buffers::zeroed_vec(xs.len());
    let mut taken = vec![false; targets.len()];
    let last = shape[shape.len() - 1];
    let last_stride = out_strides[shape.len() - 1];
    let mut index = vec![0usize; shape.len()];
    let mut out_base = 0usize;
    if last > 0 {
        for (row, values) in xs.chunks(last).enumerate() {
            for (j, &v) in values.iter().enumerate() {
                let o = out_base + j * last_stride;
                let target = targets[o];
                #[allow(clippy::eq_op)]
                let both_nan = v != v && target != target;
                if !taken[o] && (v == target || both_nan) {
                    dx[row * last + j] = grads[o];
                    taken[o] = true;
                }
            }
            // Advance the row-major index over the leading axes.
            for d in (0..shape.len() - 1).rev() {
                index[d] += 1;
                out_base += out_strides[d];
                if index[d] < shape[d] {
                    break;
                }
                out_base -= out_strides[d] * shape[d];
                index[d] = 0;
            }
        }
    }
    Ok(ArrayD::from_shape_vec(x.shape(), dx).expect("gradient matches the input shape"))
}

/// Gradient of [`max`]: each output's gradient goes to the first input element (in row-major order)
/// equal to the forward output `out`; every other element gets 0. `out` and `grad` have the shape
/// [`max`] returned for the same `axes` and `keepdim`. Sequential (one pass over `x`).
pub fn max_backward<T: Element>(
    x: ArrayViewD<'_, T>,
    out: ArrayViewD<'_, T>,
    grad: ArrayViewD<'_, T>,
    axes: &[usize],
    keepdim: bool,
) -> Result<ArrayD<T>> {
    route_to_first_match("max_backward", x, out, grad, axes, keepdim)
}

/// Gradient of [`min`], with the same first-match tie rule as [`max_backward`].
pub fn min_backward<T: Element>(
    x: ArrayViewD<'_, T>,
    out: ArrayViewD<'_, T>,
    grad: ArrayViewD<'_, T>,
    axes: &[usize],
    keepdim: bool,
) -> Result<ArrayD<T>> {
    route_to_first_match("min_backward", x, out, grad, axes, keepdim)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{
        assert_bitwise_eq_across_threads, check_gradient, random_array, weighted_sum,
    };
    use ndarray::{array, Axis};

    /// Sums axes one at a time with ndarray, highest axis first (the reference).
    fn reference_sum(x: &ArrayD<f64>, axes: &[usize], keepdim: bool) -> ArrayD<f64> {
        let mut sorted = axes.to_vec();
        sorted.sort_unstable();
        let mut out = x.clone();
        for &a in sorted.iter().rev() {
            out = out.sum_axis(Axis(a));
            if keepdim {
                out = out.insert_axis(Axis(a));
            }
        }
        out
    }

    fn assert_close(a: &ArrayD<f64>, b: &ArrayD<f64>, tol: f64) {
        assert_eq!(a.shape(), b.shape());
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= tol * (1.0 + y.abs()), "{x} vs {y}");
        }
    }

    #[test]
    fn values_by_hand() {
        let x = array![[1.0f32, -2.0, 3.0], [4.0, 5.0, -6.0]].into_dyn();
        assert_eq!(
            sum(x.view(), &[0], false).unwrap(),
            array![5.0, 3.0, -3.0].into_dyn()
        );
        assert_eq!(
            sum(x.view(), &[1], true).unwrap(),
            array![[2.0], [3.0]].into_dyn()
        );
        assert_eq!(
            mean(x.view(), &[1], false).unwrap(),
            array![2.0 / 3.0, 1.0].into_dyn()
        );
        assert_eq!(
            max(x.view(), &[0], false).unwrap(),
            array![4.0, 5.0, 3.0].into_dyn()
        );
        assert_eq!(
            min(x.view(), &[1], true).unwrap(),
            array![[-2.0], [-6.0]].into_dyn()
        );
        assert_eq!(sum_all(x.view()), 5.0);
        assert_eq!(mean_all(x.view()), 5.0 / 6.0);
        assert_eq!(max_all(x.view()).unwrap(), 5.0);
        assert_eq!(min_all(x.view()).unwrap(), -6.0);
        // No axes: a copy; all axes without keepdim: a 0-d array.
        assert_eq!(sum(x.view(), &[], false).unwrap(), x);
        assert_eq!(
            sum(x.view(), &[1, 0], false).unwrap().shape(),
            &[] as &[usize]
        );
    }

    #[test]
    fn sums_match_reference_for_every_axis_set() {
        let shapes: [&[usize]; 4] = [&[3, 1, 4], &[2, 5, 1, 3], &[7], &[4, 6, 5]];
        for (seed, shape) in shapes.iter().enumerate() {
            let x = random_array::<f64>(shape, seed as u64);
            let n = shape.len();
            for bits in 0u32..(1 << n) {
                let axes: Vec<usize> = (0..n).filter(|a| bits & (1 << a) != 0).collect();
                for keepdim in [false, true] {
                    let got = sum(x.view(), &axes, keepdim).unwrap();
                    assert_close(&got, &reference_sum(&x, &axes, keepdim), 1e-12);
                    let count: usize = axes.iter().map(|&a| shape[a]).product();
                    let want_mean = reference_sum(&x, &axes, keepdim) / count as f64;
                    assert_close(&mean(x.view(), &axes, keepdim).unwrap(), &want_mean, 1e-12);
                }
            }
        }
    }

    #[test]
    fn max_and_min_match_reference() {
        let x = random_array::<f64>(&[4, 3, 5], 9);
        for axes in [&[0usize][..], &[1], &[2], &[0, 2], &[0, 1, 2]] {
            let (mut want_max, mut want_min) = (x.clone(), x.clone());
            for &a in axes.iter().rev() {
                want_max = want_max.fold_axis(Axis(a), f64::NEG_INFINITY, |&m, &v| m.max(v));
                want_min = want_min.fold_axis(Axis(a), f64::INFINITY, |&m, &v| m.min(v));
            }
            assert_eq!(max(x.view(), axes, false).unwrap(), want_max);
            assert_eq!(min(x.view(), axes, false).unwrap(), want_min);
        }
    }

    #[test]
    fn result_does_not_depend_on_layout() {
        let x = random_array::<f32>(&[5, 6, 7], 4);
        let permuted = x.view().permuted_axes(vec![2, 0, 1]);
        let copy = permuted.as_standard_layout().into_owned();
        for axes in [&[0usize][..], &[1], &[2], &[0, 2]] {
            assert_eq!(
                sum(permuted.clone(), axes, false).unwrap(),
                sum(copy.view(), axes, false).unwrap()
            );
            assert_eq!(
                max(permuted.clone(), axes, true).unwrap(),
                max(copy.view(), axes, true).unwrap()
            );
        }
    }

    #[test]
    fn long_contiguous_sums_use_fixed_chunks_and_stay_accurate() {
        let n = 3 * SPLIT_LEN + 17;
        let x = random_array::<f32>(&[2, n], 5);
        let got = sum(x.view(), &[1], false).unwrap();
        for (row, &s) in x.outer_iter().zip(got.iter()) {
            let exact: f64 = row.iter().map(|&v| v as f64).sum();
            assert!((s as f64 - exact).abs() < 1e-3, "{s} vs {exact}");
        }
        let total: f64 = x.iter().map(|&v| v as f64).sum();
        assert!((sum_all(x.view()) as f64 - total).abs() < 1e-3);
    }

    #[test]
    fn nan_propagates_through_max_and_min() {
        let x = array![[1.0f64, f64::NAN, 3.0], [1.0, 2.0, 3.0]].into_dyn();
        let m = max(x.view(), &[1], false).unwrap();
        assert!(m[[0]].is_nan() && m[[1]] == 3.0);
        let m = min(x.view(), &[1], false).unwrap();
        assert!(m[[0]].is_nan() && m[[1]] == 1.0);
        // The NaN's position receives the gradient.
        let m = max(x.view(), &[1], true).unwrap();
        let dx = max_backward(
            x.view(),
            m.view(),
            ArrayD::ones(m.shape()).view(),
            &[1],
            true,
        )
        .unwrap();
        assert_eq!(dx, array![[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]].into_dyn());
    }

    #[test]
    fn bad_axes_are_errors() {
        let x = ArrayD::<f32>::zeros(vec![2, 3]);
        let err = sum(x.view(), &[2], false).unwrap_err();
        assert!(
            err.to_string()
                .contains("axis 2 is out of range for shape [2, 3]"),
            "{err}"
        );
        let err = mean(x.view(), &[1, 1], false).unwrap_err();
        assert!(err.to_string().contains("listed twice"), "{err}");
        assert!(max(x.view(), &[5], true).is_err());
        assert!(sum_backward(x.view(), &[2, 3], &[3], false).is_err());
    }

    #[test]
    fn backward_rejects_a_gradient_of_the_wrong_shape() {
        let g = ArrayD::<f32>::zeros(vec![2, 3]);
        let err = sum_backward(g.view(), &[2, 3, 4], &[2], true).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("[2, 3]") && text.contains("[2, 3, 1]"),
            "{text}"
        );
        let x = ArrayD::<f32>::zeros(vec![2, 3]);
        let out = ArrayD::<f32>::zeros(vec![2]);
        let err = max_backward(x.view(), out.view(), g.view(), &[1], false).unwrap_err();
        assert!(err.to_string().contains("[2, 3]"), "{err}");
        let err = max_backward(x.view(), g.view(), g.view(), &[1], false).unwrap_err();
        assert!(err.to_string().contains("reduced shape [2]"), "{err}");
    }

    #[test]
    fn empty_inputs() {
        let x = ArrayD::<f64>::zeros(vec![0, 3]);
        assert_eq!(
            sum(x.view(), &[0], false).unwrap(),
            ArrayD::<f64>::zeros(vec![3])
        );
        assert!(mean(x.view(), &[0], false)
            .unwrap()
            .iter()
            .all(|v| v.is_nan()));
        assert_eq!(sum(x.view(), &[1], false).unwrap().shape(), &[0]);
        assert_eq!(max(x.view(), &[1], false).unwrap().shape(), &[0]);
        let err = max(x.view(), &[0], false).unwrap_err();
        assert!(err.to_string().contains("empty"), "{err}");
        assert!(max_all(x.view()).is_err());
        assert_eq!(sum_all(x.view()), 0.0);
        let g = sum_backward(ArrayD::<f64>::ones(vec![3]).view(), &[0, 3], &[0], false).unwrap();
        assert_eq!(g.shape(), &[0, 3]);
        let out = max(x.view(), &[1], true).unwrap();
        let dx = max_backward(x.view(), out.view(), out.view(), &[1], true).unwrap();
        assert_eq!(dx.shape(), &[0, 3]);
    }

    #[test]
    fn zero_dimensional_inputs() {
        let x = ArrayD::from_elem(vec![], 2.5f64);
        assert_eq!(sum(x.view(), &[], false).unwrap(), x);
        assert_eq!(sum_all(x.view()), 2.5);
        let m = max(x.view(), &[], false).unwrap();
        let dx = max_backward(
            x.view(),
            m.view(),
            ArrayD::from_elem(vec![], 3.0).view(),
            &[],
            false,
        )
        .unwrap();
        assert_eq!(dx, ArrayD::from_elem(vec![], 3.0));
    }

    #[test]
    fn gradients_match_finite_differences() {
        let cases: [(&[usize], &[usize]); 5] = [
            (&[3, 1, 4], &[0, 2]),
            (&[2, 3, 4], &[1]),
            (&[5], &[0]),
            (&[1, 4, 1], &[2]),
            (&[3, 4], &[]),
        ];
        for (seed, (shape, axes)) in cases.into_iter().enumerate() {
            let x = random_array::<f64>(shape, 100 + seed as u64);
            for keepdim in [false, true] {
                let out_shape = sum(x.view(), axes, keepdim).unwrap().shape().to_vec();
                let w = random_array::<f64>(&out_shape, 200 + seed as u64);

                let dx = sum_backward(w.view(), shape, axes, keepdim).unwrap();
                check_gradient("sum", &x, &dx, |x| {
                    weighted_sum(&sum(x.view(), axes, keepdim).unwrap(), &w)
                });

                let dx = mean_backward(w.view(), shape, axes, keepdim).unwrap();
                check_gradient("mean", &x, &dx, |x| {
                    weighted_sum(&mean(x.view(), axes, keepdim).unwrap(), &w)
                });

                let m = max(x.view(), axes, keepdim).unwrap();
                let dx = max_backward(x.view(), m.view(), w.view(), axes, keepdim).unwrap();
                check_gradient("max", &x, &dx, |x| {
                    weighted_sum(&max(x.view(), axes, keepdim).unwrap(), &w)
                });

                let m = min(x.view(), axes, keepdim).unwrap();
                let dx = min_backward(x.view(), m.view(), w.view(), axes, keepdim).unwrap();
                check_gradient("min", &x, &dx, |x| {
                    weighted_sum(&min(x.view(), axes, keepdim).unwrap(), &w)
                });
            }
        }
    }

    #[test]
    fn ties_send_the_gradient_to_the_first_maximum() {
        let x = array![[2.0f64, 1.0], [2.0, 2.0]].into_dyn();
        let m = max(x.view(), &[0, 1], false).unwrap();
        let dx = max_backward(
            x.view(),
            m.view(),
            ArrayD::from_elem(vec![], 1.0).view(),
            &[0, 1],
            false,
        )
        .unwrap();
        assert_eq!(dx, array![[1.0, 0.0], [0.0, 0.0]].into_dyn());
        let m = max(x.view(), &[0], false).unwrap();
        let dx = max_backward(
            x.view(),
            m.view(),
            array![5.0, 7.0].into_dyn().view(),
            &[0],
            false,
        )
        .unwrap();
        assert_eq!(dx, array![[5.0, 0.0], [0.0, 7.0]].into_dyn());
    }

    #[test]
    fn results_are_identical_for_any_thread_count() {
        let x = random_array::<f32>(&[48, 35, 130], 6);
        for axes in [&[0usize][..], &[1], &[2], &[0, 2], &[0, 1]] {
            assert_bitwise_eq_across_threads(|| sum(x.view(), axes, false).unwrap());
            assert_bitwise_eq_across_threads(|| max(x.view(), axes, true).unwrap());
        }
        let long = random_array::<f32>(&[4 * SPLIT_LEN + 3], 7);
        assert_bitwise_eq_across_threads(|| sum(long.view(), &[0], false).unwrap());
        let g = random_array::<f32>(&[48, 130], 8);
        assert_bitwise_eq_across_threads(|| {
            mean_backward(g.view(), &[48, 35, 130], &[1], false).unwrap()
        });
    }
}
