//! Adam and AdamW — PyTorch's `torch.optim.Adam` / `torch.optim.AdamW`:
//!
//! ```text
//! g ← g + l2·θ + l1·sign(θ)              (penalties; Adam's coupled weight_decay is l2)
//! θ ← θ · (1 − lr·weight_decay)           (decoupled decay: this is what makes it AdamW)
//! m ← m + (1 − β₁)(g − m)
//! v ← β₂·v + (1 − β₂)·g²
//! v̂ ← max(v̂, v) with AMSGrad, else v
//! θ ← θ − (lr / (1 − β₁ᵗ)) · m / (√v̂ / √(1 − β₂ᵗ) + ε)
//! ```
//!
//! (The division by `√(1 − β₂ᵗ)` is a multiplication by its reciprocal, computed once per step: one
//! vector division per element fewer than PyTorch's formula, at most an ulp apart.)
//!
//! `t` counts this parameter's updates (from 1). Adam and AdamW are one algorithm here: AdamW is Adam
//! with a non-zero decoupled `weight_decay` ([`AdamConfig::adamw`] starts from PyTorch's AdamW
//! defaults, `weight_decay = 0.01`).

use serde::{Deserialize, Serialize};

use crate::error::{check_non_negative, check_positive, check_unit_interval, Result};
use crate::rule::{multiversion, slots_n, GradPre, GroupDefaults, Rule, StepCtx};
use crate::scalar::Scalar;

/// Adam / AdamW hyper-parameters; build with [`AdamConfig::builder`] or [`AdamConfig::adamw`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdamConfig {
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    amsgrad: bool,
    l1: f64,
    l2: f64,
}

impl Default for AdamConfig {
    /// PyTorch's Adam defaults: `lr = 1e-3`, `betas = (0.9, 0.999)`, `eps = 1e-8`, no decay.
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
            l1: 0.0,
            l2: 0.0,
        }
    }
}

/// Builds a validated [`AdamConfig`].
#[derive(Debug, Clone)]
pub struct AdamBuilder(AdamConfig);

impl AdamConfig {
    /// A builder starting from Adam's defaults (no weight decay).
    pub fn builder() -> AdamBuilder {
        AdamBuilder(AdamConfig::default())
    }

    /// A builder starting from AdamW's defaults (decoupled `weight_decay = 0.01`).
    pub fn adamw() -> AdamBuilder {
        AdamBuilder(AdamConfig {
            weight_decay: 0.01,
            ..AdamConfig::default()
        })
    }

    /// Base learning rate.
    pub fn lr(&self) -> f64 {
        self.lr
    }

    /// `(β₁, β₂)`.
    pub fn betas(&self) -> (f64, f64) {
        (self.beta1, self.beta2)
    }

    /// ε.
    pub fn eps(&self) -> f64 {
        self.eps
    }

    /// Decoupled weight decay.
    pub fn weight_decay(&self) -> f64 {
        self.weight_decay
    }

    /// Whether AMSGrad is on.
    pub fn amsgrad(&self) -> bool {
        self.amsgrad
    }
}

impl AdamBuilder {
    /// Learning rate (>= 0).
    pub fn lr(mut self, lr: f64) -> Self {
        self.0.lr = lr;
        self
    }

    /// `(β₁, β₂)`, each in [0, 1).
    pub fn betas(mut self, beta1: f64, beta2: f64) -> Self {
        self.0.beta1 = beta1;
        self.0.beta2 = beta2;
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

    /// AMSGrad: divide by the running maximum of the second moment.
    pub fn amsgrad(mut self, amsgrad: bool) -> Self {
        self.0.amsgrad = amsgrad;
        self
    }

    /// L1 penalty coefficient (>= 0).
    pub fn l1(mut self, l1: f64) -> Self {
        self.0.l1 = l1;
        self
    }

    /// L2 penalty coefficient (>= 0): PyTorch's `Adam(weight_decay=…)`.
    pub fn l2(mut self, l2: f64) -> Self {
        self.0.l2 = l2;
        self
    }

    /// Checks the configuration.
    pub fn build(self) -> Result<AdamConfig> {
        self.0.validate()?;
        Ok(self.0)
    }
}

#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct AdamHyper<T> {
    decay: T,
    one_minus_beta1: T,
    beta2: T,
    one_minus_beta2: T,
    step_size: T,
    inv_bias_correction2_sqrt: T,
    eps: T,
}

