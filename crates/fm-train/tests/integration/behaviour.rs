//! The trainer's policies: NaN/Inf guard, early stopping, budgets, evaluation, logs and the plot.

use std::time::Duration;

use fm_eval::{Direction, MetricValues};
use fm_optim::{Sgd, SgdConfig};
use fm_tensor::autograd::{ParamStore, Tape};
use fm_train::{
    BoxError, EarlyStopping, LossOutput, Mode, NonFiniteAction, StepContext, StopReason,
    TrainError, Trainer, TrainerConfig, VecLoader,
};
use ndarray::array;

/// Fits w to the batch value by least squares; a batch of NaN poisons the loss.
fn quadratic(
    _: &StepContext,
    store: &ParamStore<f64>,
    target: &f64,
) -> Result<LossOutput<f64>, BoxError> {
    let tape = Tape::new();
    let w = tape.param(store, store.id("w").unwrap())?;
    let loss = w.add_scalar(-target)?.square()?.sum()?;
    Ok(LossOutput {
        loss: loss.item()?,
        grads: tape.backward(loss)?,
        tokens: 1,
    })
}

fn setup() -> (ParamStore<f64>, Sgd<f64>) {
    let mut store = ParamStore::new();
    store.add("w", array![0.0f64]).unwrap();
    (
        store,
        Sgd::new(SgdConfig::builder().lr(0.1).build().unwrap()),
    )
}

fn quiet(max_steps: u64) -> TrainerConfig {
    TrainerConfig {
        max_steps: Some(max_steps),
        progress: false,
        log_every: 1,
        ..TrainerConfig::default()
    }
}

#[test]
fn non_finite_steps_stop_with_the_step_named_or_are_skipped() {
    let batches = vec![1.0, 1.0, f64::NAN, 1.0];
    let (mut store, mut sgd) = setup();
    let mut loader = VecLoader::in_order(batches.clone()).unwrap();
    let err = Trainer::new(quiet(8))
        .unwrap()
        .fit(&mut store, &mut sgd, &mut loader, quadratic, None)
        .unwrap_err();
    assert!(
        matches!(err, TrainError::NonFinite { step: 2, .. }),
        "{err}"
    );
    assert!(
        err.to_string().starts_with("step 2: non-finite loss = NaN"),
        "{err}"
    );
    assert!(store.value(store.id("w").unwrap())[[0]].is_finite());

    let (mut store, mut sgd) = setup();
    let mut loader = VecLoader::in_order(batches).unwrap();
    let config = TrainerConfig {
        non_finite: NonFiniteAction::Skip,
        ..quiet(8)
    };
    let summary = Trainer::new(config)
        .unwrap()
        .fit(&mut store, &mut sgd, &mut loader, quadratic, None)
        .unwrap();
    assert_eq!((summary.steps, summary.skipped_steps), (8, 2));
    let w = store.value(store.id("w").unwrap())[[0]];
    // Six SGD steps towards 1 from 0 with lr 0.1 on (w - 1)²: w = 1 - 0.8⁶.
    assert!((w - (1.0 - 0.8f64.powi(6))).abs() < 1e-12, "{w}");
}

#[test]
fn early_stopping_ends_the_run_after_patience_evaluations_without_improvement() {
    let (mut store, mut sgd) = setup();
    let mut loader = VecLoader::in_order(vec![1.0]).unwrap();
    let config = TrainerConfig {
        eval_every: Some(2),
        ..quiet(100)
    };
    // Validation loss improves until step 6, then gets worse.
    let mut eval = |_: &ParamStore<f64>, step: u64| -> Result<MetricValues, BoxError> {
        let mut values = MetricValues::new();
        let loss = (step as f64 - 6.0).abs();
        values.insert("val/loss", Ok(loss), Direction::LowerIsBetter);
        Ok(values)
    };
    let mut trainer = Trainer::new(config)
        .unwrap()
        .with_early_stopping(EarlyStopping::new("val/loss", Mode::Min, 3, 0.0).unwrap());
    let summary = trainer
        .fit(
            &mut store,
            &mut sgd,
            &mut loader,
            quadratic,
            Some(&mut eval),
        )
        .unwrap();
    assert_eq!(summary.stop_reason, StopReason::EarlyStopped);
    assert_eq!(summary.steps, 12); // evaluations at 8, 10, 12 did not improve on step 6
    let es = summary.early_stopping.unwrap();
    assert_eq!((es.best, es.best_step), (Some(0.0), Some(6)));
    assert_eq!(summary.last_eval.unwrap()["val/loss"], 6.0);

    // A monitored metric the evaluation does not return is an error that says so.
    let (mut store, mut sgd) = setup();
    let mut loader = VecLoader::in_order(vec![1.0]).unwrap();
    let mut trainer = Trainer::new(TrainerConfig {
        eval_every: Some(1),
        ..quiet(5)
    })
    .unwrap()
    .with_early_stopping(EarlyStopping::new("val/acc", Mode::Max, 1, 0.0).unwrap());
    let err = trainer
        .fit(
            &mut store,
            &mut sgd,
            &mut loader,
            quadratic,
            Some(&mut eval),
        )
        .unwrap_err();
    assert!(err.to_string().contains("\"val/acc\""), "{err}");
}

