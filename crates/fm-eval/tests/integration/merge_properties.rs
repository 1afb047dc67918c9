//! The law every accumulator obeys: merging the accumulators of any split of the data gives exactly
//! (bit for bit) what one pass over all of it gives.
//!
//! Property-style: for each metric, many random splits into shards, each shard fed in random batch
//! sizes, the shards merged in a random tree. Data are drawn so that naive floating-point summation
//! *would* depend on the order (values spread over ten orders of magnitude), which the test checks,
//! so a passing run means the exactness is real and not an accident of benign inputs. The evaluator
//! is also run on 1 and 2 threads and must give the same report values.

use std::ops::Range;

use fm_eval::{
    Accuracy, Average, AveragePrecision, AveragePrecisionOvr, ConfusionMatrix, Direction,
    EvalError, Evaluator, FBeta, LogLoss, Metric, MetricValues, Named, Regression, RocAuc,
    RocAucOvr, TokenCrossEntropy, TopKAccuracy,
};
use ndarray::{s, Array1, Array2};

/// SplitMix64: a small, seeded generator so the test needs no extra dependency.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let u = self.uniform().max(1e-300);
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * self.uniform()).cos()
    }
    /// A value whose magnitude is spread over ten orders of magnitude.
    fn wide(&mut self) -> f64 {
        self.normal() * 10f64.powf(self.uniform() * 10.0 - 5.0)
    }
}

/// Random cut points splitting `0..n` into 1 to 8 shards (some possibly empty of batches).
fn random_shards(rng: &mut Rng, n: usize) -> Vec<Range<usize>> {
    let shards = 1 + rng.below(8);
    let mut cuts: Vec<usize> = (0..shards - 1).map(|_| rng.below(n + 1)).collect();
    cuts.push(0);
    cuts.push(n);
    cuts.sort_unstable();
    cuts.windows(2).map(|w| w[0]..w[1]).collect()
}

/// Feeds `range` in random batch sizes of 1 to 64.
fn feed<M>(
    rng: &mut Rng,
    metric: &mut M,
    range: Range<usize>,
    update: &impl Fn(&mut M, Range<usize>),
) {
    let mut start = range.start;
    while start < range.end {
        let end = (start + 1 + rng.below(64)).min(range.end);
        update(metric, start..end);
        start = end;
    }
}

/// Checks, over `trials` random splits, that sharded accumulation equals one pass bit for bit.
fn check_merge_law<M: Metric>(
    name: &str,
    fresh: impl Fn() -> M,
    n: usize,
    update: impl Fn(&mut M, Range<usize>),
    outputs: impl Fn(&M) -> Vec<f64>,
    trials: usize,
) {
    let mut single = fresh();
    update(&mut single, 0..n);
    let expected: Vec<u64> = outputs(&single).iter().map(|x| x.to_bits()).collect();
    assert!(!expected.is_empty());
    let mut rng = Rng(0x5eed ^ n as u64 ^ name.len() as u64);
    for trial in 0..trials {
        let mut shards: Vec<M> = random_shards(&mut rng, n)
            .into_iter()
            .map(|range| {
                let mut m = fresh();
                feed(&mut rng, &mut m, range, &update);
                m
            })
            .collect();
        // Merge in a random tree: pick two, merge one into the other, until one is left.
        while shards.len() > 1 {
            let j = rng.below(shards.len());
            let other = shards.swap_remove(j);
            let i = rng.below(shards.len());
            shards[i].merge(&other).unwrap();
        }
        let merged = shards.pop().unwrap();
        assert_eq!(
            merged.count(),
            single.count(),
            "{name}: count, trial {trial}"
        );
        let got: Vec<u64> = outputs(&merged).iter().map(|x| x.to_bits()).collect();
        assert_eq!(
            got, expected,
            "{name}: trial {trial} differs from the single pass"
        );
        // Reset makes an accumulator as good as new.
        let mut reused = merged.clone();
        reused.reset();
        assert_eq!(reused.count(), 0);
        update(&mut reused, 0..n);
        let again: Vec<u64> = outputs(&reused).iter().map(|x| x.to_bits()).collect();
        assert_eq!(again, expected, "{name}: after reset");
    }
}

