//! Shape and indexing kernels: reshape, transpose/permute, slice, concat/split, index_select,
//! squeeze/unsqueeze and broadcast, each with its backward beside it.
//!
//! Every kernel takes an [`ArrayViewD`] (any strides) and returns an owned array in standard
//! (row-major, C-contiguous) layout, because the autograd tape stores owned tensors. So every forward
//! and backward here copies the data it returns, once; none of them hands back a strided view. The
//! block-copying kernels ([`concat()`], [`split`], [`index_select`] and their backwards) first make a
//! strided input contiguous, a second copy that a contiguous input does not pay. "Row-major" is also
//! the order in which [`reshape`] reads elements, whatever the memory layout of the input.
//!
//! Axes are `isize` where a negative axis is natural (`-1` is the last axis) and are resolved by
//! [`normalize_axis`]; permutations take `usize` axes. Index lists are any [`IndexElement`] (`u32`,
//! as token pipelines produce, or `usize`).
//!
//! None of these kernels reduce anything except [`index_select_backward`] and
//! [`broadcast_to_backward`], which accumulate in a fixed sequential order, so results are bitwise
//! identical for any thread count.

use std::fmt::Debug;

use ndarray::{ArrayD, ArrayViewD, Axis, CowArray, IxDyn, Slice, Zip};
use rayon::prelude::*;

use crate::element::Element;
use crate::error::{Result, TensorError};

/// Above this many elements a strided-to-contiguous copy is split over the rayon pool. Below it the
/// copy takes a few microseconds, less than waking the pool's threads costs.
const PARALLEL_COPY_MIN_ELEMENTS: usize = 1 << 16;

/// Resolves a possibly negative `axis` (`-1` is the last axis) against a tensor of rank `ndim`.
///
/// Every kernel in fm-tensor that takes an `isize` axis resolves it through this function, so the
/// error reads the same everywhere: it names `op`, the axis and the rank.
///
/// ```
/// use fm_tensor::ops::shape::normalize_axis;
/// assert_eq!(normalize_axis("sum", -1, 3)?, 2);
/// assert_eq!(normalize_axis("sum", 0, 3)?, 0);
/// assert!(normalize_axis("sum", 3, 3).is_err());
/// assert!(normalize_axis("sum", -4, 3).is_err());
/// # Ok::<(), fm_tensor::TensorError>(())
/// ```
pub fn normalize_axis(op: &'static str, axis: isize, ndim: usize) -> Result<usize> {
    let resolved = if axis < 0 {
        ndim.checked_sub(axis.unsigned_abs())
    } else {
        Some(axis as usize)
    };
    match resolved {
        Some(a) if a < ndim => Ok(a),
        _ => {
            Err(TensorError::invalid_argument(
                op,
                if ndim == 0 {
                    format!("axis {axis} given for a tensor of rank 0, which has no axes")
                } else {
                    format!("axis {axis} is out of range for a tensor of rank {ndim} (valid: -{ndim}..={})", ndim - 1)
                },
            ))
        }
    }
}

/// An integer type usable as an index list or token ids: `u32` (what token pipelines produce, half
/// the memory of `usize`) or `usize`.
pub trait IndexElement: Copy + Send + Sync + Debug + 'static {
    /// Widens the value to a `usize` index (lossless on 32- and 64-bit targets).
    fn to_index(self) -> usize;
}

impl IndexElement for u32 {
    #[inline]
    fn to_index(self) -> usize {
        self as usize
    }
}

impl IndexElement for usize {
    #[inline]
    fn to_index(self) -> usize {
        self
    }
}

/// Output elements per parallel task in [`gather_lanes`]: enough work to outweigh a task's
/// scheduling cost, small enough to balance over a few threads.
const COPY_TASK_ELEMENTS: usize = 1 << 14;

/// Copies any view into a fresh array in standard (row-major) layout.
///
/// A standard-layout input is a single `memcpy`. A permutation of a contiguous array (what
/// [`permute`] and [`transpose`] produce) is copied lane by lane along the last axis, a `memcpy` per
/// lane when that axis is contiguous in the input. Anything else (steps, broadcasts, negative
/// strides) goes through ndarray's `Zip`. Above [`PARALLEL_COPY_MIN_ELEMENTS`] the copy is split
/// over the rayon pool; each output element is written by exactly one thread, so the result does not
/// depend on the thread count.
pub(crate) fn to_standard_owned<T: Element>(x: ArrayViewD<'_, T>) -> ArrayD<T> {
    if x.is_standard_layout() {
        let mut out = crate::buffers::array_for_overwrite(x.raw_dim());
        out.assign(&x);
        return out;
    }
    if x.strides().iter().all(|&s| s >= 0) {
        if let Some(src) = x.as_slice_memory_order() {
            // Non-negative strides: element [0, 0, ..] is the block's first element, at offset 0.
            let strides: Vec<usize> = x.strides().iter().map(|&s| s as usize).collect();
            let mut out = crate::buffers::vec_for_overwrite(x.len());
            gather_lanes(src, x.shape(), &strides, &mut out);
            return ArrayD::from_shape_vec(x.raw_dim(), out).expect("length matches shape");
        }
    }
    let mut out = crate::buffers::array_for_overwrite(x.raw_dim());
    let zip = Zip::from(&mut out).and(&x);
    if x.len() >= PARALLEL_COPY_MIN_ELEMENTS {
        zip.par_for_each(|o, &v| *o = v);
    } else {
        zip.for_each(|o, &v| *o = v);
    }
    out
}

/// Writes the elements at `sum(index[k] * strides[k])` of `src`, for every index of `shape` in
/// row-major order, into `out`. `shape` has rank >= 1; `out.len()` is its element count.
fn gather_lanes<T: Copy + Send + Sync>(
    src: &[T],
    shape: &[usize],
    strides: &[usize],
    out: &mut [T],
) {
    if out.is_empty() {
        return;
    }
    let n = shape.len();
    let inner = shape[n - 1];
    let inner_stride = strides[n - 1];
    let (outer_shape, outer_strides) = (&shape[..n - 1], &strides[..n - 1]);
    let copy_rows = |first_row: usize, dst: &mut [T]| {
        // The outer multi-index of `first_row`, and its offset in `src`.
        let mut idx = vec![0; n - 1];
        let mut rest = first_row;
        let mut offset = 0;
        for k in (0..n - 1).rev() {
            idx[k] = rest % outer_shape[k];
            rest /= outer_shape[k];
            offset += idx[k] * outer_strides[k];
        }
        for lane in dst.chunks_exact_mut(inner) {
            if inner_stride == 1 {
                lane.copy_from_slice(&src[offset..offset + inner]);
            } else {
                for (j, d) in lane.iter_mut().enumerate() {
                    *d = src[offset + j * inner_stride];
                }
            }
            // Odometer step over the outer axes.
            for k in (0..n - 1).rev() {
                idx[k] += 1;
                offset += outer_strides[k];
                if idx[k] < outer_shape[k] {
                    break;
                }
                offset -= idx[k] * outer_strides[k];
                idx[k] = 0;
            }
        }
    };
    let rows_per_task = (COPY_TASK_ELEMENTS / inner).max(1);
    if out.len() >= PARALLEL_COPY_MIN_ELEMENTS {
        out.par_chunks_mut(rows_per_task * inner)
            .enumerate()
            .for_each(|(task, dst)| copy_rows(task * rows_per_task, dst));
    } else {
        copy_rows(0, out);
    }
}

fn product(dims: &[usize]) -> usize {
    dims.iter().product()
}

// ---------------------------------------------------------------------------------------------------
// reshape

