//! What an optimizer steps over: named (value, gradient) pairs as plain ndarray views.
//!
//! An optimizer keeps its per-parameter state (momentum, second moments) under each parameter's
//! **name**, so the same names must come back every step; their order does not matter for the update,
//! but fixes the order in which a global gradient norm is summed, so keep it stable too.
//!
//! Three ways to hand parameters over:
//! - a slice or `Vec` of [`NamedParam`] (views into your own arrays);
//! - fm-tensor's `ParamStore` (with the default `fm-tensor` feature), whose trainable parameters with
//!   a gradient are visited in insertion order;
//! - your own container, by implementing [`Params`].

use ndarray::{ArrayViewD, ArrayViewMutD};

use crate::error::Result;
use crate::scalar::Scalar;

/// One parameter as an optimizer sees it during a step.
#[derive(Debug)]
pub struct ParamRef<'a, T> {
    /// The parameter's name (the key of its optimizer state).
    pub name: &'a str,
    /// Its value, updated in place.
    pub value: ArrayViewMutD<'a, T>,
    /// Its gradient, same shape.
    pub grad: ArrayViewD<'a, T>,
}

/// A collection of parameters an optimizer can visit, any number of times per step.
pub trait Params<T> {
    /// Calls `f` once per parameter, in a stable order, stopping at the first error.
    fn visit(&mut self, f: &mut dyn FnMut(ParamRef<'_, T>) -> Result<()>) -> Result<()>;

    /// Clears the gradients (what `zero_grad` means for this container).
    fn zero_grad(&mut self);
}

/// A parameter given as views into the caller's arrays.
///
/// ```
/// use fm_optim::{NamedParam, Optimizer, Sgd, SgdConfig};
/// use ndarray::array;
///
/// let mut w = array![1.0f32, 2.0].into_dyn();
/// let mut g = array![0.5f32, -0.5].into_dyn();
/// let mut sgd = Sgd::new(SgdConfig::builder().lr(0.1).build()?);
/// sgd.step(&mut [NamedParam::new("w", w.view_mut(), g.view_mut())])?;
/// assert_eq!(w, array![0.95f32, 2.05].into_dyn());
/// # Ok::<(), fm_optim::OptimError>(())
/// ```
#[derive(Debug)]
pub struct NamedParam<'a, T> {
    /// The parameter's name.
    pub name: &'a str,
    /// Its value.
    pub value: ArrayViewMutD<'a, T>,
    /// Its gradient (mutable so that [`Params::zero_grad`] can clear it).
    pub grad: ArrayViewMutD<'a, T>,
}

impl<'a, T> NamedParam<'a, T> {
    /// Bundles a name, a value and a gradient.
    pub fn new(name: &'a str, value: ArrayViewMutD<'a, T>, grad: ArrayViewMutD<'a, T>) -> Self {
        NamedParam { name, value, grad }
    }
}

impl<T: Scalar> Params<T> for [NamedParam<'_, T>] {
    fn visit(&mut self, f: &mut dyn FnMut(ParamRef<'_, T>) -> Result<()>) -> Result<()> {
        for p in self.iter_mut() {
            f(ParamRef {
                name: p.name,
                value: p.value.view_mut(),
                grad: p.grad.view(),
            })?;
        }
        Ok(())
    }

    fn zero_grad(&mut self) {
        for p in self.iter_mut() {
            p.grad.fill(T::zero());
        }
    }
}

impl<T: Scalar, const N: usize> Params<T> for [NamedParam<'_, T>; N] {
    fn visit(&mut self, f: &mut dyn FnMut(ParamRef<'_, T>) -> Result<()>) -> Result<()> {
        self.as_mut_slice().visit(f)
    }

    fn zero_grad(&mut self) {
        self.as_mut_slice().zero_grad()
    }
}

impl<T: Scalar> Params<T> for Vec<NamedParam<'_, T>> {
    fn visit(&mut self, f: &mut dyn FnMut(ParamRef<'_, T>) -> Result<()>) -> Result<()> {
        self.as_mut_slice().visit(f)
    }

    fn zero_grad(&mut self) {
        self.as_mut_slice().zero_grad()
    }
}

/// fm-tensor's parameter store: every trainable parameter that has an accumulated gradient, in
/// insertion order. `zero_grad` forgets the gradients ([`ParamStore::zero_grad`]).
///
/// [`ParamStore::zero_grad`]: fm_tensor::ParamStore::zero_grad
#[cfg(feature = "fm-tensor")]
impl<T: Scalar + fm_tensor::Element> Params<T> for fm_tensor::ParamStore<T> {
    fn visit(&mut self, f: &mut dyn FnMut(ParamRef<'_, T>) -> Result<()>) -> Result<()> {
        for (name, value, grad) in self.pairs_mut() {
            f(ParamRef {
                name,
                value: value.view_mut(),
                grad: grad.view(),
            })?;
        }
        Ok(())
    }

    fn zero_grad(&mut self) {
        fm_tensor::ParamStore::zero_grad(self)
    }
}
