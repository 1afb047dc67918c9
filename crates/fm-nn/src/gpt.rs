//! [`Gpt`]: a GPT-style decoder language model — embeddings, causal pre-norm blocks, final norm, and
//! an output projection (tied to the token embedding or its own `lm_head`).
//!
//! The model owns its [`ParamStore`]; a training step binds it to a fresh tape, computes the loss,
//! and hands the gradients back:
//!
//! ```
//! use fm_nn::{Gpt, GptConfig};
//! use fm_tensor::autograd::Tape;
//! use ndarray::array;
//!
//! let mut model = Gpt::<f32>::new(GptConfig::new(16, 8, 8, 1, 2), 0)?;
//! let ids = array![[1u32, 2, 3, 4]];
//! let targets = array![[2u32, 3, 4, 5]];
//! let tape = Tape::new();
//! let ctx = model.context(&tape);
//! let loss = model.loss(&ctx, ids.view(), targets.view())?;
//! let grads = tape.backward(loss)?;
//! drop(ctx);
//! model.params_mut().accumulate(&grads)?;
//! assert!((loss.item()? - (16f32).ln()).abs() < 0.1); // near-uniform at initialisation
//! # Ok::<(), fm_nn::NnError>(())
//! ```

use fm_loss::CrossEntropyOptions;
use fm_tensor::autograd::{ParamStore, Tape, Var};
use fm_tensor::init::Initializer;
use fm_tensor::Element;
use ndarray::{ArrayD, ArrayView2};

use crate::attention::KvCache;
use crate::config::{GptConfig, PositionEncoding};
use crate::error::{NnError, Result};
use crate::linear::{linear, Linear};
use crate::module::{ForwardContext, Module, ParamBuilder, ParamRef};
use crate::trunk::TransformerTrunk;

/// A decoder-only Transformer language model.
#[derive(Debug)]
pub struct Gpt<T: Element = f32> {
    config: GptConfig,
    params: ParamStore<T>,
    trunk: TransformerTrunk,
    lm_head: Option<Linear>,
}

impl<T: Element> Gpt<T> {
    /// Builds the model with weights drawn from `seed` (the same seed gives the same weights).
    pub fn new(config: GptConfig, seed: u64) -> Result<Self> {
        config.validate()?;
        let mut params = ParamStore::new();
        let mut builder = ParamBuilder::new(&mut params, seed);
        let trunk = TransformerTrunk::new(
            &mut builder,
            config.vocab_size,
            config.context_length,
            config.n_layers,
            config.positions == PositionEncoding::Learned,
            &config.block_config(true),
        )?;
        let lm_head = if config.tie_embeddings {
            None
        } else {
            let init = Initializer::Normal {
                mean: 0.0,
                std: config.init_std,
            };
            Some(Linear::new(
                &mut builder.scope("lm_head"),
                config.d_model,
                config.vocab_size,
                false,
                init,
            )?)
        };
        Ok(Gpt {
            config,
            params,
            trunk,
            lm_head,
        })
    }

    /// Saves `config.json` and `model.safetensors` into `dir` (created if needed), atomically.
    pub fn save(&self, dir: impl AsRef<std::path::Path>) -> Result<()> {
        let dir = dir.as_ref();
        crate::checkpoint::ensure_dir(dir)?;
        crate::checkpoint::write_json_atomically(
            dir.join(crate::checkpoint::CONFIG_FILE),
            &self.config,
        )?;
        crate::checkpoint::save_params(
            dir.join(crate::checkpoint::WEIGHTS_FILE),
            &self.parameters(),
            &self.params,
        )
    }

    /// Loads a model saved by [`save`](Self::save): the config, then the weights, checked
    /// against the parameters the config implies (see [`crate::checkpoint`]).
    pub fn load(dir: impl AsRef<std::path::Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let config = crate::checkpoint::read_json(dir.join(crate::checkpoint::CONFIG_FILE))?;
        let mut model = Self::new(config, 0)?;
        let params = model.parameters();
        crate::checkpoint::load_params(
            dir.join(crate::checkpoint::WEIGHTS_FILE),
            &params,
            &mut model.params,
        )?;
        Ok(model)
    }