/// Resolves a reshape request against the shape being reshaped: at most one `-1` entry, inferred so
/// that the element count is kept.
///
/// Errors: a negative entry other than `-1`, more than one `-1`, a `-1` that cannot be inferred
/// (because the other entries multiply to zero), or an element count that differs from `from`'s
/// ([`TensorError::ShapeMismatch`] naming both shapes).
///
/// ```
/// use fm_tensor::ops::shape::resolve_reshape;
/// assert_eq!(resolve_reshape("reshape", &[2, 3, 4], &[-1, 4])?, vec![6, 4]);
/// assert!(resolve_reshape("reshape", &[2, 3, 4], &[5, -1]).is_err());
/// # Ok::<(), fm_tensor::TensorError>(())
/// ```
pub fn resolve_reshape(op: &'static str, from: &[usize], spec: &[isize]) -> Result<Vec<usize>> {
    let mut inferred = None;
    for (i, &d) in spec.iter().enumerate() {
        if d == -1 {
            if inferred.is_some() {
                return Err(TensorError::invalid_argument(
                    op,
                    format!("requested shape {spec:?} has more than one -1 (only one dimension can be inferred)"),
                ));
            }
            inferred = Some(i);
        } else if d < 0 {
            return Err(TensorError::invalid_argument(
                op,
                format!("requested shape {spec:?} has negative dimension {d} (only -1, meaning 'infer', is allowed)"),
            ));
        }
    }
    let known: Vec<usize> = spec
        .iter()
        .filter(|&&d| d >= 0)
        .map(|&d| d as usize)
        .collect();
    let known_count = product(&known);
    let count = product(from);
    let mismatch = || {
        TensorError::shape_mismatch(
            op,
            from,
            &known,
            format!("cannot reshape {count} elements into requested shape {spec:?}"),
        )
    };
    match inferred {
        None if known_count == count => Ok(known),
        None => Err(mismatch()),
        Some(i) => {
            if known_count == 0 {
                return Err(TensorError::invalid_argument(
                    op,
                    format!(
                        "cannot infer the -1 in {spec:?} for input shape {from:?}: the other dimensions multiply to 0"
                    ),
                ));
            }
            if !count.is_multiple_of(known_count) {
                return Err(mismatch());
            }
            let mut shape = known;
            shape.insert(i, count / known_count);
            Ok(shape)
        }
    }
}

/// Reshapes `x` to `shape`, reading elements in row-major order; one entry may be `-1` (inferred).
///
/// Copies once into a standard-layout array (a plain `memcpy` when `x` is already contiguous).
///
/// ```
/// use ndarray::{arr2, ArrayD, IxDyn};
/// use fm_tensor::ops::shape::reshape;
/// let x = arr2(&[[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]]).into_dyn();
/// let y = reshape(x.view(), &[3, -1])?;
/// assert_eq!(y, ArrayD::from_shape_vec(IxDyn(&[3, 2]), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap());
/// // Reading order is row-major even for a transposed (column-major) view.
/// let t = reshape(x.t().into_dyn(), &[-1])?;
/// assert_eq!(t.as_slice().unwrap(), &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
/// # Ok::<(), fm_tensor::TensorError>(())
/// ```
pub fn reshape<T: Element>(x: ArrayViewD<'_, T>, shape: &[isize]) -> Result<ArrayD<T>> {
    let target = resolve_reshape("reshape", x.shape(), shape)?;
    let owned = to_standard_owned(x);
    Ok(owned
        .into_shape_with_order(IxDyn(&target))
        .expect("element count checked by resolve_reshape"))
}

/// Gradient of [`reshape`]: `grad` (shaped like the reshape's output) reshaped back to `input_shape`.
pub fn reshape_backward<T: Element>(
    grad: ArrayViewD<'_, T>,
    input_shape: &[usize],
) -> Result<ArrayD<T>> {
    if grad.len() != product(input_shape) {
        return Err(TensorError::shape_mismatch(
            "reshape_backward",
            grad.shape(),
            input_shape,
            "gradient and input have different element counts",
        ));
    }
    let owned = to_standard_owned(grad);
    Ok(owned
        .into_shape_with_order(IxDyn(input_shape))
        .expect("element count checked above"))
}

// ---------------------------------------------------------------------------------------------------
// transpose / permute

/// Swaps two axes of `x` (negative axes allowed). Copies into a standard-layout array.
///
/// ```
/// use ndarray::arr2;
/// use fm_tensor::ops::shape::transpose;
/// let x = arr2(&[[1.0f64, 2.0, 3.0], [4.0, 5.0, 6.0]]).into_dyn();
/// let y = transpose(x.view(), 0, -1)?;
/// assert_eq!(y, arr2(&[[1.0, 4.0], [2.0, 5.0], [3.0, 6.0]]).into_dyn());
/// assert!(y.is_standard_layout());
/// # Ok::<(), fm_tensor::TensorError>(())
/// ```
pub fn transpose<T: Element>(
    x: ArrayViewD<'_, T>,
    axis_a: isize,
    axis_b: isize,
) -> Result<ArrayD<T>> {
    let a = normalize_axis("transpose", axis_a, x.ndim())?;
    let b = normalize_axis("transpose", axis_b, x.ndim())?;
    let mut v = x;
    v.swap_axes(a, b);
    Ok(to_standard_owned(v))
}

/// Gradient of [`transpose`]: swaps the same two axes of `grad` back.
pub fn transpose_backward<T: Element>(
    grad: ArrayViewD<'_, T>,
    axis_a: isize,
    axis_b: isize,
) -> Result<ArrayD<T>> {
    let a = normalize_axis("transpose_backward", axis_a, grad.ndim())?;
    let b = normalize_axis("transpose_backward", axis_b, grad.ndim())?;
    let mut v = grad;
    v.swap_axes(a, b);
    Ok(to_standard_owned(v))
}

fn check_permutation(op: &'static str, shape: &[usize], axes: &[usize]) -> Result<()> {
    let ndim = shape.len();
    let mut seen = vec![false; ndim];
    let valid = axes.len() == ndim
        && axes.iter().all(|&a| {
            let fresh = a < ndim && !seen[a];
            if fresh {
                seen[a] = true;
            }
            fresh
        });
    if valid {
        Ok(())
    } else {
        Err(TensorError::invalid_argument(
            op,
            format!(
                "axes {axes:?} are not a permutation of 0..{ndim} for a tensor of shape {shape:?}"
            ),
        ))
    }
}

/// The permutation that undoes `axes`: `inverse[axes[i]] = i`.
///
/// Errors when `axes` is not a permutation of `0..axes.len()`.
pub fn inverse_permutation(axes: &[usize]) -> Result<Vec<usize>> {
    check_permutation("inverse_permutation", &vec![0; axes.len()], axes)?;
    let mut inverse = vec![0; axes.len()];
    for (i, &a) in axes.iter().enumerate() {
        inverse[a] = i;
    }
    Ok(inverse)
}

/// Reorders the axes of `x`: output axis `i` is input axis `axes[i]` (like `torch.permute`).
/// Copies into a standard-layout array.
///
/// ```
/// use ndarray::{Array, IxDyn};
/// use fm_tensor::ops::shape::permute;
/// let x = Array::from_shape_fn(IxDyn(&[2, 3, 4]), |i| (i[0] * 100 + i[1] * 10 + i[2]) as f32);
/// let y = permute(x.view(), &[2, 0, 1])?;
/// assert_eq!(y.shape(), &[4, 2, 3]);
/// assert_eq!(y[[3, 1, 2]], 123.0);
/// # Ok::<(), fm_tensor::TensorError>(())
/// ```
pub fn permute<T: Element>(x: ArrayViewD<'_, T>, axes: &[usize]) -> Result<ArrayD<T>> {
    check_permutation("permute", x.shape(), axes)?;
    Ok(to_standard_owned(x.permuted_axes(IxDyn(axes))))
}

/// Gradient of [`permute`]: applies the inverse permutation to `grad`.
pub fn permute_backward<T: Element>(grad: ArrayViewD<'_, T>, axes: &[usize]) -> Result<ArrayD<T>> {
    check_permutation("permute_backward", grad.shape(), axes)?;
    let inverse = inverse_permutation(axes)?;
    Ok(to_standard_owned(grad.permuted_axes(IxDyn(&inverse))))
}

