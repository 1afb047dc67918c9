//! Language-model metrics: mean token cross-entropy, perplexity, bits per token and bits per byte.
//!
//! All four are functions of one exact sum, the total negative log-likelihood (in nats) of the target
//! tokens, and two counts: tokens and bytes of the evaluated text. [`TokenCrossEntropy`] takes either
//! logits (and computes a max-shifted log-softmax per row in `f64`, so no exponential overflows) or
//! the log-probabilities a model already assigned to its targets. Perplexity is `exp(mean NLL)`,
//! bits per token `mean NLL / ln 2`, bits per byte `total NLL / (ln 2 · bytes)`: a tokenizer-free
//! figure that compares models with different vocabularies.

use std::f64::consts::LN_2;

use ndarray::{ArrayView1, ArrayView2};

use crate::error::{EvalError, Result};
use crate::exact::ExactSum;
use crate::input::{
    check_columns, check_lengths, check_n_classes, contiguous, contiguous_rows, ClassLabel, Score,
};
use crate::metric::{Direction, Metric, MetricValues};

const METRIC: &str = "token_cross_entropy";

/// Streaming mean token cross-entropy and the figures derived from it.
///
/// ```
/// use fm_eval::{Metric, TokenCrossEntropy};
/// use ndarray::array;
///
/// let mut lm = TokenCrossEntropy::new(4)?;
/// // Uniform logits over 4 tokens: every target costs ln 4 nats = 2 bits.
/// lm.update_logits(array![[0.0f32, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]].view(), &[3u32, 0])?;
/// lm.add_bytes(4);
/// let m = lm.compute()?;
/// assert!((m.bits_per_token - 2.0).abs() < 1e-15);
/// assert!((m.perplexity - 4.0).abs() < 1e-14);
/// assert!((m.bits_per_byte.unwrap() - 1.0).abs() < 1e-15);
/// # Ok::<(), fm_eval::EvalError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct TokenCrossEntropy {
    vocab_size: usize,
    ignore_index: Option<usize>,
    nll: ExactSum,
    tokens: u64,
    bytes: u64,
}

/// The language-model figures computed by [`TokenCrossEntropy`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LanguageModelMetrics {
    /// Mean negative log-likelihood per token, in nats.
    pub mean_cross_entropy: f64,
    /// `exp(mean_cross_entropy)`.
    pub perplexity: f64,
    /// `mean_cross_entropy / ln 2`.
    pub bits_per_token: f64,
    /// Total NLL in bits over the byte count; `None` until bytes were added.
    pub bits_per_byte: Option<f64>,
    /// Tokens scored (ignored targets excluded).
    pub tokens: u64,
    /// Bytes of evaluated text, as given to [`TokenCrossEntropy::add_bytes`].
    pub bytes: u64,
}

impl TokenCrossEntropy {
    /// Cross-entropy over a vocabulary of `vocab_size` tokens.
    pub fn new(vocab_size: usize) -> Result<Self> {
        check_n_classes(METRIC, vocab_size, 1)?;
        Ok(Self {
            vocab_size,
            ignore_index: None,
            nll: ExactSum::new(),
            tokens: 0,
            bytes: 0,
        })
    }

    /// Skips targets equal to `index` (padding), as PyTorch's `ignore_index` does. The index need
    /// not be a valid token id.
    pub fn with_ignore_index(mut self, index: usize) -> Self {
        self.ignore_index = Some(index);
        self
    }

