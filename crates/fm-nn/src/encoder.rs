//! [`EncoderClassifier`]: bidirectional Transformer blocks, a pooled sequence vector and a linear
//! classification head — for sentiment-style text classification.
//!
//! Batches of different lengths are padded to one length; `mask` `[batch, seq]` marks real tokens
//! with `true`. Padding keys are masked out of attention and out of mean pooling, so a padded
//! example gets the same logits as the same example alone.
//!
//! ```
//! use fm_nn::{EncoderClassifier, EncoderConfig};
//! use fm_tensor::autograd::Tape;
//! use ndarray::array;
//!
//! let model = EncoderClassifier::<f32>::new(EncoderConfig::new(32, 8, 8, 1, 2, 2), 0)?;
//! let ids = array![[5u32, 6, 7, 0], [9, 10, 0, 0]];
//! let mask = array![[true, true, true, false], [true, true, false, false]];
//! let tape = Tape::new();
//! let ctx = model.context(&tape);
//! let loss = model.loss(&ctx, ids.view(), Some(mask.view()), &[1, 0])?;
//! assert!(loss.item()?.is_finite());
//! # Ok::<(), fm_nn::NnError>(())
//! ```

use fm_loss::CrossEntropyOptions;
use fm_tensor::autograd::{ParamStore, Tape, Var};
use fm_tensor::init::Initializer;
use fm_tensor::Element;
use ndarray::{ArrayD, ArrayView2, IxDyn};

use crate::config::{EncoderConfig, Pooling, PositionEncoding};
use crate::error::{NnError, Result};
use crate::linear::Linear;
use crate::module::{ForwardContext, Module, ParamBuilder, ParamRef};
use crate::trunk::TransformerTrunk;

/// A Transformer encoder with a classification head.
#[derive(Debug)]
pub struct EncoderClassifier<T: Element = f32> {
    config: EncoderConfig,
    params: ParamStore<T>,
    trunk: TransformerTrunk,
    head: Linear,
}

impl<T: Element> EncoderClassifier<T> {
    /// Builds the model with weights drawn from `seed`.
    pub fn new(config: EncoderConfig, seed: u64) -> Result<Self> {
        config.validate()?;
        let mut params = ParamStore::new();
        let mut builder = ParamBuilder::new(&mut params, seed);
        let trunk = TransformerTrunk::new(
            &mut builder,
            config.vocab_size,
            config.context_length,
            config.n_layers,
            config.positions == PositionEncoding::Learned,
            &config.block_config(),
        )?;
        let init = Initializer::Normal {
            mean: 0.0,
            std: config.init_std,
        };
        let head = Linear::new(
            &mut builder.scope("head"),
            config.d_model,
            config.num_classes,
            true,
            init,
        )?;
        Ok(EncoderClassifier {
            config,
            params,
            trunk,
            head,
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
    pub fn config(&self) -> &EncoderConfig {
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

    /// Class logits `[batch, num_classes]` for `ids` `[batch, seq]` (`mask`: `true` for real
    /// tokens; `None` means no padding). Every row needs at least one real token.
    pub fn forward<'t>(
        &self,
        ctx: &ForwardContext<'t, '_, T>,
        ids: ArrayView2<'_, u32>,
        mask: Option<ArrayView2<'_, bool>>,
    ) -> Result<Var<'t, T>> {
        let (batch, seq) = ids.dim();
        if let Some(mask) = mask {
            if mask.dim() != (batch, seq) {
                return Err(NnError::ShapeMismatch {
                    what: "padding mask (must match the ids)".into(),
                    expected: vec![batch, seq],
                    got: mask.shape().to_vec(),
                });
            }
            if let Some(row) = mask.outer_iter().position(|r| !r.iter().any(|&m| m)) {
                return Err(NnError::InvalidArgument(format!(
                    "row {row} of the padding mask has no real token"
                )));
            }
        }
        let hidden = self.trunk.forward(ctx, ids, mask, None)?; // [B, T, D]
        let pooled = match self.config.pooling {
            Pooling::First => hidden.slice(1, 0, 1, 1)?.squeeze(1)?,
            Pooling::Mean => {
                // Weights 1/len on real tokens, 0 on padding: one product gives the masked mean.
                let mut weights = ArrayD::<T>::zeros(IxDyn(&[batch, seq, 1]));
                for b in 0..batch {
                    let real: Vec<usize> = (0..seq)
                        .filter(|&t| mask.is_none_or(|m| m[[b, t]]))
                        .collect();
                    let w = T::one() / T::from_usize(real.len()).expect("small count");
                    for t in real {
                        weights[[b, t, 0]] = w;
                    }
                }
                hidden
                    .mul(ctx.tape().constant(weights))?
                    .sum_axes(&[1], false)?
            }
        };
        self.head.forward(ctx, pooled)
    }

    /// Mean cross-entropy of the class logits against `labels` (one per row).
    pub fn loss<'t>(
        &self,
        ctx: &ForwardContext<'t, '_, T>,
        ids: ArrayView2<'_, u32>,
        mask: Option<ArrayView2<'_, bool>>,
        labels: &[u32],
    ) -> Result<Var<'t, T>> {
        if labels.len() != ids.nrows() {
            return Err(NnError::ShapeMismatch {
                what: "labels (one per row)".into(),
                expected: vec![ids.nrows()],
                got: vec![labels.len()],
            });
        }
        let logits = self.forward(ctx, ids, mask)?;
        Ok(fm_loss::autograd::cross_entropy(
            logits,
            labels,
            &CrossEntropyOptions::default(),
        )?)
    }

    /// The most likely class of each row, without recording gradients.
    pub fn predict(
        &self,
        ids: ArrayView2<'_, u32>,
        mask: Option<ArrayView2<'_, bool>>,
    ) -> Result<Vec<usize>> {
        let tape = Tape::no_grad();
        let ctx = self.context(&tape);
        let logits = self.forward(&ctx, ids, mask)?.value();
        Ok(logits
            .view()
            .outer_iter()
            .map(|row| {
                row.iter()
                    .enumerate()
                    .fold((0, T::neg_infinity()), |best, (i, &v)| {
                        if v > best.1 {
                            (i, v)
                        } else {
                            best
                        }
                    })
                    .0
            })
            .collect())
    }
}

impl<T: Element> Module for EncoderClassifier<T> {
    fn parameters(&self) -> Vec<ParamRef> {
        let mut params = self.trunk.parameters();
        params.extend(self.head.parameters());
        params
    }
    fn set_training(&mut self, training: bool) {
        self.trunk.set_training(training);
    }
    fn is_training(&self) -> bool {
        self.trunk.is_training()
    }
}