// ---------------------------------------------------------------------------------------------------
// slice

/// Length of `start..end` taken every `step`.
fn stepped_len(start: usize, end: usize, step: usize) -> usize {
    (end - start).div_ceil(step)
}

fn check_slice(
    op: &'static str,
    shape: &[usize],
    axis: isize,
    start: usize,
    end: usize,
    step: usize,
) -> Result<usize> {
    let a = normalize_axis(op, axis, shape.len())?;
    if step == 0 {
        return Err(TensorError::invalid_argument(
            op,
            "step must be positive, got 0",
        ));
    }
    let len = shape[a];
    if start > end || end > len {
        return Err(TensorError::invalid_argument(
            op,
            format!(
                "range {start}..{end} is not within axis {a} of length {len} (shape {shape:?})"
            ),
        ));
    }
    Ok(a)
}

/// Takes `start..end` every `step` along `axis` (`0 <= start <= end <= len`, `step > 0`; an empty
/// range gives an empty axis). Copies into a standard-layout array.
///
/// ```
/// use ndarray::arr2;
/// use fm_tensor::ops::shape::slice_axis;
/// let x = arr2(&[[0.0f32, 1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0, 9.0]]).into_dyn();
/// let y = slice_axis(x.view(), -1, 1, 5, 2)?;
/// assert_eq!(y, arr2(&[[1.0, 3.0], [6.0, 8.0]]).into_dyn());
/// # Ok::<(), fm_tensor::TensorError>(())
/// ```
pub fn slice_axis<T: Element>(
    x: ArrayViewD<'_, T>,
    axis: isize,
    start: usize,
    end: usize,
    step: usize,
) -> Result<ArrayD<T>> {
    let a = check_slice("slice_axis", x.shape(), axis, start, end, step)?;
    let view = x.slice_axis(
        Axis(a),
        Slice::new(start as isize, Some(end as isize), step as isize),
    );
    Ok(to_standard_owned(view))
}

/// Gradient of [`slice_axis`]: `grad` scattered into zeros of `input_shape` at the sliced positions.
pub fn slice_axis_backward<T: Element>(
    grad: ArrayViewD<'_, T>,
    input_shape: &[usize],
    axis: isize,
    start: usize,
    end: usize,
    step: usize,
) -> Result<ArrayD<T>> {
    let a = check_slice("slice_axis_backward", input_shape, axis, start, end, step)?;
    let mut expected = input_shape.to_vec();
    expected[a] = stepped_len(start, end, step);
    if grad.shape() != expected.as_slice() {
        return Err(TensorError::shape_mismatch(
            "slice_axis_backward",
            grad.shape(),
            &expected,
            format!("gradient must have the sliced shape of input {input_shape:?}"),
        ));
    }
    let mut out = crate::buffers::zeroed_array(IxDyn(input_shape));
    out.slice_axis_mut(
        Axis(a),
        Slice::new(start as isize, Some(end as isize), step as isize),
    )
    .assign(&grad);
    Ok(out)
}

// ---------------------------------------------------------------------------------------------------
// concat / split