impl Rule for AdamConfig {
    const KIND: &'static str = "adam";
    type Hyper<T: Scalar> = AdamHyper<T>;

    fn validate(&self) -> Result<()> {
        const W: &str = "Adam";
        check_non_negative(W, "lr", self.lr)?;
        check_unit_interval(W, "beta1", self.beta1)?;
        check_unit_interval(W, "beta2", self.beta2)?;
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
        if self.amsgrad {
            &["exp_avg", "exp_avg_sq", "max_exp_avg_sq"]
        } else {
            &["exp_avg", "exp_avg_sq"]
        }
    }

    fn prepare<T: Scalar>(&self, ctx: &StepCtx) -> AdamHyper<T> {
        let t = i32::try_from(ctx.step).unwrap_or(i32::MAX);
        let bias_correction1 = 1.0 - self.beta1.powi(t);
        let bias_correction2 = 1.0 - self.beta2.powi(t);
        AdamHyper {
            decay: T::from_f64_lossy(1.0 - ctx.lr * ctx.weight_decay),
            one_minus_beta1: T::from_f64_lossy(1.0 - self.beta1),
            beta2: T::from_f64_lossy(self.beta2),
            one_minus_beta2: T::from_f64_lossy(1.0 - self.beta2),
            step_size: T::from_f64_lossy(ctx.lr / bias_correction1),
            inv_bias_correction2_sqrt: T::from_f64_lossy(1.0 / bias_correction2.sqrt()),
            eps: T::from_f64_lossy(self.eps),
        }
    }

    fn update<T: Scalar>(
        h: &AdamHyper<T>,
        pre: &GradPre<T>,
        p: &mut [T],
        g: &[T],
        slots: &mut [&mut [T]],
    ) {
        if slots.len() == 2 {
            let [m, v] = slots_n::<T, 2>(slots);
            adam(h, pre, p, g, m, v);
        } else {
            let [m, v, vmax] = slots_n::<T, 3>(slots);
            adam_amsgrad(h, pre, p, g, m, v, vmax);
        }
    }
}

#[inline(always)]
fn adam_body<T: Scalar>(
    h: &AdamHyper<T>,
    pre: &GradPre<T>,
    p: &mut [T],
    g: &[T],
    m: &mut [T],
    v: &mut [T],
) {
    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let d = pre.apply(*p, g);
        let theta = *p * h.decay;
        *m = *m + h.one_minus_beta1 * (d - *m);
        *v = h.beta2 * *v + h.one_minus_beta2 * d * d;
        let denom = v.sqrt() * h.inv_bias_correction2_sqrt + h.eps;
        *p = theta - h.step_size * (*m / denom);
    }
}

#[inline(always)]
fn adam_amsgrad_body<T: Scalar>(
    h: &AdamHyper<T>,
    pre: &GradPre<T>,
    p: &mut [T],
    g: &[T],
    m: &mut [T],
    v: &mut [T],
    vmax: &mut [T],
) {
    let it = p
        .iter_mut()
        .zip(g)
        .zip(m.iter_mut())
        .zip(v.iter_mut())
        .zip(vmax.iter_mut());
    for ((((p, &g), m), v), vmax) in it {
        let d = pre.apply(*p, g);
        let theta = *p * h.decay;
        *m = *m + h.one_minus_beta1 * (d - *m);
        *v = h.beta2 * *v + h.one_minus_beta2 * d * d;
        *vmax = if *v > *vmax { *v } else { *vmax };
        let denom = vmax.sqrt() * h.inv_bias_correction2_sqrt + h.eps;
        *p = theta - h.step_size * (*m / denom);
    }
}

multiversion! {
    fn adam<T>(h: &AdamHyper<T>, pre: &GradPre<T>, p: &mut [T], g: &[T], m: &mut [T], v: &mut [T]) = adam_body;
}
multiversion! {
    fn adam_amsgrad<T>(
        h: &AdamHyper<T>,
        pre: &GradPre<T>,
        p: &mut [T],
        g: &[T],
        m: &mut [T],
        v: &mut [T],
        vmax: &mut [T],
    ) = adam_amsgrad_body;
}
