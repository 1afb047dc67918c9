//! A run stopped at step k and resumed is bitwise the run that never stopped, on any thread count;
//! damaged checkpoints are detected and the previous one is used.

use std::path::{Path, PathBuf};

use fm_optim::{Adam, AdamConfig, LrSchedule};
use fm_tensor::autograd::{ParamStore, Tape};
use fm_tensor::init::normal;
use fm_train::checkpoint::{CheckpointDir, MODEL_FILE, OPTIMIZER_FILE};
use fm_train::{BoxError, LossOutput, StepContext, StopReason, Trainer, TrainerConfig, VecLoader};
use ndarray::{Array2, ArrayD};

type Batch = (Array2<f32>, Array2<f32>);

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fm-train-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A two-layer MLP with dropout. The first layer's products (128×64 by 64×128, forward and
/// backward) reach fm-tensor's 2²⁰ multiply-adds threshold, so they run on several threads.
fn model() -> ParamStore<f32> {
    let mut store = ParamStore::new();
    store
        .add("w1", normal::<f32>(&[64, 128], 0.0, 0.15, 1).unwrap())
        .unwrap();
    store.add("b1", ArrayD::<f32>::zeros(vec![128])).unwrap();
    store
        .add("w2", normal::<f32>(&[128, 4], 0.0, 0.15, 2).unwrap())
        .unwrap();
    store.add("b2", ArrayD::<f32>::zeros(vec![4])).unwrap();
    store
}

fn batches() -> Vec<Batch> {
    (0..7u64)
        .map(|i| {
            let x: Array2<f32> = normal::<f32>(&[128, 64], 0.0, 1.0, 100 + i)
                .unwrap()
                .into_dimensionality()
                .unwrap();
            let y = x.dot(&Array2::from_shape_fn((64, 4), |(r, c)| {
                ((r * 3 + c) % 5) as f32 * 0.1
            }));
            (x, y.mapv(f32::sin))
        })
        .collect()
}

fn mse_loss(
    ctx: &StepContext,
    store: &ParamStore<f32>,
    (x, y): &Batch,
) -> Result<LossOutput<f32>, BoxError> {
    let id = |n: &str| store.id(n).unwrap();
    let tape = Tape::new();
    let h = tape
        .constant(x.clone())
        .matmul(tape.param(store, id("w1"))?)?
        .add(tape.param(store, id("b1"))?)?
        .tanh()?
        .dropout(0.1, ctx.seed)?;
    let pred = h
        .matmul(tape.param(store, id("w2"))?)?
        .add(tape.param(store, id("b2"))?)?;
    let loss = pred.sub(tape.constant(y.clone()))?.square()?.mean()?;
    let value = f64::from(loss.item()?);
    Ok(LossOutput {
        loss: value,
        grads: tape.backward(loss)?,
        tokens: x.nrows() as u64,
    })
}

fn optimizer() -> Adam<f32> {
    Adam::new(
        AdamConfig::adamw()
            .lr(3e-3)
            .weight_decay(0.01)
            .build()
            .unwrap(),
    )
    .with_schedule(LrSchedule::warmup_cosine(3, 40, 1e-4).unwrap())
    .unwrap()
}

fn config(dir: Option<&Path>, max_steps: u64, threads: usize) -> TrainerConfig {
    TrainerConfig {
        max_steps: Some(max_steps),
        grad_accumulation: 2,
        clip_norm: Some(0.5),
        checkpoint_every: Some(4),
        log_every: 2,
        seed: 1234,
        threads: Some(threads),
        checkpoint_dir: dir.map(Path::to_path_buf),
        keep_last: 2,
        metrics_log: dir.map(|d| d.join("metrics.jsonl")),
        progress: false,
        ..TrainerConfig::default()
    }
}

fn run(
    dir: Option<&Path>,
    max_steps: u64,
    threads: usize,
) -> (ParamStore<f32>, fm_train::TrainSummary) {
    let mut store = model();
    let mut opt = optimizer();
    let mut loader = VecLoader::new(batches(), 99).unwrap();
    let mut trainer = Trainer::new(config(dir, max_steps, threads)).unwrap();
    let summary = trainer
        .fit(&mut store, &mut opt, &mut loader, mse_loss, None)
        .unwrap();
    (store, summary)
}

