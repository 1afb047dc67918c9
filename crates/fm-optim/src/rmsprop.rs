//! RMSprop, plain or centered, with optional momentum — PyTorch's `torch.optim.RMSprop`:
//!
//! ```text
//! g ← g + l2·θ + l1·sign(θ);  θ ← θ · (1 − lr·weight_decay)
//! s ← α·s + (1 − α)·g²
//! centered: a ← a + (1 − α)(g − a);  σ ← √max(s − a², 0) + ε    else σ ← √s + ε
//! momentum μ > 0: b ← μ·b + g/σ;  θ ← θ − lr·b                   else θ ← θ − lr·g/σ
//! ```
//!
//! The `max(·, 0)` guards the centered variance against rounding below zero (where PyTorch would
//! produce NaN).

use serde::{Deserialize, Serialize};

use crate::error::{check_non_negative, check_positive, check_unit_interval, Result};
use crate::rule::{multiversion, GradPre, GroupDefaults, Rule, StepCtx};
use crate::scalar::Scalar;

/// RMSprop hyper-parameters; build with [`RmsPropConfig::builder`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RmsPropConfig {
    lr: f64,
    alpha: f64,
    eps: f64,
    momentum: f64,
    centered: bool,
    weight_decay: f64,
    l1: f64,
    l2: f64,
}

impl Default for RmsPropConfig {
    /// PyTorch's defaults: `lr = 1e-2`, `alpha = 0.99`, `eps = 1e-8`, no momentum, not centered.
    fn default() -> Self {
        RmsPropConfig {
            lr: 1e-2,
            alpha: 0.99,
            eps: 1e-8,
            momentum: 0.0,
            centered: false,
            weight_decay: 0.0,
            l1: 0.0,
            l2: 0.0,
        }
    }
}

/// Builds a validated [`RmsPropConfig`].
#[derive(Debug, Clone)]
pub struct RmsPropBuilder(RmsPropConfig);

impl RmsPropConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> RmsPropBuilder {
        RmsPropBuilder(RmsPropConfig::default())
    }

    /// Base learning rate.
    pub fn lr(&self) -> f64 {
        self.lr
    }
}

impl RmsPropBuilder {
    /// Learning rate (>= 0).
    pub fn lr(mut self, lr: f64) -> Self {
        self.0.lr = lr;
        self
    }

    /// Smoothing constant α, in [0, 1).
    pub fn alpha(mut self, alpha: f64) -> Self {
        self.0.alpha = alpha;
        self
    }

    /// ε (> 0).
    pub fn eps(mut self, eps: f64) -> Self {
        self.0.eps = eps;
        self
    }

    /// Momentum factor (>= 0).
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.0.momentum = momentum;
        self
    }

    /// Centered RMSprop: normalise by the estimated variance instead of the second moment.
    pub fn centered(mut self, centered: bool) -> Self {
        self.0.centered = centered;
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

    /// L2 penalty coefficient (>= 0): PyTorch's `RMSprop(weight_decay=…)`.
    pub fn l2(mut self, l2: f64) -> Self {
        self.0.l2 = l2;
        self
    }

    /// Checks the configuration.
    pub fn build(self) -> Result<RmsPropConfig> {
        self.0.validate()?;
        Ok(self.0)
    }
}

#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct RmsPropHyper<T> {
    lr: T,
    decay: T,
    alpha: T,
    one_minus_alpha: T,
    eps: T,
    momentum: T,
}

impl Rule for RmsPropConfig {
    const KIND: &'static str = "rmsprop";
    type Hyper<T: Scalar> = RmsPropHyper<T>;

    fn validate(&self) -> Result<()> {
        const W: &str = "RMSprop";
        check_non_negative(W, "lr", self.lr)?;
        check_unit_interval(W, "alpha", self.alpha)?;
        check_positive(W, "eps", self.eps)?;
        check_non_negative(W, "momentum", self.momentum)?;
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
        match (self.centered, self.momentum > 0.0) {
            (false, false) => &["square_avg"],
            (true, false) => &["square_avg", "grad_avg"],
            (false, true) => &["square_avg", "momentum_buffer"],
            (true, true) => &["square_avg", "grad_avg", "momentum_buffer"],
        }
    }

    fn prepare<T: Scalar>(&self, ctx: &StepCtx) -> RmsPropHyper<T> {
        RmsPropHyper {
            lr: T::from_f64_lossy(ctx.lr),
            decay: T::from_f64_lossy(1.0 - ctx.lr * ctx.weight_decay),
            alpha: T::from_f64_lossy(self.alpha),
            one_minus_alpha: T::from_f64_lossy(1.0 - self.alpha),
            eps: T::from_f64_lossy(self.eps),
            momentum: T::from_f64_lossy(self.momentum),
        }
    }

    fn update<T: Scalar>(
        h: &RmsPropHyper<T>,
        pre: &GradPre<T>,
        p: &mut [T],
        g: &[T],
        slots: &mut [&mut [T]],
    ) {
        // The slot list's length tells the variant: see `slots`.
        match slots {
            [s] => rmsprop::<T>(h, pre, p, g, s, &mut [], &mut []),
            [s, x] => {
                // Either the centered average or the momentum buffer: the config decides, and the
                // hyper-parameters carry no flag, so tell them apart by momentum.
                if h.momentum > T::zero() {
                    rmsprop::<T>(h, pre, p, g, s, &mut [], x)
                } else {
                    rmsprop::<T>(h, pre, p, g, s, x, &mut [])
                }
            }
            [s, a, b] => rmsprop::<T>(h, pre, p, g, s, a, b),
            _ => unreachable!("RMSprop keeps one to three slots"),
        }
    }
}

/// One body for all four variants: an empty `grad_avg` means not centered, an empty `buf` means no
/// momentum (the branches are loop-invariant).
#[inline(always)]
fn rmsprop_body<T: Scalar>(
    h: &RmsPropHyper<T>,
    pre: &GradPre<T>,
    p: &mut [T],
    g: &[T],
    square_avg: &mut [T],
    grad_avg: &mut [T],
    buf: &mut [T],
) {
    let n = p.len();
    let (g, square_avg) = (&g[..n], &mut square_avg[..n]);
    let centered = !grad_avg.is_empty();
    let with_momentum = !buf.is_empty();
    for i in 0..n {
        let d = pre.apply(p[i], g[i]);
        let theta = p[i] * h.decay;
        let s = h.alpha * square_avg[i] + h.one_minus_alpha * d * d;
        square_avg[i] = s;
        let avg = if centered {
            let a = grad_avg[i] + h.one_minus_alpha * (d - grad_avg[i]);
            grad_avg[i] = a;
            let var = s - a * a;
            (if var > T::zero() { var } else { T::zero() }).sqrt() + h.eps
        } else {
            s.sqrt() + h.eps
        };
        p[i] = if with_momentum {
            let b = h.momentum * buf[i] + d / avg;
            buf[i] = b;
            theta - h.lr * b
        } else {
            theta - h.lr * (d / avg)
        };
    }
}

multiversion! {
    fn rmsprop<T>(
        h: &RmsPropHyper<T>,
        pre: &GradPre<T>,
        p: &mut [T],
        g: &[T],
        square_avg: &mut [T],
        grad_avg: &mut [T],
        buf: &mut [T],
    ) = rmsprop_body;
}
