//! Cross-entropy from logits: class-index targets (with `ignore_index`, label smoothing and per-class
//! weights), probability targets, and the fused forward+backward for language-model vocabularies.
//!
//! Logits have the classes on their **last** axis and any leading shape (`[N, C]`, or `[B, T, V]` for
//! a language model); targets have the leading shape (see [`ClassTargets`]). The formulas are
//! PyTorch's `cross_entropy`:
//!
//! - per row, `loss = (1 − ε) · w[y] · (−log p[y]) + (ε / C) · Σ_c w[c] · (−log p[c])` with
//!   `p = softmax(logits)`, label smoothing `ε` and class weights `w` (all 1 without weights);
//! - `Mean` divides the sum by the number of non-ignored rows, or by `Σ w[y]` over them when weights
//!   are given; ignored rows have loss 0 and gradient 0;
//! - with probability targets `t`, `loss = Σ_c w[c] · t'[c] · (−log p[c])` with
//!   `t' = (1 − ε) t + ε / C`, and `Mean` divides by the number of rows.
//!
//! ## Numerics
//!
//! Every row is shifted by its maximum before exponentiation (`log p = x − max − ln Σ exp(x − max)`),
//! so logits of ±1e4, all-equal rows and a single class give finite, exact-as-possible values. A row
//! whose log-sum-exp is not finite (a NaN or `+inf` logit, or every logit `−inf`) is an error
//! ([`LossError::NonFiniteLogits`]); a `−inf` logit elsewhere is fine (a masked class), and a `−inf`
//! logit *at the target* gives an infinite loss with a finite gradient. A mean over a batch whose rows
//! are all ignored is [`LossError::NothingToAverage`]; use `Reduction::Sum` to get 0.
//!
//! ## The fused kernel and its memory
//!
//! [`fused_cross_entropy`] computes the loss and the gradient in one sweep per row: the row's maximum,
//! then `exp(x − max)` written straight into the gradient row while summing it, then one rescaling of
//! that row into `softmax − one-hot` (with smoothing and weights folded in). Rows run in parallel
//! (rayon, over rows only, so results are bitwise identical for any thread count). Extra memory is
//! one `f64` per row; there is no `[N, V]` buffer besides the gradient, and
//! [`fused_cross_entropy_in_place`] writes the gradient over the logits so there is none at all.
//! `f32` rows use a vectorised `exp` (see the crate's row kernels), `f64` rows the standard library's.

use fm_tensor::Element;
use ndarray::{
    ArrayD, ArrayView, ArrayView1, ArrayViewD, ArrayViewMut, ArrayViewMut1, ArrayViewMutD, Axis,
    IxDyn, Zip,
};

use crate::error::{LossError, Result};
use crate::reduction::{reduce, Reduction, UpstreamGrad};
use crate::row_kernels::{
    exp_in_place, exp_into, exp_sum, row_max, scale_and_shift, weighted_shifted_sum,
};
use crate::targets::{resolve, validate, validate_class_weights, ClassIndex, ClassTargets, Target};

/// Below this many logits a loss runs on the calling thread: rayon's overhead would dominate.
const PARALLEL_MIN_ELEMENTS: usize = 1 << 15;

/// Options of the cross-entropy losses (PyTorch's `cross_entropy` arguments).
///
/// ```
/// use fm_loss::{CrossEntropyOptions, Reduction};
/// let options = CrossEntropyOptions::default()
///     .ignore_index(-100)
///     .label_smoothing(0.1)
///     .reduction(Reduction::Mean);
/// assert_eq!(options.ignore_index, Some(-100));
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CrossEntropyOptions {
    /// How per-row losses are combined (default `Mean`).
    pub reduction: Reduction,
    /// Targets equal to this value contribute no loss and no gradient (default: none; PyTorch uses
    /// −100). Class-index targets only.
    pub ignore_index: Option<i64>,
    /// Label smoothing `ε` in [0, 1] (default 0).
    pub label_smoothing: f64,
    /// One finite, non-negative weight per class (default: all 1).
    pub class_weights: Option<Vec<f64>>,
}

impl CrossEntropyOptions {
    /// Sets the reduction.
    pub fn reduction(mut self, reduction: Reduction) -> Self {
        self.reduction = reduction;
        self
    }

