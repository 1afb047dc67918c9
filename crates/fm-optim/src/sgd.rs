//! Stochastic gradient descent with momentum, dampening and Nesterov momentum — PyTorch's
//! `torch.optim.SGD`:
//!
//! ```text
//! g ← g + l2·θ + l1·sign(θ)                      (penalties; PyTorch's weight_decay is l2)
//! θ ← θ · (1 − lr·weight_decay)                   (decoupled decay, off by default)
//! b ← g on the first step, else μ·b + (1 − τ)·g   (momentum μ > 0, dampening τ)
//! d ← g + μ·b if nesterov, else b                 (d = g without momentum)
//! θ ← θ − lr·d
//! ```
//!
//! With `momentum = 0` this is plain gradient descent and keeps no state.

use serde::{Deserialize, Serialize};

use crate::error::{check_non_negative, OptimError, Result};
use crate::rule::{multiversion, slots_n, GradPre, GroupDefaults, Rule, StepCtx};
use crate::scalar::Scalar;

/// SGD hyper-parameters; build with [`SgdConfig::builder`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SgdConfig {
    lr: f64,
    momentum: f64,
    dampening: f64,
    nesterov: bool,
    weight_decay: f64,
    l1: f64,
    l2: f64,
}

impl Default for SgdConfig {
    /// PyTorch's defaults: `lr = 1e-3`, no momentum, no dampening, no decay.
    fn default() -> Self {
        SgdConfig {
            lr: 1e-3,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
            l1: 0.0,
            l2: 0.0,
        }
    }
}

/// Builds a validated [`SgdConfig`].
#[derive(Debug, Clone)]
pub struct SgdBuilder(SgdConfig);

impl SgdConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> SgdBuilder {
        SgdBuilder(SgdConfig::default())
    }

    /// Base learning rate.
    pub fn lr(&self) -> f64 {
        self.lr
    }

    /// Momentum factor μ.
    pub fn momentum(&self) -> f64 {
        self.momentum
    }

    /// Dampening τ.
    pub fn dampening(&self) -> f64 {
        self.dampening
    }

    /// Whether Nesterov momentum is used.
    pub fn nesterov(&self) -> bool {
        self.nesterov
    }
}

impl SgdBuilder {
    /// Learning rate (>= 0).
    pub fn lr(mut self, lr: f64) -> Self {
        self.0.lr = lr;
        self
    }

    /// Momentum factor (>= 0).
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.0.momentum = momentum;
        self
    }

    /// Dampening for momentum, in [0, 1].
    pub fn dampening(mut self, dampening: f64) -> Self {
        self.0.dampening = dampening;
        self
    }

    /// Nesterov momentum (needs momentum > 0 and zero dampening).
    pub fn nesterov(mut self, nesterov: bool) -> Self {
        self.0.nesterov = nesterov;
        self
    }

    /// Decoupled weight decay (>= 0): `θ ← θ(1 − lr·wd)` before the update.
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.0.weight_decay = weight_decay;
        self
    }

    /// L1 penalty coefficient (>= 0): adds `l1·sign(θ)` to the gradient.
    pub fn l1(mut self, l1: f64) -> Self {
        self.0.l1 = l1;
        self
    }

    /// L2 penalty coefficient (>= 0): adds `l2·θ` to the gradient (PyTorch's SGD `weight_decay`).
    pub fn l2(mut self, l2: f64) -> Self {
        self.0.l2 = l2;
        self
    }

    /// Checks the configuration.
    pub fn build(self) -> Result<SgdConfig> {
        self.0.validate()?;
        Ok(self.0)
    }
}

#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct SgdHyper<T> {
    lr: T,
    decay: T,
    momentum: T,
    one_minus_dampening: T,
    nesterov: bool,
    first: bool,
}

impl Rule for SgdConfig {
    const KIND: &'static str = "sgd";
    type Hyper<T: Scalar> = SgdHyper<T>;

    fn validate(&self) -> Result<()> {
        const W: &str = "SGD";
        check_non_negative(W, "lr", self.lr)?;
        check_non_negative(W, "momentum", self.momentum)?;
        if !(0.0..=1.0).contains(&self.dampening) {
            return Err(OptimError::config(
                W,
                "dampening",
                self.dampening,
                "must be in [0, 1]",
            ));
        }
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(OptimError::config(
                W,
                "nesterov",
                true,
                "needs momentum > 0 and dampening = 0",
            ));
        }
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
        if self.momentum > 0.0 {
            &["momentum_buffer"]
        } else {
            &[]
        }
    }

    fn prepare<T: Scalar>(&self, ctx: &StepCtx) -> SgdHyper<T> {
        SgdHyper {
            lr: T::from_f64_lossy(ctx.lr),
            decay: T::from_f64_lossy(1.0 - ctx.lr * ctx.weight_decay),
            momentum: T::from_f64_lossy(self.momentum),
            one_minus_dampening: T::from_f64_lossy(1.0 - self.dampening),
            nesterov: self.nesterov,
            first: ctx.step == 1,
        }
    }

    fn update<T: Scalar>(
        h: &SgdHyper<T>,
        pre: &GradPre<T>,
        p: &mut [T],
        g: &[T],
        slots: &mut [&mut [T]],
    ) {
        if slots.is_empty() {
            sgd_plain(h, pre, p, g);
        } else {
            let [buf] = slots_n::<T, 1>(slots);
            sgd_momentum(h, pre, p, g, buf);
        }
    }
}

#[inline(always)]
fn sgd_plain_body<T: Scalar>(h: &SgdHyper<T>, pre: &GradPre<T>, p: &mut [T], g: &[T]) {
    for (p, &g) in p.iter_mut().zip(g) {
        let d = pre.apply(*p, g);
        *p = *p * h.decay - h.lr * d;
    }
}

#[inline(always)]
fn sgd_momentum_body<T: Scalar>(
    h: &SgdHyper<T>,
    pre: &GradPre<T>,
    p: &mut [T],
    g: &[T],
    buf: &mut [T],
) {
    for ((p, &g), b) in p.iter_mut().zip(g).zip(buf.iter_mut()) {
        let d = pre.apply(*p, g);
        *b = if h.first {
            d
        } else {
            h.momentum * *b + h.one_minus_dampening * d
        };
        let dir = if h.nesterov { d + h.momentum * *b } else { *b };
        *p = *p * h.decay - h.lr * dir;
    }
}

multiversion! {
    fn sgd_plain<T>(h: &SgdHyper<T>, pre: &GradPre<T>, p: &mut [T], g: &[T]) = sgd_plain_body;
}
multiversion! {
    fn sgd_momentum<T>(h: &SgdHyper<T>, pre: &GradPre<T>, p: &mut [T], g: &[T], buf: &mut [T]) = sgd_momentum_body;
}