#[test]
fn a_wall_clock_budget_ends_the_run_cleanly_with_a_checkpoint_and_a_plot() {
    let dir = std::env::temp_dir().join(format!("fm-train-wall-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (mut store, mut sgd) = setup();
    let mut loader = VecLoader::in_order(vec![1.0, 2.0]).unwrap();
    let config = TrainerConfig {
        max_steps: None,
        max_wall_clock: Some(Duration::from_millis(100)),
        checkpoint_dir: Some(dir.join("ckpt")),
        metrics_log: Some(dir.join("metrics.jsonl")),
        loss_plot: Some(dir.join("loss.png")),
        progress: false,
        ..TrainerConfig::default()
    };
    std::fs::create_dir_all(&dir).unwrap();
    let slow = |c: &StepContext, s: &ParamStore<f64>, b: &f64| {
        std::thread::sleep(Duration::from_millis(2));
        quadratic(c, s, b)
    };
    let summary = Trainer::new(config)
        .unwrap()
        .fit(&mut store, &mut sgd, &mut loader, slow, None)
        .unwrap();
    assert_eq!(summary.stop_reason, StopReason::WallClock);
    assert!(summary.steps >= 10, "{} steps", summary.steps);
    let ckpt = summary.last_checkpoint.unwrap();
    assert!(ckpt.ends_with(format!("step-{:06}", summary.steps)));
    let png = std::fs::read(summary.loss_plot.unwrap()).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    let records = fm_train::metrics_log::read_records(&dir.join("metrics.jsonl")).unwrap();
    assert!(records
        .iter()
        .all(|r| r.loss.is_some() && r.tokens_per_sec.is_some()));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn configurations_are_checked() {
    let bad = [
        TrainerConfig {
            max_steps: None,
            ..TrainerConfig::default()
        },
        TrainerConfig {
            grad_accumulation: 0,
            ..quiet(1)
        },
        TrainerConfig {
            clip_norm: Some(-1.0),
            ..quiet(1)
        },
        TrainerConfig {
            loss_plot: Some("x.png".into()),
            ..quiet(1)
        },
        TrainerConfig {
            threads: Some(0),
            ..quiet(1)
        },
    ];
    for config in bad {
        let err = Trainer::new(config).unwrap_err();
        assert!(matches!(err, TrainError::Config { .. }), "{err}");
    }
}

#[test]
fn step_contexts_carry_distinct_deterministic_seeds() {
    let (mut store, mut sgd) = setup();
    let mut loader = VecLoader::in_order(vec![1.0]).unwrap();
    let mut seen = Vec::new();
    let config = TrainerConfig {
        grad_accumulation: 2,
        seed: 5,
        ..quiet(3)
    };
    let record = |c: &StepContext, s: &ParamStore<f64>, b: &f64| {
        seen.push((c.step, c.micro_batch, c.seed));
        quadratic(c, s, b)
    };
    Trainer::new(config)
        .unwrap()
        .fit(&mut store, &mut sgd, &mut loader, record, None)
        .unwrap();
    assert_eq!(seen.len(), 6);
    for &(step, micro, seed) in &seen {
        assert_eq!(seed, fm_train::rng::step_seed(5, step, micro as u64));
    }
    let mut seeds: Vec<u64> = seen.iter().map(|s| s.2).collect();
    seeds.sort();
    seeds.dedup();
    assert_eq!(seeds.len(), 6);
}
