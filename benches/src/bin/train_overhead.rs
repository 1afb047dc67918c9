//! What fm-train's `Trainer` costs over a hand-written loop doing the same work.
//!
//! Both loops train the same MLP (64 → 256 → 64, GELU, batch 64, AdamW) for the same steps on the
//! same batches at one thread; the trainer adds its per-step work (gradient statistics for the NaN
//! guard, the loader, bookkeeping) but no checkpoints, log or progress. The two are run alternately,
//! several rounds, and the report prints the median time per step of each and their ratio. It also
//! checks that both end with bitwise the same parameters (the trainer changes no arithmetic).
//!
//! `cargo run --release -p fm-benches --bin train_overhead`

use std::time::Instant;

use fm_optim::{AdamConfig, AdamW, Optimizer};
use fm_tensor::autograd::{ParamStore, Tape};
use fm_tensor::init::normal;
use fm_tensor::Compute;
use fm_train::{BoxError, LossOutput, StepContext, Trainer, TrainerConfig, VecLoader};
use ndarray::{Array2, ArrayD};

type Batch = (Array2<f32>, Array2<f32>);
const STEPS: u64 = 60;
const ROUNDS: usize = 8;

fn model() -> ParamStore<f32> {
    let mut s = ParamStore::new();
    s.add("w1", normal::<f32>(&[64, 256], 0.0, 0.1, 1).unwrap())
        .unwrap();
    s.add("b1", ArrayD::<f32>::zeros(vec![256])).unwrap();
    s.add("w2", normal::<f32>(&[256, 64], 0.0, 0.1, 2).unwrap())
        .unwrap();
    s.add("b2", ArrayD::<f32>::zeros(vec![64])).unwrap();
    s
}

fn batches() -> Vec<Batch> {
    (0..8u64)
        .map(|i| {
            let x: Array2<f32> = normal::<f32>(&[64, 64], 0.0, 1.0, 10 + i)
                .unwrap()
                .into_dimensionality()
                .unwrap();
            let y = x.mapv(f32::sin);
            (x, y)
        })
        .collect()
}

fn loss(store: &ParamStore<f32>, (x, y): &Batch) -> Result<LossOutput<f32>, BoxError> {
    let id = |n: &str| store.id(n).unwrap();
    let tape = Tape::new();
    let h = tape
        .constant(x.clone())
        .matmul(tape.param(store, id("w1"))?)?
        .add(tape.param(store, id("b1"))?)?
        .gelu()?;
    let pred = h
        .matmul(tape.param(store, id("w2"))?)?
        .add(tape.param(store, id("b2"))?)?;
    let loss = pred.sub(tape.constant(y.clone()))?.square()?.mean()?;
    Ok(LossOutput {
        loss: f64::from(loss.item()?),
        grads: tape.backward(loss)?,
        tokens: x.nrows() as u64,
    })
}

fn optimizer() -> AdamW<f32> {
    AdamW::new(AdamConfig::adamw().lr(1e-3).build().unwrap())
}

/// Seconds per step and the final parameters' bits.
fn hand_written(order: &[usize], data: &[Batch]) -> (f64, Vec<u32>) {
    let compute = Compute::with_threads(1).unwrap();
    compute.install(|| {
        let mut store = model();
        let mut opt = optimizer();
        let start = Instant::now();
        for step in 0..STEPS as usize {
            let out = loss(&store, &data[order[step % order.len()]]).unwrap();
            store.accumulate(&out.grads).unwrap();
            opt.step(&mut store).unwrap();
            store.zero_grad();
        }
        (start.elapsed().as_secs_f64() / STEPS as f64, bits(&store))
    })
}

fn with_trainer(data: &[Batch]) -> (f64, Vec<u32>) {
    let mut store = model();
    let mut opt = optimizer();
    let mut loader = VecLoader::in_order(data.to_vec()).unwrap();
    let mut trainer = Trainer::new(TrainerConfig {
        max_steps: Some(STEPS),
        threads: Some(1),
        progress: false,
        log_every: 10,
        ..TrainerConfig::default()
    })
    .unwrap();
    let start = Instant::now();
    trainer
        .fit(
            &mut store,
            &mut opt,
            &mut loader,
            |_: &StepContext, s: &ParamStore<f32>, b: &Batch| loss(s, b),
            None,
        )
        .unwrap();
    (start.elapsed().as_secs_f64() / STEPS as f64, bits(&store))
}

fn bits(store: &ParamStore<f32>) -> Vec<u32> {
    store
        .iter()
        .flat_map(|(_, p)| p.value().iter().map(|v| v.to_bits()).collect::<Vec<_>>())
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let data = batches();
    let order: Vec<usize> = (0..data.len()).collect();
    let (mut hand, mut trained) = (Vec::new(), Vec::new());
    let mut same = true;
    for round in 0..ROUNDS {
        // Alternate which goes first, so neither always runs on a warmer cache.
        let ((h, hb), (t, tb)) = if round % 2 == 0 {
            (hand_written(&order, &data), with_trainer(&data))
        } else {
            let t = with_trainer(&data);
            (hand_written(&order, &data), t)
        };
        same &= hb == tb;
        hand.push(h);
        trained.push(t);
    }
    let (h, t) = (median(hand), median(trained));
    println!(
        "train_overhead: MLP 64-256-64, batch 64, AdamW, 1 thread, {STEPS} steps x {ROUNDS} rounds"
    );
    println!("  hand-written loop: {:8.3} ms/step", h * 1e3);
    println!("  fm-train Trainer:  {:8.3} ms/step", t * 1e3);
    println!("  Trainer / hand-written: {:.3}", t / h);
    println!("  same final parameters (bitwise): {same}");
}
