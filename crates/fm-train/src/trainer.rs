//! [`Trainer`]: the building blocks of this crate composed into one loop.
//!
//! Each step: the loss closure runs on `grad_accumulation` micro-batches from the loader (each with
//! its own deterministic seed in the [`StepContext`]), their gradients are averaged in the
//! `ParamStore`, [`GradStats`] are taken, the [`NonFiniteGuard`] stops or skips a non-finite step,
//! the gradients are clipped to `clip_norm`, and the optimizer steps (its learning-rate schedule
//! advances with it). Every `log_every` steps a record goes to the metrics log and the progress
//! display; every `eval_every` steps the evaluation closure runs and feeds early stopping; every
//! `checkpoint_every` steps, and whenever the run ends cleanly, a checkpoint is written.
//!
//! The whole loop runs under a [`Compute`] handle capped at `threads` threads. fm-tensor's kernels
//! and fm-optim's updates split work over outputs, never over a reduction, so the parameters after
//! `n` steps are the same bits for any thread count — and, because the checkpoint holds everything
//! the loop depends on (parameters, optimizer moments and schedule, loader position, seed, guard and
//! early-stopping counters), the same bits whether or not the run was stopped and resumed on the way.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use fm_eval::MetricValues;
use fm_optim::Optimizer;
use fm_tensor::autograd::Gradients;
use fm_tensor::{Compute, Element, ParamStore};

use crate::accumulate::GradAccumulator;
use crate::budget::{Budget, StopHandle};
use crate::checkpoint::{store_params, CheckpointDir, CheckpointProblem, TrainerState};
use crate::early_stop::{EarlyStopping, EarlyStoppingState};
use crate::error::{BoxError, Result, TrainError};
use crate::grads::{clip_grad_norm, GradStats};
use crate::guard::{GuardVerdict, NonFiniteAction, NonFiniteGuard};
use crate::loader::DataLoader;
use crate::metrics_log::{LogRecord, MetricsLog};
use crate::plot::plot_loss_curve;
use crate::progress::{Progress, ProgressReport};
use crate::rng::step_seed;

/// How a [`Trainer`] runs. Build with `TrainerConfig { max_steps: Some(1000), ..Default::default() }`;
/// [`Trainer::new`] checks it.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainerConfig {
    /// Stop after this many optimizer steps in total (counted over resumes).
    pub max_steps: Option<u64>,
    /// Stop after this much wall-clock time in one call to [`Trainer::fit`].
    pub max_wall_clock: Option<Duration>,
    /// Micro-batches per optimizer step (>= 1).
    pub grad_accumulation: usize,
    /// Clip the global gradient norm to this (> 0), after averaging.
    pub clip_norm: Option<f64>,
    /// Run the evaluation closure every this many steps (>= 1).
    pub eval_every: Option<u64>,
    /// Write a checkpoint every this many steps (>= 1); one is also written when the run ends.
    pub checkpoint_every: Option<u64>,
    /// Write a metrics record and a progress report every this many steps (>= 1).
    pub log_every: u64,
    /// Base seed of the per-step seeds handed to the loss closure.
    pub seed: u64,
    /// What a step with a non-finite loss or gradient does.
    pub non_finite: NonFiniteAction,
    /// Thread cap for kernels (`None`: rayon's global pool).
    pub threads: Option<usize>,
    /// Where checkpoints go (`None`: no checkpoints).
    pub checkpoint_dir: Option<PathBuf>,
    /// Checkpoints kept (>= 1).
    pub keep_last: usize,
    /// Resume from the newest valid checkpoint in `checkpoint_dir`, if there is one (its saved seed
    /// and loader position win over `seed` and the loader's current position). With `false` the run
    /// starts from the given parameters, and its saves replace the old run's checkpoints.
    pub resume: bool,
    /// The JSON Lines metrics log (`None`: no log).
    pub metrics_log: Option<PathBuf>,
    /// A loss-curve PNG written at the end (`None`: no plot).
    pub loss_plot: Option<PathBuf>,
    /// Show progress on stderr.
    pub progress: bool,
}

