//! Every loss as an op on fm-tensor's autograd tape.
//!
//! The functions here take [`Var`]s, compute the loss with this crate's kernels and record a
//! [`LossOp`] — an ordinary [`CustomOp`], the same extension point a user's own op goes through — so
//! that `tape.backward(loss)` reaches the predictions (and real-valued targets passed as `Var`s).
//! Discrete targets (class indices, ±1 labels) are plain arrays kept by the op.
//!
//! ```
//! use fm_loss::{autograd, CrossEntropyOptions};
//! use fm_tensor::autograd::{ParamStore, Tape};
//! use ndarray::array;
//!
//! let mut params = ParamStore::<f64>::new();
//! let w = params.add("w", array![[0.1, -0.2, 0.0], [0.3, 0.1, -0.1]])?;
//! let x = array![[1.0, 2.0], [0.5, -1.0]];
//! let tape = Tape::new();
//! let logits = tape.constant(x).matmul(tape.param(&params, w)?)?; // [2, 3]
//! let loss = autograd::cross_entropy(logits, &[2usize, 0], &CrossEntropyOptions::default())?;
//! params.accumulate(&tape.backward(loss)?)?;
//! assert_eq!(params.grad(w).unwrap().shape(), &[2, 3]);
//! # Ok::<(), fm_loss::LossError>(())
//! ```
//!
//! ## Memory of the cross-entropy op
//!
//! When the tape records gradients and the logits need one, [`cross_entropy`] runs the fused kernel
//! in the forward pass and keeps its gradient (one array of the logits' shape) until the backward pass
//! hands it to the tape, rescaled in place by the output gradient when that is not 1. There is no other
//! logits-sized buffer. On a no-grad tape only the loss is computed.

use std::sync::{Arc, Mutex, PoisonError};

use fm_tensor::autograd::{BackwardContext, CustomOp, Var};
use fm_tensor::{Element, Tensor, TensorError};
use ndarray::{ArrayD, ArrayViewD, IxDyn};

use crate::binary::{bce_with_logits_backward_targets, BceOptions};
use crate::cross_entropy::{cross_entropy_with_probs_backward_probs, CrossEntropyOptions};
use crate::error::{LossError, Result};
use crate::hinge::{HingeOptions, MultiMarginOptions};
use crate::kl::{kl_div_backward_target, KlDivOptions};
use crate::nll::NllOptions;
use crate::reduction::Reduction;
use crate::regression::HuberOptions;
use crate::targets::{ClassIndex, ClassTargets};