    /// Scores a batch of logits `[n, vocab_size]` against target ids `[n]`. Errors (changing
    /// nothing) on a length or column mismatch, an empty batch, a target outside the vocabulary
    /// (unless ignored), a NaN or `+inf` logit, or a row whose logits are all `-inf`.
    pub fn update_logits<'a, S: Score, L: ClassLabel>(
        &mut self,
        logits: ArrayView2<'_, S>,
        targets: impl Into<ArrayView1<'a, L>>,
    ) -> Result<()> {
        let targets = targets.into();
        check_lengths(
            METRIC,
            "targets",
            targets.len(),
            "logits rows",
            logits.nrows(),
        )?;
        check_columns(METRIC, "logits", logits.shape(), self.vocab_size)?;
        let targets = contiguous(&targets);
        self.check_targets(&targets)?;
        let rows = contiguous_rows(&logits);
        let v = self.vocab_size;
        // Validate first and collect the row losses, so a bad row leaves the sum untouched.
        let mut losses = Vec::with_capacity(targets.len());
        for (i, (&t, row)) in targets.iter().zip(rows.chunks_exact(v)).enumerate() {
            let max = row_max(row, i)?;
            if Some(t.to_index()) == self.ignore_index {
                continue;
            }
            // -log softmax = ln Σ exp(x_j − max) − (x_t − max): the shift is subtracted from the
            // target before the large terms meet, so nothing cancels.
            let sum_exp: f64 = row.iter().map(|&x| (x.to_f64() - max).exp()).sum();
            losses.push(sum_exp.ln() - (row[t.to_index()].to_f64() - max));
        }
        self.tokens += losses.len() as u64;
        for loss in losses {
            self.nll.add(loss);
        }
        Ok(())
    }

    /// Scores a batch given the log-probability each target token received (natural log, ≤ 0;
    /// `-inf` is allowed and makes the loss infinite). Errors (changing nothing) on an empty batch,
    /// a NaN or a positive value.
    pub fn update_log_probs<'a, S: Score>(
        &mut self,
        target_log_probs: impl Into<ArrayView1<'a, S>>,
    ) -> Result<()> {
        let values = target_log_probs.into();
        if values.is_empty() {
            return Err(EvalError::EmptyInput {
                metric: METRIC,
                what: "target_log_probs",
            });
        }
        let values = contiguous(&values);
        if let Some(i) = values
            .iter()
            .position(|&x| x.to_f64().is_nan() || x.to_f64() > 0.0)
        {
            let value = values[i].to_f64();
            if value.is_nan() {
                return Err(EvalError::NonFinite {
                    metric: METRIC,
                    what: "target_log_probs",
                    position: vec![i],
                    value,
                });
            }
            return Err(EvalError::OutOfRange {
                metric: METRIC,
                what: "target_log_probs",
                position: vec![i],
                value,
                range: "[-inf, 0]",
            });
        }
        for &x in values.iter() {
            self.nll.add(-x.to_f64());
        }
        self.tokens += values.len() as u64;
        Ok(())
    }

    /// Adds the UTF-8 byte count of text just scored, for bits per byte.
    pub fn add_bytes(&mut self, bytes: u64) {
        self.bytes += bytes;
    }

    /// The total negative log-likelihood so far, in nats (correctly rounded).
    pub fn total_nll(&self) -> f64 {
        self.nll.value()
    }

    fn check_targets<L: ClassLabel>(&self, targets: &[L]) -> Result<()> {
        let bad = targets.iter().position(|&t| {
            t.to_index() >= self.vocab_size && Some(t.to_index()) != self.ignore_index
        });
        if let Some(position) = bad {
            return Err(EvalError::LabelOutOfRange {
                metric: METRIC,
                what: "targets",
                position,
                label: targets[position].to_i128(),
                n_classes: self.vocab_size,
            });
        }
        Ok(())
    }
}

/// The row's largest logit; errors on NaN, `+inf`, or a row that is all `-inf`.
fn row_max<S: Score>(row: &[S], row_index: usize) -> Result<f64> {
    let mut max = f64::NEG_INFINITY;
    for (j, &x) in row.iter().enumerate() {
        let x = x.to_f64();
        if x.is_nan() || x == f64::INFINITY {
            return Err(EvalError::NonFinite {
                metric: METRIC,
                what: "logits",
                position: vec![row_index, j],
                value: x,
            });
        }
        max = max.max(x);
    }
    if max == f64::NEG_INFINITY {
        return Err(EvalError::InvalidArgument {
            metric: METRIC,
            reason: format!("logits row {row_index} is -inf everywhere: no distribution"),
        });
    }
    Ok(max)
}

impl Metric for TokenCrossEntropy {
    type Output = LanguageModelMetrics;

