//! The [`Optimizer`] trait and [`Optim`], the one implementation every algorithm shares.
//!
//! A step runs in two passes over the parameters:
//!
//! 1. **Check** (nothing is written): every gradient has its parameter's shape, every parameter has
//!    state of its shape (created, zeroed, the first time a name is seen — the only allocation an
//!    optimizer makes), no name appears twice; and, when clipping by norm or checking for NaN, each
//!    gradient's sum of squares and finiteness. A failure here leaves parameters and state untouched.
//! 2. **Update**: for each parameter, the rule's constants for this step (learning rate from the
//!    schedule, bias corrections), then one fused, vectorised pass over the parameter, its gradient
//!    and its state — split into chunks over rayon threads for large parameters.
//!
//! State is keyed by parameter name, so the parameters may be handed over in any container, as long
//! as the same names come back. See [`crate::state`] for saving and restoring it.

use std::collections::HashMap;

use ndarray::{ArrayViewD, ArrayViewMutD};

use crate::clip::{grad_sum_sq, GradClip, NonFinitePolicy};
use crate::error::{OptimError, Result};
use crate::group::ParamGroup;
use crate::params::{ParamRef, Params};
use crate::rule::{for_each_chunk, GradPre, GroupDefaults, Rule, StepCtx};
use crate::scalar::Scalar;
use crate::schedule::LrSchedule;
use crate::state::OptimizerState;

/// What a step did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepReport {
    /// Whether the step was skipped (non-finite gradient with [`NonFinitePolicy::Skip`]).
    pub skipped: bool,
    /// The global gradient norm before clipping, when it was computed (clipping by norm).
    pub grad_norm: Option<f64>,
    /// The factor gradients were scaled by (1 when not clipped by norm).
    pub clip_scale: f64,
    /// The learning rate the default group used this step.
    pub lr: f64,
}

/// An optimizer: updates parameters in place from their gradients.
///
/// Object safe, so a training loop can hold a `Box<dyn Optimizer<f32>>`.
pub trait Optimizer<T: Scalar>: Send {
    /// Updates every parameter from its gradient (see the [module doc](self) for the two passes).
    fn step(&mut self, params: &mut dyn Params<T>) -> Result<StepReport>;

    /// Clears the gradients of `params` (`params.zero_grad()`), for PyTorch-style loops.
    fn zero_grad(&self, params: &mut dyn Params<T>) {
        params.zero_grad()
    }

    /// Steps taken so far (skipped steps are not counted).
    fn steps_taken(&self) -> u64;

    /// The learning rate group `group` will use on the next step.
    fn current_lr(&self, group: usize) -> Option<f64>;

    /// A snapshot of everything needed to continue bit-exactly: hyper-parameters, groups, schedule,
    /// counters and every state tensor.
    fn state(&self) -> OptimizerState<T>;

    /// Restores a snapshot made by [`state`](Self::state) of the same algorithm. Nothing changes if
    /// the snapshot is refused.
    fn load_state(&mut self, state: &OptimizerState<T>) -> Result<()>;
}

/// Per-parameter state.
#[derive(Debug, Clone)]
pub(crate) struct ParamState<T> {
    pub(crate) group: usize,
    pub(crate) step: u64,
    pub(crate) shape: Vec<usize>,
    pub(crate) slots: Vec<Vec<T>>,
    /// The check pass that last saw this parameter (detects a name given twice in one step).
    seen: u64,
}

impl<T: Scalar> ParamState<T> {
    pub(crate) fn new(group: usize, step: u64, shape: Vec<usize>, slots: Vec<Vec<T>>) -> Self {
        ParamState {
            group,
            step,
            shape,
            slots,
            seen: 0,
        }
    }
}

/// An optimizer: a configuration (which fixes the algorithm), parameter groups, a learning-rate
/// schedule, clipping, and per-parameter state. Use it through the aliases [`Sgd`](crate::Sgd),
/// [`Adam`](crate::Adam), [`AdamW`](crate::AdamW), [`RmsProp`](crate::RmsProp),
/// [`Adagrad`](crate::Adagrad).
#[derive(Debug, Clone)]
pub struct Optim<T: Scalar, C: Rule> {
    pub(crate) config: C,
    /// Group 0 is the default group.
    pub(crate) groups: Vec<ParamGroup>,
    pub(crate) schedule: LrSchedule,
    pub(crate) clip: GradClip,
    pub(crate) non_finite: NonFinitePolicy,
    pub(crate) steps: u64,
    pub(crate) states: HashMap<String, ParamState<T>>,
    /// Scratch for per-chunk norms, reused across steps.
    partials: Vec<(f64, bool)>,
    passes: u64,
}