    /// Sets the target value to ignore.
    pub fn ignore_index(mut self, index: i64) -> Self {
        self.ignore_index = Some(index);
        self
    }

    /// Sets label smoothing.
    pub fn label_smoothing(mut self, epsilon: f64) -> Self {
        self.label_smoothing = epsilon;
        self
    }

    /// Sets per-class weights.
    pub fn class_weights(mut self, weights: impl Into<Vec<f64>>) -> Self {
        self.class_weights = Some(weights.into());
        self
    }

    fn validate(&self, op: &'static str, classes: usize) -> Result<()> {
        let e = self.label_smoothing;
        if !((0.0..=1.0).contains(&e)) {
            return Err(LossError::invalid_option(
                op,
                format!("label smoothing must be in [0, 1], got {e}"),
            ));
        }
        if let Some(w) = &self.class_weights {
            validate_class_weights(op, w, classes)?;
        }
        Ok(())
    }
}

/// What every row needs to know, validated and converted to the element type.
struct Plan<T> {
    leading: Vec<usize>,
    rows: usize,
    classes: usize,
    weights: Option<Vec<T>>,
    weight_sum: f64,
    smoothing: f64,
    ignore_index: Option<i64>,
    /// What `Mean` divides by.
    denominator: f64,
    reduction: Reduction,
}

impl<T: Element> Plan<T> {
    fn weight(&self, class: usize) -> f64 {
        self.weights
            .as_ref()
            .map_or(1.0, |w| w[class].to_f64_lossless())
    }
}

/// Splits a logits shape into (leading shape, classes).
fn split_shape(op: &'static str, shape: &[usize]) -> Result<(Vec<usize>, usize)> {
    match shape.split_last() {
        None => Err(LossError::invalid_shape(
            op,
            shape,
            "logits need a class axis (rank >= 1, classes last)",
        )),
        Some((&0, _)) => Err(LossError::invalid_shape(
            op,
            shape,
            "logits need at least one class",
        )),
        Some((&classes, leading)) => Ok((leading.to_vec(), classes)),
    }
}

fn plan_for_indices<T: Element, I: ClassIndex>(
    op: &'static str,
    shape: &[usize],
    targets: &ClassTargets<'_, I>,
    options: &CrossEntropyOptions,
) -> Result<Plan<T>> {
    let (leading, classes) = split_shape(op, shape)?;
    options.validate(op, classes)?;
    let denominator = validate(
        op,
        targets,
        &leading,
        classes,
        options.ignore_index,
        options.class_weights.as_deref(),
    )?;
    if options.reduction == Reduction::Mean && denominator == 0.0 {
        let non_ignored = targets
            .as_slice()
            .iter()
            .filter(|t| Some(t.to_i64()) != options.ignore_index)
            .count();
        return Err(LossError::NothingToAverage {
            op,
            what: if non_ignored == 0 {
                format!("0 non-ignored targets (of {})", targets.len())
            } else {
                format!("{non_ignored} targets whose class weights sum to 0")
            },
        });
    }
    Ok(make_plan(leading, classes, options, denominator))
}

fn make_plan<T: Element>(
    leading: Vec<usize>,
    classes: usize,
    options: &CrossEntropyOptions,
    denominator: f64,
) -> Plan<T> {
    let weights: Option<Vec<T>> = options
        .class_weights
        .as_ref()
        .map(|w| w.iter().map(|&v| T::from_f64_lossy(v)).collect());
    let weight_sum = options
        .class_weights
        .as_ref()
        .map_or(classes as f64, |w| w.iter().sum());
    Plan {
        rows: leading.iter().product(),
        leading,
        classes,
        weights,
        weight_sum,
        smoothing: options.label_smoothing,
        ignore_index: options.ignore_index,
        denominator,
        reduction: options.reduction,
    }
}

