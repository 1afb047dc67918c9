//! The extension point: an op the tape can record and differentiate.
//!
//! Every differentiable op in fm — the built-in ones in this crate, fused attention in fm-attention, fused
//! cross-entropy in fm-loss, and any op a user writes — implements [`CustomOp`] and is recorded with
//! [`Tape::apply`](crate::autograd::Tape::apply). The tape knows nothing about any particular op.
//!
//! An op sees plain ndarray views: its forward and backward are usually thin calls to kernels in
//! [`crate::ops`] (or the caller's own). `forward` takes `&mut self` so an op can keep what its backward
//! needs beyond the inputs and the output (a dropout mask, a softmax's log-sum-exp).
//!
//! ```
//! use fm_tensor::autograd::{BackwardContext, CustomOp, Tape};
//! use fm_tensor::Result;
//! use ndarray::{ArrayD, ArrayViewD};
//!
//! /// y = x³, with dy/dx = 3x².
//! struct Cube;
//!
//! impl CustomOp<f64> for Cube {
//!     fn name(&self) -> &str {
//!         "cube"
//!     }
//!     fn forward(&mut self, inputs: &[ArrayViewD<'_, f64>]) -> Result<ArrayD<f64>> {
//!         Ok(inputs[0].mapv(|x| x * x * x))
//!     }
//!     fn backward(&self, ctx: &BackwardContext<'_, f64>) -> Result<Vec<Option<ArrayD<f64>>>> {
//!         let x = &ctx.inputs[0];
//!         Ok(vec![Some(x.mapv(|x| 3.0 * x * x) * &ctx.grad_output)])
//!     }
//! }
//!
//! let tape = Tape::<f64>::new();
//! let x = tape.variable(ndarray::arr1(&[1.0, 2.0]));
//! let y = tape.apply(Cube, &[x])?;
//! let grads = tape.backward_with(y, ndarray::arr1(&[1.0, 1.0]).into_dyn())?;
//! assert_eq!(grads.of(x).unwrap().as_slice().unwrap(), &[3.0, 12.0]);
//! # Ok::<(), fm_tensor::TensorError>(())
//! ```

use ndarray::{ArrayD, ArrayViewD};

use crate::element::Element;
use crate::error::Result;

/// A differentiable operation with any number of inputs and one output.
pub trait CustomOp<T: Element>: Send + Sync + 'static {
    /// A short name used in error messages ("matmul", "softmax", "flash_attention").
    fn name(&self) -> &str;

    /// Computes the output from the inputs. Called once, when the op is recorded; may save state in
    /// `self` for the backward pass.
    fn forward(&mut self, inputs: &[ArrayViewD<'_, T>]) -> Result<ArrayD<T>>;

    /// Given the inputs, the output and ∂loss/∂output, returns ∂loss/∂input for each input, in order,
    /// each with that input's shape. Return `None` for an input that has no gradient (an index tensor)
    /// or whose [`BackwardContext::needs_grad`] is false.
    fn backward(&self, ctx: &BackwardContext<'_, T>) -> Result<Vec<Option<ArrayD<T>>>>;
}

/// What an op's backward pass gets to work with.
pub struct BackwardContext<'a, T> {
    /// The forward inputs, in the order they were given to [`Tape::apply`](crate::autograd::Tape::apply).
    pub inputs: &'a [ArrayViewD<'a, T>],
    /// The forward output.
    pub output: ArrayViewD<'a, T>,
    /// ∂loss/∂output, same shape as the output.
    pub grad_output: ArrayViewD<'a, T>,
    /// Whether each input needs a gradient; skipping the others saves work.
    pub needs_grad: &'a [bool],
}
