//! Side-by-side report for fm-eval: metric accumulators against a plain summing loop over the same
//! data, in one run.
//!
//! The target: accuracy and the confusion matrix must run within 2x the time of a loop that
//! just sums the same `y_true` and `y_pred` arrays (10M `u32` labels each), so metrics never
//! bottleneck an evaluation loop. Every timing is the median (and minimum) of interleaved repeats,
//! and every claim is a ratio to the summing loop measured in the same repeat sequence. Both 1 thread
//! and 2 threads are reported; at 2 threads the baseline sums two halves in parallel and the
//! metrics update two accumulators in parallel and merge them.
//!
//! Run: `cargo run --release -p fm-benches --bin eval_report` (`-- --quick` for fewer repeats;
//! `-- --n 200000` for another number of predictions: at 200k the labels stay in cache, so the plain
//! sum no longer waits on memory and the ratios show the metrics' own compute cost).

use std::hint::black_box;
use std::sync::OnceLock;
use std::time::Instant;

use fm_eval::{
    Accuracy, ConfusionMatrix, LogLoss, Metric, Regression, RocAuc, TokenCrossEntropy, TopKAccuracy,
};
use ndarray::Array2;

/// Number of predictions per job (10M unless `--n` says otherwise).
static N: OnceLock<usize> = OnceLock::new();

fn n() -> usize {
    *N.get().expect("set in main")
}

/// A named timed job.
type Job<'a> = (&'static str, Box<dyn FnMut() + 'a>);

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Labels for `k` classes with predictions right 90% of the time.
fn labels(rng: &mut Rng, k: u64) -> (Vec<u32>, Vec<u32>) {
    let y: Vec<u32> = (0..n()).map(|_| rng.below(k) as u32).collect();
    let p = y
        .iter()
        .map(|&t| {
            if rng.uniform() < 0.9 {
                t
            } else {
                rng.below(k) as u32
            }
        })
        .collect();
    (y, p)
}

/// The baseline: sum both label arrays, nothing else.
fn plain_sum(y: &[u32], p: &[u32]) -> u64 {
    y.iter()
        .zip(p)
        .map(|(&a, &b)| u64::from(a) + u64::from(b))
        .sum()
}

fn median_min(mut xs: Vec<f64>) -> (f64, f64) {
    xs.sort_by(f64::total_cmp);
    (xs[xs.len() / 2], xs[0])
}

fn time(f: &mut dyn FnMut()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

/// Times each named job `repeats` times, interleaved (job 1, job 2, ..., job 1, ...), after one
/// warm-up round; returns (median, min) seconds per job.
fn interleaved(repeats: usize, jobs: &mut [Job<'_>]) -> Vec<(f64, f64)> {
    for (_, job) in jobs.iter_mut() {
        job();
    }
    let mut samples = vec![Vec::new(); jobs.len()];
    for _ in 0..repeats {
        for (i, (_, job)) in jobs.iter_mut().enumerate() {
            samples[i].push(time(job.as_mut()));
        }
    }
    samples.into_iter().map(median_min).collect()
}

fn halves<T>(x: &[T]) -> (&[T], &[T]) {
    x.split_at(x.len() / 2)
}

/// Runs `update` on both halves in parallel (2-thread pool) and merges.
fn two_way<M: Metric>(fresh: impl Fn() -> M + Sync, update: impl Fn(&mut M, bool) + Sync) -> M {
    let (mut a, b) = rayon::join(
        || {
            let mut m = fresh();
            update(&mut m, false);
            m
        },
        || {
            let mut m = fresh();
            update(&mut m, true);
            m
        },
    );
    a.merge(&b).expect("same configuration");
    a
}

fn label_table(repeats: usize, k: u64, rng: &mut Rng) {
    let (y, p) = labels(rng, k);
    let (y0, y1) = halves(&y);
    let (p0, p1) = halves(&p);
    let k = k as usize;
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let results = pool.install(|| {
            let mut jobs: Vec<Job<'_>> = if threads == 1 {
                vec![
                    (
                        "plain sum",
                        Box::new(|| {
                            black_box(plain_sum(black_box(&y), black_box(&p)));
                        }),
                    ),
                    (
                        "accuracy",
                        Box::new(|| {
                            let mut m = Accuracy::new(k).unwrap();
                            m.update(black_box(&y), black_box(&p)).unwrap();
                            black_box(m);
                        }),
                    ),
                    (
                        "confusion matrix",
                        Box::new(|| {
                            let mut m = ConfusionMatrix::new(k).unwrap();
                            m.update(black_box(&y), black_box(&p)).unwrap();
                            black_box(m);
                        }),
                    ),
                ]
            } else {
                vec![
                    (
                        "plain sum",
                        Box::new(|| {
                            let (a, b) = rayon::join(|| plain_sum(y0, p0), || plain_sum(y1, p1));
                            black_box(a + b);
                        }),
                    ),
                    (
                        "accuracy",
                        Box::new(|| {
                            black_box(two_way(
                                || Accuracy::new(k).unwrap(),
                                |m, second| {
                                    let (yy, pp) = if second { (y1, p1) } else { (y0, p0) };
                                    m.update(yy, pp).unwrap();
                                },
                            ));
                        }),
                    ),
                    (
                        "confusion matrix",
                        Box::new(|| {
                            black_box(two_way(
                                || ConfusionMatrix::new(k).unwrap(),
                                |m, second| {
                                    let (yy, pp) = if second { (y1, p1) } else { (y0, p0) };
                                    m.update(yy, pp).unwrap();
                                },
                            ));
                        }),
                    ),
                ]
            };
            let names: Vec<&str> = jobs.iter().map(|(n, _)| *n).collect();
            (names, interleaved(repeats, &mut jobs))
        });
        let (names, times) = results;
        let (base_median, base_min) = times[0];
        for (name, (median, min)) in names.iter().zip(&times) {
            println!(
                "| {k:>4} | {threads} | {name:<16} | {:>8.2} | {:>8.2} | {:>6.2} | {:>5.2}x | {:>5.2}x |",
                median * 1e3,
                min * 1e3,
                median * 1e9 / n() as f64,
                median / base_median,
                min / base_min
            );
        }
    }
}

