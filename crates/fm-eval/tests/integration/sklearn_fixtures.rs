//! Every metric against the values scikit-learn computed on the same inputs.
//!
//! The fixture is made by `tests/fixtures/make_sklearn_fixtures.py` (scikit-learn 1.9, numpy, scipy)
//! and committed, so this test needs no Python. Values must agree to 1e-12 (relative to the value's
//! magnitude where it exceeds 1); a NaN from scikit-learn must be NaN here too, or, where
//! scikit-learn returns NaN because the metric is undefined, an `EvalError::Undefined`.

use std::sync::OnceLock;

use fm_eval::{
    Accuracy, Average, AveragePrecision, AveragePrecisionOvr, BalancedAccuracy, ConfusionMatrix,
    EvalError, ExactSum, FBeta, LogLoss, MatthewsCorrcoef, Metric, Precision, Recall, Regression,
    RocAuc, RocAucOvr, TokenCrossEntropy, TopKAccuracy, ZeroDivision,
};
use ndarray::Array2;
use serde_json::Value;

const TOLERANCE: f64 = 1e-12;

fn fixtures() -> &'static Value {
    static FIXTURES: OnceLock<Value> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/sklearn_fixtures.json"
        );
        let text = std::fs::read_to_string(path).expect("fixture file is committed");
        serde_json::from_str(&text).expect("fixture is valid JSON")
    })
}

fn num(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().expect("a float"),
        Value::String(s) => match s.as_str() {
            "NaN" => f64::NAN,
            "inf" => f64::INFINITY,
            "-inf" => f64::NEG_INFINITY,
            other => panic!("unexpected string {other:?} where a float belongs"),
        },
        other => panic!("unexpected {other} where a float belongs"),
    }
}

fn nums(v: &Value) -> Vec<f64> {
    v.as_array().expect("an array").iter().map(num).collect()
}

fn labels(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|x| x.as_u64().expect("a label") as u32)
        .collect()
}

fn matrix(v: &Value) -> Array2<f64> {
    let rows: Vec<Vec<f64>> = v.as_array().expect("rows").iter().map(nums).collect();
    let cols = rows[0].len();
    Array2::from_shape_vec((rows.len(), cols), rows.concat()).expect("rectangular")
}

fn cases(section: &str) -> &'static [Value] {
    fixtures()[section].as_array().expect("a section of cases")
}

/// Counts comparisons and keeps the largest scaled difference seen, for the record.
#[derive(Default)]
struct Checker {
    checks: usize,
    worst: f64,
}

impl Checker {
    fn close(&mut self, what: &str, got: f64, expected: f64) {
        self.checks += 1;
        if expected.is_nan() {
            assert!(got.is_nan(), "{what}: got {got}, scikit-learn NaN");
            return;
        }
        if expected.is_infinite() || got.is_infinite() {
            assert_eq!(got, expected, "{what}");
            return;
        }
        let scaled = (got - expected).abs() / expected.abs().max(1.0);
        self.worst = self.worst.max(scaled);
        assert!(
            scaled <= TOLERANCE,
            "{what}: got {got:e}, scikit-learn {expected:e} (scaled difference {scaled:e})"
        );
    }

    fn all_close(&mut self, what: &str, got: &[f64], expected: &[f64]) {
        assert_eq!(got.len(), expected.len(), "{what}: lengths");
        for (i, (&g, &e)) in got.iter().zip(expected).enumerate() {
            self.close(&format!("{what}[{i}]"), g, e);
        }
    }

    /// scikit-learn's NaN for an undefined metric is our `Undefined` error.
    fn undefined_or_close(&mut self, what: &str, got: fm_eval::Result<f64>, expected: f64) {
        if expected.is_nan() {
            self.checks += 1;
            assert!(
                matches!(got, Err(EvalError::Undefined { .. })),
                "{what}: expected Undefined, got {got:?}"
            );
        } else {
            self.close(
                what,
                got.unwrap_or_else(|e| panic!("{what}: {e}")),
                expected,
            );
        }
    }