fn classification_data(rng: &mut Rng, n: usize, k: usize) -> (Vec<u32>, Vec<u32>, Array2<f64>) {
    let y: Vec<u32> = (0..n).map(|_| rng.below(k) as u32).collect();
    let pred: Vec<u32> = y
        .iter()
        .map(|&t| {
            if rng.uniform() < 0.6 {
                t
            } else {
                rng.below(k) as u32
            }
        })
        .collect();
    // Softmax probabilities with tied scores sprinkled in (rounded logits).
    let mut probs = Array2::from_shape_fn((n, k), |(i, c)| {
        let logit = rng.normal() + if c == y[i] as usize { 1.0 } else { 0.0 };
        if i % 3 == 0 {
            logit.round()
        } else {
            logit
        }
    });
    for mut row in probs.rows_mut() {
        let max = row.fold(f64::NEG_INFINITY, |m, &x| m.max(x));
        row.mapv_inplace(|x| (x - max).exp());
        let sum = row.sum();
        row.mapv_inplace(|x| x / sum);
    }
    (y, pred, probs)
}

#[test]
fn label_metrics_merge_exactly() {
    let mut rng = Rng(1);
    let (n, k) = (1500, 5);
    let (y, pred, probs) = classification_data(&mut rng, n, k);
    let trials = 40;
    check_merge_law(
        "confusion_matrix",
        || ConfusionMatrix::new(k).unwrap(),
        n,
        |m, r| m.update(&y[r.clone()], &pred[r]).unwrap(),
        |m| {
            let mut out: Vec<f64> = m.matrix().iter().map(|&c| c as f64).collect();
            out.push(m.accuracy().unwrap());
            out.push(m.matthews_corrcoef().unwrap());
            out.push(m.balanced_accuracy(true).unwrap());
            let per = m.per_class(2.0, fm_eval::ZeroDivision::NaN).unwrap();
            out.extend(per.precision.iter().chain(&per.recall).chain(&per.fbeta));
            out
        },
        trials,
    );
    let (y2, pred2): (Vec<u8>, Vec<u8>) = y
        .iter()
        .zip(&pred)
        .map(|(&a, &b)| ((a % 2) as u8, (b % 2) as u8))
        .unzip();
    check_merge_law(
        "confusion_matrix_k2",
        || ConfusionMatrix::new(2).unwrap(),
        n,
        |m, r| m.update(&y2[r.clone()], &pred2[r]).unwrap(),
        |m| {
            let mut out: Vec<f64> = m.matrix().iter().map(|&c| c as f64).collect();
            out.push(m.matthews_corrcoef().unwrap());
            out.push(
                m.fbeta(
                    1.0,
                    Average::Binary { pos_label: 1 },
                    fm_eval::ZeroDivision::Zero,
                )
                .unwrap(),
            );
            out
        },
        trials,
    );
    check_merge_law(
        "accuracy",
        || Accuracy::new(k).unwrap(),
        n,
        |m, r| m.update(&y[r.clone()], &pred[r]).unwrap(),
        |m| vec![m.compute().unwrap()],
        trials,
    );
    check_merge_law(
        "f1_weighted",
        || FBeta::f1(k, Average::Weighted).unwrap(),
        n,
        |m, r| m.update(&y[r.clone()], &pred[r]).unwrap(),
        |m| vec![m.compute().unwrap()],
        trials,
    );
    check_merge_law(
        "top_2",
        || TopKAccuracy::new(2, k).unwrap(),
        n,
        |m, r| m.update(&y[r.clone()], probs.slice(s![r, ..])).unwrap(),
        |m| vec![m.compute().unwrap()],
        trials,
    );
    check_merge_law(
        "log_loss",
        || LogLoss::new(k).unwrap(),
        n,
        |m, r| m.update(&y[r.clone()], probs.slice(s![r, ..])).unwrap(),
        |m| vec![m.compute().unwrap()],
        trials,
    );
    check_merge_law(
        "roc_auc_ovr",
        || RocAucOvr::new(k).unwrap(),
        n,
        |m, r| m.update(&y[r.clone()], probs.slice(s![r, ..])).unwrap(),
        |m| m.per_class().unwrap(),
        trials,
    );
    check_merge_law(
        "average_precision_ovr",
        || AveragePrecisionOvr::new(k).unwrap(),
        n,
        |m, r| m.update(&y[r.clone()], probs.slice(s![r, ..])).unwrap(),
        |m| m.per_class().unwrap(),
        trials,
    );
    let binary: Vec<bool> = y.iter().map(|&t| t == 0).collect();
    let score: Vec<f64> = (0..n).map(|i| probs[[i, 0]]).collect();
    check_merge_law(
        "roc_auc",
        RocAuc::new,
        n,
        |m, r| m.update(&binary[r.clone()], &score[r]).unwrap(),
        |m| vec![m.compute().unwrap()],
        trials,
    );
    check_merge_law(
        "average_precision",
        AveragePrecision::new,
        n,
        |m, r| m.update(&binary[r.clone()], &score[r]).unwrap(),
        |m| vec![m.compute().unwrap()],
        trials,
    );
}

