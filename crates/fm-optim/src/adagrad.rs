//! Adagrad — PyTorch's `torch.optim.Adagrad`:
//!
//! ```text
//! g ← g + l2·θ + l1·sign(θ);  θ ← θ · (1 − lr·weight_decay)
//! η ← lr / (1 + (t − 1)·lr_decay)
//! s ← s + g²                    (s starts at initial_accumulator_value)
//! θ ← θ − η · g / (√s + ε)
//! ```

use serde::{Deserialize, Serialize};

use crate::error::{check_non_negative, check_positive, Result};
use crate::rule::{multiversion, slots_n, GradPre, GroupDefaults, Rule, StepCtx};
use crate::scalar::Scalar;

/// Adagrad hyper-parameters; build with [`AdagradConfig::builder`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdagradConfig {
    lr: f64,
    lr_decay: f64,
    initial_accumulator_value: f64,
    eps: f64,
    weight_decay: f64,
    l1: f64,
    l2: f64,
}

impl Default for AdagradConfig {
    /// PyTorch's defaults: `lr = 1e-2`, no lr decay, accumulator starting at 0, `eps = 1e-10`.
    fn default() -> Self {
        AdagradConfig {
            lr: 1e-2,
            lr_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-10,
            weight_decay: 0.0,
            l1: 0.0,
            l2: 0.0,
        }
    }
}

/// Builds a validated [`AdagradConfig`].
#[derive(Debug, Clone)]
pub struct AdagradBuilder(AdagradConfig);

impl AdagradConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> AdagradBuilder {
        AdagradBuilder(AdagradConfig::default())
    }

    /// Base learning rate.
    pub fn lr(&self) -> f64 {
        self.lr
    }
}

impl AdagradBuilder {
    /// Learning rate (>= 0).
    pub fn lr(mut self, lr: f64) -> Self {
        self.0.lr = lr;
        self
    }

    /// Learning-rate decay per step (>= 0).
    pub fn lr_decay(mut self, lr_decay: f64) -> Self {
        self.0.lr_decay = lr_decay;
        self
    }

    /// Starting value of the squared-gradient accumulator (>= 0).
    pub fn initial_accumulator_value(mut self, value: f64) -> Self {
        self.0.initial_accumulator_value = value;
        self
    }

    /// ε (> 0).
    pub fn eps(mut self, eps: f64) -> Self {
        self.0.eps = eps;
        self
    }

    /// Decoupled weight decay (>= 0).
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.0.weight_decay = weight_decay;
        self
    }

    /// L1 penalty coefficient (>= 0).
    pub fn l1(mut self, l1: f64) -> Self {
        self.0.l1 = l1;
        self
    }

    /// L2 penalty coefficient (>= 0): PyTorch's `Adagrad(weight_decay=…)`.
    pub fn l2(mut self, l2: f64) -> Self {
        self.0.l2 = l2;
        self
    }

    /// Checks the configuration.
    pub fn build(self) -> Result<AdagradConfig> {
        self.0.validate()?;
        Ok(self.0)
    }
}

#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct AdagradHyper<T> {
    clr: T,
    decay: T,
    eps: T,
}

impl Rule for AdagradConfig {
    const KIND: &'static str = "adagrad";
    type Hyper<T: Scalar> = AdagradHyper<T>;

    fn validate(&self) -> Result<()> {
        const W: &str = "Adagrad";
        check_non_negative(W, "lr", self.lr)?;
        check_non_negative(W, "lr_decay", self.lr_decay)?;
        check_non_negative(
            W,
            "initial_accumulator_value",
            self.initial_accumulator_value,
        )?;
        check_positive(W, "eps", self.eps)?;
        check_non_negative(W, "weight_decay", self.weight_decay)?;
        check_non_negative(W, "l1", self.l1)?;
        check_non_negative(W, "l2", self.l2)
    }

    fn defaults(&self) -> GroupDefaults {
        GroupDefaults {
            lr: self.lr,
            weight_decay: self.weight_decay,
            l1: self.l1,
            l2: self.l2,
        }
    }

    fn slots(&self) -> &'static [&'static str] {
        &["sum"]
    }

    fn slot_init(&self) -> f64 {
        self.initial_accumulator_value
    }

    fn prepare<T: Scalar>(&self, ctx: &StepCtx) -> AdagradHyper<T> {
        AdagradHyper {
            clr: T::from_f64_lossy(ctx.lr / (1.0 + (ctx.step - 1) as f64 * self.lr_decay)),
            decay: T::from_f64_lossy(1.0 - ctx.lr * ctx.weight_decay),
            eps: T::from_f64_lossy(self.eps),
        }
    }

    fn update<T: Scalar>(
        h: &AdagradHyper<T>,
        pre: &GradPre<T>,
        p: &mut [T],
        g: &[T],
        slots: &mut [&mut [T]],
    ) {
        let [sum] = slots_n::<T, 1>(slots);
        adagrad(h, pre, p, g, sum);
    }
}

#[inline(always)]
fn adagrad_body<T: Scalar>(
    h: &AdagradHyper<T>,
    pre: &GradPre<T>,
    p: &mut [T],
    g: &[T],
    sum: &mut [T],
) {
    for ((p, &g), s) in p.iter_mut().zip(g).zip(sum.iter_mut()) {
        let d = pre.apply(*p, g);
        let theta = *p * h.decay;
        *s = *s + d * d;
        *p = theta - h.clr * (d / (s.sqrt() + h.eps));
    }
}

multiversion! {
    fn adagrad<T>(h: &AdagradHyper<T>, pre: &GradPre<T>, p: &mut [T], g: &[T], sum: &mut [T]) = adagrad_body;
}