impl<T: Scalar, C: Rule> Optim<T, C> {
    /// An optimizer with a validated configuration (from its builder), a constant learning rate, no
    /// clipping, and NaN checks on.
    pub fn new(config: C) -> Self {
        Optim {
            config,
            groups: vec![ParamGroup::default()],
            schedule: LrSchedule::Constant,
            clip: GradClip::none(),
            non_finite: NonFinitePolicy::Error,
            steps: 0,
            states: HashMap::new(),
            partials: Vec::new(),
            passes: 0,
        }
    }

    /// Sets the learning-rate schedule (checked).
    pub fn with_schedule(mut self, schedule: LrSchedule) -> Result<Self> {
        schedule.validate()?;
        self.schedule = schedule;
        Ok(self)
    }

    /// Sets gradient clipping (checked).
    pub fn with_clip(mut self, clip: GradClip) -> Result<Self> {
        clip.validate()?;
        self.clip = clip;
        Ok(self)
    }

    /// Sets what a step does with a non-finite gradient.
    pub fn with_non_finite(mut self, policy: NonFinitePolicy) -> Self {
        self.non_finite = policy;
        self
    }

    /// Adds a parameter group and returns its index. A name may belong to one added group only;
    /// parameters already seen move to the new group.
    pub fn add_param_group(&mut self, group: ParamGroup) -> Result<usize> {
        group.validate()?;
        for name in &group.params {
            let elsewhere = self.groups.iter().any(|g| g.params.contains(name));
            let twice = group.params.iter().filter(|n| *n == name).count() > 1;
            if elsewhere || twice {
                return Err(OptimError::DuplicateParam {
                    param: name.clone(),
                    detail: "a parameter belongs to at most one group",
                });
            }
        }
        let index = self.groups.len();
        for name in &group.params {
            if let Some(state) = self.states.get_mut(name) {
                state.group = index;
            }
        }
        self.groups.push(group);
        Ok(index)
    }

    /// The configuration.
    pub fn config(&self) -> &C {
        &self.config
    }

    /// The parameter groups (index 0 is the default group).
    pub fn groups(&self) -> &[ParamGroup] {
        &self.groups
    }

    /// The learning-rate schedule.
    pub fn schedule(&self) -> &LrSchedule {
        &self.schedule
    }

    /// A group's resolved values (configuration defaults with the group's overrides).
    fn group_values(&self, group: usize) -> GroupDefaults {
        self.groups[group].resolve(self.config.defaults())
    }

    /// The group a parameter name belongs to.
    fn group_of(groups: &[ParamGroup], name: &str) -> usize {
        groups
            .iter()
            .position(|g| g.params.iter().any(|n| n == name))
            .unwrap_or(0)
    }

    /// Pass 1: shapes, state, duplicates, and (if wanted) the squared norm and finiteness.
    fn check_pass(
        &mut self,
        params: &mut dyn Params<T>,
        want_check: bool,
        want_sum: bool,
        clip_value: T,
    ) -> Result<(f64, Option<String>)> {
        self.passes += 1;
        let pass = self.passes;
        let slot_names = self.config.slots();
        let init = T::from_f64_lossy(self.config.slot_init());
        let (states, groups, partials) = (&mut self.states, &self.groups, &mut self.partials);
        let mut total = 0.0f64;
        let mut first_bad: Option<String> = None;
        params.visit(&mut |p: ParamRef<'_, T>| {
            if p.grad.shape() != p.value.shape() {
                return Err(OptimError::ShapeMismatch {
                    param: p.name.to_string(),
                    expected: p.value.shape().to_vec(),
                    got: p.grad.shape().to_vec(),
                    detail: "parameter value vs its gradient",
                });
            }
            if !states.contains_key(p.name) {
                // First sight of this parameter: its state, zeroed (the only allocation).
                let n = p.value.len();
                let slots = slot_names.iter().map(|_| vec![init; n]).collect();
                let group = Self::group_of(groups, p.name);
                let shape = p.value.shape().to_vec();
                states.insert(p.name.to_string(), ParamState::new(group, 0, shape, slots));
            }
            let state = states.get_mut(p.name).expect("inserted above");
            if state.shape != p.value.shape() {
                return Err(OptimError::ShapeMismatch {
                    param: p.name.to_string(),
                    expected: state.shape.clone(),
                    got: p.value.shape().to_vec(),
                    detail: "optimizer state vs parameter value (did the parameter change shape?)",
                });
            }
            if state.seen == pass {
                return Err(OptimError::DuplicateParam {
                    param: p.name.to_string(),
                    detail: "given twice in one step",
                });
            }
            state.seen = pass;
            if want_check {
                let (sum_sq, finite) = grad_sum_sq(&p.grad, clip_value, want_sum, partials);
                total += sum_sq;
                if !finite && first_bad.is_none() {
                    first_bad = Some(p.name.to_string());
                }
            }
            Ok(())
        })?;
        Ok((total, first_bad))
    }
}