impl Default for TrainerConfig {
    fn default() -> Self {
        TrainerConfig {
            max_steps: None,
            max_wall_clock: None,
            grad_accumulation: 1,
            clip_norm: None,
            eval_every: None,
            checkpoint_every: None,
            log_every: 10,
            seed: 0,
            non_finite: NonFiniteAction::Stop,
            threads: None,
            checkpoint_dir: None,
            keep_last: 3,
            resume: true,
            metrics_log: None,
            loss_plot: None,
            progress: true,
        }
    }
}

impl TrainerConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        const WHAT: &str = "TrainerConfig";
        let positive = |field, v: Option<u64>| match v {
            Some(0) => Err(TrainError::config(WHAT, field, 0, "must be at least 1")),
            _ => Ok(()),
        };
        positive("eval_every", self.eval_every)?;
        positive("checkpoint_every", self.checkpoint_every)?;
        positive("log_every", Some(self.log_every))?;
        positive("threads", self.threads.map(|t| t as u64))?;
        positive("grad_accumulation", Some(self.grad_accumulation as u64))?;
        positive("keep_last", Some(self.keep_last as u64))?;
        if let Some(c) = self.clip_norm {
            if !(c.is_finite() && c > 0.0) {
                return Err(TrainError::config(
                    WHAT,
                    "clip_norm",
                    c,
                    "must be finite and > 0",
                ));
            }
        }
        if self.loss_plot.is_some() && self.metrics_log.is_none() {
            return Err(TrainError::config(
                WHAT,
                "loss_plot",
                "Some",
                "needs metrics_log (the curve is drawn from the log, resumed runs included)",
            ));
        }
        if self.max_steps.is_none() && self.max_wall_clock.is_none() {
            return Err(TrainError::config(
                WHAT,
                "max_steps",
                "None",
                "or max_wall_clock must be set (the run needs an end)",
            ));
        }
        Ok(())
    }

    fn budget(&self) -> Budget {
        Budget {
            max_steps: self.max_steps,
            max_wall_clock: self.max_wall_clock,
        }
    }
}

/// What the loss closure is told about the micro-batch it computes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepContext {
    /// The optimizer step (0-based) this micro-batch belongs to.
    pub step: u64,
    /// The micro-batch within the step (0-based).
    pub micro_batch: usize,
    /// Micro-batches per step.
    pub micro_batches: usize,
    /// A seed for this micro-batch only (dropout masks, noise): [`step_seed`] of the run's seed,
    /// the step and the micro-batch.
    pub seed: u64,
    /// The learning rate this step will use (default group).
    pub lr: f64,
    /// The loader's epoch when the micro-batch was drawn.
    pub epoch: u64,
}

/// What the loss closure returns for one micro-batch.
#[derive(Debug)]
pub struct LossOutput<T: Element> {
    /// The loss value (the mean over the micro-batch's examples).
    pub loss: f64,
    /// `tape.backward(loss)`.
    pub grads: Gradients<T>,
    /// Tokens (or examples) in the micro-batch, for throughput figures.
    pub tokens: u64,
}

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// `max_steps` reached.
    MaxSteps,
    /// `max_wall_clock` spent.
    WallClock,
    /// A [`StopHandle`] asked for it.
    StopRequested,
    /// The early-stopping metric stopped improving.
    EarlyStopped,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    /// Why it ended.
    pub stop_reason: StopReason,
    /// Steps done in total (over resumes).
    pub steps: u64,
    /// Steps done in this call.
    pub steps_this_run: u64,
    /// The step the run resumed from, if it did.
    pub resumed_from: Option<u64>,
    /// Newer checkpoints that were damaged and passed over when resuming.
    pub rejected_checkpoints: Vec<CheckpointProblem>,
    /// The last step's mean loss.
    pub final_loss: Option<f64>,
    /// Steps skipped by the NaN/Inf guard (in total).
    pub skipped_steps: u64,
    /// Tokens trained on (in total).
    pub tokens_seen: u64,
    /// Wall time of this call.
    pub wall_time: Duration,
    /// The last evaluation's metrics.
    pub last_eval: Option<BTreeMap<String, f64>>,
    /// Early-stopping counters (best value and its step).
    pub early_stopping: Option<EarlyStoppingState>,
    /// The last checkpoint written (or, if this call wrote none, the one it resumed from).
    pub last_checkpoint: Option<PathBuf>,
    /// The loss-curve PNG, if one was written.
    pub loss_plot: Option<PathBuf>,
    /// Peak bytes of live fm-tensor data during this call, from the trainer's [`Compute`] handle
    /// (its own tracker when `threads` is set; the process-wide one otherwise).
    pub peak_tensor_bytes: usize,
}