/// How a row is read and where its gradient goes.
enum RowBuf<'r, T> {
    /// Loss only.
    Read(&'r [T]),
    /// Loss, and the gradient written into a separate row.
    Into(&'r [T], &'r mut [T]),
    /// Loss, and the gradient written over the logits.
    InPlace(&'r mut [T]),
}

/// The loss of one row with a class-index target, and (for `Into`/`InPlace`) its gradient scaled by
/// `scale`. Returns NaN when the row has no finite log-sum-exp.
fn class_row<T: Element>(buf: RowBuf<'_, T>, target: Target, scale: f64, plan: &Plan<T>) -> f64 {
    let Target::Class(t) = target else {
        match buf {
            RowBuf::Read(_) => {}
            RowBuf::Into(_, g) | RowBuf::InPlace(g) => g.fill(T::zero()),
        }
        return 0.0;
    };
    let x: &[T] = match &buf {
        RowBuf::Read(x) | RowBuf::Into(x, _) => x,
        RowBuf::InPlace(x) => x,
    };
    let eps = plan.smoothing;
    let m = row_max(x);
    let target_shift = (x[t] - m).to_f64_lossless();
    let smooth_sum = if eps > 0.0 {
        weighted_shifted_sum(x, m, plan.weights.as_deref())
    } else {
        0.0
    };
    let (s, grad) = match buf {
        RowBuf::Read(x) => (exp_sum(x, m), None),
        RowBuf::Into(x, g) => (exp_into(x, m, g), Some(g)),
        RowBuf::InPlace(g) => (exp_in_place(g, m), Some(g)),
    };
    if !s.is_finite() {
        return f64::NAN;
    }
    let ln_s = s.ln();
    let w_t = plan.weight(t);
    let classes = plan.classes as f64;
    // Coefficients that are exactly 0 are skipped, so a −inf logit never meets a 0 (no 0 · inf).
    let hard = (1.0 - eps) * w_t;
    let mut loss = 0.0;
    if hard != 0.0 {
        loss += hard * (ln_s - target_shift);
    }
    if eps > 0.0 {
        loss += eps / classes * (plan.weight_sum * ln_s - smooth_sum);
    }
    if let Some(g) = grad {
        // ∂loss/∂x_j = ((1 − ε) w_y + ε W / C) p_j − (ε / C) w_j − (1 − ε) w_y [j = y]
        let coef = scale * (hard + eps * plan.weight_sum / classes) / s;
        let shift = scale * eps / classes;
        scale_and_shift(
            g,
            T::from_f64_lossy(coef),
            T::from_f64_lossy(shift),
            plan.weights.as_deref(),
        );
        g[t] = g[t] - T::from_f64_lossy(scale * hard);
    }
    loss
}

/// Runs `row` over every row (in parallel for large inputs) and collects the per-row losses in
/// row-major order.
fn for_each_row<T: Element, I: ClassIndex>(
    plan: &Plan<T>,
    targets: &[I],
    mut rows: RowsMut<'_, T>,
    upstream: &UpstreamGrad<'_, T>,
) -> Vec<f64> {
    let mut losses = vec![0.0f64; plan.rows];
    let leading = IxDyn(&plan.leading);
    let targets = ArrayView::from_shape(leading.clone(), targets).expect("validated target count");
    let mut base = ArrayD::from_elem(IxDyn(&[]), T::zero());
    let scales = scales_view(upstream, &leading, &mut base);
    let losses_view = ArrayViewMut::from_shape(leading, &mut losses).expect("one loss per row");
    let parallel = plan.rows * plan.classes >= PARALLEL_MIN_ELEMENTS;
    let ignore = plan.ignore_index;
    let last = Axis(plan.leading.len());
    match &mut rows {
        RowsMut::Read(logits) => {
            let zip = Zip::from(logits.lanes(last)).and(&targets).and(losses_view);
            let f = |x: ArrayView1<'_, T>, &y: &I, loss: &mut f64| {
                let target = resolve(y.to_i64(), ignore);
                *loss = with_slice(x, |x| class_row(RowBuf::Read(x), target, 0.0, plan));
            };
            if parallel {
                zip.par_for_each(f)
            } else {
                zip.for_each(f)
            }
        }
        RowsMut::Into(logits, grad) => {
            let zip = Zip::from(logits.lanes(last))
                .and(grad.lanes_mut(last))
                .and(&targets)
                .and(&scales)
                .and(losses_view);
            let f =
                |x: ArrayView1<'_, T>, g: ArrayViewMut1<'_, T>, &y: &I, &a: &T, loss: &mut f64| {
                    let target = resolve(y.to_i64(), ignore);
                    let a = a.to_f64_lossless();
                    *loss = with_slice(x, |x| {
                        with_slice_mut(g, |g| class_row(RowBuf::Into(x, g), target, a, plan))
                    });
                };
            if parallel {
                zip.par_for_each(f)
            } else {
                zip.for_each(f)
            }
        }
        RowsMut::InPlace(logits) => {
            let zip = Zip::from(logits.lanes_mut(last))
                .and(&targets)
                .and(&scales)
                .and(losses_view);
            let f = |g: ArrayViewMut1<'_, T>, &y: &I, &a: &T, loss: &mut f64| {
                let target = resolve(y.to_i64(), ignore);
                let a = a.to_f64_lossless();
                *loss = with_slice_mut(g, |g| class_row(RowBuf::InPlace(g), target, a, plan));
            };
            if parallel {
                zip.par_for_each(f)
            } else {
                zip.for_each(f)
            }
        }
    }
    losses
}

