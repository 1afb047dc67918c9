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
        let dx = unary_backward(
            &self.0,
            ctx.inputs[0].clone(),
            ctx.output.clone(),
            ctx.grad_output.clone(),
        )?;
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
        let (da, db) = binary_backward(
            &self.0,
            ctx.inputs[0].clone(),
            ctx.inputs[1].clone(),
            ctx.grad_output.clone(),
        )?;
        Ok(vec![
            ctx.needs_grad[0].then_some(da),
            ctx.needs_grad[1].then_some(db),
        ])
    }
}

use crate::autograd::var::Var;
use crate::ops::activation::{Gelu, GeluTanh, Relu, Sigmoid, Silu, Tanh};
use crate::ops::elementwise::{
    Abs, Add, AddScalar, Div, Exp, Log, Maximum, Minimum, Mul, MulScalar, Neg, Pow, Powf,
    Reciprocal, Rsqrt, Sqrt, Square, Sub,
};

/// Declares `Var` methods that record a unary table op.
macro_rules! unary_methods {
    ($($(#[doc = $doc:literal])+ $method:ident => $Op:ident;)+) => {
        // `neg`, `add`, ... return `Result` (shape errors), so they cannot be the std operator traits.
        #[allow(clippy::should_implement_trait)]
        impl<'t, T: Element> Var<'t, T> {
            $(
                $(#[doc = $doc])+
                pub fn $method(self) -> Result<Var<'t, T>> {
                    self.tape().apply(Unary($Op), &[self])
                }
            )+
        }
    };
}

/// Declares `Var` methods that record a binary table op (NumPy broadcasting).
macro_rules! binary_methods {
    ($($(#[doc = $doc:literal])+ $method:ident => $Op:ident;)+) => {
        // `neg`, `add`, ... return `Result` (shape errors), so they cannot be the std operator traits.
        #[allow(clippy::should_implement_trait)]
        impl<'t, T: Element> Var<'t, T> {
            $(
                $(#[doc = $doc])+
                pub fn $method(self, rhs: Var<'t, T>) -> Result<Var<'t, T>> {
                    self.tape().apply(Binary($Op), &[self, rhs])
                }
            )+
        }
    };
}

unary_methods! {
    /// −x.
    neg => Neg;
    /// eˣ.
    exp => Exp;
    /// Natural logarithm.
    log => Log;
    /// √x.
    sqrt => Sqrt;
    /// 1/√x.
    rsqrt => Rsqrt;
    /// |x| (derivative 0 at 0).
    abs => Abs;
    /// x².
    square => Square;
    /// 1/x.
    reciprocal => Reciprocal;
    /// max(x, 0).
    relu => Relu;
    /// GELU, exact form x·Φ(x) with the error function.
    gelu => Gelu;
    /// GELU, tanh approximation.
    gelu_tanh => GeluTanh;
    /// SiLU (swish): x·σ(x).
    silu => Silu;
    /// tanh(x).
    tanh => Tanh;
    /// Logistic sigmoid σ(x), stable for large |x|.
    sigmoid => Sigmoid;
}

binary_methods! {
    /// `self + rhs`, broadcasting.
    add => Add;
    /// `self − rhs`, broadcasting.
    sub => Sub;
    /// `self · rhs` elementwise, broadcasting.
    mul => Mul;
    /// `self / rhs`, broadcasting.
    div => Div;
    /// `self ^ rhs` elementwise (self > 0 where rhs is differentiated), broadcasting.
    pow => Pow;
    /// Elementwise maximum, broadcasting.
    maximum => Maximum;
    /// Elementwise minimum, broadcasting.
    minimum => Minimum;
}

impl<'t, T: Element> Var<'t, T> {
    /// `self + s` for a scalar `s`.
    pub fn add_scalar(self, s: T) -> Result<Var<'t, T>> {
        self.tape().apply(Unary(AddScalar(s)), &[self])
    }

    /// `self · s` for a scalar `s`.
    pub fn mul_scalar(self, s: T) -> Result<Var<'t, T>> {
        self.tape().apply(Unary(MulScalar(s)), &[self])
    }

    /// `self ^ p` for a scalar exponent `p`.
    pub fn powf(self, p: T) -> Result<Var<'t, T>> {
        self.tape().apply(Unary(Powf(p)), &[self])
    }
}
