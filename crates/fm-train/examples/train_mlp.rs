//! A small MLP learns a synthetic three-class problem (three noisy rings), with checkpoints, a
//! resume, evaluation with fm-eval, early stopping, a metrics log and a loss-curve PNG.
//!
//! ```text
//! cargo run --release -p fm-train --example train_mlp -- [OUTPUT_DIR]
//! ```
//!
//! The run is split in two on purpose: the first `fit` is given a budget of 150 steps (as if the
//! machine were taken away), the second resumes from its checkpoint and continues to 400 steps. The
//! parameters at the end are then compared, bit for bit, with a run that never stopped.
//! Run it twice: the second invocation finds the finished checkpoint and has nothing left to do.

use std::path::PathBuf;

use fm_eval::{Accuracy, Direction, Metric, MetricValues};
use fm_loss::{autograd::cross_entropy, CrossEntropyOptions};
use fm_optim::{AdamConfig, AdamW, LrSchedule};
use fm_tensor::autograd::{ParamStore, Tape};
use fm_tensor::init::normal;
use fm_train::rng::SplitMix64;
use fm_train::{
    BoxError, EarlyStopping, LossOutput, Mode, StepContext, Trainer, TrainerConfig, VecLoader,
};
use ndarray::{Array1, Array2, Axis};

const CLASSES: usize = 3;
const HIDDEN: usize = 64;
const BATCH: usize = 32;

/// A batch: 2-D points and their ring index.
#[derive(Clone)]
struct Batch {
    x: Array2<f32>,
    y: Vec<usize>,
}

/// Points on three concentric rings of radius 1, 2, 3, with noise.
fn rings(n: usize, seed: u64) -> Batch {
    let mut rng = SplitMix64::new(seed);
    let mut x = Array2::zeros((n, 2));
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let class = rng.below(CLASSES as u64) as usize;
        let angle = rng.next_f64() * std::f64::consts::TAU;
        let radius = (class + 1) as f64 + 0.25 * (rng.next_f64() - 0.5);
        x[[i, 0]] = (radius * angle.cos()) as f32;
        x[[i, 1]] = (radius * angle.sin()) as f32;
        y.push(class);
    }
    Batch { x, y }
}

fn model() -> Result<ParamStore<f32>, BoxError> {
    let mut store = ParamStore::new();
    store.add("fc1.weight", normal::<f32>(&[2, HIDDEN], 0.0, 0.7, 1)?)?;
    store.add("fc1.bias", ndarray::ArrayD::zeros(vec![HIDDEN]))?;
    store.add(
        "fc2.weight",
        normal::<f32>(&[HIDDEN, CLASSES], 0.0, 0.12, 2)?,
    )?;
    store.add("fc2.bias", ndarray::ArrayD::zeros(vec![CLASSES]))?;
    Ok(store)
}

/// Logits of a batch, recorded on `tape`; dropout only when a seed is given (training).
fn forward<'t>(
    tape: &'t Tape<f32>,
    store: &ParamStore<f32>,
    x: &Array2<f32>,
    dropout_seed: Option<u64>,
) -> Result<fm_tensor::Var<'t, f32>, BoxError> {
    let p = |name: &str| tape.param(store, store.id(name).expect("parameter exists"));
    let mut h = tape
        .constant(x.clone())
        .matmul(p("fc1.weight")?)?
        .add(p("fc1.bias")?)?
        .gelu()?;
    if let Some(seed) = dropout_seed {
        h = h.dropout(0.1, seed)?;
    }
    Ok(h.matmul(p("fc2.weight")?)?.add(p("fc2.bias")?)?)
}

fn loss(
    ctx: &StepContext,
    store: &ParamStore<f32>,
    b: &Batch,
) -> Result<LossOutput<f32>, BoxError> {
    let tape = Tape::new();
    let logits = forward(&tape, store, &b.x, Some(ctx.seed))?;
    let loss = cross_entropy(logits, b.y.as_slice(), &CrossEntropyOptions::default())?;
    Ok(LossOutput {
        loss: f64::from(loss.item()?),
        grads: tape.backward(loss)?,
        tokens: b.y.len() as u64,
    })
}