/// The per-row gradient scale as a view of the leading shape (a broadcast 0-d array when uniform).
fn scales_view<'s, T: Element>(
    upstream: &'s UpstreamGrad<'_, T>,
    leading: &IxDyn,
    base: &'s mut ArrayD<T>,
) -> ArrayViewD<'s, T> {
    match upstream {
        UpstreamGrad::Uniform(a) => {
            *base = ArrayD::from_elem(IxDyn(&[]), *a);
            let base: &'s ArrayD<T> = base;
            base.broadcast(leading.clone())
                .expect("a 0-d array broadcasts to any shape")
        }
        UpstreamGrad::PerElement(g) => g.view(),
    }
}

/// The row sources of [`for_each_row`].
enum RowsMut<'a, T> {
    Read(ArrayViewD<'a, T>),
    Into(ArrayViewD<'a, T>, ArrayViewMutD<'a, T>),
    InPlace(ArrayViewMutD<'a, T>),
}

/// Calls `f` on the row as a slice, copying it first when it is not contiguous.
fn with_slice<T: Element, R>(row: ArrayView1<'_, T>, f: impl FnOnce(&[T]) -> R) -> R {
    match row.as_slice() {
        Some(x) => f(x),
        None => f(&row.to_vec()),
    }
}

/// Calls `f` on the row as a mutable slice, through a copy when it is not contiguous.
fn with_slice_mut<T: Element, R>(
    mut row: ArrayViewMut1<'_, T>,
    f: impl FnOnce(&mut [T]) -> R,
) -> R {
    if let Some(x) = row.as_slice_mut() {
        return f(x);
    }
    let mut copy = row.to_vec();
    let result = f(&mut copy);
    row.assign(&ArrayView1::from(&copy[..]));
    result
}

/// The first row whose loss came back NaN, as an error.
fn check_rows(op: &'static str, losses: &[f64]) -> Result<()> {
    match losses.iter().position(|l| l.is_nan()) {
        Some(row) => Err(LossError::NonFiniteLogits { op, row }),
        None => Ok(()),
    }
}

fn finish<T: Element>(op: &'static str, losses: &[f64], plan: &Plan<T>) -> Result<ArrayD<T>> {
    check_rows(op, losses)?;
    reduce(
        op,
        losses.iter().copied(),
        &plan.leading,
        plan.reduction,
        Some(plan.denominator),
    )
}

/// Cross-entropy of `logits` (classes on the last axis) against class-index `targets`.
///
/// Returns a 0-d array for `Sum`/`Mean`, or one loss per row (the logits' leading shape) for `None`.
///
/// ```
/// use fm_loss::{cross_entropy, CrossEntropyOptions};
/// use ndarray::array;
///
/// let logits = array![[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]].into_dyn();
/// let loss = cross_entropy(logits.view(), &[0usize, 2], &CrossEntropyOptions::default())?;
/// let expected = ((1.0 + 2.0 * (-2.0f64).exp()).ln() + 3.0f64.ln()) / 2.0;
/// assert!((loss[[]] - expected).abs() < 1e-12);
/// # Ok::<(), fm_loss::LossError>(())
/// ```
pub fn cross_entropy<'a, T: Element, I: ClassIndex>(
    logits: ArrayViewD<'_, T>,
    targets: impl Into<ClassTargets<'a, I>>,
    options: &CrossEntropyOptions,
) -> Result<ArrayD<T>> {
    const OP: &str = "cross_entropy";
    let targets = targets.into();
    let plan = plan_for_indices::<T, I>(OP, logits.shape(), &targets, options)?;
    let losses = for_each_row(
        &plan,
        targets.as_slice(),
        RowsMut::Read(logits.view()),
        &UpstreamGrad::Uniform(T::zero()),
    );
    finish(OP, &losses, &plan)
}

