//! # fm-train
//!
//! The parts of a training loop that are the same for every model, on top of fm-tensor's
//! `ParamStore` and any fm-optim optimizer: gradient accumulation, gradient statistics and clipping,
//! a NaN/Inf guard, learning-rate schedules (stepped by the optimizer), evaluation every N steps with
//! fm-eval metrics, early stopping, checkpoints that resume **bit-exactly** and survive crashes and
//! damage, a JSON Lines metrics log, a progress line with throughput and ETA, a loss-curve PNG, and
//! compute budgets (threads, steps, wall-clock, stop requests).
//!
//! Use the [`Trainer`] when its loop is the loop you want; use the pieces ([`GradAccumulator`],
//! [`GradStats`], [`NonFiniteGuard`], [`EarlyStopping`], [`checkpoint::CheckpointDir`],
//! [`MetricsLog`], [`Progress`], [`Budget`]) in your own loop when it is not. The crate knows nothing
//! about layers: a model is whatever computes a loss from a `ParamStore` and a batch.
//!
//! ## A first example
//!
//! Fit `y = 3x − 1` with a weight and a bias, AdamW with a cosine schedule, a checkpoint directory
//! and a resume:
//!
//! ```
//! use fm_optim::{AdamConfig, AdamW, LrSchedule};
//! use fm_tensor::autograd::{ParamStore, Tape};
//! use fm_train::{BoxError, LossOutput, StepContext, Trainer, TrainerConfig, VecLoader};
//! use ndarray::{array, Array2};
//!
//! // Eight batches of (x, y) pairs.
//! let batches: Vec<(Array2<f64>, Array2<f64>)> = (0..8)
//!     .map(|i| {
//!         let x = Array2::from_shape_fn((4, 1), |(r, _)| (i * 4 + r) as f64 / 16.0 - 1.0);
//!         let y = x.mapv(|v| 3.0 * v - 1.0);
//!         (x, y)
//!     })
//!     .collect();
//!
//! // The model is a closure from parameters and a batch to a loss and its gradients.
//! let loss_fn = |_ctx: &StepContext, p: &ParamStore<f64>, (x, y): &(Array2<f64>, Array2<f64>)|
//!  -> Result<LossOutput<f64>, BoxError> {
//!     let tape = Tape::new();
//!     let w = tape.param(p, p.id("w").unwrap())?;
//!     let b = tape.param(p, p.id("b").unwrap())?;
//!     let pred = tape.constant(x.clone()).matmul(w)?.add(b)?;
//!     let loss = pred.sub(tape.constant(y.clone()))?.square()?.mean()?;
//!     Ok(LossOutput { loss: loss.item()?, grads: tape.backward(loss)?, tokens: 4 })
//! };
//!
//! let dir = std::env::temp_dir().join(format!("fm-train-doc-{}", std::process::id()));
//! let fit = |max_steps| -> Result<(ParamStore<f64>, fm_train::TrainSummary), BoxError> {
//!     let mut params = ParamStore::<f64>::new();
//!     params.add("w", array![[0.0]])?;
//!     params.add("b", array![0.0])?;
//!     let adamw = AdamConfig::adamw().lr(0.05).weight_decay(0.0).build()?;
//!     let mut opt = AdamW::<f64>::new(adamw).with_schedule(LrSchedule::cosine(600, 0.0)?)?;
//!     let mut loader = VecLoader::new(batches.clone(), 1)?;
//!     let config = TrainerConfig {
//!         max_steps: Some(max_steps),
//!         clip_norm: Some(10.0),
//!         checkpoint_dir: Some(dir.clone()),
//!         progress: false,
//!         ..TrainerConfig::default()
//!     };
//!     let summary = Trainer::new(config)?.fit(&mut params, &mut opt, &mut loader, loss_fn, None)?;
//!     Ok((params, summary))
//! };
//!
//! let (_, first) = fit(300)?; // as if the run were interrupted at step 300
//! let (params, second) = fit(600)?; // picks up the step-300 checkpoint
//! assert_eq!(second.resumed_from, Some(300));
//! assert!((params.value(params.id("w").unwrap())[[0, 0]] - 3.0).abs() < 1e-2);
//! assert!(second.final_loss.unwrap() < first.final_loss.unwrap());
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), BoxError>(())
//! ```
//!
//! ## Where to look next, in the order a newcomer meets things
//!
//! 1. [`Trainer`] and [`TrainerConfig`]: the loop, what each step does, and [`StepContext`] (the
//!    per-step seed for dropout). [`TrainSummary`] says what a run did and why it stopped.
//! 2. [`DataLoader`] and [`VecLoader`]: batches with a position (epoch, index, seed) that
//!    checkpoints save, so a resumed run sees the same batches.
//! 3. [`checkpoint`]: the directory layout, atomic writes, SHA-256 manifests,
//!    [`latest_valid`](checkpoint::CheckpointDir::latest_valid).
//! 4. The pieces for your own loop: [`GradAccumulator`], [`GradStats`] and [`clip_grad_norm`],
//!    [`NonFiniteGuard`], [`EarlyStopping`], [`Budget`] and [`StopHandle`], [`rng`].
//! 5. Output: [`MetricsLog`] (JSON Lines), [`Progress`], [`plot_loss_curve`].
//!
//! ## Determinism and exact resume
//!
//! Nothing in the loop depends on the clock or the thread count: seeds derive from the run's seed
//! and the step ([`rng::step_seed`]), a loader's order from its seed and the epoch, and fm-tensor's
//! kernels and fm-optim's updates give the same bits for any number of threads. A checkpoint holds
//! the parameters and optimizer state bit for bit plus every counter, so a run stopped at step `k`
//! and resumed — on any thread count — reaches step `n` with the same parameters as a run that never
//! stopped (`tests/integration/resume.rs` checks this). The wall-clock budget decides only *where* a run stops,
//! never what a step computes.
//!
//! ## Errors
//!
//! Every failure is a [`TrainError`] that names what it concerns: the step for a non-finite loss,
//! the file and the problem for a damaged checkpoint ("truncated: 1020 bytes, the manifest says
//! 1828"), the parameter for a model that does not match its checkpoint. Damaged files never panic.

pub mod accumulate;
pub mod budget;
pub mod checkpoint;
pub mod early_stop;
pub mod error;
pub mod grads;
pub mod guard;
pub mod loader;
pub mod metrics_log;
pub mod plot;
pub mod progress;
pub mod rng;
pub mod trainer;

pub use accumulate::{AccumulatedStep, GradAccumulator};
pub use budget::{Budget, StopHandle};
pub use early_stop::{EarlyStopping, EarlyStoppingState, Mode};
pub use error::{BoxError, Result, TrainError};
pub use grads::{clip_grad_norm, GradStats};
pub use guard::{GuardVerdict, NonFiniteAction, NonFiniteGuard};
pub use loader::{DataLoader, LoaderPosition, VecLoader};
pub use metrics_log::{LogRecord, MetricsLog};
pub use plot::plot_loss_curve;
pub use progress::{Progress, ProgressReport};
pub use trainer::{
    EvalFn, LossOutput, StepContext, StopReason, TrainSummary, Trainer, TrainerConfig,
};