type ValueFn<T> = Box<dyn Fn(&[ArrayViewD<'_, T>]) -> Result<ArrayD<T>> + Send + Sync>;
type GradFn<T> =
    Box<dyn Fn(&BackwardContext<'_, T>) -> Result<Vec<Option<ArrayD<T>>>> + Send + Sync>;

/// A loss recorded on a tape: the [`CustomOp`] adapter behind every function of this module.
///
/// Build one with a constructor named after its loss and record it with
/// [`Tape::apply`](fm_tensor::Tape::apply) (the functions of this module do exactly that, and also
/// report bad input as a [`LossError`] rather than a [`TensorError`]). Inputs are, in order, the
/// predictions and, for losses with real-valued targets, the targets.
pub struct LossOp<T: Element> {
    name: &'static str,
    value: ValueFn<T>,
    grads: GradFn<T>,
    /// The forward value when the recording function already computed it.
    precomputed: Option<ArrayD<T>>,
}

impl<T: Element> CustomOp<T> for LossOp<T> {
    fn name(&self) -> &str {
        self.name
    }

    fn forward(&mut self, inputs: &[ArrayViewD<'_, T>]) -> fm_tensor::Result<ArrayD<T>> {
        if let Some(value) = self.precomputed.take() {
            return Ok(value);
        }
        Ok((self.value)(inputs)?)
    }

    fn backward(&self, ctx: &BackwardContext<'_, T>) -> fm_tensor::Result<Vec<Option<ArrayD<T>>>> {
        Ok((self.grads)(ctx)?)
    }
}

impl<T: Element> std::fmt::Debug for LossOp<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LossOp").field("name", &self.name).finish()
    }
}

type PairValue<T, O> = fn(ArrayViewD<'_, T>, ArrayViewD<'_, T>, &O) -> Result<ArrayD<T>>;
type PairGrad<T, O> =
    fn(ArrayViewD<'_, T>, ArrayViewD<'_, T>, ArrayViewD<'_, T>, &O) -> Result<ArrayD<T>>;

/// How a two-input loss differentiates with respect to its target.
enum TargetGrad<T, O> {
    /// ∂/∂target = −∂/∂input (losses of `input − target`).
    Negated,
    /// Its own kernel.
    Kernel(PairGrad<T, O>),
}

fn expect_inputs(name: &'static str, inputs: usize, expected: usize) -> Result<()> {
    if inputs != expected {
        return Err(LossError::Tensor(TensorError::Autograd(format!(
            "{name}: expected {expected} inputs, got {inputs}"
        ))));
    }
    Ok(())
}

impl<T: Element> LossOp<T> {
    /// A loss of two same-shaped inputs (prediction, target).
    fn pair<O: Send + Sync + 'static>(
        name: &'static str,
        options: O,
        value: PairValue<T, O>,
        grad_input: PairGrad<T, O>,
        grad_target: TargetGrad<T, O>,
    ) -> Self {
        let options = Arc::new(options);
        let for_value = Arc::clone(&options);
        LossOp {
            name,
            value: Box::new(move |x| {
                expect_inputs(name, x.len(), 2)?;
                value(x[0].view(), x[1].view(), &for_value)
            }),
            grads: Box::new(move |ctx| {
                expect_inputs(name, ctx.inputs.len(), 2)?;
                let (x, y, g) = (&ctx.inputs[0], &ctx.inputs[1], &ctx.grad_output);
                let dx = if ctx.needs_grad[0]
                    || (ctx.needs_grad[1] && matches!(grad_target, TargetGrad::Negated))
                {
                    Some(grad_input(x.view(), y.view(), g.view(), &options)?)
                } else {
                    None
                };
                let dy = match (&grad_target, ctx.needs_grad[1]) {
                    (_, false) => None,
                    (TargetGrad::Negated, true) => dx.as_ref().map(|d| d.mapv(|v| -v)),
                    (TargetGrad::Kernel(k), true) => {
                        Some(k(x.view(), y.view(), g.view(), &options)?)
                    }
                };
                Ok(vec![dx.filter(|_| ctx.needs_grad[0]), dy])
            }),
            precomputed: None,
        }
    }

    /// Mean squared error; inputs (prediction, target).
    pub fn mse(reduction: Reduction) -> Self {
        Self::pair(
            "mse",
            reduction,
            |x, y, r| crate::mse(x, y, *r),
            |x, y, g, r| crate::mse_backward(x, y, g, *r),
            TargetGrad::Negated,
        )
    }

    /// Mean absolute error; inputs (prediction, target).
    pub fn mae(reduction: Reduction) -> Self {
        Self::pair(
            "mae",
            reduction,
            |x, y, r| crate::mae(x, y, *r),
            |x, y, g, r| crate::mae_backward(x, y, g, *r),
            TargetGrad::Negated,
        )
    }

    /// Huber loss; inputs (prediction, target).
    pub fn huber(options: HuberOptions) -> Self {
        Self::pair(
            "huber",
            options,
            |x, y, o| crate::huber(x, y, o),
            |x, y, g, o| crate::huber_backward(x, y, g, o),
            TargetGrad::Negated,
        )
    }

    /// Smooth L1 loss with threshold `beta`; inputs (prediction, target).
    pub fn smooth_l1(beta: f64, reduction: Reduction) -> Self {
        Self::pair(
            "smooth_l1",
            (beta, reduction),
            |x, y, (b, r)| crate::smooth_l1(x, y, *b, *r),
            |x, y, g, (b, r)| crate::smooth_l1_backward(x, y, g, *b, *r),
            TargetGrad::Negated,
        )
    }

    /// Binary cross-entropy with logits; inputs (logits, targets).
    pub fn bce_with_logits(options: BceOptions) -> Self {
        Self::pair(
            "bce_with_logits",
            options,
            |x, y, o| crate::bce_with_logits(x, y, o),
            |x, y, g, o| crate::bce_with_logits_backward(x, y, g, o),
            TargetGrad::Kernel(|x, y, g, o| bce_with_logits_backward_targets(x, y, g, o)),
        )
    }

    /// KL divergence; inputs (log-probabilities, target).
    pub fn kl_div(options: KlDivOptions) -> Self {
        Self::pair(
            "kl_div",
            options,
            |x, y, o| crate::kl_div(x, y, o),
            |x, y, g, o| crate::kl_div_backward(x, y, g, o),
            TargetGrad::Kernel(|x, y, g, o| kl_div_backward_target(x, y, g, o)),
        )
    }

    /// Cross-entropy against probability targets; inputs (logits, probabilities).
    pub fn cross_entropy_with_probs(options: CrossEntropyOptions) -> Self {
        Self::pair(
            "cross_entropy_with_probs",
            options,
            |x, y, o| crate::cross_entropy_with_probs(x, y, o),
            |x, y, g, o| crate::cross_entropy_with_probs_backward(x, y, g, o),
            TargetGrad::Kernel(|x, y, g, o| cross_entropy_with_probs_backward_probs(x, y, g, o)),
        )
    }

    /// Binary hinge loss against fixed ±1 `labels`; one input (scores).
    pub fn hinge(labels: ArrayD<T>, options: HingeOptions) -> Self {
        let labels = Arc::new(labels);
        let for_value = Arc::clone(&labels);
        LossOp {
            name: "hinge",
            value: Box::new(move |x| {
                expect_inputs("hinge", x.len(), 1)?;
                crate::hinge(x[0].view(), for_value.view(), &options)
            }),
            grads: Box::new(move |ctx| {
                expect_inputs("hinge", ctx.inputs.len(), 1)?;
                let g = crate::hinge_backward(
                    ctx.inputs[0].view(),
                    labels.view(),
                    ctx.grad_output.view(),
                    &options,
                )?;
                Ok(vec![Some(g)])
            }),
            precomputed: None,
        }
    }

    /// Multiclass hinge loss against fixed class indices; one input (scores).
    pub fn multi_margin<'a, I: ClassIndex>(
        targets: impl Into<ClassTargets<'a, I>>,
        options: MultiMarginOptions,
    ) -> Self {
        let targets = Arc::new(owned_targets(targets.into()));
        let options = Arc::new(options);
        let (t2, o2) = (Arc::clone(&targets), Arc::clone(&options));
        LossOp {
            name: "multi_margin",
            value: Box::new(move |x| {
                expect_inputs("multi_margin", x.len(), 1)?;
                crate::multi_margin(x[0].view(), t2.view(), &o2)
            }),
            grads: Box::new(move |ctx| {
                expect_inputs("multi_margin", ctx.inputs.len(), 1)?;
                let g = crate::multi_margin_backward(
                    ctx.inputs[0].view(),
                    targets.view(),
                    ctx.grad_output.view(),
                    &options,
                )?;
                Ok(vec![Some(g)])
            }),
            precomputed: None,
        }
    }

    /// Negative log-likelihood against fixed class indices; one input (log-probabilities).
    pub fn nll_loss<'a, I: ClassIndex>(
        targets: impl Into<ClassTargets<'a, I>>,
        options: NllOptions,
    ) -> Self {
        let targets = Arc::new(owned_targets(targets.into()));
        let options = Arc::new(options);
        let (t2, o2) = (Arc::clone(&targets), Arc::clone(&options));
        LossOp {
            name: "nll_loss",
            value: Box::new(move |x| {
                expect_inputs("nll_loss", x.len(), 1)?;
                crate::nll_loss(x[0].view(), t2.view(), &o2)
            }),
            grads: Box::new(move |ctx| {
                expect_inputs("nll_loss", ctx.inputs.len(), 1)?;
                let g = crate::nll_loss_backward(
                    ctx.inputs[0].view(),
                    targets.view(),
                    ctx.grad_output.view(),
                    &options,
                )?;
                Ok(vec![Some(g)])
            }),
            precomputed: None,
        }
    }

    /// Cross-entropy against fixed class indices; one input (logits).
    ///
    /// With `fuse_gradient` (and a `Sum` or `Mean` reduction) the forward pass runs the fused kernel
    /// and keeps the gradient for the backward pass; without it the backward pass recomputes each
    /// row's log-sum-exp. Fuse when the tape records gradients for the logits.
    pub fn cross_entropy<'a, I: ClassIndex>(
        targets: impl Into<ClassTargets<'a, I>>,
        options: CrossEntropyOptions,
        fuse_gradient: bool,
    ) -> Self {
        let targets = Arc::new(owned_targets(targets.into()));
        let options = Arc::new(options);
        let fuse = fuse_gradient && options.reduction != Reduction::None;
        let saved: Arc<Mutex<Option<ArrayD<T>>>> = Arc::new(Mutex::new(None));
        let (t2, o2, s2) = (
            Arc::clone(&targets),
            Arc::clone(&options),
            Arc::clone(&saved),
        );
        LossOp {
            name: "cross_entropy",
            value: Box::new(move |x| {
                expect_inputs("cross_entropy", x.len(), 1)?;
                if !fuse {
                    return crate::cross_entropy(x[0].view(), t2.view(), &o2);
                }
                let mut grad = fm_tensor::buffers::zeroed_array(x[0].raw_dim());
                let loss =
                    crate::fused_cross_entropy(x[0].view(), t2.view(), &o2, grad.view_mut())?;
                *s2.lock().unwrap_or_else(PoisonError::into_inner) = Some(grad);
                Ok(loss)
            }),
            grads: Box::new(move |ctx| {
                expect_inputs("cross_entropy", ctx.inputs.len(), 1)?;
                if !ctx.needs_grad[0] {
                    return Ok(vec![None]);
                }
                let kept = saved.lock().unwrap_or_else(PoisonError::into_inner).take();
                let grad = match kept {
                    Some(mut grad) => {
                        // The kept gradient is for an output gradient of 1.
                        let g = ctx
                            .grad_output
                            .iter()
                            .next()
                            .copied()
                            .unwrap_or_else(T::one);
                        if g != T::one() {
                            grad.par_mapv_inplace(|v| v * g);
                        }
                        grad
                    }
                    // A second backward pass over the same tape: recompute.
                    None => crate::cross_entropy_backward(
                        ctx.inputs[0].view(),
                        targets.view(),
                        ctx.grad_output.view(),
                        &options,
                    )?,
                };
                Ok(vec![Some(grad)])
            }),
            precomputed: None,
        }
    }
}

