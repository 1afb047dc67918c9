//! Bad input through every public update is an error that names the problem, never a panic, and a
//! failed update leaves the accumulator unchanged.

use fm_eval::{
    Accuracy, AveragePrecision, AveragePrecisionOvr, ConfusionMatrix, EvalError, LogLoss, Metric,
    Regression, RocAuc, RocAucOvr, TokenCrossEntropy, TopKAccuracy,
};
use ndarray::{array, Array2};

fn message(r: fm_eval::Result<()>) -> String {
    r.expect_err("bad input must be refused").to_string()
}

#[test]
fn length_mismatch_names_both_lengths() {
    let scores = Array2::<f64>::from_elem((2, 3), 0.3);
    let cases = [
        message(Accuracy::new(3).unwrap().update(&[0u8, 1, 2], &[0u8, 1])),
        message(
            ConfusionMatrix::new(3)
                .unwrap()
                .update(&[0u8, 1, 2], &[0u8, 1]),
        ),
        message(
            TopKAccuracy::new(1, 3)
                .unwrap()
                .update(&[0u8, 1, 2], scores.view()),
        ),
        message(RocAuc::new().update(&[0u8, 1, 1], &[0.1, 0.2])),
        message(
            RocAucOvr::new(3)
                .unwrap()
                .update(&[0u8, 1, 2], scores.view()),
        ),
        message(LogLoss::new(3).unwrap().update(&[0u8, 1, 2], scores.view())),
        message(Regression::new().update(&[0.0, 1.0, 2.0], &[0.0, 1.0])),
        message(
            TokenCrossEntropy::new(3)
                .unwrap()
                .update_logits(scores.view(), &[0u8, 1, 2]),
        ),
    ];
    for m in &cases {
        assert!(
            m.contains("length mismatch") && m.contains('3') && m.contains('2'),
            "{m}"
        );
    }
}

#[test]
fn empty_input_is_refused() {
    let none: [u8; 0] = [];
    let no_scores: [f64; 0] = [];
    let no_rows = Array2::<f64>::zeros((0, 3));
    let cases = [
        message(Accuracy::new(3).unwrap().update(&none, &none)),
        message(ConfusionMatrix::new(3).unwrap().update(&none, &none)),
        message(
            TopKAccuracy::new(1, 3)
                .unwrap()
                .update(&none, no_rows.view()),
        ),
        message(AveragePrecision::new().update(&none, &no_scores)),
        message(
            AveragePrecisionOvr::new(3)
                .unwrap()
                .update(&none, no_rows.view()),
        ),
        message(LogLoss::new(3).unwrap().update(&none, no_rows.view())),
        message(Regression::new().update(&no_scores, &no_scores)),
        message(
            TokenCrossEntropy::new(3)
                .unwrap()
                .update_log_probs(&no_scores),
        ),
    ];
    for m in &cases {
        assert!(m.contains("is empty"), "{m}");
    }
    // Computing before any update is an error too.
    assert!(matches!(
        Accuracy::new(2).unwrap().compute(),
        Err(EvalError::EmptyInput { .. })
    ));
    assert!(matches!(
        RocAuc::new().compute(),
        Err(EvalError::EmptyInput { .. })
    ));
    assert!(Regression::new().compute().is_err());
    assert!(TokenCrossEntropy::new(2).unwrap().compute().is_err());
}

#[test]
fn labels_outside_the_declared_classes_are_named() {
    let scores = Array2::<f64>::from_elem((2, 3), 1.0 / 3.0);
    let cases = [
        message(Accuracy::new(3).unwrap().update(&[0u32, 7], &[0u32, 1])),
        message(
            ConfusionMatrix::new(3)
                .unwrap()
                .update(&[0u32, 1], &[0u32, 7]),
        ),
        message(
            TopKAccuracy::new(1, 3)
                .unwrap()
                .update(&[0u32, 7], scores.view()),
        ),
        message(RocAucOvr::new(3).unwrap().update(&[0u32, 7], scores.view())),
        message(LogLoss::new(3).unwrap().update(&[0u32, 7], scores.view())),
        message(
            TokenCrossEntropy::new(3)
                .unwrap()
                .update_logits(scores.view(), &[0u32, 7]),
        ),
    ];
    for m in &cases {
        assert!(
            m.contains("[1] = 7 is outside the declared classes 0..3"),
            "{m}"
        );
    }
    let m = message(RocAuc::new().update(&[0i32, -1], &[0.1, 0.2]));
    assert!(
        m.contains("y_true[1] = -1 is outside the declared classes 0..2"),
        "{m}"
    );
}