fn evaluate(store: &ParamStore<f32>, held_out: &Batch) -> Result<MetricValues, BoxError> {
    let tape = Tape::no_grad();
    let logits = forward(&tape, store, &held_out.x, None)?;
    let val_loss = cross_entropy(
        logits,
        held_out.y.as_slice(),
        &CrossEntropyOptions::default(),
    )?;
    let scores = logits.value().into_dimensionality::<ndarray::Ix2>()?;
    let predicted: Array1<usize> = scores.map_axis(Axis(1), |row| {
        (0..row.len()).fold(0, |best, c| if row[c] > row[best] { c } else { best })
    });
    let mut accuracy = Accuracy::new(CLASSES)?;
    accuracy.update(held_out.y.as_slice(), &predicted)?;
    let mut values = MetricValues::new();
    values.insert(
        "val/loss",
        Ok(f64::from(val_loss.item()?)),
        Direction::LowerIsBetter,
    );
    accuracy.record(&mut values);
    Ok(values)
}

fn config(out: &std::path::Path, max_steps: u64) -> TrainerConfig {
    TrainerConfig {
        max_steps: Some(max_steps),
        grad_accumulation: 2,
        clip_norm: Some(1.0),
        eval_every: Some(50),
        checkpoint_every: Some(100),
        log_every: 10,
        seed: 7,
        threads: Some(2),
        checkpoint_dir: Some(out.join("checkpoints")),
        keep_last: 2,
        metrics_log: Some(out.join("metrics.jsonl")),
        loss_plot: Some(out.join("loss.png")),
        ..TrainerConfig::default()
    }
}

fn optimizer() -> Result<AdamW<f32>, BoxError> {
    let adamw = AdamConfig::adamw().lr(1e-2).weight_decay(1e-4).build()?;
    Ok(AdamW::new(adamw).with_schedule(LrSchedule::warmup_cosine(20, 400, 1e-4)?)?)
}

fn train(
    out: &std::path::Path,
    max_steps: u64,
) -> Result<(ParamStore<f32>, fm_train::TrainSummary), BoxError> {
    let held_out = rings(600, 999);
    let mut store = model()?;
    let mut optimizer = optimizer()?;
    let batches: Vec<Batch> = (0..40).map(|i| rings(BATCH, 100 + i)).collect();
    let mut loader = VecLoader::new(batches, 3)?;
    let mut trainer = Trainer::new(config(out, max_steps))?
        .with_early_stopping(EarlyStopping::new("val/loss", Mode::Min, 4, 1e-4)?);
    let mut eval = |s: &ParamStore<f32>, _step: u64| evaluate(s, &held_out);
    let summary = trainer.fit(
        &mut store,
        &mut optimizer,
        &mut loader,
        loss,
        Some(&mut eval),
    )?;
    Ok((store, summary))
}

fn main() -> Result<(), BoxError> {
    let out = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("fm-train-mlp"));
    std::fs::create_dir_all(&out)?;

    let (_, first) = train(&out, 150)?;
    println!(
        "first run: {:?} after {} steps",
        first.stop_reason, first.steps
    );
    let (resumed, second) = train(&out, 400)?;
    println!(
        "second run: resumed from step {:?}, {:?} at step {} (loss {:.4}, {} skipped steps)",
        second.resumed_from,
        second.stop_reason,
        second.steps,
        second.final_loss.unwrap_or(f64::NAN),
        second.skipped_steps
    );
    if let Some(eval) = &second.last_eval {
        println!("held-out: {eval:?}");
    }

    // The same training without the interruption, in a scratch directory.
    let scratch = out.join("uninterrupted");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch)?;
    let (reference, _) = train(&scratch, second.steps)?;
    let same = resumed
        .iter()
        .zip(reference.iter())
        .all(|((_, a), (_, b))| {
            a.value()
                .iter()
                .zip(b.value())
                .all(|(x, y)| x.to_bits() == y.to_bits())
        });
    println!("resumed run bitwise equal to the uninterrupted one: {same}");
    println!(
        "checkpoint: {}\nmetrics: {}\nloss curve: {}",
        second
            .last_checkpoint
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        out.join("metrics.jsonl").display(),
        out.join("loss.png").display()
    );
    Ok(())
}