/// ∂[`cross_entropy`]/∂logits for a given output gradient (one element for `Sum`/`Mean`, the
/// leading shape for `None`). Recomputes each row's log-sum-exp; [`fused_cross_entropy`] does both
/// directions in one sweep.
pub fn cross_entropy_backward<'a, T: Element, I: ClassIndex>(
    logits: ArrayViewD<'_, T>,
    targets: impl Into<ClassTargets<'a, I>>,
    grad_output: ArrayViewD<'_, T>,
    options: &CrossEntropyOptions,
) -> Result<ArrayD<T>> {
    const OP: &str = "cross_entropy_backward";
    let targets = targets.into();
    let plan = plan_for_indices::<T, I>(OP, logits.shape(), &targets, options)?;
    let upstream = UpstreamGrad::resolve(
        OP,
        grad_output,
        plan.reduction,
        &plan.leading,
        plan.denominator,
    )?;
    let mut grad = fm_tensor::buffers::zeroed_array(logits.raw_dim());
    let losses = for_each_row(
        &plan,
        targets.as_slice(),
        RowsMut::Into(logits.view(), grad.view_mut()),
        &upstream,
    );
    check_rows(OP, &losses)?;
    Ok(grad)
}

/// Loss and gradient in one sweep per row, the gradient written into `grad` (the logits' shape).
///
/// The gradient is that of the returned loss: of the sum or the mean for those reductions, and of
/// the sum of the per-row losses for `Reduction::None`. Nothing besides `grad` and one `f64` per row
/// is allocated. On error `grad` holds unspecified values; targets and options are checked before
/// anything is written.
///
/// ```
/// use fm_loss::{fused_cross_entropy, CrossEntropyOptions};
/// use ndarray::{array, Array2};
///
/// let logits = array![[1.0f32, 2.0, 3.0], [0.0, 0.0, 0.0]];
/// let mut grad = Array2::<f32>::zeros((2, 3));
/// let loss = fused_cross_entropy(
///     logits.view().into_dyn(),
///     &[2u32, 0],
///     &CrossEntropyOptions::default(),
///     grad.view_mut().into_dyn(),
/// )?;
/// assert!(loss[[]] > 0.0);
/// // Each row of the gradient of a mean sums to zero.
/// for row in grad.rows() {
///     assert!(row.sum().abs() < 1e-6);
/// }
/// # Ok::<(), fm_loss::LossError>(())
/// ```
pub fn fused_cross_entropy<'a, T: Element, I: ClassIndex>(
    logits: ArrayViewD<'_, T>,
    targets: impl Into<ClassTargets<'a, I>>,
    options: &CrossEntropyOptions,
    mut grad: ArrayViewMutD<'_, T>,
) -> Result<ArrayD<T>> {
    const OP: &str = "fused_cross_entropy";
    if grad.shape() != logits.shape() {
        return Err(LossError::shape_mismatch(
            OP,
            logits.shape(),
            grad.shape(),
            "the gradient buffer needs the logits' shape",
        ));
    }
    let targets = targets.into();
    let plan = plan_for_indices::<T, I>(OP, logits.shape(), &targets, options)?;
    let scale = unit_scale(&plan);
    let losses = for_each_row(
        &plan,
        targets.as_slice(),
        RowsMut::Into(logits.view(), grad.view_mut()),
        &UpstreamGrad::Uniform(T::from_f64_lossy(scale)),
    );
    finish(OP, &losses, &plan)
}

