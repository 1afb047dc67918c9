//! Learning-rate schedules: the learning rate of step `t` as a function of `t` and a group's base rate.
//!
//! Each schedule is the closed form of its PyTorch counterpart in `torch.optim.lr_scheduler`, with
//! `t` the number of optimizer steps already taken (the first step uses `t = 0`, as PyTorch does
//! when `scheduler.step()` follows `optimizer.step()`):
//!
//! | schedule | lr(t) | PyTorch |
//! |---|---|---|
//! | [`Constant`](LrSchedule::Constant) | `base` | — |
//! | [`Step`](LrSchedule::Step) | `base · γ^⌊t / step_size⌋` | `StepLR` |
//! | [`Exponential`](LrSchedule::Exponential) | `base · γ^t` | `ExponentialLR` |
//! | [`Cosine`](LrSchedule::Cosine) | `min + (base − min)(1 + cos(π t / T)) / 2`, then `min` | `CosineAnnealingLR` |
//! | [`Linear`](LrSchedule::Linear) | `base · (s + (e − s) · min(t, T) / T)` | `LinearLR` |
//! | [`Warmup`](LrSchedule::Warmup) | `base · (s + (1 − s) t / W)` for `t < W`, then `then(t − W)` | `SequentialLR(LinearLR, …)` |
//!
//! `Warmup` composes with any schedule (including another warmup), so "linear warmup then cosine
//! decay" is [`LrSchedule::warmup_cosine`]. Schedules are plain data (serde), saved with the
//! optimizer's state. Build them with the constructors, which check their arguments.
//!
//! ```
//! use fm_optim::LrSchedule;
//!
//! let s = LrSchedule::warmup_cosine(100, 1000, 1e-5)?;
//! assert_eq!(s.lr(0, 3e-4), 0.0);
//! assert!((s.lr(50, 3e-4) - 1.5e-4).abs() < 1e-12);
//! assert_eq!(s.lr(100, 3e-4), 3e-4);
//! assert!((s.lr(1000, 3e-4) - 1e-5).abs() < 1e-12);
//! # Ok::<(), fm_optim::OptimError>(())
//! ```

use serde::{Deserialize, Serialize};

use crate::error::{check_non_negative, OptimError, Result};

/// A learning-rate schedule (see the module doc for the formulas).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LrSchedule {
    /// The base learning rate throughout.
    #[default]
    Constant,
    /// Multiply by `gamma` every `step_size` steps.
    Step {
        /// Steps between decays (>= 1).
        step_size: u64,
        /// Decay factor (> 0).
        gamma: f64,
    },
    /// Multiply by `gamma` every step.
    Exponential {
        /// Decay factor (> 0).
        gamma: f64,
    },
    /// Cosine from the base rate down to `min_lr` over `total_steps`, then `min_lr`.
    Cosine {
        /// Length of the decay (>= 1).
        total_steps: u64,
        /// The final learning rate (absolute, >= 0).
        min_lr: f64,
    },
    /// A factor going linearly from `start_factor` to `end_factor` over `total_steps`, then
    /// `end_factor`. `start_factor = 1, end_factor = 0` is linear decay to zero.
    Linear {
        /// Factor at step 0 (>= 0).
        start_factor: f64,
        /// Factor from `total_steps` on (>= 0).
        end_factor: f64,
        /// Length of the ramp (>= 1).
        total_steps: u64,
    },
    /// Linear warmup from `start_factor · base` to `base` over `steps`, then `then` (counted from the
    /// end of the warmup).
    Warmup {
        /// Warmup length (>= 1).
        steps: u64,
        /// Factor at step 0, in [0, 1].
        start_factor: f64,
        /// The schedule after the warmup.
        then: Box<LrSchedule>,
    },
}

const WHAT: &str = "LrSchedule";

fn check_steps(field: &'static str, v: u64) -> Result<()> {
    if v == 0 {
        return Err(OptimError::config(WHAT, field, v, "must be >= 1"));
    }
    Ok(())
}