fn other_metrics(repeats: usize, rng: &mut Rng) {
    let (y, p) = labels(rng, 2);
    let scores: Vec<f64> = y
        .iter()
        .map(|&t| rng.uniform() + 0.5 * f64::from(t))
        .collect();
    let probs: Vec<f64> = scores.iter().map(|s| (s / 1.5).clamp(0.0, 1.0)).collect();
    let targets: Vec<f64> = scores.iter().map(|s| s * 3.0 - 1.0).collect();
    let preds: Vec<f64> = targets.iter().map(|t| t + 0.1).collect();
    let log_probs: Vec<f64> = probs.iter().map(|q| -(1.0 + q)).collect();
    let rows = n() / 10;
    let k = 10;
    let matrix =
        Array2::from_shape_fn((rows, k), |(i, c)| ((i * 31 + c * 17) % 101) as f32 / 101.0);
    let row_labels: Vec<u32> = (0..rows).map(|i| (i % k) as u32).collect();
    let mut jobs: Vec<Job<'_>> = vec![
        (
            "plain sum",
            Box::new(|| {
                black_box(plain_sum(black_box(&y), black_box(&p)));
            }),
        ),
        (
            "log loss (binary)",
            Box::new(|| {
                let mut m = LogLoss::new(2).unwrap();
                m.update_binary(&y, &probs).unwrap();
                black_box(m.compute().unwrap());
            }),
        ),
        (
            "regression (all six)",
            Box::new(|| {
                let mut m = Regression::new();
                m.update(&targets, &preds).unwrap();
                black_box(m.compute().unwrap());
            }),
        ),
        (
            "LM from log-probs",
            Box::new(|| {
                let mut m = TokenCrossEntropy::new(2).unwrap();
                m.update_log_probs(&log_probs).unwrap();
                black_box(m.compute().unwrap());
            }),
        ),
        (
            "ROC-AUC update",
            Box::new(|| {
                let mut m = RocAuc::new();
                m.update(&y, &scores).unwrap();
                black_box(m);
            }),
        ),
        (
            "ROC-AUC upd+compute",
            Box::new(|| {
                let mut m = RocAuc::new();
                m.update(&y, &scores).unwrap();
                black_box(m.compute().unwrap());
            }),
        ),
        (
            "top-5 (1M x 10 f32)",
            Box::new(|| {
                let mut m = TopKAccuracy::new(5, k).unwrap();
                m.update(&row_labels, matrix.view()).unwrap();
                black_box(m.compute().unwrap());
            }),
        ),
    ];
    let names: Vec<&str> = jobs.iter().map(|(n, _)| *n).collect();
    let times = interleaved(repeats, &mut jobs);
    let (base_median, base_min) = times[0];
    for (name, (median, min)) in names.iter().zip(&times) {
        let per = if name.starts_with("top-5") { rows } else { n() };
        println!(
            "| {name:<22} | {:>8.2} | {:>8.2} | {:>6.2} | {:>6.2}x | {:>6.2}x |",
            median * 1e3,
            min * 1e3,
            median * 1e9 / per as f64,
            median / base_median,
            min / base_min
        );
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let repeats = if quick { 5 } else { 15 };
    let args: Vec<String> = std::env::args().collect();
    let count = args
        .iter()
        .position(|a| a == "--n")
        .map(|i| {
            args[i + 1]
                .parse()
                .expect("--n takes a number of predictions")
        })
        .unwrap_or(10_000_000);
    N.set(count).expect("set once");
    let mut rng = Rng(42);
    println!(
        "fm-eval accumulators vs a plain summing loop, {count} predictions (u32 labels, 90% correct)"
    );
    println!(
        "median and min of {repeats} interleaved repeats after a warm-up; ratios to the plain sum's \
         median and min (the min ratio is the steadier one on a shared machine)\n"
    );
    println!("| classes | threads | job | median ms | min ms | ns/pred (median) | ratio (median) | ratio (min) |");
    println!("|---|---|---|---|---|---|---|---|");
    for k in [2, 10, 100, 1000] {
        label_table(repeats, k, &mut rng);
    }
    println!(
        "\nOther accumulators, 1 thread, same run (not under the 2x target; for orientation)\n"
    );
    println!("| job | median ms | min ms | ns/pred (median) | ratio (median) | ratio (min) |");
    println!("|---|---|---|---|---|---|");
    other_metrics(repeats.min(7), &mut rng);
}
