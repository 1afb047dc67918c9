//! Normalisation layers over the last axis: [`LayerNorm`], [`RmsNorm`], and [`Norm`] to pick one by
//! configuration ([`NormKind`]).

use fm_tensor::autograd::Var;
use fm_tensor::init::Initializer;
use fm_tensor::Element;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::module::{ForwardContext, Module, ParamBuilder, ParamRef};

/// Which normalisation a model uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NormKind {
    /// [`LayerNorm`] with a learned scale and shift (GPT-2, BERT).
    LayerNorm,
    /// [`RmsNorm`] with a learned scale (Llama).
    RmsNorm,
}

/// `(x − mean)/√(var + eps)·weight + bias` over the last axis; `weight` starts at 1, `bias` at 0.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    weight: ParamRef,
    bias: ParamRef,
    eps: f64,
}

impl LayerNorm {
    /// Registers `weight` and `bias` `[dim]` under `builder`.
    pub fn new<T: Element>(
        builder: &mut ParamBuilder<'_, T>,
        dim: usize,
        eps: f64,
    ) -> Result<Self> {
        Ok(LayerNorm {
            weight: builder.add("weight", &[dim], Initializer::Ones)?,
            bias: builder.add("bias", &[dim], Initializer::Zeros)?,
            eps,
        })
    }

    /// Normalises `x` `[..., dim]`.
    pub fn forward<'t, T: Element>(
        &self,
        ctx: &ForwardContext<'t, '_, T>,
        x: Var<'t, T>,
    ) -> Result<Var<'t, T>> {
        let (w, b) = (ctx.param(&self.weight)?, ctx.param(&self.bias)?);
        Ok(x.layer_norm(Some(w), Some(b), T::from_f64_lossy(self.eps))?)
    }
}

impl Module for LayerNorm {
    fn parameters(&self) -> Vec<ParamRef> {
        vec![self.weight.clone(), self.bias.clone()]
    }
    fn set_training(&mut self, _training: bool) {}
    fn is_training(&self) -> bool {
        false
    }
}

/// `x/√(mean(x²) + eps)·weight` over the last axis; `weight` starts at 1.
#[derive(Debug, Clone)]
pub struct RmsNorm {
    weight: ParamRef,
    eps: f64,
}

impl RmsNorm {
    /// Registers `weight` `[dim]` under `builder`.
    pub fn new<T: Element>(
        builder: &mut ParamBuilder<'_, T>,
        dim: usize,
        eps: f64,
    ) -> Result<Self> {
        Ok(RmsNorm {
            weight: builder.add("weight", &[dim], Initializer::Ones)?,
            eps,
        })
    }

    /// Normalises `x` `[..., dim]`.
    pub fn forward<'t, T: Element>(
        &self,
        ctx: &ForwardContext<'t, '_, T>,
        x: Var<'t, T>,
    ) -> Result<Var<'t, T>> {
        let w = ctx.param(&self.weight)?;
        Ok(x.rms_norm(Some(w), T::from_f64_lossy(self.eps))?)
    }
}

impl Module for RmsNorm {
    fn parameters(&self) -> Vec<ParamRef> {
        vec![self.weight.clone()]
    }
    fn set_training(&mut self, _training: bool) {}
    fn is_training(&self) -> bool {
        false
    }
}

/// A [`LayerNorm`] or an [`RmsNorm`], chosen by [`NormKind`].
#[derive(Debug, Clone)]
pub enum Norm {
    /// Layer norm.
    Layer(LayerNorm),
    /// RMS norm.
    Rms(RmsNorm),
}

impl Norm {
    /// Builds the kind asked for (eps 1e-5, as PyTorch's default).
    pub fn new<T: Element>(
        builder: &mut ParamBuilder<'_, T>,
        kind: NormKind,
        dim: usize,
    ) -> Result<Self> {
        const EPS: f64 = 1e-5;
        Ok(match kind {
            NormKind::LayerNorm => Norm::Layer(LayerNorm::new(builder, dim, EPS)?),
            NormKind::RmsNorm => Norm::Rms(RmsNorm::new(builder, dim, EPS)?),
        })
    }

    /// Normalises `x` `[..., dim]`.
    pub fn forward<'t, T: Element>(
        &self,
        ctx: &ForwardContext<'t, '_, T>,
        x: Var<'t, T>,
    ) -> Result<Var<'t, T>> {
        match self {
            Norm::Layer(n) => n.forward(ctx, x),
            Norm::Rms(n) => n.forward(ctx, x),
        }
    }
}

impl Module for Norm {
    fn parameters(&self) -> Vec<ParamRef> {
        match self {
            Norm::Layer(n) => n.parameters(),
            Norm::Rms(n) => n.parameters(),
        }
    }
    fn set_training(&mut self, _training: bool) {}
    fn is_training(&self) -> bool {
        false
    }
}
