//! Layer norm and RMS norm on the tape: adapters over [`crate::ops::norm`]. The forward keeps the
//! per-row statistics (mean, 1/σ) in the op for the backward, so nothing is recomputed.

use ndarray::{Array1, ArrayD, ArrayView1, ArrayViewD, Ix1};

use crate::autograd::op::{BackwardContext, CustomOp};
use crate::autograd::var::Var;
use crate::element::Element;
use crate::error::{Result, TensorError};
use crate::ops::norm;

/// Optional gamma and beta, as 1-D views.
type AffineViews<'a, T> = (Option<ArrayView1<'a, T>>, Option<ArrayView1<'a, T>>);

/// Which optional affine parameters follow `x` in the op's inputs.
#[derive(Clone, Copy)]
struct Affine {
    gamma: bool,
    beta: bool,
}

impl Affine {
    fn views<'a, T: Element>(
        self,
        op: &'static str,
        inputs: &[ArrayViewD<'a, T>],
    ) -> Result<AffineViews<'a, T>> {
        let as_vector = |v: &ArrayViewD<'a, T>| {
            v.clone().into_dimensionality::<Ix1>().map_err(|_| {
                TensorError::shape_mismatch(
                    op,
                    inputs[0].shape(),
                    v.shape(),
                    "gamma and beta must be 1-D [last dim]",
                )
            })
        };
        let gamma = if self.gamma {
            Some(as_vector(&inputs[1])?)
        } else {
            None
        };
        let beta = if self.beta {
            Some(as_vector(&inputs[1 + self.gamma as usize])?)
        } else {
            None
        };
        Ok((gamma, beta))
    }
}

struct LayerNorm<T> {
    eps: T,
    affine: Affine,
    stats: Option<(Array1<T>, Array1<T>)>,
}

impl<T: Element> CustomOp<T> for LayerNorm<T> {
    fn name(&self) -> &str {
        "layer_norm"
    }
    fn forward(&mut self, inputs: &[ArrayViewD<'_, T>]) -> Result<ArrayD<T>> {
        let (gamma, beta) = self.affine.views("layer_norm", inputs)?;
        let out = norm::layer_norm(inputs[0].clone(), gamma, beta, self.eps)?;
        self.stats = Some((out.mean, out.rstd));
        Ok(out.output)
    }
    fn backward(&self, ctx: &BackwardContext<'_, T>) -> Result<Vec<Option<ArrayD<T>>>> {
        let (mean, rstd) = self
            .stats
            .as_ref()
            .ok_or_else(|| TensorError::Autograd("layer_norm: backward before forward".into()))?;
        let (gamma, _) = self.affine.views("layer_norm", ctx.inputs)?;
        let grads = norm::layer_norm_backward(
            ctx.inputs[0].clone(),
            gamma,
            mean.view(),
            rstd.view(),
            ctx.grad_output.clone(),
        )?;
        let mut out = vec![Some(grads.dx)];
        if self.affine.gamma {
            out.push(Some(grads.dgamma.into_dyn()));
        }
        if self.affine.beta {
            out.push(Some(grads.dbeta.into_dyn()));
        }
        Ok(out)
    }
}

struct RmsNorm<T> {
    eps: T,
    has_gamma: bool,
    rstd: Option<Array1<T>>,
}

impl<T: Element> CustomOp<T> for RmsNorm<T> {
    fn name(&self) -> &str {
        "rms_norm"
    }
    fn forward(&mut self, inputs: &[ArrayViewD<'_, T>]) -> Result<ArrayD<T>> {
        let (gamma, _) = Affine {
            gamma: self.has_gamma,
            beta: false,
        }
        .views("rms_norm", inputs)?;
        let out = norm::rms_norm(inputs[0].clone(), gamma, self.eps)?;
        self.rstd = Some(out.rstd);
        Ok(out.output)
    }
    fn backward(&self, ctx: &BackwardContext<'_, T>) -> Result<Vec<Option<ArrayD<T>>>> {
        let rstd = self
            .rstd
            .as_ref()
            .ok_or_else(|| TensorError::Autograd("rms_norm: backward before forward".into()))?;
        let (gamma, _) = Affine {
            gamma: self.has_gamma,
            beta: false,
        }
        .views("rms_norm", ctx.inputs)?;
        let grads = norm::rms_norm_backward(
            ctx.inputs[0].clone(),
            gamma,
            rstd.view(),
            ctx.grad_output.clone(),
        )?;
        let mut out = vec![Some(grads.dx)];
        if self.has_gamma {
            out.push(Some(grads.dgamma.into_dyn()));
        }
        Ok(out)
    }
}

impl<'t, T: Element> Var<'t, T> {
    /// Layer norm over the last axis, `(x − mean)/√(var + eps)·gamma + beta`; `gamma` and `beta`
    /// are `[last dim]` (None means ones and zeros).
    pub fn layer_norm(
        self,
        gamma: Option<Var<'t, T>>,
        beta: Option<Var<'t, T>>,
        eps: T,
    ) -> Result<Var<'t, T>> {
        let affine = Affine {
            gamma: gamma.is_some(),
            beta: beta.is_some(),
        };
        let inputs: Vec<Var<'t, T>> = std::iter::once(self).chain(gamma).chain(beta).collect();
        self.tape().apply(
            LayerNorm {
                eps,
                affine,
                stats: None,
            },
            &inputs,
        )
    }

    /// RMS norm over the last axis, `x/√(mean(x²) + eps)·gamma`.
    pub fn rms_norm(self, gamma: Option<Var<'t, T>>, eps: T) -> Result<Var<'t, T>> {
        let inputs: Vec<Var<'t, T>> = std::iter::once(self).chain(gamma).collect();
        self.tape().apply(
            RmsNorm {
                eps,
                has_gamma: gamma.is_some(),
                rstd: None,
            },
            &inputs,
        )
    }
}