    fn compute(&self) -> Result<LanguageModelMetrics> {
        if self.tokens == 0 {
            return Err(EvalError::EmptyInput {
                metric: METRIC,
                what: "the accumulator (no scored token yet)",
            });
        }
        let total = self.nll.value();
        let mean = total / self.tokens as f64;
        Ok(LanguageModelMetrics {
            mean_cross_entropy: mean,
            perplexity: mean.exp(),
            bits_per_token: mean / LN_2,
            bits_per_byte: (self.bytes > 0).then(|| total / (LN_2 * self.bytes as f64)),
            tokens: self.tokens,
            bytes: self.bytes,
        })
    }

    fn merge(&mut self, other: &Self) -> Result<()> {
        self.check_merge(other)?;
        self.nll.merge(&other.nll);
        self.tokens += other.tokens;
        self.bytes += other.bytes;
        Ok(())
    }

    fn check_merge(&self, other: &Self) -> Result<()> {
        if (self.vocab_size, self.ignore_index) != (other.vocab_size, other.ignore_index) {
            return Err(EvalError::MergeMismatch {
                metric: METRIC,
                reason: format!(
                    "vocab {} / ignore_index {:?} vs vocab {} / ignore_index {:?}",
                    self.vocab_size, self.ignore_index, other.vocab_size, other.ignore_index
                ),
            });
        }
        Ok(())
    }

    fn reset(&mut self) {
        self.nll.reset();
        self.tokens = 0;
        self.bytes = 0;
    }

    fn count(&self) -> u64 {
        self.tokens
    }

    fn record(&self, out: &mut MetricValues) {
        use Direction::LowerIsBetter;
        let m = self.compute();
        let pick = |f: fn(&LanguageModelMetrics) -> f64| match &m {
            Ok(m) => Ok(f(m)),
            Err(e) => Err(EvalError::Undefined {
                metric: METRIC,
                reason: e.to_string(),
            }),
        };
        out.insert(
            "cross_entropy",
            pick(|m| m.mean_cross_entropy),
            LowerIsBetter,
        );
        out.insert("perplexity", pick(|m| m.perplexity), LowerIsBetter);
        out.insert("bits_per_token", pick(|m| m.bits_per_token), LowerIsBetter);
        let bpb = match &m {
            Ok(LanguageModelMetrics {
                bits_per_byte: Some(b),
                ..
            }) => Ok(*b),
            _ => Err(EvalError::Undefined {
                metric: METRIC,
                reason: "no byte count was given (add_bytes)".into(),
            }),
        };
        out.insert("bits_per_byte", bpb, LowerIsBetter);
        out.count("tokens", self.tokens);
        out.count("bytes", self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn ignored_targets_and_bad_logits() {
        let mut lm = TokenCrossEntropy::new(2)
            .unwrap()
            .with_ignore_index(usize::MAX);
        let logits = array![[0.0f64, 0.0], [5.0, -5.0]];
        lm.update_logits(logits.view(), &[u64::MAX, 0]).unwrap();
        assert_eq!(lm.count(), 1);
        let expected = (1.0 + (-10.0f64).exp()).ln();
        assert!((lm.total_nll() - expected).abs() < 1e-16);
        let err = lm
            .update_logits(array![[0.0, f64::NAN]].view(), &[0u8])
            .unwrap_err();
        assert!(err.to_string().contains("logits[0, 1] is NaN"), "{err}");
        let err = lm
            .update_logits(array![[0.0, 0.0]].view(), &[2u8])
            .unwrap_err();
        assert!(err.to_string().contains("targets[0] = 2"), "{err}");
        let err = lm.update_log_probs(&[-0.5, 0.5]).unwrap_err();
        assert!(err.to_string().contains("[-inf, 0]"), "{err}");
        assert_eq!(lm.count(), 1);
    }

    #[test]
    fn large_logits_do_not_overflow() {
        let mut lm = TokenCrossEntropy::new(3).unwrap();
        lm.update_logits(
            array![[1000.0f32, 1000.0, f32::NEG_INFINITY]].view(),
            &[0u8],
        )
        .unwrap();
        assert!((lm.compute().unwrap().mean_cross_entropy - LN_2).abs() < 1e-15);
    }
}
