//! Embedding lookup and dropout on the tape: adapters over [`crate::ops::embedding`] and
//! [`crate::ops::dropout`]. Both carry non-float data (token ids, a mask) inside the op itself.

use ndarray::{ArrayD, ArrayViewD, Ix2};

use crate::autograd::op::{BackwardContext, CustomOp};
use crate::autograd::var::Var;
use crate::element::Element;
use crate::error::{Result, TensorError};
use crate::ops::dropout::{dropout, dropout_backward, DropoutMask};
use crate::ops::embedding::{embedding, embedding_backward};
use crate::ops::shape::IndexElement;

struct Embedding<I> {
    ids: ArrayD<I>,
}

fn table_view<'a, T: Element>(x: &ArrayViewD<'a, T>) -> Result<ndarray::ArrayView2<'a, T>> {
    x.clone().into_dimensionality::<Ix2>().map_err(|_| {
        TensorError::invalid_shape("embedding", x.shape(), "the table must be 2-D [vocab, dim]")
    })
}

impl<T: Element, I: IndexElement> CustomOp<T> for Embedding<I> {
    fn name(&self) -> &str {
        "embedding"
    }
    fn forward(&mut self, inputs: &[ArrayViewD<'_, T>]) -> Result<ArrayD<T>> {
        embedding(table_view(&inputs[0])?, self.ids.view())
    }
    fn backward(&self, ctx: &BackwardContext<'_, T>) -> Result<Vec<Option<ArrayD<T>>>> {
        if !ctx.needs_grad[0] {
            return Ok(vec![None]);
        }
        let vocab = ctx.inputs[0].shape()[0];
        Ok(vec![Some(
            embedding_backward(ctx.grad_output.clone(), self.ids.view(), vocab)?.into_dyn(),
        )])
    }
}

struct Dropout {
    p: f64,
    seed: u64,
    mask: Option<DropoutMask>,
}

impl<T: Element> CustomOp<T> for Dropout {
    fn name(&self) -> &str {
        "dropout"
    }
    fn forward(&mut self, inputs: &[ArrayViewD<'_, T>]) -> Result<ArrayD<T>> {
        let (y, mask) = dropout(inputs[0].clone(), self.p, self.seed)?;
        self.mask = Some(mask);
        Ok(y)
    }
    fn backward(&self, ctx: &BackwardContext<'_, T>) -> Result<Vec<Option<ArrayD<T>>>> {
        let mask = self
            .mask
            .as_ref()
            .ok_or_else(|| TensorError::Autograd("dropout: backward before forward".into()))?;
        Ok(vec![if ctx.needs_grad[0] {
            Some(dropout_backward(ctx.grad_output.clone(), mask)?)
        } else {
            None
        }])
    }
}

impl<'t, T: Element> Var<'t, T> {
    /// Looks up rows of this `[vocab, dim]` table: output shape `ids.shape() + [dim]`. The backward
    /// scatter-adds into the table's gradient, deterministically for any thread count.
    pub fn embedding<I: IndexElement>(self, ids: ArrayViewD<'_, I>) -> Result<Var<'t, T>> {
        self.tape().apply(
            Embedding {
                ids: ids.to_owned(),
            },
            &[self],
        )
    }

    /// Inverted dropout with probability `p` in `[0, 1)`: the mask depends only on `seed` and the
    /// element index, never on the thread count. Kept values are scaled by `1 / (1 - p)`.
    pub fn dropout(self, p: f64, seed: u64) -> Result<Var<'t, T>> {
        self.tape().apply(
            Dropout {
                p,
                seed,
                mask: None,
            },
            &[self],
        )
    }
}
