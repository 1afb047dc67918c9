//! Elementwise ops on the tape: one generic adapter for every unary op and one for every binary op
//! of [`crate::ops::elementwise`] and [`crate::ops::activation`], so declaring an op in the kernel
//! table is all it takes to make it differentiable here.

use ndarray::{ArrayD, ArrayViewD};

use crate::autograd::op::{BackwardContext, CustomOp};
use crate::element::Element;
use crate::error::Result;
use crate::ops::elementwise::{binary, binary_backward, unary, unary_backward, BinaryOp, UnaryOp};

/// Records any [`UnaryOp`] on the tape.
pub(crate) struct Unary<O>(pub(crate) O);

impl<T: Element, O: UnaryOp<T> + Send + 'static> CustomOp<T> for Unary<O> {
    fn name(&self) -> &str {
        O::NAME
    }
    fn forward(&mut self, inputs: &[ArrayViewD<'_, T>]) -> Result<ArrayD<T>> {
        Ok(unary(&self.0, inputs[0].clone()))
    }
    fn backward(&self, ctx: &BackwardContext<'_, T>) -> Result<Vec<Option<ArrayD<T>>>> {
        if !ctx.needs_grad[0] {
            return Ok(vec![None]);
        }
        let dx = unary_backward(&self.0, ctx.inputs[0].clone(), ctx.output.clone(), ctx.grad_output.clone())?;
        Ok(vec![Some(dx)])
    }
}

/// Records any [`BinaryOp`] (with broadcasting) on the tape.
pub(crate) struct Binary<O>(pub(crate) O);

impl<T: Element, O: BinaryOp<T> + Send + 'static> CustomOp<T> for Binary<O> {
    fn name(&self) -> &str {
        O::NAME
    }
    fn forward(&mut self, inputs: &[ArrayViewD<'_, T>]) -> Result<ArrayD<T>> {
        binary(&self.0, inputs[0].clone(), inputs[1].clone())
    }
    fn backward(&self, ctx: &BackwardContext<'_, T>) -> Result<Vec<Option<ArrayD<T>>>> {
        let (da, db) = binary_backward(&self.0, ctx.inputs[0].clone(), ctx.inputs[1].clone(), ctx.grad_output.clone())?;
        Ok(vec![ctx.needs_grad[0].then_some(da), ctx.needs_grad[1].then_some(db)])
    }
}