#[test]
fn nan_scores_are_named_with_their_position() {
    let mut nan_row = Array2::<f64>::from_elem((2, 3), 0.25);
    nan_row[[1, 2]] = f64::NAN;
    let cases = [
        message(
            TopKAccuracy::new(1, 3)
                .unwrap()
                .update(&[0u8, 1], nan_row.view()),
        ),
        message(RocAucOvr::new(3).unwrap().update(&[0u8, 1], nan_row.view())),
        message(
            AveragePrecisionOvr::new(3)
                .unwrap()
                .update(&[0u8, 1], nan_row.view()),
        ),
        message(LogLoss::new(3).unwrap().update(&[0u8, 1], nan_row.view())),
        message(
            TokenCrossEntropy::new(3)
                .unwrap()
                .update_logits(nan_row.view(), &[0u8, 1]),
        ),
    ];
    for m in &cases {
        assert!(m.contains("[1, 2] is NaN"), "{m}");
    }
    let m = message(RocAuc::new().update(&[0u8, 1], &[0.5f32, f32::NAN]));
    assert!(m.contains("y_score[1] is NaN"), "{m}");
    let m = message(Regression::new().update(&[0.5, f64::NAN], &[0.5, 0.5]));
    assert!(m.contains("y_true[1] is NaN"), "{m}");
    let m = message(
        TokenCrossEntropy::new(3)
            .unwrap()
            .update_log_probs(&[-0.5, f64::NAN]),
    );
    assert!(m.contains("target_log_probs[1] is NaN"), "{m}");
}

#[test]
fn top_k_larger_than_the_class_count_is_refused() {
    let err = TopKAccuracy::new(5, 3).unwrap_err();
    assert!(matches!(err, EvalError::InvalidArgument { .. }));
    assert!(
        err.to_string()
            .contains("k = 5 must be between 1 and the class count 3"),
        "{err}"
    );
    let m = message(
        TopKAccuracy::new(1, 3)
            .unwrap()
            .update(&[0u8], array![[0.5, 0.5]].view()),
    );
    assert!(
        m.contains("has shape [1, 2] but must have 3 columns"),
        "{m}"
    );
}

#[test]
fn failed_updates_change_nothing() {
    let mut acc = Accuracy::new(3).unwrap();
    acc.update(&[0u8, 1], &[0u8, 0]).unwrap();
    let before = acc.clone();
    // The bad label sits past the first chunks, which were already compared (and, for the
    // confusion matrix's lane and in-place paths, counted).
    let n = 150_000;
    let mut long_true = vec![1u8; n];
    long_true[n - 1] = 9;
    let long_pred = vec![1u8; n];
    let err = acc.update(&long_true, &long_pred).unwrap_err();
    assert!(err.to_string().contains("y_true[149999] = 9"), "{err}");
    assert_eq!(acc, before);
    for k in [2, 3, 100] {
        let mut cm = ConfusionMatrix::new(k).unwrap();
        cm.update(&[0u8, 1], &[1u8, 1]).unwrap();
        let before = cm.clone();
        let mut bad_pred = long_pred.clone();
        bad_pred[n - 2] = 200;
        let err = cm.update(&long_true, &bad_pred).unwrap_err();
        assert!(
            err.to_string().contains("y_pred[149998] = 200"),
            "k = {k}: {err}"
        );
        assert_eq!(cm, before, "k = {k}");
    }

    let mut auc = RocAucOvr::new(2).unwrap();
    assert!(auc
        .update(&[0u8, 1], array![[0.2, 0.8], [f64::NAN, 0.1]].view())
        .is_err());
    assert_eq!(auc.count(), 0);
    let mut lm = TokenCrossEntropy::new(2).unwrap();
    assert!(lm
        .update_logits(array![[0.0, 1.0], [0.0, f64::INFINITY]].view(), &[0u8, 1])
        .is_err());
    assert_eq!(lm.count(), 0);
    assert_eq!(lm.total_nll(), 0.0);
}
