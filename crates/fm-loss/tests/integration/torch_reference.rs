//! Every loss's value and gradients against PyTorch (float64), from the committed fixture
//! `fixtures/losses_torch.json` (made by `fixtures/make_loss_fixtures.py`).
//!
//! The kernels are called directly (value and backward functions), and once more through the autograd
//! adapters on a tape, so both layers are held to the reference.

use fm_loss::*;
use fm_tensor::autograd::Tape;
use ndarray::{ArrayD, IxDyn};
use serde_json::Value;

const TOLERANCE: f64 = 1e-10;

fn fixture() -> Value {
    let text = include_str!("../fixtures/losses_torch.json");
    serde_json::from_str(text).expect("valid fixture JSON")
}

fn array(v: &Value) -> ArrayD<f64> {
    let shape: Vec<usize> = v["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    let data: Vec<f64> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    ArrayD::from_shape_vec(IxDyn(&shape), data).unwrap()
}

fn targets(v: &Value) -> ArrayD<i64> {
    let shape: Vec<usize> = v["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    let data: Vec<i64> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect();
    ArrayD::from_shape_vec(IxDyn(&shape), data).unwrap()
}

fn reduction(options: &Value) -> Reduction {
    match options["reduction"].as_str().unwrap() {
        "none" => Reduction::None,
        "sum" => Reduction::Sum,
        "mean" => Reduction::Mean,
        other => panic!("unknown reduction {other}"),
    }
}

fn weights(v: &Value) -> Option<Vec<f64>> {
    v.as_array()
        .map(|a| a.iter().map(|x| x.as_f64().unwrap()).collect())
}

fn assert_close(case: &str, what: &str, got: &ArrayD<f64>, expected: &ArrayD<f64>) {
    assert_eq!(got.shape(), expected.shape(), "{case}: {what} shape");
    for (i, (g, e)) in got.iter().zip(expected.iter()).enumerate() {
        let err = (g - e).abs() / e.abs().max(1.0);
        assert!(
            err <= TOLERANCE,
            "{case}: {what}[{i}] = {g:e}, PyTorch {e:e} (error {err:e})"
        );
    }
}

/// Value and gradients of one case, computed by the kernels.
struct Computed {
    value: ArrayD<f64>,
    grads: Vec<(&'static str, ArrayD<f64>)>,
}

fn ce_options(o: &Value) -> CrossEntropyOptions {
    CrossEntropyOptions {
        reduction: reduction(o),
        ignore_index: o["ignore_index"].as_i64(),
        label_smoothing: o["label_smoothing"].as_f64().unwrap_or(0.0),
        class_weights: weights(&o["class_weights"]),
    }
}

fn kl_options(o: &Value) -> KlDivOptions {
    KlDivOptions {
        reduction: match o["reduction"].as_str().unwrap() {
            "none" => KlReduction::None,
            "sum" => KlReduction::Sum,
            "mean" => KlReduction::Mean,
            "batchmean" => KlReduction::BatchMean,
            other => panic!("unknown reduction {other}"),
        },
        log_target: o["log_target"].as_bool().unwrap(),
    }
}

fn compute(case: &Value) -> Computed {
    let o = &case["options"];
    let inputs = &case["inputs"];
    let value = array(&case["value"]);
    let up = match &case["upstream"] {
        Value::Null => ArrayD::from_elem(IxDyn(&[]), 1.0),
        u => array(u),
    };
    match case["loss"].as_str().unwrap() {
        name @ ("mse" | "mae" | "huber" | "smooth_l1") => {
            let x = array(&inputs["input"]);
            let y = array(&inputs["target"]);
            let r = reduction(o);
            let (v, g) = match name {
                "mse" => (
                    mse(x.view(), y.view(), r).unwrap(),
                    mse_backward(x.view(), y.view(), up.view(), r).unwrap(),
                ),
                "mae" => (
                    mae(x.view(), y.view(), r).unwrap(),
                    mae_backward(x.view(), y.view(), up.view(), r).unwrap(),
                ),
                "huber" => {
                    let h = HuberOptions::default()
                        .delta(o["delta"].as_f64().unwrap())
                        .reduction(r);
                    (
                        huber(x.view(), y.view(), &h).unwrap(),
                        huber_backward(x.view(), y.view(), up.view(), &h).unwrap(),
                    )
                }
                _ => {
                    let b = o["beta"].as_f64().unwrap();
                    (
                        smooth_l1(x.view(), y.view(), b, r).unwrap(),
                        smooth_l1_backward(x.view(), y.view(), up.view(), b, r).unwrap(),
                    )
                }
            };
            let gt = g.mapv(|v| -v);
            Computed {
                value: v,
                grads: vec![("input", g), ("target", gt)],
            }
        }
        "cross_entropy" => {
            let x = array(&inputs["logits"]);
            let t = targets(&case["targets"]);
            let opts = ce_options(o);
            let v = cross_entropy(x.view(), t.view(), &opts).unwrap();
            let g = cross_entropy_backward(x.view(), t.view(), up.view(), &opts).unwrap();
            if opts.reduction != Reduction::None {
                // The fused kernel must agree with the separate functions.
                let mut fused = ArrayD::zeros(x.raw_dim());
                let fv = fused_cross_entropy(x.view(), t.view(), &opts, fused.view_mut()).unwrap();
                assert_close(case["name"].as_str().unwrap(), "fused value", &fv, &value);
                let gscale = up.iter().next().copied().unwrap();
                assert_close(
                    case["name"].as_str().unwrap(),
                    "fused grad",
                    &fused.mapv(|v| v * gscale),
                    &g,
                );
            }
            Computed {
                value: v,
                grads: vec![("logits", g)],
            }
        }
        "cross_entropy_with_probs" => {
            let x = array(&inputs["logits"]);
            let p = array(&inputs["probs"]);
            let opts = ce_options(o);
            Computed {
                value: cross_entropy_with_probs(x.view(), p.view(), &opts).unwrap(),
                grads: vec![
                    (
                        "logits",
                        cross_entropy_with_probs_backward(x.view(), p.view(), up.view(), &opts)
                            .unwrap(),
                    ),
                    (
                        "probs",
                        cross_entropy_with_probs_backward_probs(
                            x.view(),
                            p.view(),
                            up.view(),
                            &opts,
                        )
                        .unwrap(),
                    ),
                ],
            }
        }
        "nll_loss" => {
            let x = array(&inputs["input"]);
            let t = targets(&case["targets"]);
            let opts = NllOptions {
                reduction: reduction(o),
                ignore_index: o["ignore_index"].as_i64(),
                class_weights: weights(&o["class_weights"]),
            };
            Computed {
                value: nll_loss(x.view(), t.view(), &opts).unwrap(),
                grads: vec![(
                    "input",
                    nll_loss_backward(x.view(), t.view(), up.view(), &opts).unwrap(),
                )],
            }
        }
        "bce_with_logits" => {
            let x = array(&inputs["input"]);
            let y = array(&inputs["target"]);
            let opts = BceOptions {
                reduction: reduction(o),
                pos_weight: weights(&o["pos_weight"]),
                weight: weights(&o["weight"]),
            };
            Computed {
                value: bce_with_logits(x.view(), y.view(), &opts).unwrap(),
                grads: vec![
                    (
                        "input",
                        bce_with_logits_backward(x.view(), y.view(), up.view(), &opts).unwrap(),
                    ),
                    (
                        "target",
                        bce_with_logits_backward_targets(x.view(), y.view(), up.view(), &opts)
                            .unwrap(),
                    ),
                ],
            }
        }
        "hinge" => {
            let x = array(&inputs["input"]);
            let labels = array(&case["labels"]);
            let opts = HingeOptions::default()
                .margin(o["margin"].as_f64().unwrap())
                .reduction(reduction(o));
            Computed {
                value: hinge(x.view(), labels.view(), &opts).unwrap(),
                grads: vec![(
                    "input",
                    hinge_backward(x.view(), labels.view(), up.view(), &opts).unwrap(),
                )],
            }
        }
        "multi_margin" => {
            let x = array(&inputs["input"]);
            let t = targets(&case["targets"]);
            let opts = MultiMarginOptions {
                p: o["p"].as_u64().unwrap() as u32,
                margin: o["margin"].as_f64().unwrap(),
                class_weights: weights(&o["class_weights"]),
                reduction: reduction(o),
            };
            Computed {
                value: multi_margin(x.view(), t.view(), &opts).unwrap(),
                grads: vec![(
                    "input",
                    multi_margin_backward(x.view(), t.view(), up.view(), &opts).unwrap(),
                )],
            }
        }
        "kl_div" => {
            let x = array(&inputs["input"]);
            let y = array(&inputs["target"]);
            let opts = kl_options(o);
            Computed {
                value: kl_div(x.view(), y.view(), &opts).unwrap(),
                grads: vec![
                    (
                        "input",
                        kl_div_backward(x.view(), y.view(), up.view(), &opts).unwrap(),
                    ),
                    (
                        "target",
                        kl_div_backward_target(x.view(), y.view(), up.view(), &opts).unwrap(),
                    ),
                ],
            }
        }
        other => panic!("fixture has an unknown loss {other}"),
    }
}

#[test]
fn kernels_match_pytorch() {
    let fixture = fixture();
    let cases = fixture["cases"].as_array().unwrap();
    assert!(cases.len() >= 40, "fixture has {} cases", cases.len());
    let mut grads_checked = 0;
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let computed = compute(case);
        assert_close(name, "value", &computed.value, &array(&case["value"]));
        for (input, grad) in &computed.grads {
            let Some(expected) = case["grads"].get(*input) else {
                continue;
            };
            assert_close(name, &format!("d/d{input}"), grad, &array(expected));
            grads_checked += 1;
        }
    }
    assert!(
        grads_checked >= 60,
        "only {grads_checked} gradients compared"
    );
}

/// The same cases through the tape: values from the recorded op, gradients from `backward_with`.
#[test]
fn autograd_adapters_match_pytorch() {
    let fixture = fixture();
    for case in fixture["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let o = &case["options"];
        let inputs = &case["inputs"];
        let tape = Tape::<f64>::new();
        let var = |key: &str| tape.variable(array(&inputs[key]));
        let (out, leaves): (_, Vec<(&str, _)>) = match case["loss"].as_str().unwrap() {
            "mse" | "mae" | "huber" | "smooth_l1" => {
                let (x, y) = (var("input"), var("target"));
                let r = reduction(o);
                let out = match case["loss"].as_str().unwrap() {
                    "mse" => autograd::mse(x, y, r),
                    "mae" => autograd::mae(x, y, r),
                    "huber" => autograd::huber(
                        x,
                        y,
                        &HuberOptions::default()
                            .delta(o["delta"].as_f64().unwrap())
                            .reduction(r),
                    ),
                    _ => autograd::smooth_l1(x, y, o["beta"].as_f64().unwrap(), r),
                };
                (out, vec![("input", x), ("target", y)])
            }
            "cross_entropy" => {
                let x = var("logits");
                let t = targets(&case["targets"]);
                (
                    autograd::cross_entropy(x, t.view(), &ce_options(o)),
                    vec![("logits", x)],
                )
            }
            "cross_entropy_with_probs" => {
                let (x, p) = (var("logits"), var("probs"));
                (
                    autograd::cross_entropy_with_probs(x, p, &ce_options(o)),
                    vec![("logits", x), ("probs", p)],
                )
            }
            "nll_loss" => {
                let x = var("input");
                let t = targets(&case["targets"]);
                let opts = NllOptions {
                    reduction: reduction(o),
                    ignore_index: o["ignore_index"].as_i64(),
                    class_weights: weights(&o["class_weights"]),
                };
                (autograd::nll_loss(x, t.view(), &opts), vec![("input", x)])
            }
            "bce_with_logits" => {
                let (x, y) = (var("input"), var("target"));
                let opts = BceOptions {
                    reduction: reduction(o),
                    pos_weight: weights(&o["pos_weight"]),
                    weight: weights(&o["weight"]),
                };
                (
                    autograd::bce_with_logits(x, y, &opts),
                    vec![("input", x), ("target", y)],
                )
            }
            "hinge" => {
                let x = var("input");
                let labels = array(&case["labels"]);
                let opts = HingeOptions::default()
                    .margin(o["margin"].as_f64().unwrap())
                    .reduction(reduction(o));
                (autograd::hinge(x, labels.view(), &opts), vec![("input", x)])
            }
            "multi_margin" => {
                let x = var("input");
                let t = targets(&case["targets"]);
                let opts = MultiMarginOptions {
                    p: o["p"].as_u64().unwrap() as u32,
                    margin: o["margin"].as_f64().unwrap(),
                    class_weights: weights(&o["class_weights"]),
                    reduction: reduction(o),
                };
                (
                    autograd::multi_margin(x, t.view(), &opts),
                    vec![("input", x)],
                )
            }
            "kl_div" => {
                let (x, y) = (var("input"), var("target"));
                (
                    autograd::kl_div(x, y, &kl_options(o)),
                    vec![("input", x), ("target", y)],
                )
            }
            other => panic!("unknown loss {other}"),
        };
        let out = out.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_close(
            name,
            "tape value",
            out.value().array(),
            &array(&case["value"]),
        );
        let up = match &case["upstream"] {
            Value::Null => ArrayD::from_elem(IxDyn(&out.shape()), 1.0),
            u => array(u),
        };
        let grads = tape.backward_with(out, up).unwrap();
        for (key, leaf) in leaves {
            let Some(expected) = case["grads"].get(key) else {
                continue;
            };
            let got = grads
                .of(leaf)
                .unwrap_or_else(|| panic!("{name}: no gradient for {key}"));
            assert_close(name, &format!("tape d/d{key}"), got, &array(expected));
        }
    }
}