fn check_gamma(v: f64) -> Result<()> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(OptimError::config(
            WHAT,
            "gamma",
            v,
            "must be finite and > 0",
        ))
    }
}

impl LrSchedule {
    /// `StepLR`: multiply by `gamma` every `step_size` steps.
    pub fn step(step_size: u64, gamma: f64) -> Result<Self> {
        let s = LrSchedule::Step { step_size, gamma };
        s.validate()?;
        Ok(s)
    }

    /// `ExponentialLR`: multiply by `gamma` every step.
    pub fn exponential(gamma: f64) -> Result<Self> {
        let s = LrSchedule::Exponential { gamma };
        s.validate()?;
        Ok(s)
    }

    /// `CosineAnnealingLR` over `total_steps`, ending at `min_lr`.
    pub fn cosine(total_steps: u64, min_lr: f64) -> Result<Self> {
        let s = LrSchedule::Cosine {
            total_steps,
            min_lr,
        };
        s.validate()?;
        Ok(s)
    }

    /// `LinearLR`: the factor ramps from `start_factor` to `end_factor` over `total_steps`.
    pub fn linear(start_factor: f64, end_factor: f64, total_steps: u64) -> Result<Self> {
        let s = LrSchedule::Linear {
            start_factor,
            end_factor,
            total_steps,
        };
        s.validate()?;
        Ok(s)
    }

    /// Linear decay from the base rate to 0 over `total_steps`.
    pub fn linear_decay(total_steps: u64) -> Result<Self> {
        LrSchedule::linear(1.0, 0.0, total_steps)
    }

    /// Linear warmup over `steps` from `start_factor · base`, then `then`.
    pub fn warmup(steps: u64, start_factor: f64, then: LrSchedule) -> Result<Self> {
        let s = LrSchedule::Warmup {
            steps,
            start_factor,
            then: Box::new(then),
        };
        s.validate()?;
        Ok(s)
    }

    /// Linear warmup from 0 over `warmup_steps`, then cosine decay to `min_lr` at `total_steps`
    /// (counted from the start, warmup included).
    pub fn warmup_cosine(warmup_steps: u64, total_steps: u64, min_lr: f64) -> Result<Self> {
        if total_steps <= warmup_steps {
            return Err(OptimError::config(
                WHAT,
                "total_steps",
                total_steps,
                "must exceed the warmup steps",
            ));
        }
        LrSchedule::warmup(
            warmup_steps,
            0.0,
            LrSchedule::cosine(total_steps - warmup_steps, min_lr)?,
        )
    }

    /// Checks every argument (constructors do this; use it for schedules built or read otherwise).
    pub fn validate(&self) -> Result<()> {
        match self {
            LrSchedule::Constant => Ok(()),
            LrSchedule::Step { step_size, gamma } => {
                check_steps("step_size", *step_size)?;
                check_gamma(*gamma)
            }
            LrSchedule::Exponential { gamma } => check_gamma(*gamma),
            LrSchedule::Cosine {
                total_steps,
                min_lr,
            } => {
                check_steps("total_steps", *total_steps)?;
                check_non_negative(WHAT, "min_lr", *min_lr)
            }
            LrSchedule::Linear {
                start_factor,
                end_factor,
                total_steps,
            } => {
                check_steps("total_steps", *total_steps)?;
                check_non_negative(WHAT, "start_factor", *start_factor)?;
                check_non_negative(WHAT, "end_factor", *end_factor)
            }
            LrSchedule::Warmup {
                steps,
                start_factor,
                then,
            } => {
                check_steps("steps", *steps)?;
                if !(0.0..=1.0).contains(start_factor) {
                    return Err(OptimError::config(
                        WHAT,
                        "start_factor",
                        start_factor,
                        "must be in [0, 1]",
                    ));
                }
                then.validate()
            }
        }
    }