/// The evaluation closure: the model's parameters and the step, to fm-eval's named metric values.
pub type EvalFn<'a, T> =
    dyn FnMut(&ParamStore<T>, u64) -> Result<MetricValues, BoxError> + Send + 'a;

/// A training loop over a [`ParamStore`], any [`Optimizer`] and any [`DataLoader`].
#[derive(Debug)]
pub struct Trainer {
    config: TrainerConfig,
    compute: Compute,
    stop: StopHandle,
    early_stopping: Option<EarlyStopping>,
}

/// Training figures summed between two log records.
#[derive(Debug, Default)]
struct Window {
    loss_sum: f64,
    steps: u64,
    tokens: u64,
    started: Option<Instant>,
}

impl Trainer {
    /// A trainer with a checked configuration (and its thread pool, when `threads` is set).
    pub fn new(config: TrainerConfig) -> Result<Self> {
        config.validate()?;
        let compute = match config.threads {
            Some(n) => Compute::with_threads(n)?,
            None => Compute::global(),
        };
        Ok(Trainer {
            config,
            compute,
            stop: StopHandle::new(),
            early_stopping: None,
        })
    }

    /// Stops the run when `early_stopping`'s metric (from the evaluation closure) stops improving.
    pub fn with_early_stopping(mut self, early_stopping: EarlyStopping) -> Self {
        self.early_stopping = Some(early_stopping);
        self
    }

    /// The handle that asks this trainer's runs to stop (clone it into a Ctrl-C handler).
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// The configuration.
    pub fn config(&self) -> &TrainerConfig {
        &self.config
    }

    /// The compute handle the loop runs under.
    pub fn compute(&self) -> &Compute {
        &self.compute
    }

    /// Trains `store` with `optimizer` on batches from `loader`, resuming from the newest valid
    /// checkpoint when configured to, until the budget, early stopping or a stop request ends the
    /// run; then writes a final checkpoint and the loss plot.
    ///
    /// `loss_fn` gets the step context, the parameters and a batch, and returns the loss, its
    /// gradients (`tape.backward(loss)`) and the batch's token count. `eval_fn`, if given, runs every
    /// `eval_every` steps.
    pub fn fit<T, L, F>(
        &mut self,
        store: &mut ParamStore<T>,
        optimizer: &mut dyn Optimizer<T>,
        loader: &mut L,
        loss_fn: F,
        eval_fn: Option<&mut EvalFn<'_, T>>,
    ) -> Result<TrainSummary>
    where
        T: Element + fm_optim::Scalar,
        L: DataLoader + Send,
        F: FnMut(&StepContext, &ParamStore<T>, &L::Batch) -> Result<LossOutput<T>, BoxError> + Send,
    {
        let compute = self.compute.clone();
        compute.install(|| self.run(store, optimizer, loader, loss_fn, eval_fn))
    }