/// Joins `inputs` along `axis`; all other dimensions must agree. Copies each input once into the
/// standard-layout result (a strided input is first made contiguous, a second copy of that input).
///
/// Errors: an empty input list, inputs of different rank or with a differing non-`axis` dimension
/// (naming the first input's shape and the offending one).
///
/// ```
/// use ndarray::arr2;
/// use fm_tensor::ops::shape::concat;
/// let a = arr2(&[[1.0f32, 2.0], [3.0, 4.0]]).into_dyn();
/// let b = arr2(&[[5.0f32], [6.0]]).into_dyn();
/// let y = concat(&[a.view(), b.view()], -1)?;
/// assert_eq!(y, arr2(&[[1.0, 2.0, 5.0], [3.0, 4.0, 6.0]]).into_dyn());
/// # Ok::<(), fm_tensor::TensorError>(())
/// ```
pub fn concat<T: Element>(inputs: &[ArrayViewD<'_, T>], axis: isize) -> Result<ArrayD<T>> {
    let Some(first) = inputs.first() else {
        return Err(TensorError::invalid_argument(
            "concat",
            "needs at least one input, got none",
        ));
    };
    let a = normalize_axis("concat", axis, first.ndim())?;
    let mut out_shape = first.shape().to_vec();
    out_shape[a] = 0;
    for (i, x) in inputs.iter().enumerate() {
        let agrees = x.ndim() == first.ndim()
            && x.shape()
                .iter()
                .zip(first.shape())
                .enumerate()
                .all(|(d, (p, q))| d == a || p == q);
        if !agrees {
            return Err(TensorError::shape_mismatch(
                "concat",
                first.shape(),
                x.shape(),
                format!("input {i} differs from input 0 outside concat axis {a}"),
            ));
        }
        out_shape[a] += x.shape()[a];
    }
    let contiguous: Vec<_> = inputs.iter().map(|x| x.as_standard_layout()).collect();
    // In row-major order the output is, for each index of the axes before `a`, one contiguous block
    // from each input in turn.
    let outer = product(&out_shape[..a]);
    let mut data = crate::buffers::vec_with_capacity(product(&out_shape));
    for o in 0..outer {
        for x in &contiguous {
            let block = product(&x.shape()[a..]);
            let src = x.as_slice().expect("standard layout");
            data.extend_from_slice(&src[o * block..(o + 1) * block]);
        }
    }
    Ok(ArrayD::from_shape_vec(IxDyn(&out_shape), data).expect("length matches shape"))
}

/// Gradient of [`concat()`]: `grad` split along `axis` into the inputs' lengths `sizes`
/// (the same as [`split`]).
pub fn concat_backward<T: Element>(
    grad: ArrayViewD<'_, T>,
    sizes: &[usize],
    axis: isize,
) -> Result<Vec<ArrayD<T>>> {
    split_impl("concat_backward", grad, axis, sizes)
}

fn split_impl<T: Element>(
    op: &'static str,
    x: ArrayViewD<'_, T>,
    axis: isize,
    sizes: &[usize],
) -> Result<Vec<ArrayD<T>>> {
    let a = normalize_axis(op, axis, x.ndim())?;
    let total: usize = sizes.iter().sum();
    if total != x.shape()[a] {
        return Err(TensorError::invalid_shape(
            op,
            x.shape(),
            format!(
                "axis {a} has length {} but the sizes {sizes:?} sum to {total}",
                x.shape()[a]
            ),
        ));
    }
    let x = x.as_standard_layout();
    let src = x.as_slice().expect("standard layout");
    let outer = product(&x.shape()[..a]);
    let inner = product(&x.shape()[a + 1..]);
    let row = x.shape()[a] * inner;
    let mut offset = 0;
    let mut pieces = Vec::with_capacity(sizes.len());
    for &size in sizes {
        let mut shape = x.shape().to_vec();
        shape[a] = size;
        let block = size * inner;
        let mut data = crate::buffers::vec_with_capacity(outer * block);
        for o in 0..outer {
            let start = o * row + offset * inner;
            data.extend_from_slice(&src[start..start + block]);
        }
        pieces.push(ArrayD::from_shape_vec(IxDyn(&shape), data).expect("length matches shape"));
        offset += size;
    }
    Ok(pieces)
}

/// Splits `x` along `axis` into consecutive pieces of lengths `sizes` (which must sum to the axis
/// length; zero sizes give empty pieces). Each piece is a fresh standard-layout array.
///
/// ```
/// use ndarray::arr2;
/// use fm_tensor::ops::shape::split;
/// let x = arr2(&[[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]]).into_dyn();
/// let parts = split(x.view(), 1, &[1, 2])?;
/// assert_eq!(parts[0], arr2(&[[1.0], [4.0]]).into_dyn());
/// assert_eq!(parts[1], arr2(&[[2.0, 3.0], [5.0, 6.0]]).into_dyn());
/// # Ok::<(), fm_tensor::TensorError>(())
/// ```
pub fn split<T: Element>(
    x: ArrayViewD<'_, T>,
    axis: isize,
    sizes: &[usize],
) -> Result<Vec<ArrayD<T>>> {
    split_impl("split", x, axis, sizes)
}

/// Splits `x` along `axis` into `parts` pieces of equal length; the axis length must be divisible
/// by `parts`. Its gradient is [`split_backward`] with `sizes = [len / parts; parts]`.
pub fn chunk<T: Element>(
    x: ArrayViewD<'_, T>,
    axis: isize,
    parts: usize,
) -> Result<Vec<ArrayD<T>>> {
    let a = normalize_axis("chunk", axis, x.ndim())?;
    let len = x.shape()[a];
    if parts == 0 || !len.is_multiple_of(parts) {
        return Err(TensorError::invalid_shape(
            "chunk",
            x.shape(),
            format!("axis {a} of length {len} cannot be split into {parts} equal parts"),
        ));
    }
    split_impl("chunk", x, axis, &vec![len / parts; parts])
}

/// Gradient of [`split`] (and [`chunk`]): the pieces' gradients joined along `axis` into
/// `input_shape`. A `None` gradient (a piece that did not reach the loss) counts as zeros.
///
/// Errors: `grads` and `sizes` of different lengths, `sizes` not summing to the axis length, or a
/// gradient whose shape is not its piece's shape.
pub fn split_backward<T: Element>(
    grads: &[Option<ArrayViewD<'_, T>>],
    input_shape: &[usize],
    axis: isize,
    sizes: &[usize],
) -> Result<ArrayD<T>> {
    const OP: &str = "split_backward";
    let a = normalize_axis(OP, axis, input_shape.len())?;
    if grads.len() != sizes.len() {
        return Err(TensorError::invalid_argument(
            OP,
            format!(
                "{} gradients given for {} pieces (sizes {sizes:?})",
                grads.len(),
                sizes.len()
            ),
        ));
    }
    let total: usize = sizes.iter().sum();
    if total != input_shape[a] {
        return Err(TensorError::invalid_shape(
            OP,
            input_shape,
            format!(
                "axis {a} has length {} but the sizes {sizes:?} sum to {total}",
                input_shape[a]
            ),
        ));
    }
    let mut out = crate::buffers::zeroed_array(IxDyn(input_shape));
    let mut offset = 0;
    for (i, (g, &size)) in grads.iter().zip(sizes).enumerate() {
        if let Some(g) = g {
            let mut expected = input_shape.to_vec();
            expected[a] = size;
            if g.shape() != expected.as_slice() {
                return Err(TensorError::shape_mismatch(
                    OP,
                    g.shape(),
                    &expected,
                    format!("gradient of piece {i} must have the piece's shape"),
                ));
            }
            out.slice_axis_mut(Axis(a), Slice::from(offset..offset + size))
                .assign(g);
        }
        offset += size;
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------------
// index_select

fn check_indices<I: IndexElement>(op: &'static str, indices: &[I], len: usize) -> Result<()> {
    match indices.iter().map(|i| i.to_index()).find(|&i| i >= len) {
        Some(index) => Err(TensorError::IndexOutOfBounds { op, index, len }),
        None => Ok(()),
    }
}

/// Gathers whole slices of `x` along `axis`: output slice `j` is input slice `indices[j]`
/// (indices may repeat and come in any order). Output shape is `x`'s with `axis` replaced by
/// `indices.len()`, in standard layout.
///
/// Errors: [`TensorError::IndexOutOfBounds`] naming the first index past the axis length.
///
/// ```
/// use ndarray::arr2;
/// use fm_tensor::ops::shape::index_select;
/// let x = arr2(&[[1.0f32, 2.0], [3.0, 4.0], [5.0, 6.0]]).into_dyn();
/// let y = index_select(x.view(), 0, &[2u32, 0, 2])?;
/// assert_eq!(y, arr2(&[[5.0, 6.0], [1.0, 2.0], [5.0, 6.0]]).into_dyn());
/// # Ok::<(), fm_tensor::TensorError>(())
/// ```
pub fn index_select<T: Element, I: IndexElement>(
    x: ArrayViewD<'_, T>,
    axis: isize,
    indices: &[I],
) -> Result<ArrayD<T>> {
    let a = normalize_axis("index_select", axis, x.ndim())?;
    let len = x.shape()[a];
    check_indices("index_select", indices, len)?;
    let mut out_shape = x.shape().to_vec();
    out_shape[a] = indices.len();
    let x = x.as_standard_layout();
    let src = x.as_slice().expect("standard layout");
    let outer = product(&out_shape[..a]);
    let inner = product(&out_shape[a + 1..]);
    let mut data = crate::buffers::vec_with_capacity(product(&out_shape));
    for o in 0..outer {
        for &i in indices {
            let start = (o * len + i.to_index()) * inner;
            data.extend_from_slice(&src[start..start + inner]);
        }
    }
    Ok(ArrayD::from_shape_vec(IxDyn(&out_shape), data).expect("length matches shape"))
}

/// Gradient of [`index_select`]: `grad` scatter-added into zeros of `input_shape`.
///
/// A repeated index accumulates its gradient slices in the order they appear in `indices`, always
/// sequentially, so the result is the same bits on every run and thread count.
pub fn index_select_backward<T: Element, I: IndexElement>(
    grad: ArrayViewD<'_, T>,
    input_shape: &[usize],
    axis: isize,
    indices: &[I],
) -> Result<ArrayD<T>> {
    const OP: &str = "index_select_backward";
    let a = normalize_axis(OP, axis, input_shape.len())?;
    let len = input_shape[a];
    check_indices(OP, indices, len)?;
    let mut expected = input_shape.to_vec();
    expected[a] = indices.len();
    if grad.shape() != expected.as_slice() {
        return Err(TensorError::shape_mismatch(
            OP,
            grad.shape(),
            &expected,
            format!("gradient must have the selected shape of input {input_shape:?}"),
        ));
    }
    let grad = grad.as_standard_layout();
    let g = grad.as_slice().expect("standard layout");
    let outer = product(&input_shape[..a]);
    let inner = product(&input_shape[a + 1..]);
    let mut out = crate::buffers::zeroed_vec(product(input_shape));
    for o in 0..outer {
        for (j, &i) in indices.iter().enumerate() {
            let dst = (o * len + i.to_index()) * inner;
            let src = (o * indices.len() + j) * inner;
            for (d, &s) in out[dst..dst + inner].iter_mut().zip(&g[src..src + inner]) {
                *d = *d + s;
            }
        }
    }
    Ok(ArrayD::from_shape_vec(IxDyn(input_shape), out).expect("length matches shape"))
}

// ---------------------------------------------------------------------------------------------------
// squeeze / unsqueeze

/// Removes `axis`, which must have length 1. Copies into a standard-layout array.
///
/// ```
/// use ndarray::{Array, IxDyn};
/// use fm_tensor::ops::shape::squeeze;
/// let x = Array::<f32, _>::zeros(IxDyn(&[2, 1, 3]));
/// assert_eq!(squeeze(x.view(), 1)?.shape(), &[2, 3]);
/// assert!(squeeze(x.view(), 0).is_err()); // length 2
/// # Ok::<(), fm_tensor::TensorError>(())
/// ```
pub fn squeeze<T: Element>(x: ArrayViewD<'_, T>, axis: isize) -> Result<ArrayD<T>> {
    squeeze_impl("squeeze", x, axis)
}

fn squeeze_impl<T: Element>(
    op: &'static str,
    x: ArrayViewD<'_, T>,
    axis: isize,
) -> Result<ArrayD<T>> {
    let a = normalize_axis(op, axis, x.ndim())?;
    if x.shape()[a] != 1 {
        return Err(TensorError::invalid_shape(
            op,
            x.shape(),
            format!(
                "axis {a} has length {}, only an axis of length 1 can be squeezed",
                x.shape()[a]
            ),
        ));
    }
    Ok(to_standard_owned(x.index_axis_move(Axis(a), 0)))
}

fn unsqueeze_impl<T: Element>(
    op: &'static str,
    x: ArrayViewD<'_, T>,
    axis: isize,
) -> Result<ArrayD<T>> {
    // The new axis can go anywhere in the result, which has one more axis than `x`.
    let a = normalize_axis(op, axis, x.ndim() + 1)?;
    Ok(to_standard_owned(x.insert_axis(Axis(a))))
}

/// Gradient of [`squeeze`]: puts the length-1 `axis` back into `grad`.
pub fn squeeze_backward<T: Element>(grad: ArrayViewD<'_, T>, axis: isize) -> Result<ArrayD<T>> {
    unsqueeze_impl("squeeze_backward", grad, axis)
}

/// Inserts a new axis of length 1 at position `axis` of the result (so `-1` appends one at the end,
/// and `0..=ndim` are valid). Copies into a standard-layout array.
///
/// ```
/// use ndarray::{Array, IxDyn};
/// use fm_tensor::ops::shape::unsqueeze;
/// let x = Array::<f32, _>::zeros(IxDyn(&[2, 3]));
/// assert_eq!(unsqueeze(x.view(), 0)?.shape(), &[1, 2, 3]);
/// assert_eq!(unsqueeze(x.view(), -1)?.shape(), &[2, 3, 1]);
/// # Ok::<(), fm_tensor::TensorError>(())
/// ```
pub fn unsqueeze<T: Element>(x: ArrayViewD<'_, T>, axis: isize) -> Result<ArrayD<T>> {
    unsqueeze_impl("unsqueeze", x, axis)
}

/// Gradient of [`unsqueeze`]: removes the inserted `axis` from `grad`.
pub fn unsqueeze_backward<T: Element>(grad: ArrayViewD<'_, T>, axis: isize) -> Result<ArrayD<T>> {
    squeeze_impl("unsqueeze_backward", grad, axis)
}

// ---------------------------------------------------------------------------------------------------
// broadcast

/// Checks that `from` broadcasts to `to` (NumPy rules: align trailing axes; each axis of `from` is
/// 1 or equal to the one it meets; `to` may have extra leading axes).
fn broadcasts_to(from: &[usize], to: &[usize]) -> bool {
    from.len() <= to.len()
        && from
            .iter()
            .rev()
            .zip(to.iter().rev())
            .all(|(&f, &t)| f == t || f == 1)
}

/// Materialises `x` broadcast to `shape` (NumPy rules), as a standard-layout array.
///
/// This copies: the result holds `shape`'s full element count. Prefer broadcasting inside the
/// consuming kernel where one exists; this op is for the cases where an owned expanded tensor is needed.
///
/// ```
/// use ndarray::{arr1, arr2};
/// use fm_tensor::ops::shape::broadcast_to;
/// let x = arr1(&[1.0f32, 2.0]).into_dyn();
/// let y = broadcast_to(x.view(), &[3, 2])?;
/// assert_eq!(y, arr2(&[[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]]).into_dyn());
/// # Ok::<(), fm_tensor::TensorError>(())
/// ```
pub fn broadcast_to<T: Element>(x: ArrayViewD<'_, T>, shape: &[usize]) -> Result<ArrayD<T>> {
    if !broadcasts_to(x.shape(), shape) {
        return Err(TensorError::shape_mismatch(
            "broadcast_to",
            x.shape(),
            shape,
            "each input axis must be 1 or equal to the target axis it aligns with (trailing axes aligned)",
        ));
    }
    let view = x.broadcast(IxDyn(shape)).expect("broadcast checked above");
    Ok(to_standard_owned(view))
}

/// Gradient of [`broadcast_to`]: sums `grad` over the broadcast axes back down to `input_shape`
/// (the leading axes `input_shape` lacks, and the axes where it has length 1).
///
/// Sums run sequentially in axis order (ndarray's `sum_axis`), so the result does not depend on the
/// thread count. This is also the "unbroadcast" a broadcasting binary op needs for its backward.
pub fn broadcast_to_backward<T: Element>(
    grad: ArrayViewD<'_, T>,
    input_shape: &[usize],
) -> Result<ArrayD<T>> {
    if !broadcasts_to(input_shape, grad.shape()) {
        return Err(TensorError::shape_mismatch(
            "broadcast_to_backward",
            grad.shape(),
            input_shape,
            "the gradient's shape is not a broadcast of the input shape",
        ));
    }
    let lead = grad.ndim() - input_shape.len();
    let mut acc: CowArray<'_, T, IxDyn> = grad.into();
    for _ in 0..lead {
        acc = acc.sum_axis(Axis(0)).into();
    }
    for (i, &d) in input_shape.iter().enumerate() {
        if d == 1 && acc.shape()[i] != 1 {
            acc = acc.sum_axis(Axis(i)).insert_axis(Axis(i)).into();
        }
    }
    let out = acc.into_owned();
    Ok(if out.is_standard_layout() {
        out
    } else {
        to_standard_owned(out.view())
    })
}

// ---------------------------------------------------------------------------------------------------
// test support

/// Finite-difference gradient checks and random inputs, shared by the ops' tests.
#[cfg(test)]
pub(crate) mod gradcheck {
    use ndarray::{ArrayD, IxDyn};
    use ndarray_rand::rand::rngs::StdRng;
    use ndarray_rand::rand::Rng;

    /// Uniform values in [-1, 1).
    pub(crate) fn random_array(rng: &mut StdRng, shape: &[usize]) -> ArrayD<f64> {
        ArrayD::from_shape_fn(IxDyn(shape), |_| rng.random_range(-1.0..1.0))
    }

    /// A random shape of rank `ndim` with dimensions in `1..=max_dim`, size 1 about a third of the time.
    pub(crate) fn random_shape(rng: &mut StdRng, ndim: usize, max_dim: usize) -> Vec<usize> {
        (0..ndim)
            .map(|_| {
                if rng.random_range(0..3) == 0 {
                    1
                } else {
                    rng.random_range(1..=max_dim)
                }
            })
            .collect()
    }

    /// Asserts that `analytic` is the gradient of `L(x) = sum(w * forward(x))` at `x`, by central
    /// differences (eps 1e-6, relative error below 1e-6 with denominator max(1, |analytic|, |numeric|)).
    pub(crate) fn assert_gradient(
        what: &str,
        x: &ArrayD<f64>,
        w: &ArrayD<f64>,
        forward: impl Fn(&ArrayD<f64>) -> ArrayD<f64>,
        analytic: &ArrayD<f64>,
    ) {
        const EPS: f64 = 1e-6;
        assert_eq!(analytic.shape(), x.shape(), "{what}: gradient shape");
        let loss = |x: &ArrayD<f64>| {
            let y = forward(x);
            assert_eq!(y.shape(), w.shape(), "{what}: output shape");
            (&y * w).sum()
        };
        let mut probe = x.clone();
        for (k, (&xk, &a)) in x.iter().zip(analytic.iter()).enumerate() {
            let mut idx = probe.iter_mut();
            *idx.nth(k).unwrap() = xk + EPS;
            let plus = loss(&probe);
            *probe.iter_mut().nth(k).unwrap() = xk - EPS;
            let minus = loss(&probe);
            *probe.iter_mut().nth(k).unwrap() = xk;
            let numeric = (plus - minus) / (2.0 * EPS);
            let rel = (a - numeric).abs() / 1f64.max(a.abs()).max(numeric.abs());
            assert!(
                rel < 1e-6,
                "{what}: element {k}: analytic {a} vs numeric {numeric} (rel {rel:e})"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::gradcheck::{assert_gradient, random_array, random_shape};
    use super::*;
    use ndarray::{arr1, arr2, arr3, Array, ArrayD, IxDyn};
    use ndarray_rand::rand::rngs::StdRng;
    use ndarray_rand::rand::{Rng, SeedableRng};

    fn iota(shape: &[usize]) -> ArrayD<f64> {
        let n = product(shape);
        ArrayD::from_shape_vec(IxDyn(shape), (0..n).map(|v| v as f64).collect()).unwrap()
    }

    fn err_text<T: Debug>(r: Result<T>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    #[should_panic(expected = "analytic")]
    fn gradient_check_catches_a_wrong_gradient() {
        let x = iota(&[2, 2]);
        let w = ArrayD::ones(IxDyn(&[2, 2]));
        // d/dx sum(2x) is 2, not 1.
        assert_gradient(
            "doubling",
            &x,
            &w,
            |x| x * 2.0,
            &ArrayD::ones(IxDyn(&[2, 2])),
        );
    }

    #[test]
    fn normalize_axis_resolves_and_rejects() {
        assert_eq!(normalize_axis("op", -1, 1).unwrap(), 0);
        assert_eq!(normalize_axis("op", -3, 3).unwrap(), 0);
        assert_eq!(normalize_axis("op", 2, 3).unwrap(), 2);
        let e = err_text(normalize_axis("myop", 3, 3));
        assert!(
            e.contains("myop") && e.contains("axis 3") && e.contains("rank 3"),
            "{e}"
        );
        assert!(normalize_axis("op", isize::MIN, 3).is_err());
        assert!(normalize_axis("op", 0, 0)
            .unwrap_err()
            .to_string()
            .contains("rank 0"));
    }

    #[test]
    fn reshape_infers_and_keeps_row_major_order() {
        let x = iota(&[2, 3, 4]);
        let y = reshape(x.view(), &[4, -1]).unwrap();
        assert_eq!(y.shape(), &[4, 6]);
        assert_eq!(y.as_slice().unwrap(), x.as_slice().unwrap());
        // Non-contiguous input: transposed, read in its logical row-major order.
        let xt = x.view().permuted_axes(IxDyn(&[2, 1, 0]));
        let y = reshape(xt.clone(), &[-1]).unwrap();
        let expected: Vec<f64> = xt.iter().copied().collect();
        assert_eq!(y.as_slice().unwrap(), expected.as_slice());
        // Scalar <-> [1].
        let s = ArrayD::from_elem(IxDyn(&[]), 7.0);
        assert_eq!(reshape(s.view(), &[1, -1]).unwrap().shape(), &[1, 1]);
        assert_eq!(
            reshape(arr1(&[7.0]).into_dyn().view(), &[])
                .unwrap()
                .shape(),
            &[] as &[usize]
        );
    }

    #[test]
    fn reshape_errors_name_both_shapes() {
        let x = iota(&[2, 5]);
        let e = err_text(reshape(x.view(), &[3, 4]));
        assert!(
            e.contains("reshape") && e.contains("[2, 5]") && e.contains("[3, 4]"),
            "{e}"
        );
        let e = err_text(reshape(x.view(), &[3, -1]));
        assert!(e.contains("[2, 5]") && e.contains("[3, -1]"), "{e}");
        assert!(err_text(reshape(x.view(), &[-1, -1])).contains("more than one -1"));
        assert!(err_text(reshape(x.view(), &[-2, 5])).contains("negative dimension -2"));
        let empty = iota(&[0, 3]);
        assert!(err_text(reshape(empty.view(), &[0, -1])).contains("multiply to 0"));
        assert!(err_text(reshape(empty.view(), &[3, -1, 0])).contains("multiply to 0"));
        assert_eq!(reshape(empty.view(), &[-1, 3]).unwrap().shape(), &[0, 3]);
        assert!(reshape_backward(iota(&[6]).view(), &[4]).is_err());
    }

    #[test]
    fn reshape_gradient() {
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..5 {
            let shape = random_shape(&mut rng, 3, 4);
            let x = random_array(&mut rng, &shape);
            let spec = [-1, *shape.last().unwrap() as isize];
            let y = reshape(x.view(), &spec).unwrap();
            let w = random_array(&mut rng, y.shape());
            let g = reshape_backward(w.view(), &shape).unwrap();
            assert_gradient("reshape", &x, &w, |x| reshape(x.view(), &spec).unwrap(), &g);
        }
    }

    #[test]
    fn transpose_and_permute_match_hand_values() {
        let x = iota(&[2, 3, 4]);
        let t = transpose(x.view(), 0, -1).unwrap();
        assert_eq!(t.shape(), &[4, 3, 2]);
        assert!(t.is_standard_layout());
        assert_eq!(t[[3, 1, 0]], x[[0, 1, 3]]);
        let p = permute(x.view(), &[1, 2, 0]).unwrap();
        assert_eq!(p.shape(), &[3, 4, 2]);
        assert!(p.is_standard_layout());
        for ((i, j, k), &v) in x
            .view()
            .into_dimensionality::<ndarray::Ix3>()
            .unwrap()
            .indexed_iter()
        {
            assert_eq!(p[[j, k, i]], v);
        }
        assert_eq!(inverse_permutation(&[1, 2, 0]).unwrap(), vec![2, 0, 1]);
        let back = permute_backward(p.view(), &[1, 2, 0]).unwrap();
        assert_eq!(back, x);
    }

    #[test]
    fn permute_rejects_bad_permutations() {
        let x = iota(&[2, 3, 4]);
        for axes in [&[0, 1][..], &[0, 1, 1], &[0, 1, 3], &[0, 1, 2, 3]] {
            let e = err_text(permute(x.view(), axes));
            assert!(e.contains("permute") && e.contains("[2, 3, 4]"), "{e}");
        }
        assert!(transpose(x.view(), 0, 3).is_err());
        assert!(permute_backward(x.view(), &[2, 2, 0]).is_err());
        assert!(inverse_permutation(&[1, 1]).is_err());
    }

    #[test]
    fn large_strided_copy_is_parallel_and_identical() {
        // Above PARALLEL_COPY_MIN_ELEMENTS the copy runs on the pool; it must equal the serial copy.
        let x = iota(&[64, 33, 40]);
        let serial = Zip::from(x.view().permuted_axes(IxDyn(&[2, 0, 1]))).map_collect(|&v| v);
        let p1 = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let p2 = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let a = p1.install(|| permute(x.view(), &[2, 0, 1]).unwrap());
        let b = p2.install(|| permute(x.view(), &[2, 0, 1]).unwrap());
        assert_eq!(a, serial);
        assert_eq!(a, b);
        assert!(b.is_standard_layout());
    }

    #[test]
    fn standard_copy_matches_logical_order_for_every_layout() {
        let mut rng = StdRng::seed_from_u64(8);
        for round in 0..40 {
            let ndim = rng.random_range(1..=4);
            let shape = random_shape(&mut rng, ndim, 5);
            let x = iota(&shape);
            let mut axes: Vec<usize> = (0..ndim).collect();
            for i in (1..ndim).rev() {
                axes.swap(i, rng.random_range(0..=i));
            }
            let permuted = x.view().permuted_axes(IxDyn(&axes));
            let mut views = vec![permuted.clone()];
            // A stepped slice, a reversed axis and a broadcast take the general path.
            let len0 = permuted.shape()[0];
            views.push(
                permuted
                    .clone()
                    .slice_axis_move(Axis(0), Slice::new(0, Some(len0 as isize), 2)),
            );
            let mut reversed = permuted.clone();
            reversed.invert_axis(Axis(ndim - 1));
            views.push(reversed);
            let mut wide = permuted.shape().to_vec();
            wide.insert(0, 3);
            views.push(permuted.broadcast(IxDyn(&wide)).unwrap());
            for v in views {
                let owned = to_standard_owned(v.clone());
                assert!(owned.is_standard_layout(), "round {round}");
                assert_eq!(owned, v, "round {round}: axes {axes:?} shape {shape:?}");
            }
        }
    }

    #[test]
    fn transpose_and_permute_gradients() {
        let mut rng = StdRng::seed_from_u64(2);
        for _ in 0..5 {
            let shape = random_shape(&mut rng, 4, 3);
            let x = random_array(&mut rng, &shape);
            let mut axes = vec![0, 1, 2, 3];
            for i in (1..4).rev() {
                axes.swap(i, rng.random_range(0..=i));
            }
            let y = permute(x.view(), &axes).unwrap();
            let w = random_array(&mut rng, y.shape());
            let g = permute_backward(w.view(), &axes).unwrap();
            assert_gradient("permute", &x, &w, |x| permute(x.view(), &axes).unwrap(), &g);

            let y = transpose(x.view(), 1, -1).unwrap();
            let w = random_array(&mut rng, y.shape());
            let g = transpose_backward(w.view(), 1, -1).unwrap();
            assert_gradient(
                "transpose",
                &x,
                &w,
                |x| transpose(x.view(), 1, -1).unwrap(),
                &g,
            );
        }
    }

    #[test]
    fn slice_values_errors_and_empty() {
        let x = iota(&[3, 7]);
        let y = slice_axis(x.view(), 1, 1, 7, 3).unwrap();
        assert_eq!(y, arr2(&[[1.0, 4.0], [8.0, 11.0], [15.0, 18.0]]).into_dyn());
        assert_eq!(slice_axis(x.view(), 0, 2, 2, 1).unwrap().shape(), &[0, 7]);
        let e = err_text(slice_axis(x.view(), 1, 2, 8, 1));
        assert!(
            e.contains("2..8") && e.contains("length 7") && e.contains("[3, 7]"),
            "{e}"
        );
        assert!(err_text(slice_axis(x.view(), 1, 3, 2, 1)).contains("3..2"));
        assert!(err_text(slice_axis(x.view(), 1, 0, 2, 0)).contains("step"));
        assert!(slice_axis(x.view(), 2, 0, 1, 1).is_err());
        let e = err_text(slice_axis_backward(
            iota(&[3, 3]).view(),
            &[3, 7],
            1,
            1,
            7,
            3,
        ));
        assert!(e.contains("[3, 3]") && e.contains("[3, 2]"), "{e}");
    }

    #[test]
    fn slice_gradient() {
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..6 {
            let shape = random_shape(&mut rng, 3, 6);
            let axis = rng.random_range(0..3);
            let len = shape[axis];
            let start = rng.random_range(0..=len);
            let end = rng.random_range(start..=len);
            let step = rng.random_range(1..=3);
            let x = random_array(&mut rng, &shape);
            let y = slice_axis(x.view(), axis as isize - 3, start, end, step).unwrap();
            let w = random_array(&mut rng, y.shape());
            let g = slice_axis_backward(w.view(), &shape, axis as isize, start, end, step).unwrap();
            assert_gradient(
                "slice_axis",
                &x,
                &w,
                |x| slice_axis(x.view(), axis as isize, start, end, step).unwrap(),
                &g,
            );
        }
    }

    #[test]
    fn concat_split_values_and_round_trip() {
        let a = iota(&[2, 1, 3]);
        let b = iota(&[2, 2, 3]) + 100.0;
        let c = iota(&[2, 0, 3]);
        let y = concat(&[a.view(), b.view(), c.view()], 1).unwrap();
        assert_eq!(y.shape(), &[2, 3, 3]);
        assert_eq!(y.slice(ndarray::s![.., 0..1, ..]).into_dyn(), a.view());
        assert_eq!(y.slice(ndarray::s![.., 1..3, ..]).into_dyn(), b.view());
        let parts = split(y.view(), -2, &[1, 2, 0]).unwrap();
        assert_eq!(parts, vec![a.clone(), b.clone(), c.clone()]);
        // Strided input (a transposed view) concatenates by logical values.
        let t = iota(&[3, 2]);
        let y = concat(&[t.t().into_dyn(), iota(&[2, 1]).view()], 1).unwrap();
        assert_eq!(
            y,
            arr2(&[[0.0, 2.0, 4.0, 0.0], [1.0, 3.0, 5.0, 1.0]]).into_dyn()
        );
        let chunks = chunk(iota(&[2, 6]).view(), 1, 3).unwrap();
        assert_eq!(chunks[2], arr2(&[[4.0, 5.0], [10.0, 11.0]]).into_dyn());
        assert!(chunk(iota(&[2, 6]).view(), 1, 4).is_err());
        assert!(chunk(iota(&[2, 6]).view(), 1, 0).is_err());
    }

    #[test]
    fn concat_split_errors_name_shapes() {
        let a = iota(&[2, 3]);
        let b = iota(&[3, 3]);
        let e = err_text(concat(&[a.view(), a.view(), b.view()], 1));
        assert!(
            e.contains("concat")
                && e.contains("[2, 3]")
                && e.contains("[3, 3]")
                && e.contains("input 2"),
            "{e}"
        );
        let e = err_text(concat(&[a.view(), iota(&[2, 3, 1]).view()], 0));
        assert!(e.contains("[2, 3, 1]"), "{e}");
        assert!(err_text(concat::<f64>(&[], 0)).contains("at least one"));
        assert!(concat(&[a.view()], 2).is_err());
        let e = err_text(split(a.view(), 1, &[1, 1]));
        assert!(e.contains("[2, 3]") && e.contains("[1, 1]"), "{e}");
        let e = err_text(concat_backward(a.view(), &[2, 2], 1));
        assert!(e.contains("concat_backward") && e.contains("[2, 3]"), "{e}");
        let g = iota(&[2, 2]);
        assert!(
            err_text(split_backward(&[Some(g.view())], &[2, 3], 1, &[1, 2]))
                .contains("1 gradients")
        );
        let e = err_text(split_backward(&[Some(g.view()), None], &[2, 3], 1, &[1, 2]));
        assert!(e.contains("[2, 2]") && e.contains("[2, 1]"), "{e}");
        assert!(split_backward::<f64>(&[None, None], &[2, 3], 1, &[1, 1]).is_err());
    }

    #[test]
    fn concat_and_split_gradients() {
        let mut rng = StdRng::seed_from_u64(4);
        for _ in 0..5 {
            let base = random_shape(&mut rng, 3, 3);
            let axis = rng.random_range(0..3);
            let sizes: Vec<usize> = (0..3).map(|_| rng.random_range(0..=3)).collect();
            let inputs: Vec<ArrayD<f64>> = sizes
                .iter()
                .map(|&s| {
                    let mut sh = base.clone();
                    sh[axis] = s;
                    random_array(&mut rng, &sh)
                })
                .collect();
            let views: Vec<_> = inputs.iter().map(|a| a.view()).collect();
            let y = concat(&views, axis as isize).unwrap();
            let w = random_array(&mut rng, y.shape());
            let grads = concat_backward(w.view(), &sizes, axis as isize).unwrap();
            for k in 0..3 {
                let forward = |xk: &ArrayD<f64>| {
                    let mut vs: Vec<_> = inputs.iter().map(|a| a.view()).collect();
                    vs[k] = xk.view();
                    concat(&vs, axis as isize).unwrap()
                };
                assert_gradient("concat", &inputs[k], &w, forward, &grads[k]);
            }

            // split: L = sum_k <w_k, piece_k>, with the middle piece's gradient missing (w_1 = 0).
            let x = y;
            let ws: Vec<ArrayD<f64>> = grads
                .iter()
                .map(|g| random_array(&mut rng, g.shape()))
                .collect();
            let gs: Vec<Option<ArrayViewD<f64>>> =
                vec![Some(ws[0].view()), None, Some(ws[2].view())];
            let g = split_backward(&gs, x.shape(), axis as isize, &sizes).unwrap();
            let mut ws_zeroed = ws.clone();
            ws_zeroed[1].fill(0.0);
            let wcat = concat(
                &ws_zeroed.iter().map(|a| a.view()).collect::<Vec<_>>(),
                axis as isize,
            )
            .unwrap();
            let forward = |x: &ArrayD<f64>| {
                let parts = split(x.view(), axis as isize, &sizes).unwrap();
                concat(
                    &parts.iter().map(|a| a.view()).collect::<Vec<_>>(),
                    axis as isize,
                )
                .unwrap()
            };
            assert_gradient("split", &x, &wcat, forward, &g);
        }
    }

    #[test]
    fn index_select_values_and_errors() {
        let x = iota(&[2, 3, 2]);
        let y = index_select(x.view(), 1, &[2usize, 2, 0]).unwrap();
        assert_eq!(
            y,
            arr3(&[
                [[4.0, 5.0], [4.0, 5.0], [0.0, 1.0]],
                [[10.0, 11.0], [10.0, 11.0], [6.0, 7.0]]
            ])
            .into_dyn()
        );
        assert_eq!(
            index_select::<f64, u32>(x.view(), -1, &[]).unwrap().shape(),
            &[2, 3, 0]
        );
        match index_select(x.view(), 1, &[0u32, 3]) {
            Err(TensorError::IndexOutOfBounds {
                op: "index_select",
                index: 3,
                len: 3,
            }) => {}
            other => panic!("expected IndexOutOfBounds, got {other:?}"),
        }
        assert!(matches!(
            index_select_backward(y.view(), &[2, 3, 2], 1, &[2u32, 5, 0]),
            Err(TensorError::IndexOutOfBounds {
                index: 5,
                len: 3,
                ..
            })
        ));
        let e = err_text(index_select_backward(y.view(), &[2, 3, 2], 1, &[2u32, 2]));
        assert!(e.contains("[2, 3, 2]") && e.contains("[2, 2, 2]"), "{e}");
    }

    #[test]
    fn index_select_backward_accumulates_repeats() {
        let g = arr2(&[[1.0, 2.0], [10.0, 20.0], [100.0, 200.0]]).into_dyn();
        let dx = index_select_backward(g.view(), &[3, 2], 0, &[1u32, 1, 2]).unwrap();
        assert_eq!(
            dx,
            arr2(&[[0.0, 0.0], [11.0, 22.0], [100.0, 200.0]]).into_dyn()
        );
    }

    #[test]
    fn index_select_gradient() {
        let mut rng = StdRng::seed_from_u64(5);
        for _ in 0..6 {
            let shape = random_shape(&mut rng, 3, 4);
            let axis = rng.random_range(0..3);
            let n = rng.random_range(0..6);
            let indices: Vec<u32> = (0..n)
                .map(|_| rng.random_range(0..shape[axis] as u32))
                .collect();
            let x = random_array(&mut rng, &shape);
            let y = index_select(x.view(), axis as isize, &indices).unwrap();
            let w = random_array(&mut rng, y.shape());
            let g = index_select_backward(w.view(), &shape, axis as isize, &indices).unwrap();
            assert_gradient(
                "index_select",
                &x,
                &w,
                |x| index_select(x.view(), axis as isize, &indices).unwrap(),
                &g,
            );
        }
    }

    #[test]
    fn squeeze_unsqueeze_values_errors_gradients() {
        let x = iota(&[2, 1, 3]);
        assert_eq!(squeeze(x.view(), -2).unwrap(), iota(&[2, 3]));
        let e = err_text(squeeze(x.view(), 0));
        assert!(
            e.contains("squeeze") && e.contains("[2, 1, 3]") && e.contains("length 2"),
            "{e}"
        );
        assert_eq!(unsqueeze(x.view(), 3).unwrap().shape(), &[2, 1, 3, 1]);
        assert_eq!(unsqueeze(x.view(), -4).unwrap().shape(), &[1, 2, 1, 3]);
        assert!(unsqueeze(x.view(), 4).is_err());
        assert!(unsqueeze(x.view(), -5).is_err());
        let s = ArrayD::from_elem(IxDyn(&[]), 3.0);
        assert_eq!(unsqueeze(s.view(), 0).unwrap().shape(), &[1]);
        assert_eq!(squeeze(iota(&[1, 0]).view(), 0).unwrap().shape(), &[0]);

        let mut rng = StdRng::seed_from_u64(6);
        let x = random_array(&mut rng, &[3, 1, 2]);
        let w = random_array(&mut rng, &[3, 2]);
        let g = squeeze_backward(w.view(), 1).unwrap();
        assert_gradient("squeeze", &x, &w, |x| squeeze(x.view(), 1).unwrap(), &g);
        let w = random_array(&mut rng, &[3, 1, 2, 1]);
        let g = unsqueeze_backward(w.view(), -1).unwrap();
        assert_gradient(
            "unsqueeze",
            &x,
            &w,
            |x| unsqueeze(x.view(), -1).unwrap(),
            &g,
        );
    }

    #[test]
    fn broadcast_values_errors_gradients() {
        let x = arr2(&[[1.0], [2.0]]).into_dyn();
        let y = broadcast_to(x.view(), &[2, 2, 3]).unwrap();
        assert!(y.is_standard_layout());
        assert_eq!(
            y.slice(ndarray::s![1, .., ..]),
            arr2(&[[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]])
        );
        let e = err_text(broadcast_to(x.view(), &[3, 3]));
        assert!(
            e.contains("broadcast_to") && e.contains("[2, 1]") && e.contains("[3, 3]"),
            "{e}"
        );
        assert!(broadcast_to_backward(iota(&[3, 3]).view(), &[2, 1]).is_err());
        assert_eq!(
            broadcast_to(x.view(), &[0, 2, 4]).unwrap().shape(),
            &[0, 2, 4]
        );
        assert_eq!(
            broadcast_to_backward(iota(&[0, 2, 4]).view(), &[2, 1]).unwrap(),
            ArrayD::<f64>::zeros(IxDyn(&[2, 1]))
        );
        let g = broadcast_to_backward(Array::<f64, _>::ones(IxDyn(&[4, 2, 3])).view(), &[2, 1])
            .unwrap();
        assert_eq!(g, arr2(&[[12.0], [12.0]]).into_dyn());

        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..8 {
            let target = random_shape(&mut rng, 4, 3);
            let keep = rng.random_range(0..=4);
            let input: Vec<usize> = target[4 - keep..]
                .iter()
                .map(|&d| if rng.random_range(0..2) == 0 { 1 } else { d })
                .collect();
            let x = random_array(&mut rng, &input);
            let w = random_array(&mut rng, &target);
            let g = broadcast_to_backward(w.view(), &input).unwrap();
            assert_gradient(
                "broadcast_to",
                &x,
                &w,
                |x| broadcast_to(x.view(), &target).unwrap(),
                &g,
            );
        }
    }

    #[test]
    fn empty_tensors_flow_through() {
        let x = iota(&[0, 3]);
        assert_eq!(transpose(x.view(), 0, 1).unwrap().shape(), &[3, 0]);
        assert_eq!(permute(x.view(), &[1, 0]).unwrap().shape(), &[3, 0]);
        assert_eq!(concat(&[x.view(), x.view()], 0).unwrap().shape(), &[0, 3]);
        assert_eq!(concat(&[x.view(), x.view()], 1).unwrap().shape(), &[0, 6]);
        assert_eq!(split(x.view(), 1, &[1, 2]).unwrap()[1].shape(), &[0, 2]);
        assert_eq!(
            index_select(x.view(), 1, &[2u32, 0]).unwrap().shape(),
            &[0, 2]
        );
        assert_eq!(
            index_select_backward(iota(&[0, 2]).view(), &[0, 3], 1, &[2u32, 0])
                .unwrap()
                .shape(),
            &[0, 3]
        );
        assert_eq!(
            slice_axis_backward(iota(&[0, 3]).view(), &[0, 3], 1, 0, 3, 1)
                .unwrap()
                .shape(),
            &[0, 3]
        );
        assert_eq!(
            reshape_backward(iota(&[3, 0]).view(), &[0, 3])
                .unwrap()
                .shape(),
            &[0, 3]
        );
        assert_eq!(
            split_backward::<f64>(&[None, None], &[0, 3], 1, &[1, 2])
                .unwrap()
                .shape(),
            &[0, 3]
        );
    }
}