/// [`fused_cross_entropy`] that overwrites the logits with their gradient: no `[N, V]` buffer at all.
///
/// Use it when the logits are not needed after the loss (a language model's output projection, whose
/// backward needs the gradient only). Targets and options are checked before anything is written; on a
/// [`LossError::NonFiniteLogits`] error the logits are partly overwritten.
pub fn fused_cross_entropy_in_place<'a, T: Element, I: ClassIndex>(
    mut logits: ArrayViewMutD<'_, T>,
    targets: impl Into<ClassTargets<'a, I>>,
    options: &CrossEntropyOptions,
) -> Result<ArrayD<T>> {
    const OP: &str = "fused_cross_entropy_in_place";
    let targets = targets.into();
    let plan = plan_for_indices::<T, I>(OP, logits.shape(), &targets, options)?;
    let scale = unit_scale(&plan);
    let losses = for_each_row(
        &plan,
        targets.as_slice(),
        RowsMut::InPlace(logits.view_mut()),
        &UpstreamGrad::Uniform(T::from_f64_lossy(scale)),
    );
    finish(OP, &losses, &plan)
}

/// The gradient scale of a fused call: `1 / denominator` for a mean, 1 otherwise.
fn unit_scale<T>(plan: &Plan<T>) -> f64 {
    if plan.reduction == Reduction::Mean {
        1.0 / plan.denominator
    } else {
        1.0
    }
}

// ---------------------------------------------------------------------------------------------
// Probability ("soft") targets

fn plan_for_probs<T: Element>(
    op: &'static str,
    logits: &[usize],
    probs: &[usize],
    options: &CrossEntropyOptions,
) -> Result<Plan<T>> {
    let (leading, classes) = split_shape(op, logits)?;
    if logits != probs {
        return Err(LossError::shape_mismatch(
            op,
            logits,
            probs,
            "probability targets need the logits' shape",
        ));
    }
    if options.ignore_index.is_some() {
        return Err(LossError::invalid_option(
            op,
            "ignore_index applies to class-index targets only",
        ));
    }
    options.validate(op, classes)?;
    let rows: usize = leading.iter().product();
    if options.reduction == Reduction::Mean && rows == 0 {
        return Err(LossError::NothingToAverage {
            op,
            what: "an empty batch".into(),
        });
    }
    Ok(make_plan(leading, classes, options, rows as f64))
}

/// The smoothed, weighted target of class `c`: `w[c] · ((1 − ε) t + ε / C)`.
#[inline]
fn soft_weight<T: Element>(plan: &Plan<T>, c: usize, t: T) -> f64 {
    let eps = plan.smoothing;
    plan.weight(c) * ((1.0 - eps) * t.to_f64_lossless() + eps / plan.classes as f64)
}

/// The loss of one row with probability targets; with `grad`, also writes the scaled gradient.
fn prob_row<T: Element>(
    x: &[T],
    probs: &[T],
    grad: Option<&mut [T]>,
    scale: f64,
    plan: &Plan<T>,
) -> f64 {
    let m = row_max(x);
    let (s, grad) = match grad {
        None => (exp_sum(x, m), None),
        Some(g) => (exp_into(x, m, g), Some(g)),
    };
    if !s.is_finite() {
        return f64::NAN;
    }
    let ln_s = s.ln();
    let mut loss = 0.0;
    let mut total = 0.0;
    for (c, (&xc, &tc)) in x.iter().zip(probs).enumerate() {
        let wt = soft_weight(plan, c, tc);
        if wt != 0.0 {
            loss += wt * (ln_s - (xc - m).to_f64_lossless());
            total += wt;
        }
    }
    if let Some(g) = grad {
        // ∂loss/∂x_j = (Σ_c w_c t'_c) p_j − w_j t'_j
        for (c, (gj, &tc)) in g.iter_mut().zip(probs).enumerate() {
            let p = gj.to_f64_lossless() / s;
            *gj = T::from_f64_lossy(scale * (total * p - soft_weight(plan, c, tc)));
        }
    }
    loss
}

