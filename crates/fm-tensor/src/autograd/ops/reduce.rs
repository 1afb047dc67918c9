//! Reductions and softmax on the tape: adapters over [`crate::ops::reduce`] and
//! [`crate::ops::softmax`]. Axes may be negative (counted from the end).

use ndarray::{ArrayD, ArrayViewD};

use crate::autograd::op::{BackwardContext, CustomOp};
use crate::autograd::var::Var;
use crate::element::Element;
use crate::error::Result;
use crate::ops::shape::normalize_axis;
use crate::ops::{reduce, softmax};

#[derive(Clone, Copy)]
enum Reduction {
    Sum,
    Mean,
    Max,
    Min,
}

struct Reduce {
    kind: Reduction,
    axes: Vec<usize>,
    keepdim: bool,
}

impl<T: Element> CustomOp<T> for Reduce {
    fn name(&self) -> &str {
        match self.kind {
            Reduction::Sum => "sum",
            Reduction::Mean => "mean",
            Reduction::Max => "max",
            Reduction::Min => "min",
        }
    }
    fn forward(&mut self, inputs: &[ArrayViewD<'_, T>]) -> Result<ArrayD<T>> {
        let x = inputs[0].clone();
        match self.kind {
            Reduction::Sum => reduce::sum(x, &self.axes, self.keepdim),
            Reduction::Mean => reduce::mean(x, &self.axes, self.keepdim),
            Reduction::Max => reduce::max(x, &self.axes, self.keepdim),
            Reduction::Min => reduce::min(x, &self.axes, self.keepdim),
        }
    }
    fn backward(&self, ctx: &BackwardContext<'_, T>) -> Result<Vec<Option<ArrayD<T>>>> {
        if !ctx.needs_grad[0] {
            return Ok(vec![None]);
        }
        let (x, g) = (ctx.inputs[0].clone(), ctx.grad_output.clone());
        let dx = match self.kind {
            Reduction::Sum => reduce::sum_backward(g, x.shape(), &self.axes, self.keepdim)?,
            Reduction::Mean => reduce::mean_backward(g, x.shape(), &self.axes, self.keepdim)?,
            Reduction::Max => {
                reduce::max_backward(x, ctx.output.clone(), g, &self.axes, self.keepdim)?
            }
            Reduction::Min => {
                reduce::min_backward(x, ctx.output.clone(), g, &self.axes, self.keepdim)?
            }
        };
        Ok(vec![Some(dx)])
    }
}

struct Softmax {
    axis: usize,
    log: bool,
}

impl<T: Element> CustomOp<T> for Softmax {
    fn name(&self) -> &str {
        if self.log {
            "log_softmax"
        } else {
            "softmax"
        }
    }
    fn forward(&mut self, inputs: &[ArrayViewD<'_, T>]) -> Result<ArrayD<T>> {
        if self.log {
            softmax::log_softmax(inputs[0].clone(), self.axis)
        } else {
            softmax::softmax(inputs[0].clone(), self.axis)
        }
    }
    fn backward(&self, ctx: &BackwardContext<'_, T>) -> Result<Vec<Option<ArrayD<T>>>> {
        if !ctx.needs_grad[0] {
            return Ok(vec![None]);
        }
        let (y, g) = (ctx.output.clone(), ctx.grad_output.clone());
        let dx = if self.log {
            softmax::log_softmax_backward(y, g, self.axis)?
        } else {
            softmax::softmax_backward(y, g, self.axis)?
        };
        Ok(vec![Some(dx)])
    }
}

impl<'t, T: Element> Var<'t, T> {
    fn reduce(self, kind: Reduction, axes: &[isize], keepdim: bool) -> Result<Var<'t, T>> {
        let ndim = self.shape().len();
        let op = match kind {
            Reduction::Sum => "sum",
            Reduction::Mean => "mean",
            Reduction::Max => "max",
            Reduction::Min => "min",
        };
        let axes = axes
            .iter()
            .map(|&a| normalize_axis(op, a, ndim))
            .collect::<Result<Vec<_>>>()?;
        self.tape().apply(
            Reduce {
                kind,
                axes,
                keepdim,
            },
            &[self],
        )
    }

    fn all_axes(self) -> Vec<isize> {
        (0..self.shape().len() as isize).collect()
    }

    /// Sum of all elements: a 0-dimensional variable (a loss, typically).
    pub fn sum(self) -> Result<Var<'t, T>> {
        self.reduce(Reduction::Sum, &self.all_axes(), false)
    }

    /// Mean of all elements: a 0-dimensional variable.
    pub fn mean(self) -> Result<Var<'t, T>> {
        self.reduce(Reduction::Mean, &self.all_axes(), false)
    }

    /// Sum along `axes`; `keepdim` keeps them as length-1 axes.
    pub fn sum_axes(self, axes: &[isize], keepdim: bool) -> Result<Var<'t, T>> {
        self.reduce(Reduction::Sum, axes, keepdim)
    }

    /// Mean along `axes`.
    pub fn mean_axes(self, axes: &[isize], keepdim: bool) -> Result<Var<'t, T>> {
        self.reduce(Reduction::Mean, axes, keepdim)
    }

    /// Maximum along `axes`; the gradient goes to the first maximal element (row-major order).
    pub fn max_axes(self, axes: &[isize], keepdim: bool) -> Result<Var<'t, T>> {
        self.reduce(Reduction::Max, axes, keepdim)
    }

    /// Minimum along `axes`; the gradient goes to the first minimal element.
    pub fn min_axes(self, axes: &[isize], keepdim: bool) -> Result<Var<'t, T>> {
        self.reduce(Reduction::Min, axes, keepdim)
    }

    /// Softmax along `axis` (numerically stable).
    pub fn softmax(self, axis: isize) -> Result<Var<'t, T>> {
        let axis = normalize_axis("softmax", axis, self.shape().len())?;
        self.tape().apply(Softmax { axis, log: false }, &[self])
    }

    /// Log-softmax along `axis` (numerically stable).
    pub fn log_softmax(self, axis: isize) -> Result<Var<'t, T>> {
        let axis = normalize_axis("log_softmax", axis, self.shape().len())?;
        self.tape().apply(Softmax { axis, log: true }, &[self])
    }
}