    /// The learning rate of step `t` (0-based) for a group whose base rate is `base`.
    pub fn lr(&self, t: u64, base: f64) -> f64 {
        match self {
            LrSchedule::Constant => base,
            LrSchedule::Step { step_size, gamma } => base * gamma.powi(exponent(t / step_size)),
            LrSchedule::Exponential { gamma } => base * gamma.powi(exponent(t)),
            LrSchedule::Cosine {
                total_steps,
                min_lr,
            } => {
                if t >= *total_steps {
                    return *min_lr;
                }
                let progress = t as f64 / *total_steps as f64;
                min_lr + (base - min_lr) * (1.0 + (std::f64::consts::PI * progress).cos()) / 2.0
            }
            LrSchedule::Linear {
                start_factor,
                end_factor,
                total_steps,
            } => {
                let progress = t.min(*total_steps) as f64 / *total_steps as f64;
                base * (start_factor + (end_factor - start_factor) * progress)
            }
            LrSchedule::Warmup {
                steps,
                start_factor,
                then,
            } => {
                if t < *steps {
                    base * (start_factor + (1.0 - start_factor) * t as f64 / *steps as f64)
                } else {
                    then.lr(t - steps, base)
                }
            }
        }
    }
}

/// A step count as a `powi` exponent (saturating: beyond 2^31 steps any decay has reached 0 or ∞).
fn exponent(n: u64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_forms() {
        let s = LrSchedule::step(3, 0.5).unwrap();
        let lrs: Vec<f64> = (0..7).map(|t| s.lr(t, 1.0)).collect();
        assert_eq!(lrs, [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]);
        let s = LrSchedule::exponential(0.9).unwrap();
        assert!((s.lr(2, 2.0) - 1.62).abs() < 1e-15);
        let s = LrSchedule::linear_decay(4).unwrap();
        let lrs: Vec<f64> = (0..6).map(|t| s.lr(t, 1.0)).collect();
        assert_eq!(lrs, [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]);
        let s = LrSchedule::cosine(10, 0.1).unwrap();
        assert_eq!(s.lr(0, 1.0), 1.0);
        assert!((s.lr(5, 1.0) - 0.55).abs() < 1e-15);
        assert_eq!(s.lr(10, 1.0), 0.1);
        assert_eq!(s.lr(11, 1.0), 0.1);
    }

    #[test]
    fn warmup_composes_with_any_schedule() {
        let s = LrSchedule::warmup(4, 0.25, LrSchedule::step(2, 0.1).unwrap()).unwrap();
        let lrs: Vec<f64> = (0..8).map(|t| s.lr(t, 1.0)).collect();
        let expected = [0.25, 0.4375, 0.625, 0.8125, 1.0, 1.0, 0.1, 0.1];
        for (a, b) in lrs.iter().zip(expected) {
            assert!((a - b).abs() < 1e-15, "{lrs:?}");
        }
        let nested = LrSchedule::warmup(2, 0.0, s).unwrap();
        assert_eq!(nested.lr(2, 1.0), 0.25);
    }

    #[test]
    fn bad_arguments_are_refused() {
        assert!(LrSchedule::step(0, 0.5).is_err());
        assert!(LrSchedule::exponential(-1.0).is_err());
        assert!(LrSchedule::cosine(10, -1.0).is_err());
        assert!(LrSchedule::warmup(5, 1.5, LrSchedule::Constant).is_err());
        assert!(LrSchedule::warmup_cosine(10, 10, 0.0).is_err());
        let e = LrSchedule::linear(f64::NAN, 0.0, 3).unwrap_err();
        assert!(e.to_string().contains("start_factor"), "{e}");
    }

    #[test]
    fn serde_round_trip() {
        let s = LrSchedule::warmup_cosine(10, 100, 1e-5).unwrap();
        let json = serde_json::to_string(&s).unwrap();
        let back: LrSchedule = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
    }
}