    fn finish(&self, section: &str, at_least: usize) {
        println!(
            "{section}: {} comparisons, largest scaled difference {:e}",
            self.checks, self.worst
        );
        assert!(
            self.checks >= at_least,
            "{section}: only {} comparisons ran",
            self.checks
        );
    }
}

#[test]
fn exact_sums_are_correctly_rounded() {
    let mut checked = 0;
    for case in cases("exact_sums") {
        let mut s = ExactSum::new();
        for x in nums(&case["values"]) {
            s.add(x);
        }
        let expected = num(&case["exact"]);
        assert_eq!(
            s.value().to_bits(),
            expected.to_bits(),
            "{}: {} vs {expected}",
            case["name"],
            s.value()
        );
        checked += 1;
    }
    assert!(checked >= 7);
}

#[test]
fn label_metrics_match_sklearn() {
    let mut c = Checker::default();
    for case in cases("classification") {
        let name = case["name"].as_str().unwrap();
        let k = case["n_classes"].as_u64().unwrap() as usize;
        let y_true = labels(&case["y_true"]);
        let y_pred = labels(&case["y_pred"]);
        let mut cm = ConfusionMatrix::new(k).unwrap();
        cm.update(&y_true, &y_pred).unwrap();
        for (t, row) in case["confusion_matrix"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
        {
            for (p, count) in row.as_array().unwrap().iter().enumerate() {
                assert_eq!(
                    cm.get(t, p),
                    count.as_u64().unwrap(),
                    "{name}: cell ({t}, {p})"
                );
            }
        }
        c.close(
            &format!("{name} accuracy"),
            cm.accuracy().unwrap(),
            num(&case["accuracy"]),
        );
        let mut acc = Accuracy::new(k).unwrap();
        acc.update(&y_true, &y_pred).unwrap();
        c.close(
            &format!("{name} Accuracy"),
            acc.compute().unwrap(),
            num(&case["accuracy"]),
        );
        let balanced = num(&case["balanced_accuracy"]);
        c.close(
            &format!("{name} balanced"),
            cm.balanced_accuracy(false).unwrap(),
            balanced,
        );
        let adjusted = num(&case["balanced_accuracy_adjusted"]);
        c.close(
            &format!("{name} balanced adj"),
            cm.balanced_accuracy(true).unwrap(),
            adjusted,
        );
        let mut ba = BalancedAccuracy::new(k, true).unwrap();
        ba.update(&y_true, &y_pred).unwrap();
        c.close(
            &format!("{name} BalancedAccuracy"),
            ba.compute().unwrap(),
            adjusted,
        );
        let mcc = num(&case["matthews_corrcoef"]);
        c.close(&format!("{name} mcc"), cm.matthews_corrcoef().unwrap(), mcc);
        let mut m = MatthewsCorrcoef::new(k).unwrap();
        m.update(&y_true, &y_pred).unwrap();
        c.close(
            &format!("{name} MatthewsCorrcoef"),
            m.compute().unwrap(),
            mcc,
        );

        for (zd_name, zd) in [
            ("zero", ZeroDivision::Zero),
            ("one", ZeroDivision::One),
            ("nan", ZeroDivision::NaN),
        ] {
            let block = &case["prf"][zd_name];
            for (beta_name, beta) in [
                ("1", 1.0),
                ("0.5", 0.5),
                ("2", 2.0),
                ("0", 0.0),
                ("inf", f64::INFINITY),
            ] {
                let mut averages = vec![
                    ("micro", Average::Micro),
                    ("macro", Average::Macro),
                    ("weighted", Average::Weighted),
                ];
                if k == 2 {
                    averages.push(("binary1", Average::Binary { pos_label: 1 }));
                    averages.push(("binary0", Average::Binary { pos_label: 0 }));
                }
                for (avg_name, average) in averages {
                    let what = format!("{name} zd={zd_name} beta={beta_name} {avg_name}");
                    let expected = nums(&block[format!("beta{beta_name}_{avg_name}")]);
                    let got = cm.precision_recall_fscore(beta, average, zd).unwrap();
                    c.all_close(&what, &[got.precision, got.recall, got.fbeta], &expected);
                    // The single-valued wrappers give the same numbers.
                    let mut f = FBeta::new(k, beta, average).unwrap().with_zero_division(zd);
                    f.update(&y_true, &y_pred).unwrap();
                    c.close(&format!("{what} FBeta"), f.compute().unwrap(), expected[2]);
                    if beta_name == "1" {
                        let mut p = Precision::new(k, average).unwrap().with_zero_division(zd);
                        p.update(&y_true, &y_pred).unwrap();
                        c.close(
                            &format!("{what} Precision"),
                            p.compute().unwrap(),
                            expected[0],
                        );
                        let mut r = Recall::new(k, average).unwrap().with_zero_division(zd);
                        r.update(&y_true, &y_pred).unwrap();
                        c.close(&format!("{what} Recall"), r.compute().unwrap(), expected[1]);
                    }
                }
                let per = &block[format!("beta{beta_name}_per_class")];
                let got = cm.per_class(beta, zd).unwrap();
                let what = format!("{name} zd={zd_name} beta={beta_name} per-class");
                c.all_close(
                    &format!("{what} precision"),
                    &got.precision,
                    &nums(&per["precision"]),
                );
                c.all_close(
                    &format!("{what} recall"),
                    &got.recall,
                    &nums(&per["recall"]),
                );
                c.all_close(&format!("{what} fbeta"), &got.fbeta, &nums(&per["fbeta"]));
                let support: Vec<u64> = per["support"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_u64().unwrap())
                    .collect();
                assert_eq!(got.support, support, "{what} support");
            }
        }
    }
    c.finish("label metrics", 4000);
}

#[test]
fn top_k_matches_sklearn() {
    let mut c = Checker::default();
    for case in cases("top_k") {
        let name = case["name"].as_str().unwrap();
        let n = case["n_classes"].as_u64().unwrap() as usize;
        let y = labels(&case["y_true"]);
        let scores = matrix(&case["y_score"]);
        for (k, expected) in case["expected"].as_object().unwrap() {
            let k: usize = k.parse().unwrap();
            let mut top = TopKAccuracy::new(k, n).unwrap();
            top.update(&y, scores.view()).unwrap();
            c.close(
                &format!("{name} k={k}"),
                top.compute().unwrap(),
                num(expected),
            );
        }
    }
    c.finish("top-k", 15);
}

#[test]
fn ranking_metrics_match_sklearn() {
    let mut c = Checker::default();
    for case in cases("ranking_binary") {
        let name = case["name"].as_str().unwrap();
        let y = labels(&case["y_true"]);
        let s = nums(&case["y_score"]);
        let mut auc = RocAuc::new();
        auc.update(&y, &s).unwrap();
        c.undefined_or_close(
            &format!("{name} roc_auc"),
            auc.compute(),
            num(&case["roc_auc"]),
        );
        let mut ap = AveragePrecision::new();
        ap.update(&y, &s).unwrap();
        c.close(
            &format!("{name} average_precision"),
            ap.compute().unwrap(),
            num(&case["average_precision"]),
        );
    }
    for case in cases("ranking_ovr") {
        let name = case["name"].as_str().unwrap();
        let k = case["n_classes"].as_u64().unwrap() as usize;
        let y = labels(&case["y_true"]);
        let s = matrix(&case["y_score"]);
        let mut auc = RocAucOvr::new(k).unwrap();
        auc.update(&y, s.view()).unwrap();
        c.undefined_or_close(
            &format!("{name} roc_auc_ovr"),
            auc.compute(),
            num(&case["roc_auc_ovr_macro"]),
        );
        let mut ap = AveragePrecisionOvr::new(k).unwrap();
        ap.update(&y, s.view()).unwrap();
        let expected = num(&case["average_precision_ovr_macro"]);
        c.close(
            &format!("{name} average_precision_ovr"),
            ap.compute().unwrap(),
            expected,
        );
    }
    c.finish("ranking", 24);
}

#[test]
fn log_loss_matches_sklearn() {
    let mut c = Checker::default();
    for case in cases("log_loss") {
        let name = case["name"].as_str().unwrap();
        let k = case["n_classes"].as_u64().unwrap() as usize;
        let y = labels(&case["y_true"]);
        let mut loss = LogLoss::new(k).unwrap();
        if case.get("p_positive").is_some() {
            loss.update_binary(&y, &nums(&case["p_positive"])).unwrap();
        } else {
            loss.update(&y, matrix(&case["y_prob"]).view()).unwrap();
        }
        c.close(
            &format!("{name} log_loss"),
            loss.compute().unwrap(),
            num(&case["log_loss"]),
        );
    }
    c.finish("log loss", 4);
}

#[test]
fn regression_metrics_match_sklearn() {
    let mut c = Checker::default();
    for case in cases("regression") {
        let name = case["name"].as_str().unwrap();
        let mut reg = Regression::new();
        reg.update(&nums(&case["y_true"]), &nums(&case["y_pred"]))
            .unwrap();
        let m = reg.compute().unwrap();
        c.close(&format!("{name} mse"), m.mse, num(&case["mse"]));
        c.close(&format!("{name} rmse"), m.rmse, num(&case["rmse"]));
        c.close(&format!("{name} mae"), m.mae, num(&case["mae"]));
        c.close(
            &format!("{name} max_error"),
            m.max_error,
            num(&case["max_error"]),
        );
        c.close(
            &format!("{name} explained_variance"),
            m.explained_variance,
            num(&case["explained_variance"]),
        );
        c.undefined_or_close(&format!("{name} r2"), reg.r2(), num(&case["r2"]));
        assert_eq!(
            m.r2.is_none(),
            num(&case["r2"]).is_nan(),
            "{name}: r2 presence"
        );
    }
    c.finish("regression", 40);
}

#[test]
fn language_model_metrics_match_reference() {
    let mut c = Checker::default();
    for case in cases("language_model") {
        let name = case["name"].as_str().unwrap();
        let v = case["vocab_size"].as_u64().unwrap() as usize;
        let targets = labels(&case["targets"]);
        let bytes = case["n_bytes"].as_u64().unwrap();
        let mut from_logits = TokenCrossEntropy::new(v).unwrap();
        from_logits
            .update_logits(matrix(&case["logits"]).view(), &targets)
            .unwrap();
        from_logits.add_bytes(bytes);
        let mut from_log_probs = TokenCrossEntropy::new(v).unwrap();
        from_log_probs
            .update_log_probs(&nums(&case["target_log_probs"]))
            .unwrap();
        from_log_probs.add_bytes(bytes);
        for (how, lm) in [("logits", &from_logits), ("log_probs", &from_log_probs)] {
            let m = lm.compute().unwrap();
            let what = format!("{name} from {how}");
            c.close(
                &format!("{what} cross_entropy"),
                m.mean_cross_entropy,
                num(&case["mean_cross_entropy"]),
            );
            c.close(
                &format!("{what} perplexity"),
                m.perplexity,
                num(&case["perplexity"]),
            );
            c.close(
                &format!("{what} bits_per_token"),
                m.bits_per_token,
                num(&case["bits_per_token"]),
            );
            c.close(
                &format!("{what} bits_per_byte"),
                m.bits_per_byte.unwrap(),
                num(&case["bits_per_byte"]),
            );
            assert_eq!(m.tokens, targets.len() as u64);
        }
    }
    c.finish("language model", 16);
}