/// Updates one parameter with its state.
fn update_param<T: Scalar, C: Rule>(
    h: &C::Hyper<T>,
    pre: &GradPre<T>,
    mut value: ArrayViewMutD<'_, T>,
    grad: ArrayViewD<'_, T>,
    slots: &mut [Vec<T>],
) {
    let f = |p: &mut [T], g: &[T], s: &mut [&mut [T]]| C::update(h, pre, p, g, s);
    if value.is_standard_layout() && grad.is_standard_layout() {
        if let (Some(p), Some(g)) = (value.as_slice_mut(), grad.as_slice()) {
            for_each_chunk(p, g, slots, f);
            return;
        }
    }
    // Other layouts: through row-major copies (state is kept in row-major order).
    let mut p: Vec<T> = value.iter().copied().collect();
    let g: Vec<T> = grad.iter().copied().collect();
    for_each_chunk(&mut p, &g, slots, f);
    for (dst, src) in value.iter_mut().zip(p) {
        *dst = src;
    }
}

impl<T: Scalar, C: Rule> Optimizer<T> for Optim<T, C> {
    fn step(&mut self, params: &mut dyn Params<T>) -> Result<StepReport> {
        let max_norm = self.clip.max_norm;
        let clip_value = T::from_f64_lossy(self.clip.max_value.unwrap_or(f64::INFINITY));
        let want_sum = max_norm.is_some();
        let want_check = want_sum || self.non_finite != NonFinitePolicy::Unchecked;
        let (sum_sq, first_bad) = self.check_pass(params, want_check, want_sum, clip_value)?;
        let lr0 = self.schedule.lr(self.steps, self.group_values(0).lr);
        if let Some(param) = first_bad {
            match self.non_finite {
                NonFinitePolicy::Error => return Err(OptimError::NonFiniteGradient { param }),
                NonFinitePolicy::Skip => {
                    return Ok(StepReport {
                        skipped: true,
                        grad_norm: None,
                        clip_scale: 1.0,
                        lr: lr0,
                    })
                }
                // Only when also clipping by norm: the non-finite norm makes the scale 0 or NaN and
                // the update goes ahead, as the caller asked.
                NonFinitePolicy::Unchecked => {}
            }
        }
        let grad_norm = max_norm.map(|_| sum_sq.sqrt());
        // PyTorch's clip_grad_norm_: scale by min(1, max_norm / (norm + 1e-6)).
        let clip_scale = match (max_norm, grad_norm) {
            (Some(max), Some(norm)) => (max / (norm + 1e-6)).min(1.0),
            _ => 1.0,
        };

        let t = self.steps;
        let defaults = self.config.defaults();
        let (states, groups, schedule, config) =
            (&mut self.states, &self.groups, &self.schedule, &self.config);
        let scale = T::from_f64_lossy(clip_scale);
        params.visit(&mut |p: ParamRef<'_, T>| {
            let state = states.get_mut(p.name).ok_or_else(|| {
                OptimError::State(format!(
                    "parameter {:?} was not visited by the check pass (a Params implementation must \
                     visit the same parameters each time)",
                    p.name
                ))
            })?;
            state.step += 1;
            let values = groups[state.group].resolve(defaults);
            let ctx = StepCtx {
                lr: schedule.lr(t, values.lr),
                weight_decay: values.weight_decay,
                step: state.step,
            };
            let h = config.prepare::<T>(&ctx);
            let pre = GradPre {
                scale,
                clip_value,
                l1: T::from_f64_lossy(values.l1),
                l2: T::from_f64_lossy(values.l2),
            };
            update_param::<T, C>(&h, &pre, p.value, p.grad, &mut state.slots);
            Ok(())
        })?;
        self.steps += 1;
        Ok(StepReport {
            skipped: false,
            grad_norm,
            clip_scale,
            lr: lr0,
        })
    }

    fn steps_taken(&self) -> u64 {
        self.steps
    }

    fn current_lr(&self, group: usize) -> Option<f64> {
        (group < self.groups.len())
            .then(|| self.schedule.lr(self.steps, self.group_values(group).lr))
    }

    fn state(&self) -> OptimizerState<T> {
        crate::state::snapshot(self)
    }

    fn load_state(&mut self, state: &OptimizerState<T>) -> Result<()> {
        *self = crate::state::restore(state)?;
        Ok(())
    }
}

impl<T: Scalar, C: Rule> Optim<T, C> {
    /// Builds an optimizer from restored parts (state restore).
    pub(crate) fn from_parts(
        config: C,
        groups: Vec<ParamGroup>,
        schedule: LrSchedule,
        clip: GradClip,
        non_finite: NonFinitePolicy,
        steps: u64,
        states: HashMap<String, ParamState<T>>,
    ) -> Self {
        Optim {
            config,
            groups,
            schedule,
            clip,
            non_finite,
            steps,
            states,
            partials: Vec::new(),
            passes: 0,
        }
    }
}