#[test]
fn float_metrics_merge_exactly_where_naive_sums_would_not() {
    let mut rng = Rng(2);
    let n = 2000;
    let y: Vec<f64> = (0..n).map(|_| rng.wide()).collect();
    let pred: Vec<f64> = y.iter().map(|&v| v + rng.wide()).collect();
    // The data are order-sensitive: summing the squared residuals forwards and backwards in f64
    // gives different bits.
    let sq: Vec<f64> = y
        .iter()
        .zip(&pred)
        .map(|(a, b)| (a - b) * (a - b))
        .collect();
    let forwards: f64 = sq.iter().sum();
    let backwards: f64 = sq.iter().rev().sum();
    assert_ne!(
        forwards.to_bits(),
        backwards.to_bits(),
        "data too benign to test exactness"
    );
    check_merge_law(
        "regression",
        Regression::new,
        n,
        |m, r| m.update(&y[r.clone()], &pred[r]).unwrap(),
        |m| {
            let r = m.compute().unwrap();
            vec![
                r.mse,
                r.rmse,
                r.mae,
                r.r2.unwrap(),
                r.explained_variance,
                r.max_error,
            ]
        },
        60,
    );

    let vocab = 17;
    let logits = Array2::from_shape_fn((n, vocab), |_| rng.wide());
    let targets: Vec<u32> = (0..n).map(|_| rng.below(vocab) as u32).collect();
    check_merge_law(
        "token_cross_entropy",
        || TokenCrossEntropy::new(vocab).unwrap(),
        n,
        |m, r| {
            m.update_logits(logits.slice(s![r.clone(), ..]), &targets[r.clone()])
                .unwrap();
            m.add_bytes(3 * r.len() as u64);
        },
        |m| {
            let lm = m.compute().unwrap();
            vec![
                lm.mean_cross_entropy,
                lm.perplexity,
                lm.bits_per_token,
                lm.bits_per_byte.unwrap(),
            ]
        },
        60,
    );
}

#[test]
fn merging_different_configurations_is_refused() {
    let mut a = ConfusionMatrix::new(3).unwrap();
    let b = ConfusionMatrix::new(4).unwrap();
    let err = a.merge(&b).unwrap_err();
    assert!(err.to_string().contains("3 classes vs 4 classes"), "{err}");
    let mut t = TopKAccuracy::new(1, 3).unwrap();
    assert!(matches!(
        t.merge(&TopKAccuracy::new(2, 3).unwrap()),
        Err(EvalError::MergeMismatch { .. })
    ));
    // A tuple checks every member before merging any.
    let mut pair = (Accuracy::new(3).unwrap(), ConfusionMatrix::new(3).unwrap());
    pair.0.update(&[0u8], &[0u8]).unwrap();
    let mut other = (Accuracy::new(3).unwrap(), ConfusionMatrix::new(4).unwrap());
    other.0.update(&[1u8], &[1u8]).unwrap();
    assert!(pair.merge(&other).is_err());
    assert_eq!(pair.0.count(), 1, "the first member was not merged");
}

