//! # fm-train
//!
//! Building blocks for a training loop on fm-tensor's `ParamStore`: gradient accumulation,
//! gradient statistics and clipping, a NaN/Inf guard, early stopping, a resumable data loader,
//! atomic checksummed checkpoints, a JSON Lines metrics log and compute budgets.

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
