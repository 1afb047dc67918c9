//! Every loss, through the tape, against central finite differences in f64 (fm-tensor's
//! `check_gradients`, maximum error below 1e-6). Real-valued targets are checked as inputs too.
//!
//! Inputs are seeded random values; points where a loss has a kink (MAE at 0, Huber at ±delta, the
//! hinges at their margins) are met with probability ~0 at these seeds.

use fm_loss::*;
use fm_tensor::autograd::{check_gradients, GradCheckConfig, Tape, Var};
use fm_tensor::init;
use ndarray::ArrayD;

fn rand(shape: &[usize], seed: u64) -> ArrayD<f64> {
    init::uniform::<f64>(shape, -2.0, 2.0, seed).unwrap()
}

fn unit(shape: &[usize], seed: u64) -> ArrayD<f64> {
    init::uniform::<f64>(shape, 0.05, 0.95, seed).unwrap()
}

fn check<F>(name: &str, f: F, inputs: &[ArrayD<f64>])
where
    F: for<'t> Fn(&'t Tape<f64>, &[Var<'t, f64>]) -> fm_tensor::Result<Var<'t, f64>>,
{
    let report = check_gradients(f, inputs, &GradCheckConfig::default())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(report.checked > 0, "{name}: nothing checked");
    assert!(report.passed(), "{name}: {report}");
}

const REDUCTIONS: [Reduction; 3] = [Reduction::None, Reduction::Sum, Reduction::Mean];

#[test]
fn regression_losses() {
    for r in REDUCTIONS {
        let xs = [rand(&[3, 4], 1), rand(&[3, 4], 2)];
        check("mse", |_, x| Ok(autograd::mse(x[0], x[1], r)?), &xs);
        check("mae", |_, x| Ok(autograd::mae(x[0], x[1], r)?), &xs);
        let h = HuberOptions::default().delta(0.8).reduction(r);
        check("huber", |_, x| Ok(autograd::huber(x[0], x[1], &h)?), &xs);
        check(
            "smooth_l1",
            |_, x| Ok(autograd::smooth_l1(x[0], x[1], 0.6, r)?),
            &xs,
        );
    }
}

#[test]
fn cross_entropy_with_every_option() {
    let targets = [3i64, -100, 0, 4, 4, 1];
    let weights = vec![0.5, 1.0, 2.0, 0.25, 1.5];
    for r in REDUCTIONS {
        for smoothing in [0.0, 0.2] {
            for w in [None, Some(weights.clone())] {
                let o = CrossEntropyOptions {
                    reduction: r,
                    ignore_index: Some(-100),
                    label_smoothing: smoothing,
                    class_weights: w,
                };
                check(
                    "cross_entropy",
                    |_, x| Ok(autograd::cross_entropy(x[0], &targets, &o)?),
                    &[rand(&[6, 5], 3)],
                );
            }
        }
    }
    // Language-model layout [B, T, V].
    let t = ndarray::array![[1u32, 0, 3], [2, 2, 0]];
    let o = CrossEntropyOptions::default().label_smoothing(0.1);
    check(
        "cross_entropy [B, T, V]",
        |_, x| Ok(autograd::cross_entropy(x[0], t.view(), &o)?),
        &[rand(&[2, 3, 4], 4)],
    );
    // A gradient that is not 1 reaches the fused op's kept gradient: scale the loss afterwards by
    // feeding it through a second loss (mse against 0 squares it).
    let o = CrossEntropyOptions::default();
    check(
        "cross_entropy, upstream gradient != 1",
        |tape, x| {
            let ce = autograd::cross_entropy(x[0], &[1usize, 2], &o)?;
            let zero = tape.constant(ArrayD::<f64>::zeros(ndarray::IxDyn(&[])));
            Ok(autograd::mse(ce, zero, Reduction::Sum)?)
        },
        &[rand(&[2, 3], 5)],
    );
}

#[test]
fn cross_entropy_with_probability_targets() {
    for r in REDUCTIONS {
        let o = CrossEntropyOptions::default()
            .reduction(r)
            .label_smoothing(0.15)
            .class_weights(vec![1.0, 0.5, 2.0, 1.5]);
        check(
            "cross_entropy_with_probs",
            |_, x| Ok(autograd::cross_entropy_with_probs(x[0], x[1], &o)?),
            &[rand(&[3, 4], 6), unit(&[3, 4], 7)],
        );
    }
}

#[test]
fn nll() {
    for r in REDUCTIONS {
        let o = NllOptions {
            reduction: r,
            ignore_index: Some(-1),
            class_weights: Some(vec![2.0, 1.0, 0.5]),
        };
        check(
            "nll_loss",
            |_, x| Ok(autograd::nll_loss(x[0], &[2i32, -1, 0, 1], &o)?),
            &[rand(&[4, 3], 8)],
        );
    }
}

#[test]
fn binary_losses() {
    for r in REDUCTIONS {
        let o = BceOptions::default()
            .reduction(r)
            .pos_weight(vec![0.5, 3.0, 1.0])
            .weight(vec![1.0, 0.3, 2.0]);
        check(
            "bce_with_logits",
            |_, x| Ok(autograd::bce_with_logits(x[0], x[1], &o)?),
            &[rand(&[4, 3], 9), unit(&[4, 3], 10)],
        );
        let labels = ndarray::array![[1.0, -1.0, 1.0], [-1.0, -1.0, 1.0]].into_dyn();
        let h = HingeOptions::default().margin(0.7).reduction(r);
        check(
            "hinge",
            |_, x| Ok(autograd::hinge(x[0], labels.view(), &h)?),
            &[rand(&[2, 3], 11)],
        );
        for p in [1, 2] {
            let m = MultiMarginOptions::default()
                .p(p)
                .margin(0.9)
                .class_weights(vec![1.0, 2.0, 0.5, 1.0])
                .reduction(r);
            check(
                "multi_margin",
                |_, x| Ok(autograd::multi_margin(x[0], &[0usize, 3, 2], &m)?),
                &[rand(&[3, 4], 12)],
            );
        }
    }
}

#[test]
fn kl_divergence() {
    for reduction in [
        KlReduction::None,
        KlReduction::Sum,
        KlReduction::Mean,
        KlReduction::BatchMean,
    ] {
        for log_target in [false, true] {
            let o = KlDivOptions {
                reduction,
                log_target,
            };
            let target = if log_target {
                unit(&[3, 4], 13).mapv(f64::ln)
            } else {
                unit(&[3, 4], 13)
            };
            check(
                "kl_div",
                |_, x| Ok(autograd::kl_div(x[0], x[1], &o)?),
                &[rand(&[3, 4], 14), target],
            );
        }
    }
}
