//! Text generation with a [`Gpt`]: greedy decoding or seeded sampling (temperature, top-k, top-p),
//! stop tokens and a token budget, with the KV cache (or without it, recomputing the whole sequence
//! each step — the reference the cached path is tested against).
//!
//! ```
//! use fm_nn::{generate, GenerateOptions, Gpt, GptConfig};
//!
//! let model = Gpt::<f32>::new(GptConfig::new(16, 32, 8, 1, 2), 0)?;
//! let options = GenerateOptions { max_new_tokens: 5, ..GenerateOptions::greedy() };
//! let out = generate(&model, &[1, 2, 3], &options)?;
//! assert_eq!(out.tokens.len(), 5);
//! # Ok::<(), fm_nn::NnError>(())
//! ```

use fm_tensor::autograd::Tape;
use fm_tensor::Element;
use ndarray::Array2;

use crate::error::{NnError, Result};
use crate::gpt::Gpt;
use crate::module::mix_seed;

/// How to pick each next token.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateOptions {
    /// Most tokens to generate.
    pub max_new_tokens: usize,
    /// Softmax temperature; 0 means greedy (argmax, ties to the lowest id).
    pub temperature: f64,
    /// Keep only the `k` most likely tokens before sampling.
    pub top_k: Option<usize>,
    /// Keep the smallest set of most likely tokens whose probability reaches `p` (nucleus).
    pub top_p: Option<f64>,
    /// Seed of the sampler (the same seed gives the same tokens).
    pub seed: u64,
    /// Generation stops after producing any of these (the stop token is included in the output).
    pub stop_tokens: Vec<u32>,
    /// Use the KV cache (one position per step) instead of recomputing the sequence.
    pub use_cache: bool,
}

impl GenerateOptions {
    /// Greedy decoding of up to 64 tokens with the KV cache.
    pub fn greedy() -> Self {
        GenerateOptions {
            max_new_tokens: 64,
            temperature: 0.0,
            top_k: None,
            top_p: None,
            seed: 0,
            stop_tokens: Vec::new(),
            use_cache: true,
        }
    }

    fn validate(&self) -> Result<()> {
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return Err(NnError::InvalidArgument(format!(
                "temperature must be finite and ≥ 0, got {}",
                self.temperature
            )));
        }
        if self.top_k == Some(0) {
            return Err(NnError::InvalidArgument("top_k must be at least 1".into()));
        }
        if let Some(p) = self.top_p {
            if !(p > 0.0 && p <= 1.0) {
                return Err(NnError::InvalidArgument(format!(
                    "top_p must be in (0, 1], got {p}"
                )));
            }
        }
        Ok(())
    }
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// `max_new_tokens` were generated.
    MaxTokens,
    /// A stop token was generated.
    StopToken,
    /// The sequence filled the model's context.
    ContextFull,
}

/// What [`generate`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    /// The new tokens (without the prompt).
    pub tokens: Vec<u32>,
    /// Why it stopped.
    pub stop_reason: StopReason,
}

/// Continues `prompt` (at least one token) with `model`.
pub fn generate<T: Element>(
    model: &Gpt<T>,
    prompt: &[u32],
    options: &GenerateOptions,
) -> Result<Generation> {
    options.validate()?;
    if prompt.is_empty() {
        return Err(NnError::InvalidArgument(
            "the prompt needs at least one token".into(),
        ));
    }
    let context = model.config().context_length;
    if prompt.len() > context {
        return Err(NnError::SequenceTooLong {
            len: prompt.len(),
            context,
        });
    }
    let mut sampler = Sampler::new(options.seed);
    let mut cache = model.new_cache();
    let mut sequence = prompt.to_vec();
    let mut tokens = Vec::new();
    // Tokens to feed next: the whole prompt first, then one token per step with the cache.
    let mut pending = prompt.to_vec();
    while tokens.len() < options.max_new_tokens {
        if sequence.len() > context || (options.use_cache && cache.len() + pending.len() > context)
        {
            return Ok(Generation {
                tokens,
                stop_reason: StopReason::ContextFull,
            });
        }
        let tape = Tape::<T>::no_grad();
        let ctx = model.context(&tape);
        let logits = if options.use_cache {
            let ids = Array2::from_shape_vec((1, pending.len()), pending.clone()).expect("one row");
            model.forward_cached(&ctx, ids.view(), &mut cache)?
        } else {
            let ids =
                Array2::from_shape_vec((1, sequence.len()), sequence.clone()).expect("one row");
            model.forward(&ctx, ids.view())?
        }
        .value();
        let logits = logits.view();
        let last = logits.shape()[1] - 1;
        let row: Vec<f64> = (0..logits.shape()[2])
            .map(|v| logits[[0, last, v]].to_f64_lossless())
            .collect();
        let next = sampler.pick(&row, options)?;
        tokens.push(next);
        sequence.push(next);
        pending = vec![next];
        if options.stop_tokens.contains(&next) {
            return Ok(Generation {
                tokens,
                stop_reason: StopReason::StopToken,
            });
        }
        if sequence.len() >= context && tokens.len() < options.max_new_tokens {
            return Ok(Generation {
                tokens,
                stop_reason: StopReason::ContextFull,
            });
        }
    }
    Ok(Generation {
        tokens,
        stop_reason: StopReason::MaxTokens,
    })
}

