//! Criterion benches of the fm-eval accumulators at 10M predictions.
//!
//! Throughput is set to predictions, so reports read as predictions per second. A plain summing
//! loop over the same label arrays is benched beside them as the floor; `eval_report` prints the
//! ratios to it measured in one run.
//!
//! Run: `cargo bench -p fm-criterion-benches --bench eval_metrics`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fm_eval::{
    Accuracy, ConfusionMatrix, ExactSum, LogLoss, Metric, Regression, RocAuc, TokenCrossEntropy,
    TopKAccuracy,
};
use ndarray::Array2;

const N: usize = 10_000_000;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `k`-class labels with predictions right 90% of the time.
fn labels(rng: &mut Rng, k: u64) -> (Vec<u32>, Vec<u32>) {
    let y: Vec<u32> = (0..N).map(|_| (rng.next() % k) as u32).collect();
    let p = y
        .iter()
        .map(|&t| {
            if rng.uniform() < 0.9 {
                t
            } else {
                (rng.next() % k) as u32
            }
        })
        .collect();
    (y, p)
}

fn accumulators(c: &mut Criterion) {
    let mut rng = Rng(7);
    let (y2, p2) = labels(&mut rng, 2);
    let (y10, p10) = labels(&mut rng, 10);
    let scores: Vec<f64> = y2
        .iter()
        .map(|&t| rng.uniform() + 0.5 * f64::from(t))
        .collect();
    let probs: Vec<f64> = scores.iter().map(|s| s / 1.5).collect();
    let targets: Vec<f64> = scores.iter().map(|s| 3.0 * s - 1.0).collect();
    let preds: Vec<f64> = targets.iter().map(|t| t + 0.1).collect();
    let log_probs: Vec<f64> = probs.iter().map(|q| -(1.0 + q)).collect();

    let mut g = c.benchmark_group("eval_10M");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(N as u64));

    g.bench_function("plain_sum_baseline", |b| {
        b.iter(|| {
            black_box(&y10)
                .iter()
                .zip(black_box(&p10))
                .map(|(&a, &p)| u64::from(a) + u64::from(p))
                .sum::<u64>()
        })
    });
    g.bench_function("accuracy_k10", |b| {
        b.iter(|| {
            let mut m = Accuracy::new(10).unwrap();
            m.update(black_box(&y10), black_box(&p10)).unwrap();
            m.compute().unwrap()
        })
    });
    g.bench_function("confusion_matrix_k2", |b| {
        b.iter(|| {
            let mut m = ConfusionMatrix::new(2).unwrap();
            m.update(black_box(&y2), black_box(&p2)).unwrap();
            m
        })
    });
    g.bench_function("confusion_matrix_k10", |b| {
        b.iter(|| {
            let mut m = ConfusionMatrix::new(10).unwrap();
            m.update(black_box(&y10), black_box(&p10)).unwrap();
            m
        })
    });
    g.bench_function("log_loss_binary", |b| {
        b.iter(|| {
            let mut m = LogLoss::new(2).unwrap();
            m.update_binary(black_box(&y2), black_box(&probs)).unwrap();
            m.compute().unwrap()
        })
    });
    g.bench_function("regression_all", |b| {
        b.iter(|| {
            let mut m = Regression::new();
            m.update(black_box(&targets), black_box(&preds)).unwrap();
            m.compute().unwrap()
        })
    });
    g.bench_function("lm_from_log_probs", |b| {
        b.iter(|| {
            let mut m = TokenCrossEntropy::new(2).unwrap();
            m.update_log_probs(black_box(&log_probs)).unwrap();
            m.compute().unwrap()
        })
    });
    g.bench_function("exact_sum_add", |b| {
        b.iter(|| {
            let mut s = ExactSum::new();
            for &x in black_box(&targets) {
                s.add(x);
            }
            s.value()
        })
    });
    g.bench_function("roc_auc_update", |b| {
        b.iter(|| {
            let mut m = RocAuc::new();
            m.update(black_box(&y2), black_box(&scores)).unwrap();
            m
        })
    });
    let mut filled = RocAuc::new();
    filled.update(&y2, &scores).unwrap();
    g.bench_function("roc_auc_compute", |b| {
        b.iter(|| black_box(&filled).compute().unwrap())
    });

    // Top-k over a score matrix: 1M rows x 10 classes (10M scores).
    let rows = N / 10;
    let matrix = Array2::from_shape_fn((rows, 10), |(i, c)| ((i * 31 + c * 17) % 101) as f32);
    let row_labels: Vec<u32> = (0..rows).map(|i| (i % 10) as u32).collect();
    g.throughput(Throughput::Elements(rows as u64));
    g.bench_function("top5_1M_rows_x10", |b| {
        b.iter(|| {
            let mut m = TopKAccuracy::new(5, 10).unwrap();
            m.update(black_box(&row_labels), matrix.view()).unwrap();
            m.compute().unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, accumulators);
criterion_main!(benches);
