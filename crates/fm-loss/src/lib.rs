//! # fm-loss
//!
//! Loss functions with their gradients, numerically stable, as kernels on plain [`ndarray`] arrays and
//! as ops on fm-tensor's autograd tape. Use it inside a training loop of your own — with fm-tensor's
//! tape, or with any code that produces predictions as ndarray arrays and wants `(loss, ∂loss/∂pred)`.
//!
//! ## A first example
//!
//! Cross-entropy of a batch of logits against class indices, value and gradient:
//!
//! ```
//! use fm_loss::{cross_entropy, cross_entropy_backward, CrossEntropyOptions};
//! use ndarray::array;
//!
//! let logits = array![[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]].into_dyn();
//! let targets = [0usize, 1];
//! let options = CrossEntropyOptions::default().label_smoothing(0.1);
//! let loss = cross_entropy(logits.view(), &targets, &options)?[[]];
//! let one = ndarray::arr0(1.0).into_dyn();
//! let grad = cross_entropy_backward(logits.view(), &targets, one.view(), &options)?;
//! assert!(loss > 0.0 && grad.shape() == [2, 3]);
//! # Ok::<(), fm_loss::LossError>(())
//! ```
//!
//! ## The losses
//!
//! | loss | value | gradient | on the tape |
//! |---|---|---|---|
//! | mean squared error | [`mse`] | [`mse_backward`] | [`autograd::mse`] |
//! | mean absolute error | [`mae`] | [`mae_backward`] | [`autograd::mae`] |
//! | Huber / smooth L1 | [`huber`], [`smooth_l1`] | [`huber_backward`], [`smooth_l1_backward`] | [`autograd::huber`], [`autograd::smooth_l1`] |
//! | cross-entropy, class indices | [`cross_entropy()`] | [`cross_entropy_backward`] | [`autograd::cross_entropy`] |
//! | cross-entropy, fused (LM vocabularies) | [`fused_cross_entropy`], [`fused_cross_entropy_in_place`] | (same call) | [`autograd::cross_entropy`] |
//! | cross-entropy, probability targets | [`cross_entropy_with_probs`] | [`cross_entropy_with_probs_backward`] | [`autograd::cross_entropy_with_probs`] |
//! | negative log-likelihood | [`nll_loss`] | [`nll_loss_backward`] | [`autograd::nll_loss`] |
//! | binary cross-entropy with logits | [`bce_with_logits`] | [`bce_with_logits_backward`] | [`autograd::bce_with_logits`] |
//! | hinge (±1 labels) / multiclass hinge | [`hinge()`], [`multi_margin`] | [`hinge_backward`], [`multi_margin_backward`] | [`autograd::hinge`], [`autograd::multi_margin`] |
//! | KL divergence | [`kl_div`] | [`kl_div_backward`] | [`autograd::kl_div`] |
//!
//! Formulas, options and defaults follow PyTorch's `torch.nn.functional` (the crate's tests compare
//! with values PyTorch computed), with two deliberate differences: the class axis is the **last** one
//! (`[N, C]`, `[B, T, V]`), and there is no default `ignore_index` (PyTorch's is −100; set it with
//! [`CrossEntropyOptions::ignore_index`]).
//!
//! ## Where to look next
//!
//! 1. [`Reduction`]: none, sum, mean — and what "mean" divides by when targets are ignored or
//!    weighted.
//! 2. [`cross_entropy`](mod@cross_entropy): the numerics (±1e4 logits, masked classes, fully ignored
//!    batches) and the fused kernel's memory contract.
//! 3. [`autograd`]: the same losses on fm-tensor's tape, through its public `CustomOp` extension point.
//! 4. [`LossError`]: every way a call can be refused.
//!
//! ## Numerics and determinism
//!
//! Softmax-based losses shift each row by its maximum; binary losses use `softplus`, which never takes
//! the log of 0. Finite inputs give finite outputs — never NaN — and cases without a defined value
//! (a mean over zero targets, a row whose log-sum-exp is not finite) are errors. Sums are accumulated
//! in `f64` in a fixed order; rows run in parallel only where each row's result is independent, so
//! every result is bitwise the same for any number of threads.

pub mod autograd;
pub mod binary;
pub mod cross_entropy;
pub mod error;
pub mod hinge;
pub mod kl;
pub mod nll;
mod pointwise;
pub mod reduction;
pub mod regression;
mod row_kernels;
pub mod targets;

pub use binary::{
    bce_with_logits, bce_with_logits_backward, bce_with_logits_backward_targets, BceOptions,
};
pub use cross_entropy::{
    cross_entropy, cross_entropy_backward, cross_entropy_with_probs,
    cross_entropy_with_probs_backward, cross_entropy_with_probs_backward_probs,
    fused_cross_entropy, fused_cross_entropy_in_place, CrossEntropyOptions,
};
pub use error::{LossError, Result};
pub use hinge::{
    hinge, hinge_backward, multi_margin, multi_margin_backward, HingeOptions, MultiMarginOptions,
};
pub use kl::{kl_div, kl_div_backward, kl_div_backward_target, KlDivOptions, KlReduction};
pub use nll::{nll_loss, nll_loss_backward, NllOptions};
pub use reduction::Reduction;
pub use regression::{
    huber, huber_backward, mae, mae_backward, mse, mse_backward, smooth_l1, smooth_l1_backward,
    HuberOptions,
};
pub use targets::{ClassIndex, ClassTargets};