#[test]
fn evaluator_gives_the_same_bits_on_any_thread_count() {
    let mut rng = Rng(3);
    let (n, k) = (3000, 4);
    let (y, _, probs) = classification_data(&mut rng, n, k);
    let targets: Vec<f64> = (0..n).map(|_| rng.wide()).collect();
    // Batches of uneven size; the "model" returns stored probabilities and a noisy regression output.
    let mut batches = Vec::new();
    let mut start = 0;
    while start < n {
        let end = (start + 1 + rng.below(200)).min(n);
        batches.push(start..end);
        start = end;
    }
    let model = |r: &Range<usize>| -> Result<(Array2<f64>, Array1<f64>), EvalError> {
        let reg = Array1::from_iter(r.clone().map(|i| targets[i] * 1.001 + 1e-3));
        Ok((probs.slice(s![r.clone(), ..]).to_owned(), reg))
    };
    type Metrics = (ConfusionMatrix, LogLoss, RocAucOvr, Named<Regression>);
    let fresh = || -> Metrics {
        (
            ConfusionMatrix::new(k).unwrap(),
            LogLoss::new(k).unwrap(),
            RocAucOvr::new(k).unwrap(),
            Named::new("reg/", Regression::new()),
        )
    };
    let score = |m: &mut Metrics, r: &Range<usize>, out: &(Array2<f64>, Array1<f64>)| {
        let (p, reg) = out;
        let predicted: Vec<u32> = p
            .rows()
            .into_iter()
            .map(|row| {
                let mut best = 0;
                for c in 1..row.len() {
                    if row[c] > row[best] {
                        best = c;
                    }
                }
                best as u32
            })
            .collect();
        m.0.update(&y[r.clone()], &predicted)?;
        m.1.update(&y[r.clone()], p.view())?;
        m.2.update(&y[r.clone()], p.view())?;
        m.3.inner.update(&targets[r.clone()], reg)
    };
    let run_on = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            Evaluator::new("m", "d")
                .run(batches.clone(), &model, fresh(), score)
                .unwrap()
                .report
        })
    };
    let one = run_on(1);
    let two = run_on(2);
    assert_eq!(one.threads, 1);
    assert_eq!(two.threads, 2);
    assert_eq!(one.counts, two.counts);
    assert_eq!(one.counts["examples"], n as u64);
    assert!(one.metrics.len() >= 20, "{:?}", one.metrics.keys());
    for (name, value) in &one.metrics {
        assert_eq!(
            value.value.to_bits(),
            two.metrics[name].value.to_bits(),
            "{name}"
        );
    }
    // And both equal one sequential pass without the evaluator.
    let mut direct = fresh();
    score(&mut direct, &(0..n), &model(&(0..n)).unwrap()).unwrap();
    let mut values = MetricValues::new();
    direct.record(&mut values);
    for (name, value) in &values.values {
        assert_eq!(
            value.value.to_bits(),
            one.metrics[name].value.to_bits(),
            "{name}"
        );
    }
    assert_eq!(one.metrics["reg/mse"].direction, Direction::LowerIsBetter);
    // The shard runner agrees too.
    let shards = vec![
        batches[..batches.len() / 3].to_vec(),
        batches[batches.len() / 3..].to_vec(),
    ];
    let sharded = Evaluator::new("m", "d")
        .run_shards(shards, &model, fresh(), score)
        .unwrap();
    for (name, value) in &one.metrics {
        assert_eq!(
            value.value.to_bits(),
            sharded.report.metrics[name].value.to_bits(),
            "{name}"
        );
    }
    // A report survives JSON exactly.
    let back = fm_eval::EvalReport::from_json(&one.to_json().unwrap()).unwrap();
    assert_eq!(back, one);
}