/// Copies targets into an owned `i64` array of their shape (what an op keeps until backward).
fn owned_targets<I: ClassIndex>(targets: ClassTargets<'_, I>) -> ArrayD<i64> {
    let data = targets.as_slice().iter().map(|t| t.to_i64()).collect();
    ArrayD::from_shape_vec(IxDyn(targets.shape()), data).expect("targets fill their shape")
}

/// Computes the op's value with the kernels (so bad input is a [`LossError`]) and records it.
fn record<'t, T: Element>(mut op: LossOp<T>, inputs: &[Var<'t, T>]) -> Result<Var<'t, T>> {
    let tape = inputs[0].tape();
    let values: Vec<Tensor<T>> = inputs.iter().map(|v| v.value()).collect();
    let views: Vec<ArrayViewD<'_, T>> = values.iter().map(|t| t.view()).collect();
    op.precomputed = Some((op.value)(&views)?);
    Ok(tape.apply(op, inputs)?)
}

/// Whether a variable's tape will want its gradient.
fn wants_grad<T: Element>(var: Var<'_, T>) -> bool {
    var.tape().is_grad_enabled() && var.tape().requires_grad(var)
}

/// Mean squared error between `input` and `target` (same shape).
pub fn mse<'t, T: Element>(
    input: Var<'t, T>,
    target: Var<'t, T>,
    reduction: Reduction,
) -> Result<Var<'t, T>> {
    record(LossOp::mse(reduction), &[input, target])
}