fn for_each_prob_row<T: Element>(
    plan: &Plan<T>,
    logits: &ArrayViewD<'_, T>,
    probs: &ArrayViewD<'_, T>,
    grad: Option<&mut ArrayViewMutD<'_, T>>,
    upstream: &UpstreamGrad<'_, T>,
) -> Vec<f64> {
    let mut losses = vec![0.0f64; plan.rows];
    let leading = IxDyn(&plan.leading);
    let last = Axis(plan.leading.len());
    let losses_view =
        ArrayViewMut::from_shape(leading.clone(), &mut losses).expect("one loss per row");
    let parallel = plan.rows * plan.classes >= PARALLEL_MIN_ELEMENTS;
    match grad {
        None => {
            let zip = Zip::from(logits.lanes(last))
                .and(probs.lanes(last))
                .and(losses_view);
            let f = |x: ArrayView1<'_, T>, t: ArrayView1<'_, T>, loss: &mut f64| {
                *loss = with_slice(x, |x| with_slice(t, |t| prob_row(x, t, None, 0.0, plan)));
            };
            if parallel {
                zip.par_for_each(f)
            } else {
                zip.for_each(f)
            }
        }
        Some(grad) => {
            let mut base = ArrayD::from_elem(IxDyn(&[]), T::zero());
            let scales = scales_view(upstream, &leading, &mut base);
            let zip = Zip::from(logits.lanes(last))
                .and(probs.lanes(last))
                .and(grad.lanes_mut(last))
                .and(&scales)
                .and(losses_view);
            let f = |x: ArrayView1<'_, T>,
                     t: ArrayView1<'_, T>,
                     g: ArrayViewMut1<'_, T>,
                     &a: &T,
                     loss: &mut f64| {
                let a = a.to_f64_lossless();
                *loss = with_slice(x, |x| {
                    with_slice(t, |t| {
                        with_slice_mut(g, |g| prob_row(x, t, Some(g), a, plan))
                    })
                });
            };
            if parallel {
                zip.par_for_each(f)
            } else {
                zip.for_each(f)
            }
        }
    }
    losses
}

/// Cross-entropy against probability ("soft") targets of the logits' shape. `ignore_index` must be
/// unset; label smoothing and class weights apply as in PyTorch.
pub fn cross_entropy_with_probs<T: Element>(
    logits: ArrayViewD<'_, T>,
    probs: ArrayViewD<'_, T>,
    options: &CrossEntropyOptions,
) -> Result<ArrayD<T>> {
    const OP: &str = "cross_entropy_with_probs";
    let plan = plan_for_probs::<T>(OP, logits.shape(), probs.shape(), options)?;
    let losses = for_each_prob_row(
        &plan,
        &logits,
        &probs,
        None,
        &UpstreamGrad::Uniform(T::zero()),
    );
    finish(OP, &losses, &plan)
}

/// ∂[`cross_entropy_with_probs`]/∂logits.
pub fn cross_entropy_with_probs_backward<T: Element>(
    logits: ArrayViewD<'_, T>,
    probs: ArrayViewD<'_, T>,
    grad_output: ArrayViewD<'_, T>,
    options: &CrossEntropyOptions,
) -> Result<ArrayD<T>> {
    const OP: &str = "cross_entropy_with_probs_backward";
    let plan = plan_for_probs::<T>(OP, logits.shape(), probs.shape(), options)?;
    let upstream = UpstreamGrad::resolve(
        OP,
        grad_output,
        plan.reduction,
        &plan.leading,
        plan.denominator,
    )?;
    let mut grad = fm_tensor::buffers::zeroed_array(logits.raw_dim());
    let losses = for_each_prob_row(
        &plan,
        &logits,
        &probs,
        Some(&mut grad.view_mut()),
        &upstream,
    );
    check_rows(OP, &losses)?;
    Ok(grad)
}

