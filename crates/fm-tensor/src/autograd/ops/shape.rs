//! Shape and indexing ops on the tape: adapters over [`crate::ops::shape`].

use ndarray::{ArrayD, ArrayViewD};

use crate::autograd::op::{BackwardContext, CustomOp};
use crate::autograd::var::Var;
use crate::element::Element;
use crate::error::{Result, TensorError};
use crate::ops::shape;

/// Applies `grad_fn` to the gradient of a one-input op when that input needs it.
fn single<T: Element>(
    ctx: &BackwardContext<'_, T>,
    grad_fn: impl FnOnce(ArrayViewD<'_, T>) -> Result<ArrayD<T>>,
) -> Result<Vec<Option<ArrayD<T>>>> {
    Ok(vec![if ctx.needs_grad[0] {
        Some(grad_fn(ctx.grad_output.clone())?)
    } else {
        None
    }])
}

struct Reshape {
    spec: Vec<isize>,
}

impl<T: Element> CustomOp<T> for Reshape {
    fn name(&self) -> &str {
        "reshape"
    }
    fn forward(&mut self, inputs: &[ArrayViewD<'_, T>]) -> Result<ArrayD<T>> {
        shape::reshape(inputs[0].clone(), &self.spec)
    }
    fn backward(&self, ctx: &BackwardContext<'_, T>) -> Result<Vec<Option<ArrayD<T>>>> {
        single(ctx, |g| shape::reshape_backward(g, ctx.inputs[0].shape()))
    }
}

struct Permute {
    axes: Vec<usize>,
}

impl<T: Element> CustomOp<T> for Permute {
    fn name(&self) -> &str {
        "permute"
    }
    fn forward(&mut self, inputs: &[ArrayViewD<'_, T>]) -> Result<ArrayD<T>> {
        shape::permute(inputs[0].clone(), &self.axes)
    }
    fn backward(&self, ctx: &BackwardContext<'_, T>) -> Result<Vec<Option<ArrayD<T>>>> {
        single(ctx, |g| shape::permute_backward(g, &self.axes))
    }
}

struct Transpose {
    axis_a: isize,
    axis_b: isize,
}

impl<T: Element> CustomOp<T> for Transpose {
    fn name(&self) -> &str {
        "transpose"
    }
    fn forward(&mut self, inputs: &[ArrayViewD<'_, T>]) -> Result<ArrayD<T>> {
        shape::transpose(inputs[0].clone(), self.axis_a, self.axis_b)
    }
    fn backward(&self, ctx: &BackwardContext<'_, T>) -> Result<Vec<Option<ArrayD<T>>>> {
        single(ctx, |g| {
            shape::transpose_backward(g, self.axis_a, self.axis_b)
        })
    }
}

struct SliceAxis {
    axis: isize,
    start: usize,
    end: usize,
    step: usize,
}

impl<T: Element> CustomOp<T> for SliceAxis {
    fn name(&self) -> &str {
        "slice"
    }
    fn forward(&mut self, inputs: &[ArrayViewD<'_, T>]) -> Result<ArrayD<T>> {
        shape::slice_axis(
            inputs[0].clone(),
            self.axis,
            self.start,
            self.end,
            self.step,
        )
    }
    fn backward(&self, ctx: &BackwardContext<'_, T>) -> Result<Vec<Option<ArrayD<T>>>> {
        single(ctx, |g| {
            shape::slice_axis_backward(
                g,
                ctx.inputs[0].shape(),
                self.axis,
                self.start,
                self.end,
                self.step,
            )
        })
    }
}

struct Concat {
    axis: isize,
}

impl<T: Element> CustomOp<T> for Concat {
    fn name(&self) -> &str {
        "concat"
    }
    fn forward(&mut self, inputs: &[ArrayViewD<'_, T>]) -> Result<ArrayD<T>> {
        shape::concat(inputs, self.axis)
    }
    fn backward(&self, ctx: &BackwardContext<'_, T>) -> Result<Vec<Option<ArrayD<T>>>> {
        let axis = shape::normalize_axis("concat", self.axis, ctx.output.ndim())?;
        let sizes: Vec<usize> = ctx.inputs.iter().map(|x| x.shape()[axis]).collect();
        let pieces = shape::concat_backward(ctx.grad_output.clone(), &sizes, self.axis)?;
        Ok(pieces
            .into_iter()
            .zip(ctx.needs_grad)
            .map(|(g, &needed)| needed.then_some(g))
            .collect())
    }
}

struct IndexSelect {
    axis: isize,
    indices: Vec<usize>,
}

impl<T: Element> CustomOp<T> for IndexSelect {
    fn name(&self) -> &str {
        "index_select"
    }
    fn forward(&mut self, inputs: &[ArrayViewD<'_, T>]) -> Result<ArrayD<T>> {
        shape::index_select(inputs[0].clone(), self.axis, &self.indices)
    }
    fn backward(&self, ctx: &BackwardContext<'_, T>) -> Result<Vec<Option<ArrayD<T>>>> {
        single(ctx, |g| {
            shape::index_select_backward(g, ctx.inputs[0].shape(), self.axis, &self.indices)
        })
    }
}

struct Squeeze {
    axis: isize,
}

impl<T: Element> CustomOp<T> for Squeeze {
    fn name(&self) -> &str {
        "squeeze"
    }
    fn forward(&mut self, inputs: &[ArrayViewD<'_, T>]) -> Result<ArrayD<T>> {
        shape::squeeze(inputs[0].clone(), self.axis)
    }
    fn backward(&self, ctx: &BackwardContext<'_, T>) -> Result<Vec<Option<ArrayD<T>>>> {
        single(ctx, |g| shape::reshape_backward(g, ctx.inputs[0].shape()))
    }
}

struct Unsqueeze {
    axis: isize,
}

impl<T: Element> CustomOp<T> for Unsqueeze {
    fn name(&self) -> &str {
        "unsqueeze"
    }
    fn forward(&mut self, inputs: &[ArrayViewD<'_, T>]) -> Result<ArrayD<T>> {
        shape::unsqueeze(inputs[0].clone(), self.axis)
    }
    fn backward(&self, ctx: &BackwardContext<'_, T>) -> Result<Vec<Option<ArrayD<T>>>> {
        single(ctx, |g| shape::reshape_backward(g, ctx.inputs[0].shape()))
    }
}

struct BroadcastTo {
    shape: Vec<usize>,
}

impl<T: Element> CustomOp<T> for BroadcastTo {
    fn name(&self) -> &str {
        "broadcast_to"
    }
    fn forward(&mut self, inputs: &[ArrayViewD<'_, T>]) -> Result<ArrayD<T>> {
        shape::broadcast_to(inputs[0].clone(), &self.shape)
    }
    fn backward(&self, ctx: &BackwardContext<'_, T>) -> Result<Vec<Option<ArrayD<T>>>> {
        single(ctx, |g| {
            shape::broadcast_to_backward(g, ctx.inputs[0].shape())
        })
    }
}

impl<'t, T: Element> Var<'t, T> {
    /// Same data in a new shape; one entry may be `-1` (inferred). Copies into standard layout.
    pub fn reshape(self, shape: &[isize]) -> Result<Var<'t, T>> {
        self.tape().apply(
            Reshape {
                spec: shape.to_vec(),
            },
            &[self],
        )
    }

    /// Swaps two axes (negative axes count from the end).
    pub fn transpose(self, axis_a: isize, axis_b: isize) -> Result<Var<'t, T>> {
        self.tape().apply(Transpose { axis_a, axis_b }, &[self])
    }

    /// Reorders the axes: output axis `i` is input axis `axes[i]`.
    pub fn permute(self, axes: &[usize]) -> Result<Var<'t, T>> {
        self.tape().apply(
            Permute {
                axes: axes.to_vec(),
            },
            &[self],
        )
    }

    /// Elements `start..end` (every `step`-th) along `axis`.
    pub fn slice(self, axis: isize, start: usize, end: usize, step: usize) -> Result<Var<'t, T>> {
        self.tape().apply(
            SliceAxis {
                axis,
                start,
                end,
                step,
            },
            &[self],
        )
    }

    /// Splits along `axis` into consecutive pieces of the given sizes (which must sum to the axis
    /// length). Each piece is a slice on the tape, so pieces that do not reach the loss cost nothing in
    /// the backward pass.
    pub fn split(self, axis: isize, sizes: &[usize]) -> Result<Vec<Var<'t, T>>> {
        let shape = self.shape();
        let a = shape::normalize_axis("split", axis, shape.len())?;
        if sizes.iter().sum::<usize>() != shape[a] {
            return Err(TensorError::invalid_argument(
                "split",
                format!(
                    "sizes {sizes:?} do not sum to the length {} of axis {a} of shape {shape:?}",
                    shape[a]
                ),
            ));
        }
        let mut start = 0;
        sizes
            .iter()
            .map(|&size| {
                let piece = self.slice(axis, start, start + size, 1);
                start += size;
                piece
            })
            .collect()
    }

    /// Gathers whole slices along `axis` at `indices` (repeats allowed).
    pub fn index_select(self, axis: isize, indices: &[usize]) -> Result<Var<'t, T>> {
        self.tape().apply(
            IndexSelect {
                axis,
                indices: indices.to_vec(),
            },
            &[self],
        )
    }

    /// Removes an axis of length 1.
    pub fn squeeze(self, axis: isize) -> Result<Var<'t, T>> {
        self.tape().apply(Squeeze { axis }, &[self])
    }

    /// Inserts an axis of length 1 at `axis`.
    pub fn unsqueeze(self, axis: isize) -> Result<Var<'t, T>> {
        self.tape().apply(Unsqueeze { axis }, &[self])
    }

    /// Broadcasts to `shape` (NumPy rules), materialising the result.
    pub fn broadcast_to(self, shape: &[usize]) -> Result<Var<'t, T>> {
        self.tape().apply(
            BroadcastTo {
                shape: shape.to_vec(),
            },
            &[self],
        )
    }
}

/// Concatenates variables along `axis`; all other axes must agree.
pub fn concat<'t, T: Element>(inputs: &[Var<'t, T>], axis: isize) -> Result<Var<'t, T>> {
    let first = inputs
        .first()
        .ok_or_else(|| TensorError::invalid_argument("concat", "needs at least one input"))?;
    first.tape().apply(Concat { axis }, inputs)
}