/// Mean absolute error between `input` and `target` (same shape).
pub fn mae<'t, T: Element>(
    input: Var<'t, T>,
    target: Var<'t, T>,
    reduction: Reduction,
) -> Result<Var<'t, T>> {
    record(LossOp::mae(reduction), &[input, target])
}

/// Huber loss between `input` and `target` (same shape).
pub fn huber<'t, T: Element>(
    input: Var<'t, T>,
    target: Var<'t, T>,
    options: &HuberOptions,
) -> Result<Var<'t, T>> {
    record(LossOp::huber(*options), &[input, target])
}

/// Smooth L1 loss between `input` and `target` (same shape).
pub fn smooth_l1<'t, T: Element>(
    input: Var<'t, T>,
    target: Var<'t, T>,
    beta: f64,
    reduction: Reduction,
) -> Result<Var<'t, T>> {
    record(LossOp::smooth_l1(beta, reduction), &[input, target])
}

/// Cross-entropy of `logits` (classes last) against class indices; fused when gradients are
/// recorded (see the module doc).
pub fn cross_entropy<'t, 'a, T: Element, I: ClassIndex>(
    logits: Var<'t, T>,
    targets: impl Into<ClassTargets<'a, I>>,
    options: &CrossEntropyOptions,
) -> Result<Var<'t, T>> {
    let op = LossOp::cross_entropy(targets, options.clone(), wants_grad(logits));
    record(op, &[logits])
}

