//! [`TransformerTrunk`]: the part a decoder and an encoder share — token (and learned position)
//! embeddings, a stack of [`TransformerBlock`]s and a final norm — from token ids to hidden states.

use fm_tensor::autograd::Var;
use fm_tensor::init::Initializer;
use fm_tensor::Element;
use ndarray::{Array2, ArrayView2};

use crate::attention::KvCache;
use crate::block::{BlockConfig, TransformerBlock};
use crate::dropout::Dropout;
use crate::embedding::Embedding;
use crate::error::{NnError, Result};
use crate::module::{ForwardContext, Module, ParamBuilder, ParamRef};
use crate::norm::Norm;

/// Embeddings, blocks and the final norm.
#[derive(Debug, Clone)]
pub struct TransformerTrunk {
    tok_emb: Embedding,
    pos_emb: Option<Embedding>,
    emb_dropout: Dropout,
    blocks: Vec<TransformerBlock>,
    norm_f: Norm,
    context_length: usize,
}

impl TransformerTrunk {
    /// Registers `tok_emb`, `pos_emb` (when `learned_positions`), `blocks.{i}` and `norm_f`.
    pub fn new<T: Element>(
        builder: &mut ParamBuilder<'_, T>,
        vocab_size: usize,
        context_length: usize,
        n_layers: usize,
        learned_positions: bool,
        block: &BlockConfig,
    ) -> Result<Self> {
        let d_model = block.attention.d_model;
        let init = Initializer::Normal {
            mean: 0.0,
            std: block.init_std,
        };
        let tok_emb = Embedding::new(&mut builder.scope("tok_emb"), vocab_size, d_model, init)?;
        let pos_emb = if learned_positions {
            Some(Embedding::new(
                &mut builder.scope("pos_emb"),
                context_length,
                d_model,
                init,
            )?)
        } else {
            None
        };
        let emb_dropout = Dropout::new(builder, "emb_dropout", block.dropout)?;
        let mut blocks_builder = builder.scope("blocks");
        let blocks = (0..n_layers)
            .map(|i| TransformerBlock::new(&mut blocks_builder.scope(&i.to_string()), block))
            .collect::<Result<Vec<_>>>()?;
        let norm_f = Norm::new(&mut builder.scope("norm_f"), block.norm, d_model)?;
        Ok(TransformerTrunk {
            tok_emb,
            pos_emb,
            emb_dropout,
            blocks,
            norm_f,
            context_length,
        })
    }

    /// The token embedding (tied output projections read its weight).
    pub fn token_embedding(&self) -> &Embedding {
        &self.tok_emb
    }

    /// Number of blocks.
    pub fn n_layers(&self) -> usize {
        self.blocks.len()
    }

    /// Hidden states `[batch, seq, d_model]` for `ids` `[batch, seq]`, after the final norm.
    ///
    /// With a `cache`, `ids` continue the cached prefix (positions start at its length) and the
    /// cache grows by `seq`. `key_padding` `[batch, prefix + seq]` marks real tokens with `true`.
    pub fn forward<'t, T: Element>(
        &self,
        ctx: &ForwardContext<'t, '_, T>,
        ids: ArrayView2<'_, u32>,
        key_padding: Option<ArrayView2<'_, bool>>,
        mut cache: Option<&mut KvCache<T>>,
    ) -> Result<Var<'t, T>> {
        let (batch, seq) = ids.dim();
        if batch == 0 || seq == 0 {
            return Err(NnError::InvalidArgument(format!(
                "token ids must be a non-empty [batch, seq] array, got [{batch}, {seq}]"
            )));
        }
        let start = cache.as_ref().map_or(0, |c| c.len());
        if start + seq > self.context_length {
            return Err(NnError::SequenceTooLong {
                len: start + seq,
                context: self.context_length,
            });
        }
        let mut x = self.tok_emb.forward(ctx, ids)?;
        if let Some(pos_emb) = &self.pos_emb {
            let positions = Array2::from_shape_fn((1, seq), |(_, i)| (start + i) as u32);
            x = x.add(pos_emb.forward(ctx, positions.view())?)?;
        }
        x = self.emb_dropout.forward(ctx, x)?;
        for (i, block) in self.blocks.iter().enumerate() {
            let layer_cache = match cache.as_deref_mut() {
                Some(c) => Some(c.layer(i)?),
                None => None,
            };
            x = block.forward(ctx, x, key_padding, layer_cache)?;
        }
        self.norm_f.forward(ctx, x)
    }
}

impl Module for TransformerTrunk {
    fn parameters(&self) -> Vec<ParamRef> {
        let mut params = self.tok_emb.parameters();
        params.extend(self.pos_emb.iter().flat_map(Module::parameters));
        for block in &self.blocks {
            params.extend(block.parameters());
        }
        params.extend(self.norm_f.parameters());
        params
    }
    fn set_training(&mut self, training: bool) {
        self.emb_dropout.set_training(training);
        self.blocks
            .iter_mut()
            .for_each(|b| b.set_training(training));
    }
    fn is_training(&self) -> bool {
        self.emb_dropout.is_training()
    }
}
