//! [`Dropout`]: inverted dropout whose mask depends only on seeds, never on thread count.
//!
//! Each dropout layer has a salt derived from its name; a pass's mask is drawn from the pair
//! (the [`ForwardContext`]'s dropout seed, the salt), so two layers never share a mask and the same
//! step with the same seed reproduces the same masks bit for bit.

use fm_tensor::autograd::Var;
use fm_tensor::Element;

use crate::error::{NnError, Result};
use crate::module::{mix_seed, ForwardContext, Module, ParamBuilder, ParamRef};

/// Zeroes each element with probability `p` in training mode (scaling the rest by `1/(1 − p)`);
/// the identity in evaluation mode or when `p` is 0.
#[derive(Debug, Clone)]
pub struct Dropout {
    p: f64,
    salt: u64,
    training: bool,
}

impl Dropout {
    /// A dropout layer named by `name` under `builder` (the name only seeds its masks).
    pub fn new<T: Element>(builder: &ParamBuilder<'_, T>, name: &str, p: f64) -> Result<Self> {
        if !(0.0..1.0).contains(&p) {
            return Err(NnError::InvalidConfig(format!(
                "dropout probability must be in [0, 1), got {p}"
            )));
        }
        Ok(Dropout {
            p,
            salt: builder.seed_for(name),
            training: true,
        })
    }

    /// The drop probability.
    pub fn p(&self) -> f64 {
        self.p
    }

    /// Applies dropout to `x` (the identity unless training with `p > 0`).
    pub fn forward<'t, T: Element>(
        &self,
        ctx: &ForwardContext<'t, '_, T>,
        x: Var<'t, T>,
    ) -> Result<Var<'t, T>> {
        if !self.training || self.p == 0.0 {
            return Ok(x);
        }
        Ok(x.dropout(self.p, mix_seed(ctx.dropout_seed(), self.salt))?)
    }
}

impl Module for Dropout {
    fn parameters(&self) -> Vec<ParamRef> {
        Vec::new()
    }
    fn set_training(&mut self, training: bool) {
        self.training = training;
    }
    fn is_training(&self) -> bool {
        self.training
    }
}