/// Cross-entropy of `logits` against probability targets `probs` (same shape).
pub fn cross_entropy_with_probs<'t, T: Element>(
    logits: Var<'t, T>,
    probs: Var<'t, T>,
    options: &CrossEntropyOptions,
) -> Result<Var<'t, T>> {
    record(
        LossOp::cross_entropy_with_probs(options.clone()),
        &[logits, probs],
    )
}

/// Negative log-likelihood of class indices under `log_probs` (classes last).
pub fn nll_loss<'t, 'a, T: Element, I: ClassIndex>(
    log_probs: Var<'t, T>,
    targets: impl Into<ClassTargets<'a, I>>,
    options: &NllOptions,
) -> Result<Var<'t, T>> {
    record(LossOp::nll_loss(targets, options.clone()), &[log_probs])
}

/// Binary cross-entropy with logits against `targets` in [0, 1] (same shape).
pub fn bce_with_logits<'t, T: Element>(
    logits: Var<'t, T>,
    targets: Var<'t, T>,
    options: &BceOptions,
) -> Result<Var<'t, T>> {
    record(LossOp::bce_with_logits(options.clone()), &[logits, targets])
}

/// Binary hinge loss of `scores` against ±1 `labels` (same shape).
pub fn hinge<'t, T: Element>(
    scores: Var<'t, T>,
    labels: ArrayViewD<'_, T>,
    options: &HingeOptions,
) -> Result<Var<'t, T>> {
    record(LossOp::hinge(labels.to_owned(), *options), &[scores])
}

/// Multiclass hinge loss of `scores` (classes last) against class indices.
pub fn multi_margin<'t, 'a, T: Element, I: ClassIndex>(
    scores: Var<'t, T>,
    targets: impl Into<ClassTargets<'a, I>>,
    options: &MultiMarginOptions,
) -> Result<Var<'t, T>> {
    record(LossOp::multi_margin(targets, options.clone()), &[scores])
}

/// KL divergence of `target` from the log-probabilities `input` (same shape).
pub fn kl_div<'t, T: Element>(
    input: Var<'t, T>,
    target: Var<'t, T>,
    options: &KlDivOptions,
) -> Result<Var<'t, T>> {
    record(LossOp::kl_div(*options), &[input, target])
}
