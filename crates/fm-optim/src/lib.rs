//! # fm-optim
//!
//! Optimizers for gradient-based training — SGD (momentum, dampening, Nesterov), Adam (with AMSGrad),
//! AdamW, RMSprop (centered, momentum) and Adagrad — with parameter groups, L1/L2 penalties kept apart
//! from decoupled weight decay, gradient clipping, learning-rate schedules, and state you can save and
//! resume bit-exactly. The update rules are the ones PyTorch documents for `torch.optim`, so the
//! trajectories are the ones you know (the tests compare 20-step trajectories with PyTorch's).
//!
//! fm-optim speaks plain [`ndarray`]: it updates `(name, value, gradient)` triples, whatever produced
//! the gradients. With the default `fm-tensor` feature it also steps fm-tensor's `ParamStore`
//! directly and writes its state as safetensors files; `default-features = false` leaves a crate that
//! needs only ndarray, rayon and serde.
//!
//! ## A first example
//!
//! Fit `y = 2x + 1` by least squares with Adam, gradients written out by hand:
//!
//! ```
//! use fm_optim::{Adam, AdamConfig, LrSchedule, NamedParam, Optimizer};
//! use ndarray::array;
//!
//! let (xs, ys) = ([0.0f64, 1.0, 2.0, 3.0], [1.0f64, 3.0, 5.0, 7.0]);
//! let mut theta = array![0.0f64, 0.0].into_dyn(); // [intercept, slope]
//! let mut grad = theta.clone();
//! let mut adam = Adam::new(AdamConfig::builder().lr(0.1).build()?)
//!     .with_schedule(LrSchedule::cosine(2000, 0.0)?)?;
//! for _ in 0..2000 {
//!     grad.fill(0.0);
//!     for (x, y) in xs.iter().zip(ys) {
//!         let residual = theta[0] + theta[1] * x - y;
//!         grad[0] += 2.0 * residual / 4.0;
//!         grad[1] += 2.0 * residual * x / 4.0;
//!     }
//!     adam.step(&mut [NamedParam::new("theta", theta.view_mut(), grad.view_mut())])?;
//! }
//! assert!((theta[0] - 1.0).abs() < 1e-4 && (theta[1] - 2.0).abs() < 1e-4);
//! # Ok::<(), fm_optim::OptimError>(())
//! ```
//!
//! ## Where to look next
//!
//! 1. [`Optimizer`], the trait every optimizer implements, and [`Optim`], the type behind the
//!    aliases [`Sgd`], [`Adam`], [`AdamW`], [`RmsProp`], [`Adagrad`]; each algorithm's module
//!    ([`sgd`], [`adam`], [`rmsprop`], [`adagrad`]) states its update rule.
//! 2. Configurations are built and checked by builders: [`SgdConfig::builder`],
//!    [`AdamConfig::builder`], [`AdamConfig::adamw`], [`RmsPropConfig::builder`],
//!    [`AdagradConfig::builder`].
//! 3. [`Params`]: how parameters are handed over ([`NamedParam`], fm-tensor's `ParamStore`, your own).
//! 4. [`ParamGroup`] for per-group learning rates and decay, [`LrSchedule`] for schedules,
//!    [`GradClip`] and [`NonFinitePolicy`] for clipping and NaN handling.
//! 5. [`state`] for saving and resuming.
//!
//! ## Regularisation, three ways
//!
//! - `l2`: adds `l2·θ` to the gradient (the penalty `½·l2·‖θ‖²`); PyTorch's `weight_decay` for SGD,
//!   Adam, RMSprop and Adagrad.
//! - `l1`: adds `l1·sign(θ)` to the gradient (the penalty `l1·‖θ‖₁`).
//! - `weight_decay`: decoupled decay `θ ← θ(1 − lr·wd)` applied beside the update, as AdamW does
//!   (and for the other algorithms too, where it gives SGDW and friends).
//!
//! Adaptive methods rescale the penalty gradients like any other gradient; decoupled decay is not
//! rescaled. That is the difference between Adam with `l2` and AdamW.
//!
//! ## Performance and determinism
//!
//! Every update is one fused pass over a parameter, its gradient and its state, vectorised (AVX-512 or
//! AVX2 chosen at run time) and split into fixed chunks over rayon threads for parameters of 64 Ki
//! elements or more. Elements are independent and norms are summed over fixed chunks in a fixed
//! order, so results are bitwise the same for any number of threads. After the first step (which
//! allocates each parameter's state), a step allocates nothing.

pub mod adagrad;
pub mod adam;
pub mod clip;
pub mod error;
pub mod group;
pub mod optim;
pub mod params;
pub mod rmsprop;
pub mod rule;
pub mod scalar;
pub mod schedule;
pub mod sgd;
pub mod state;

pub use adagrad::{AdagradBuilder, AdagradConfig};
pub use adam::{AdamBuilder, AdamConfig};
pub use clip::{clip_grad_norm, clip_grad_value, global_grad_norm, GradClip, NonFinitePolicy};
pub use error::{OptimError, Result};
pub use group::ParamGroup;
pub use optim::{Optim, Optimizer, StepReport};
pub use params::{NamedParam, ParamRef, Params};
pub use rmsprop::{RmsPropBuilder, RmsPropConfig};
pub use rule::Rule;
pub use scalar::Scalar;
pub use schedule::LrSchedule;
pub use sgd::{SgdBuilder, SgdConfig};
pub use state::{OptimizerState, ParamMeta, StateMeta};

/// Stochastic gradient descent (see [`sgd`]).
pub type Sgd<T = f32> = Optim<T, SgdConfig>;
/// Adam (see [`adam`]).
pub type Adam<T = f32> = Optim<T, AdamConfig>;
/// AdamW: Adam with decoupled weight decay; configure it with [`AdamConfig::adamw`] (see [`adam`]).
pub type AdamW<T = f32> = Optim<T, AdamConfig>;
/// RMSprop (see [`rmsprop`]).
pub type RmsProp<T = f32> = Optim<T, RmsPropConfig>;
/// Adagrad (see [`adagrad`]).
pub type Adagrad<T = f32> = Optim<T, AdagradConfig>;