/// Picks tokens from logits: argmax, or a seeded draw after temperature, top-k and top-p.
struct Sampler {
    state: u64,
}

impl Sampler {
    fn new(seed: u64) -> Self {
        Sampler {
            state: mix_seed(seed, 0x6765_6e65_7261_7465),
        }
    }

    /// A uniform draw in [0, 1) (SplitMix64, 53 bits).
    fn uniform(&mut self) -> f64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        (mix_seed(self.state, 0) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn pick(&mut self, logits: &[f64], options: &GenerateOptions) -> Result<u32> {
        if logits.iter().any(|v| v.is_nan()) {
            return Err(NnError::InvalidArgument(
                "the model produced NaN logits".into(),
            ));
        }
        if options.temperature == 0.0 {
            let best = logits
                .iter()
                .enumerate()
                .fold((0, f64::NEG_INFINITY), |best, (i, &v)| {
                    if v > best.1 {
                        (i, v)
                    } else {
                        best
                    }
                });
            return Ok(best.0 as u32);
        }
        // Candidates sorted by logit, descending (ties by id, so the order is deterministic).
        let mut order: Vec<usize> = (0..logits.len()).collect();
        order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
        if let Some(k) = options.top_k {
            order.truncate(k.min(order.len()));
        }
        let max = logits[order[0]];
        let mut probs: Vec<f64> = order
            .iter()
            .map(|&i| ((logits[i] - max) / options.temperature).exp())
            .collect();
        let total: f64 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= total);
        if let Some(top_p) = options.top_p {
            let mut cumulative = 0.0;
            let keep = probs
                .iter()
                .position(|p| {
                    cumulative += p;
                    cumulative >= top_p
                })
                .map_or(probs.len(), |i| i + 1);
            order.truncate(keep);
            probs.truncate(keep);
            let total: f64 = probs.iter().sum();
            probs.iter_mut().for_each(|p| *p /= total);
        }
        let draw = self.uniform();
        let mut cumulative = 0.0;
        for (&token, p) in order.iter().zip(&probs) {
            cumulative += p;
            if draw < cumulative {
                return Ok(token as u32);
            }
        }
        Ok(*order.last().expect("at least one candidate") as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(temperature: f64, top_k: Option<usize>, top_p: Option<f64>) -> GenerateOptions {
        GenerateOptions {
            temperature,
            top_k,
            top_p,
            ..GenerateOptions::greedy()
        }
    }

    #[test]
    fn greedy_picks_the_argmax() {
        let mut s = Sampler::new(0);
        assert_eq!(
            s.pick(&[0.1, 3.0, 2.0], &options(0.0, None, None)).unwrap(),
            1
        );
    }

    #[test]
    fn top_k_one_is_greedy_at_any_temperature() {
        let mut s = Sampler::new(5);
        for _ in 0..50 {
            assert_eq!(
                s.pick(&[0.1, 3.0, 2.9], &options(2.0, Some(1), None))
                    .unwrap(),
                1
            );
        }
    }

    #[test]
    fn top_p_keeps_only_the_nucleus() {
        // Probabilities ≈ [0.87, 0.12, 0.002]: top_p 0.8 keeps only the first.
        let mut s = Sampler::new(9);
        for _ in 0..50 {
            assert_eq!(
                s.pick(&[6.0, 4.0, 0.0], &options(1.0, None, Some(0.8)))
                    .unwrap(),
                0
            );
        }
    }

    #[test]
    fn sampling_follows_the_distribution_and_the_seed() {
        let logits = [0.0, (3.0f64).ln()]; // probabilities 1/4, 3/4
        let mut s = Sampler::new(1);
        let ones = (0..4000)
            .filter(|_| s.pick(&logits, &options(1.0, None, None)).unwrap() == 1)
            .count();
        assert!((2850..3150).contains(&ones), "{ones} of 4000");
        let draw = |seed| {
            let mut s = Sampler::new(seed);
            (0..20)
                .map(|_| s.pick(&logits, &options(1.0, None, None)).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
    }

    #[test]
    fn bad_options_are_errors() {
        assert!(options(-1.0, None, None).validate().is_err());
        assert!(options(1.0, Some(0), None).validate().is_err());
        assert!(options(1.0, None, Some(1.5)).validate().is_err());
    }
}
