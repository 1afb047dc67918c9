//! [`Mlp`]: the Transformer's position-wise feed-forward network.
//!
//! - GELU (erf or tanh form): `fc_out(gelu(fc_in(x)))`, with biases (GPT-2).
//! - SwiGLU: `down_proj(silu(gate_proj(x)) · up_proj(x))`, without biases (Llama).

use fm_tensor::autograd::Var;
use fm_tensor::init::Initializer;
use fm_tensor::Element;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::linear::Linear;
use crate::module::{ForwardContext, Module, ParamBuilder, ParamRef};

/// The MLP's nonlinearity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// GELU, exact form `x·Φ(x)` (PyTorch's `nn.GELU()`).
    Gelu,
    /// GELU, tanh approximation (PyTorch's `nn.GELU(approximate="tanh")`, GPT-2's original).
    GeluTanh,
    /// Gated SiLU unit (three projections, no biases).
    SwiGlu,
}

/// Position-wise feed-forward network.
#[derive(Debug, Clone)]
pub enum Mlp {
    /// `fc_out(act(fc_in(x)))`.
    Gelu {
        /// `d_model → hidden`.
        fc_in: Linear,
        /// `hidden → d_model`.
        fc_out: Linear,
        /// Tanh approximation instead of erf.
        tanh: bool,
    },
    /// `down_proj(silu(gate_proj(x)) · up_proj(x))`.
    SwiGlu {
        /// `d_model → hidden`, through SiLU.
        gate_proj: Linear,
        /// `d_model → hidden`.
        up_proj: Linear,
        /// `hidden → d_model`.
        down_proj: Linear,
    },
}

impl Mlp {
    /// Registers the projections under `builder`: inputs drawn from `init`, the output projection
    /// from `out_init` (GPT-2 scales it down with depth).
    pub fn new<T: Element>(
        builder: &mut ParamBuilder<'_, T>,
        activation: Activation,
        d_model: usize,
        hidden: usize,
        init: Initializer,
        out_init: Initializer,
    ) -> Result<Self> {
        Ok(match activation {
            Activation::Gelu | Activation::GeluTanh => Mlp::Gelu {
                fc_in: Linear::new(&mut builder.scope("fc_in"), d_model, hidden, true, init)?,
                fc_out: Linear::new(
                    &mut builder.scope("fc_out"),
                    hidden,
                    d_model,
                    true,
                    out_init,
                )?,
                tanh: activation == Activation::GeluTanh,
            },
            Activation::SwiGlu => Mlp::SwiGlu {
                gate_proj: Linear::new(
                    &mut builder.scope("gate_proj"),
                    d_model,
                    hidden,
                    false,
                    init,
                )?,
                up_proj: Linear::new(&mut builder.scope("up_proj"), d_model, hidden, false, init)?,
                down_proj: Linear::new(
                    &mut builder.scope("down_proj"),
                    hidden,
                    d_model,
                    false,
                    out_init,
                )?,
            },
        })
    }

    /// Applies the network to `x` `[..., d_model]`.
    pub fn forward<'t, T: Element>(
        &self,
        ctx: &ForwardContext<'t, '_, T>,
        x: Var<'t, T>,
    ) -> Result<Var<'t, T>> {
        match self {
            Mlp::Gelu {
                fc_in,
                fc_out,
                tanh,
            } => {
                let h = fc_in.forward(ctx, x)?;
                let h = if *tanh { h.gelu_tanh()? } else { h.gelu()? };
                fc_out.forward(ctx, h)
            }
            Mlp::SwiGlu {
                gate_proj,
                up_proj,
                down_proj,
            } => {
                let gate = gate_proj.forward(ctx, x)?.silu()?;
                let up = up_proj.forward(ctx, x)?;
                down_proj.forward(ctx, gate.mul(up)?)
            }
        }
    }
}

impl Module for Mlp {
    fn parameters(&self) -> Vec<ParamRef> {
        match self {
            Mlp::Gelu { fc_in, fc_out, .. } => [fc_in, fc_out]
                .iter()
                .flat_map(|l| l.parameters())
                .collect(),
            Mlp::SwiGlu {
                gate_proj,
                up_proj,
                down_proj,
            } => [gate_proj, up_proj, down_proj]
                .iter()
                .flat_map(|l| l.parameters())
                .collect(),
        }
    }
    fn set_training(&mut self, _training: bool) {}
    fn is_training(&self) -> bool {
        false
    }
}