    /// The configuration.
    pub fn config(&self) -> &GptConfig {
        &self.config
    }

    /// The parameter values (and accumulated gradients).
    pub fn params(&self) -> &ParamStore<T> {
        &self.params
    }

    /// The parameters, for an optimizer step or loading weights.
    pub fn params_mut(&mut self) -> &mut ParamStore<T> {
        &mut self.params
    }

    /// A forward context on `tape` with this model's parameters.
    pub fn context<'t, 's>(&'s self, tape: &'t Tape<T>) -> ForwardContext<'t, 's, T> {
        ForwardContext::new(tape, &self.params)
    }

    /// An empty KV cache sized for this model.
    pub fn new_cache(&self) -> KvCache<T> {
        KvCache::new(self.config.n_layers, self.config.context_length)
    }

    /// Logits `[batch, seq, vocab]` for `ids` `[batch, seq]`.
    pub fn forward<'t>(
        &self,
        ctx: &ForwardContext<'t, '_, T>,
        ids: ArrayView2<'_, u32>,
    ) -> Result<Var<'t, T>> {
        let hidden = self.trunk.forward(ctx, ids, None, None)?;
        self.project(ctx, hidden)
    }

    /// Logits for `ids` that continue the sequence held in `cache` (which grows by `seq`).
    pub fn forward_cached<'t>(
        &self,
        ctx: &ForwardContext<'t, '_, T>,
        ids: ArrayView2<'_, u32>,
        cache: &mut KvCache<T>,
    ) -> Result<Var<'t, T>> {
        if cache.n_layers() != self.config.n_layers {
            return Err(NnError::InvalidArgument(format!(
                "KV cache has {} layers, the model {}",
                cache.n_layers(),
                self.config.n_layers
            )));
        }
        let hidden = self.trunk.forward(ctx, ids, None, Some(cache))?;
        self.project(ctx, hidden)
    }

    /// Mean next-token cross-entropy of `ids` against `targets` (same shape), through fm-loss's
    /// fused cross-entropy op.
    pub fn loss<'t>(
        &self,
        ctx: &ForwardContext<'t, '_, T>,
        ids: ArrayView2<'_, u32>,
        targets: ArrayView2<'_, u32>,
    ) -> Result<Var<'t, T>> {
        if ids.dim() != targets.dim() {
            return Err(NnError::ShapeMismatch {
                what: "targets (must match the ids)".into(),
                expected: ids.shape().to_vec(),
                got: targets.shape().to_vec(),
            });
        }
        let logits = self.forward(ctx, ids)?;
        Ok(fm_loss::autograd::cross_entropy(
            logits,
            targets,
            &CrossEntropyOptions::default(),
        )?)
    }

    /// Logits for `ids` without recording gradients.
    pub fn logits(&self, ids: ArrayView2<'_, u32>) -> Result<ArrayD<T>> {
        let tape = Tape::no_grad();
        let ctx = self.context(&tape);
        Ok(self.forward(&ctx, ids)?.value().into_array())
    }

    fn project<'t>(
        &self,
        ctx: &ForwardContext<'t, '_, T>,
        hidden: Var<'t, T>,
    ) -> Result<Var<'t, T>> {
        match &self.lm_head {
            Some(head) => head.forward(ctx, hidden),
            None => {
                let table = ctx.param(self.trunk.token_embedding().weight())?;
                linear(hidden, table, None)
            }
        }
    }
}

impl<T: Element> Module for Gpt<T> {
    fn parameters(&self) -> Vec<ParamRef> {
        let mut params = self.trunk.parameters();
        params.extend(self.lm_head.iter().flat_map(Module::parameters));
        params
    }
    fn set_training(&mut self, training: bool) {
        self.trunk.set_training(training);
    }
    fn is_training(&self) -> bool {
        self.trunk.is_training()
    }
}
