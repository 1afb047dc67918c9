//! [`TransformerBlock`]: a pre-norm Transformer layer,
//! `x + drop(attn(norm1(x)))` then `x + drop(mlp(norm2(x)))`.

use fm_tensor::autograd::Var;
use fm_tensor::init::Initializer;
use fm_tensor::Element;
use ndarray::ArrayView2;

use crate::attention::{AttentionConfig, LayerKv, SelfAttention};
use crate::dropout::Dropout;
use crate::error::Result;
use crate::mlp::{Activation, Mlp};
use crate::module::{ForwardContext, Module, ParamBuilder, ParamRef};
use crate::norm::{Norm, NormKind};

/// Everything a block needs to know about its shape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockConfig {
    /// The attention layer.
    pub attention: AttentionConfig,
    /// Hidden width of the MLP.
    pub mlp_hidden: usize,
    /// MLP nonlinearity.
    pub activation: Activation,
    /// Normalisation before attention and before the MLP.
    pub norm: NormKind,
    /// Dropout on each residual branch (training only).
    pub dropout: f64,
    /// Standard deviation of the input projections' initial weights.
    pub init_std: f64,
    /// Standard deviation of the output projections' initial weights (GPT-2 divides by
    /// `√(2·n_layers)`).
    pub out_init_std: f64,
}

/// One pre-norm Transformer layer.
#[derive(Debug, Clone)]
pub struct TransformerBlock {
    norm1: Norm,
    attn: SelfAttention,
    norm2: Norm,
    mlp: Mlp,
    attn_dropout: Dropout,
    mlp_dropout: Dropout,
}

impl TransformerBlock {
    /// Registers `norm1`, `attn`, `norm2` and `mlp` under `builder`.
    pub fn new<T: Element>(
        builder: &mut ParamBuilder<'_, T>,
        config: &BlockConfig,
    ) -> Result<Self> {
        let init = Initializer::Normal {
            mean: 0.0,
            std: config.init_std,
        };
        let out_init = Initializer::Normal {
            mean: 0.0,
            std: config.out_init_std,
        };
        let d_model = config.attention.d_model;
        Ok(TransformerBlock {
            norm1: Norm::new(&mut builder.scope("norm1"), config.norm, d_model)?,
            attn: SelfAttention::new(&mut builder.scope("attn"), config.attention, init, out_init)?,
            norm2: Norm::new(&mut builder.scope("norm2"), config.norm, d_model)?,
            mlp: Mlp::new(
                &mut builder.scope("mlp"),
                config.activation,
                d_model,
                config.mlp_hidden,
                init,
                out_init,
            )?,
            attn_dropout: Dropout::new(builder, "attn_dropout", config.dropout)?,
            mlp_dropout: Dropout::new(builder, "mlp_dropout", config.dropout)?,
        })
    }

    /// Applies the block to `x` `[batch, seq, d_model]` (see [`SelfAttention::forward`] for the
    /// mask and the cache).
    pub fn forward<'t, T: Element>(
        &self,
        ctx: &ForwardContext<'t, '_, T>,
        x: Var<'t, T>,
        key_padding: Option<ArrayView2<'_, bool>>,
        cache: Option<LayerKv<'_, T>>,
    ) -> Result<Var<'t, T>> {
        let h = self.norm1.forward(ctx, x)?;
        let h = self.attn.forward(ctx, h, key_padding, cache)?;
        let x = x.add(self.attn_dropout.forward(ctx, h)?)?;
        let h = self.norm2.forward(ctx, x)?;
        let h = self.mlp.forward(ctx, h)?;
        Ok(x.add(self.mlp_dropout.forward(ctx, h)?)?)
    }
}

impl Module for TransformerBlock {
    fn parameters(&self) -> Vec<ParamRef> {
        let mut params = self.norm1.parameters();
        params.extend(self.attn.parameters());
        params.extend(self.norm2.parameters());
        params.extend(self.mlp.parameters());
        params
    }
    fn set_training(&mut self, training: bool) {
        self.attn_dropout.set_training(training);
        self.mlp_dropout.set_training(training);
    }
    fn is_training(&self) -> bool {
        self.attn_dropout.is_training()
    }
}