fn bits(store: &ParamStore<f32>) -> Vec<(String, Vec<u32>)> {
    store
        .iter()
        .map(|(_, p)| {
            (
                p.name().to_string(),
                p.value().iter().map(|v| v.to_bits()).collect(),
            )
        })
        .collect()
}

#[test]
fn stopped_and_resumed_on_another_thread_count_is_bitwise_the_uninterrupted_run() {
    let n = 13; // crosses an epoch boundary (7 batches, 2 per step) and a non-checkpoint step
    let (reference, full) = run(None, n, 1);
    assert_eq!(full.steps, n);
    // At least the 128×128 activations of one micro-batch were alive at once.
    assert!(
        full.peak_tensor_bytes >= 128 * 128 * 4,
        "{}",
        full.peak_tensor_bytes
    );
    let (_, one_step) = run(None, 1, 1);
    assert!(
        full.final_loss.unwrap() < one_step.final_loss.unwrap(),
        "training reduces the loss"
    );

    let dir = temp_dir("resume");
    let (_, first) = run(Some(&dir), 6, 1); // stops at 6: not a multiple of checkpoint_every
    assert_eq!((first.stop_reason, first.steps), (StopReason::MaxSteps, 6));
    assert_eq!(
        CheckpointDir::new(&dir, 2).unwrap().steps().unwrap(),
        [4, 6]
    );

    let (resumed, second) = run(Some(&dir), n, 2);
    assert_eq!(second.resumed_from, Some(6));
    assert_eq!(second.steps_this_run, n - 6);
    assert_eq!(bits(&resumed), bits(&reference));
    assert_eq!(
        second.final_loss.map(f64::to_bits),
        full.final_loss.map(f64::to_bits)
    );

    // The metrics log reads as one run: steps 2, 4, ..., 12 once each.
    let records = fm_train::metrics_log::read_records(&dir.join("metrics.jsonl")).unwrap();
    let steps: Vec<u64> = records.iter().map(|r| r.step).collect();
    assert_eq!(steps, [2, 4, 6, 8, 10, 12]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_stop_request_ends_the_run_with_a_checkpoint_that_resumes_exactly() {
    let dir = temp_dir("stop");
    let mut store = model();
    let mut opt = optimizer();
    let mut loader = VecLoader::new(batches(), 99).unwrap();
    let mut trainer = Trainer::new(config(Some(&dir), 10, 2)).unwrap();
    let stop = trainer.stop_handle();
    let mut calls = 0;
    let loss = |ctx: &StepContext, s: &ParamStore<f32>, b: &Batch| {
        calls += 1;
        if ctx.step == 2 {
            stop.request_stop(); // as a Ctrl-C handler would, mid-step
        }
        mse_loss(ctx, s, b)
    };
    let summary = trainer
        .fit(&mut store, &mut opt, &mut loader, loss, None)
        .unwrap();
    assert_eq!(summary.stop_reason, StopReason::StopRequested);
    assert_eq!(summary.steps, 3, "the step in flight finishes");
    assert_eq!(calls, 6);
    assert!(summary.last_checkpoint.unwrap().ends_with("step-000003"));

    let (resumed, _) = run(Some(&dir), 10, 1);
    let (reference, _) = run(None, 10, 2);
    assert_eq!(bits(&resumed), bits(&reference));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn corrupted_and_truncated_checkpoints_are_reported_and_the_previous_one_loads() {
    let dir = temp_dir("damaged");
    let (_, _) = run(Some(&dir), 12, 1); // checkpoints at 8 and 12 are kept
    let ckpts = CheckpointDir::new(&dir, 3).unwrap();
    assert_eq!(ckpts.steps().unwrap(), [8, 12]);

    // Flip one bit in the newest optimizer state.
    let opt_path = ckpts.step_path(12).join(OPTIMIZER_FILE);
    let mut bytes = std::fs::read(&opt_path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    std::fs::write(&opt_path, &bytes).unwrap();
    let found = ckpts.latest_valid::<f32>().unwrap().unwrap();
    assert_eq!(found.checkpoint.state.step, 8);
    assert_eq!(found.rejected.len(), 1);
    let reason = &found.rejected[0].reason;
    assert!(
        reason.contains("optimizer.safetensors") && reason.contains("corrupted"),
        "{reason}"
    );

    // Truncate the older model as well: nothing loads, and both problems are listed.
    let model_path = ckpts.step_path(8).join(MODEL_FILE);
    let bytes = std::fs::read(&model_path).unwrap();
    std::fs::write(&model_path, &bytes[..bytes.len() / 3]).unwrap();
    let err = ckpts.latest_valid::<f32>().unwrap_err().to_string();
    assert!(
        err.contains("step 12") && err.contains("corrupted"),
        "{err}"
    );
    assert!(err.contains("step 8") && err.contains("truncated"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn resuming_skips_a_damaged_newest_checkpoint_and_still_matches() {
    let dir = temp_dir("fallback");
    run(Some(&dir), 8, 1); // checkpoints at 4 and 8
    let ckpts = CheckpointDir::new(&dir, 2).unwrap();
    std::fs::remove_file(ckpts.step_path(8).join("manifest.json")).unwrap();
    let (resumed, summary) = run(Some(&dir), 11, 2);
    assert_eq!(summary.resumed_from, Some(4));
    assert!(summary.rejected_checkpoints[0]
        .reason
        .contains("manifest.json"));
    let (reference, _) = run(None, 11, 1);
    assert_eq!(bits(&resumed), bits(&reference));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn garbage_manifests_and_trainer_states_do_not_panic() {
    let dir = temp_dir("garbage");
    run(Some(&dir), 4, 1);
    let ckpts = CheckpointDir::new(&dir, 2).unwrap();
    let step = ckpts.step_path(4);
    std::fs::write(step.join("manifest.json"), b"{\"format\": 1, \"step\": ").unwrap();
    let err = ckpts.load::<f32>(4).unwrap_err().to_string();
    assert!(
        err.contains("manifest.json") && err.contains("not a valid manifest"),
        "{err}"
    );
    // A model file that is not safetensors at all, with a manifest that vouches for it.
    std::fs::remove_dir_all(&step).unwrap();
    run(Some(&dir), 4, 1);
    let model = step.join(MODEL_FILE);
    std::fs::write(&model, b"definitely not safetensors").unwrap();
    let manifest_path = step.join("manifest.json");
    let mut manifest: fm_train::checkpoint::Manifest =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    for e in &mut manifest.files {
        if e.name == MODEL_FILE {
            e.bytes = 26;
            e.sha256 = fm_train::checkpoint::sha256_hex(b"definitely not safetensors");
        }
    }
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    let err = ckpts.load::<f32>(4).unwrap_err().to_string();
    assert!(err.contains("model.safetensors"), "{err}");
    // f64 loading of an f32 checkpoint is refused rather than converted.
    std::fs::remove_dir_all(&step).unwrap();
    run(Some(&dir), 4, 1);
    let err = ckpts.load::<f64>(4).unwrap_err().to_string();
    assert!(err.contains("F32"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A loader that ignores `set_position`, as a broken resume would.
struct ForgetfulLoader(VecLoader<Batch>);

impl fm_train::DataLoader for ForgetfulLoader {
    type Batch = Batch;
    fn next_batch(&mut self) -> fm_train::Result<Batch> {
        self.0.next_batch()
    }
    fn position(&self) -> fm_train::LoaderPosition {
        self.0.position()
    }
    fn set_position(&mut self, _: fm_train::LoaderPosition) -> fm_train::Result<()> {
        Ok(())
    }
}

#[test]
fn the_bitwise_check_notices_a_resume_that_forgets_the_loader_position() {
    // Negative control for the test above: the same check fails when one piece of state is lost.
    let dir = temp_dir("forgetful");
    run(Some(&dir), 6, 1);
    let mut store = model();
    let mut opt = optimizer();
    let mut loader = ForgetfulLoader(VecLoader::new(batches(), 99).unwrap());
    let mut trainer = Trainer::new(config(Some(&dir), 13, 2)).unwrap();
    let summary = trainer
        .fit(&mut store, &mut opt, &mut loader, mse_loss, None)
        .unwrap();
    assert_eq!(summary.resumed_from, Some(6));
    let (reference, _) = run(None, 13, 1);
    assert_ne!(bits(&store), bits(&reference));
    std::fs::remove_dir_all(&dir).unwrap();
}