    fn run<T, L, F>(
        &mut self,
        store: &mut ParamStore<T>,
        optimizer: &mut dyn Optimizer<T>,
        loader: &mut L,
        mut loss_fn: F,
        mut eval_fn: Option<&mut EvalFn<'_, T>>,
    ) -> Result<TrainSummary>
    where
        T: Element + fm_optim::Scalar,
        L: DataLoader,
        F: FnMut(&StepContext, &ParamStore<T>, &L::Batch) -> Result<LossOutput<T>, BoxError>,
    {
        let started = Instant::now();
        self.compute.memory().reset_peak();
        let config = self.config.clone();
        let budget = config.budget();
        let checkpoints = match &config.checkpoint_dir {
            Some(dir) => Some(CheckpointDir::new(dir, config.keep_last)?),
            None => None,
        };
        let mut guard = NonFiniteGuard::new(config.non_finite);
        let mut state = TrainerState::new(config.seed, loader.position());
        let mut resumed_from = None;
        let mut resumed_path = None;
        let mut rejected_checkpoints = Vec::new();

        if let (Some(dir), true) = (&checkpoints, config.resume) {
            if let Some(found) = dir.latest_valid::<T>()? {
                let ckpt = found.checkpoint;
                ckpt.restore_params(store)?;
                if let Some(opt) = &ckpt.optimizer {
                    optimizer.load_state(opt)?;
                }
                loader.set_position(ckpt.state.loader)?;
                guard.restore(ckpt.state.skipped_steps);
                if let (Some(es), Some(saved)) =
                    (&mut self.early_stopping, ckpt.state.early_stopping)
                {
                    es.restore(saved);
                }
                state = ckpt.state;
                resumed_from = Some(state.step);
                resumed_path = Some(ckpt.path);
                for problem in &found.rejected {
                    eprintln!("fm-train: passed over a damaged checkpoint: {problem}");
                }
                rejected_checkpoints = found.rejected;
            }
        }
        let first_step = state.step;
        let prior_secs = state.elapsed_secs;

        let mut log = match &config.metrics_log {
            Some(path) if resumed_from.is_some() => Some(MetricsLog::resume(path, state.step)?),
            Some(path) => Some(MetricsLog::create(path)?),
            None => None,
        };
        let mut progress = Progress::new(config.progress, first_step, config.max_steps);
        let mut accumulator = GradAccumulator::new(config.grad_accumulation)?;
        let mut window = Window::default();
        let mut last_eval = None;
        let mut last_checkpoint = resumed_path;
        let mut last_saved_step = resumed_from;
        let mut early_stopped = self
            .early_stopping
            .as_ref()
            .is_some_and(|e| e.should_stop());

        let stop_reason = loop {
            if budget.steps_spent(state.step) {
                break StopReason::MaxSteps;
            }
            if early_stopped {
                break StopReason::EarlyStopped;
            }
            if self.stop.is_stop_requested() {
                break StopReason::StopRequested;
            }
            if budget.time_spent(started.elapsed()) {
                break StopReason::WallClock;
            }
            let step = state.step;
            window.started.get_or_insert_with(Instant::now);
            let lr = optimizer.current_lr(0).unwrap_or(f64::NAN);

            for micro_batch in 0..config.grad_accumulation {
                let batch = loader.next_batch()?;
                let ctx = StepContext {
                    step,
                    micro_batch,
                    micro_batches: config.grad_accumulation,
                    seed: step_seed(state.seed, step, micro_batch as u64),
                    lr,
                    epoch: loader.position().epoch,
                };
                let out = loss_fn(&ctx, store, &batch)
                    .map_err(|source| TrainError::Loss { step, source })?;
                accumulator.add(store, &out.grads, out.loss, out.tokens)?;
            }
            let accumulated = accumulator.finish(store);
            let stats = GradStats::of(store);
            if guard.check(step, accumulated.mean_loss, &stats)? == GuardVerdict::Proceed {
                if let Some(max_norm) = config.clip_norm {
                    clip_grad_norm(store, stats.norm, max_norm)?;
                }
                optimizer.step(&mut *store)?;
                window.loss_sum += accumulated.mean_loss;
                window.steps += 1;
                state.last_loss = Some(accumulated.mean_loss);
            }
            store.zero_grad();
            state.step += 1;
            state.tokens_seen += accumulated.tokens;
            state.skipped_steps = guard.skipped();
            state.loader = loader.position();
            window.tokens += accumulated.tokens;

            let wall_secs = prior_secs + started.elapsed().as_secs_f64();
            if state.step.is_multiple_of(config.log_every) {
                let secs = window
                    .started
                    .map_or(0.0, |t| t.elapsed().as_secs_f64())
                    .max(1e-9);
                let loss = window.loss_sum / window.steps.max(1) as f64;
                let tokens_per_sec = window.tokens as f64 / secs;
                let record = LogRecord {
                    tokens_per_sec: Some(tokens_per_sec),
                    grad_norm: Some(stats.norm),
                    skipped_steps: Some(guard.skipped()),
                    ..LogRecord::train(state.step, loss, lr, wall_secs)
                };
                if let Some(log) = &mut log {
                    log.write(&record)?;
                }
                progress.report(&ProgressReport {
                    step: state.step,
                    loss,
                    lr,
                    tokens_per_sec,
                });
                window = Window::default();
            }

            if let (Some(every), Some(eval)) = (config.eval_every, eval_fn.as_deref_mut()) {
                if state.step.is_multiple_of(every) {
                    let metrics = eval(store, state.step).map_err(|source| TrainError::Eval {
                        step: state.step,
                        source,
                    })?;
                    let values: BTreeMap<String, f64> = metrics
                        .values
                        .iter()
                        .map(|(k, v)| (k.clone(), v.value))
                        .collect();
                    if let Some(es) = &mut self.early_stopping {
                        let value = *values.get(es.metric()).ok_or_else(|| TrainError::Eval {
                            step: state.step,
                            source: format!(
                                "early stopping monitors {:?}, which the evaluation did not \
                                 return (it returned {:?})",
                                es.metric(),
                                values.keys().collect::<Vec<_>>()
                            )
                            .into(),
                        })?;
                        early_stopped = es.observe(state.step, value);
                        state.early_stopping = Some(es.state());
                    }
                    if let Some(log) = &mut log {
                        log.write(&LogRecord::eval(state.step, wall_secs, values.clone()))?;
                    }
                    last_eval = Some(values);
                }
            }

            if let (Some(dir), Some(every)) = (&checkpoints, config.checkpoint_every) {
                if state.step.is_multiple_of(every) {
                    state.elapsed_secs = prior_secs + started.elapsed().as_secs_f64();
                    let opt_state = optimizer.state();
                    last_checkpoint =
                        Some(dir.save(store_params(store), Some(&opt_state), &state)?);
                    last_saved_step = Some(state.step);
                }
            }
        };
        progress.finish();

        state.elapsed_secs = prior_secs + started.elapsed().as_secs_f64();
        if let Some(dir) = &checkpoints {
            if last_saved_step != Some(state.step) {
                let opt_state = optimizer.state();
                last_checkpoint = Some(dir.save(store_params(store), Some(&opt_state), &state)?);
            }
        }
        let mut loss_plot = None;
        if let (Some(path), Some(log)) = (&config.loss_plot, &mut log) {
            plot_loss_curve(path, log.records())?;
            loss_plot = Some(path.clone());
        }
        Ok(TrainSummary {
            stop_reason,
            steps: state.step,
            steps_this_run: state.step - first_step,
            resumed_from,
            rejected_checkpoints,
            final_loss: state.last_loss,
            skipped_steps: guard.skipped(),
            tokens_seen: state.tokens_seen,
            wall_time: started.elapsed(),
            last_eval,
            early_stopping: self.early_stopping.as_ref().map(|e| e.state()),
            last_checkpoint,
            loss_plot,
            peak_tensor_bytes: self.compute.memory().peak_bytes(),
        })
    }
}