/// ∂[`cross_entropy_with_probs`]/∂probs: `−(1 − ε) · w[c] · log p[c]` times the output gradient.
pub fn cross_entropy_with_probs_backward_probs<T: Element>(
    logits: ArrayViewD<'_, T>,
    probs: ArrayViewD<'_, T>,
    grad_output: ArrayViewD<'_, T>,
    options: &CrossEntropyOptions,
) -> Result<ArrayD<T>> {
    const OP: &str = "cross_entropy_with_probs_backward_probs";
    let plan = plan_for_probs::<T>(OP, logits.shape(), probs.shape(), options)?;
    let upstream = UpstreamGrad::resolve(
        OP,
        grad_output,
        plan.reduction,
        &plan.leading,
        plan.denominator,
    )?;
    let last = Axis(plan.leading.len());
    let mut grad = fm_tensor::buffers::zeroed_array(logits.raw_dim());
    let eps = plan.smoothing;
    let mut bad_row = None;
    let rows = logits.lanes(last).into_iter().zip(grad.lanes_mut(last));
    for (row, (x, mut g)) in rows.enumerate() {
        let a = match &upstream {
            UpstreamGrad::Uniform(a) => a.to_f64_lossless(),
            UpstreamGrad::PerElement(g) => g.iter().nth(row).map_or(0.0, |v| v.to_f64_lossless()),
        };
        let x = x.to_vec();
        let m = row_max(&x);
        let s = exp_sum(&x, m);
        if !s.is_finite() {
            bad_row.get_or_insert(row);
            continue;
        }
        let ln_s = s.ln();
        for (c, (gc, &xc)) in g.iter_mut().zip(&x).enumerate() {
            let coef = a * (1.0 - eps) * plan.weight(c);
            *gc = if coef == 0.0 {
                T::zero()
            } else {
                T::from_f64_lossy(coef * (ln_s - (xc - m).to_f64_lossless()))
            };
        }
    }
    match bad_row {
        Some(row) => Err(LossError::NonFiniteLogits { op: OP, row }),
        None => Ok(grad),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array2};

    fn naive_ce(logits: &Array2<f64>, targets: &[usize]) -> f64 {
        let mut total = 0.0;
        for (row, &t) in logits.rows().into_iter().zip(targets) {
            let lse = row.iter().map(|v| v.exp()).sum::<f64>().ln();
            total += lse - row[t];
        }
        total / targets.len() as f64
    }

    #[test]
    fn matches_a_naive_formula() {
        let logits = array![[0.5, -1.0, 2.0], [1.0, 1.0, -3.0]];
        let loss = cross_entropy(
            logits.view().into_dyn(),
            &[2usize, 0],
            &CrossEntropyOptions::default(),
        )
        .unwrap();
        assert!((loss[[]] - naive_ce(&logits, &[2, 0])).abs() < 1e-14);
    }

    #[test]
    fn fused_in_place_and_separate_backward_agree_bitwise() {
        let logits = Array2::from_shape_fn((5, 70), |(i, j)| {
            ((i * 31 + j * 17) % 23) as f32 * 0.3 - 3.0
        });
        let targets = [3u32, 0, 69, 12, 12];
        let options = CrossEntropyOptions::default()
            .label_smoothing(0.1)
            .ignore_index(12);
        let mut grad = Array2::<f32>::zeros((5, 70));
        let loss = fused_cross_entropy(
            logits.view().into_dyn(),
            &targets,
            &options,
            grad.view_mut().into_dyn(),
        )
        .unwrap();
        let mut in_place = logits.clone();
        let loss2 =
            fused_cross_entropy_in_place(in_place.view_mut().into_dyn(), &targets, &options)
                .unwrap();
        assert_eq!(loss, loss2);
        assert_eq!(grad, in_place);
        let one = ndarray::arr0(1.0f32).into_dyn();
        let g = cross_entropy_backward(logits.view().into_dyn(), &targets, one.view(), &options)
            .unwrap();
        assert_eq!(g, grad.into_dyn());
        let value = cross_entropy(logits.view().into_dyn(), &targets, &options).unwrap();
        assert_eq!(value, loss);
        // Ignored rows have zero gradient.
        assert!(in_place.row(3).iter().all(|&v| v == 0.0));
    }

    #[test]
    fn non_contiguous_logits_give_the_same_result() {
        let logits = Array2::from_shape_fn((6, 4), |(i, j)| (i as f64 - j as f64 * 0.7).sin());
        let transposed = logits.t().to_owned(); // [4, 6]
        let view = transposed.t(); // [6, 4] with non-unit row stride... column-major
        let targets = [0usize, 1, 2, 3, 0, 1];
        let o = CrossEntropyOptions::default();
        let a = cross_entropy(logits.view().into_dyn(), &targets, &o).unwrap();
        let b = cross_entropy(view.into_dyn(), &targets, &o).unwrap();
        assert_eq!(a, b);
        let one = ndarray::arr0(1.0).into_dyn();
        let ga =
            cross_entropy_backward(logits.view().into_dyn(), &targets, one.view(), &o).unwrap();
        let gb = cross_entropy_backward(view.into_dyn(), &targets, one.view(), &o).unwrap();
        assert_eq!(ga, gb);
    }
}
