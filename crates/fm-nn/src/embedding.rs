//! [`Embedding`]: a `[num_embeddings, dim]` table looked up by integer ids.

use fm_tensor::autograd::Var;
use fm_tensor::init::Initializer;
use fm_tensor::Element;
use ndarray::ArrayView2;

use crate::error::{NnError, Result};
use crate::module::{ForwardContext, Module, ParamBuilder, ParamRef};

/// A lookup table of learned vectors (token or position embeddings).
#[derive(Debug, Clone)]
pub struct Embedding {
    weight: ParamRef,
    num_embeddings: usize,
    dim: usize,
}

impl Embedding {
    /// Registers `weight` `[num_embeddings, dim]` drawn from `init` under `builder`.
    pub fn new<T: Element>(
        builder: &mut ParamBuilder<'_, T>,
        num_embeddings: usize,
        dim: usize,
        init: Initializer,
    ) -> Result<Self> {
        let weight = builder.add("weight", &[num_embeddings, dim], init)?;
        Ok(Embedding {
            weight,
            num_embeddings,
            dim,
        })
    }

    /// The table parameter.
    pub fn weight(&self) -> &ParamRef {
        &self.weight
    }

    /// Rows in the table.
    pub fn num_embeddings(&self) -> usize {
        self.num_embeddings
    }

    /// Width of each vector.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Looks up `ids` `[batch, seq]` → `[batch, seq, dim]`; an id past the table is an error naming
    /// its position.
    pub fn forward<'t, T: Element>(
        &self,
        ctx: &ForwardContext<'t, '_, T>,
        ids: ArrayView2<'_, u32>,
    ) -> Result<Var<'t, T>> {
        if let Some(((row, position), &token)) = ids
            .indexed_iter()
            .find(|(_, &id)| id as usize >= self.num_embeddings)
        {
            return Err(NnError::TokenOutOfRange {
                token: u64::from(token),
                row,
                position,
                vocab: self.num_embeddings,
            });
        }
        let table = ctx.param(&self.weight)?;
        Ok(table.embedding(ids.into_dyn())?)
    }
}

impl Module for Embedding {
    fn parameters(&self) -> Vec<ParamRef> {
        vec![self.weight.clone()]
    }
    fn set_training(&mut self, _training: bool) {}
    fn is_training(&self) -> bool {
        false
    }
}
