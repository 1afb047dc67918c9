//! Numerical edge cases, bad input, and determinism across thread counts.

use fm_loss::*;
use ndarray::{array, Array2, ArrayD, IxDyn};

fn one<T: fm_tensor::Element>() -> ArrayD<T> {
    ArrayD::from_elem(IxDyn(&[]), T::one())
}

fn ce32(logits: &Array2<f32>, targets: &[usize], o: &CrossEntropyOptions) -> (f32, Array2<f32>) {
    let mut g = Array2::zeros(logits.raw_dim());
    let l = fused_cross_entropy(
        logits.view().into_dyn(),
        targets,
        o,
        g.view_mut().into_dyn(),
    )
    .unwrap();
    (l[[]], g)
}

#[test]
fn huge_logits_are_finite_in_f32_and_agree_with_f64() {
    let logits = array![
        [1e4f32, -1e4, 0.0],
        [-1e4, -1e4, 1e4],
        [1e4, 1e4, 1e4],
        [-1e4, 0.0, 1e4]
    ];
    let targets = [1usize, 2, 0, 0];
    for o in [
        CrossEntropyOptions::default(),
        CrossEntropyOptions::default().label_smoothing(0.1),
    ] {
        let (l32, g32) = ce32(&logits, &targets, &o);
        let l64 =
            cross_entropy(logits.mapv(f64::from).view().into_dyn(), &targets, &o).unwrap()[[]];
        let g64 = cross_entropy_backward(
            logits.mapv(f64::from).view().into_dyn(),
            &targets,
            one().view(),
            &o,
        )
        .unwrap();
        assert!(l32.is_finite() && g32.iter().all(|v| v.is_finite()));
        assert!(((l32 as f64) - l64).abs() / l64 < 1e-6, "{l32} vs {l64}");
        for (a, b) in g32.iter().zip(g64.iter()) {
            assert!((*a as f64 - b).abs() < 1e-6, "{a} vs {b}");
        }
    }
    // Binary cross-entropy at ±1e4 in f32.
    let x = array![1e4f32, -1e4, 1e4, -1e4].into_dyn();
    let y = array![1.0f32, 0.0, 0.0, 1.0].into_dyn();
    let l = bce_with_logits(
        x.view(),
        y.view(),
        &BceOptions::default().reduction(Reduction::None),
    )
    .unwrap();
    assert_eq!(l, array![0.0f32, 0.0, 1e4, 1e4].into_dyn());
    let g =
        bce_with_logits_backward(x.view(), y.view(), one().view(), &BceOptions::default()).unwrap();
    assert_eq!(g, array![0.0f32, 0.0, 0.25, -0.25].into_dyn());
}

#[test]
fn all_equal_logits_and_a_single_class() {
    let logits = Array2::<f32>::from_elem((3, 8), 42.0);
    let (l, g) = ce32(&logits, &[0, 7, 3], &CrossEntropyOptions::default());
    assert!((l - 8f32.ln()).abs() < 1e-6);
    for (i, row) in g.rows().into_iter().enumerate() {
        let t = [0, 7, 3][i];
        for (j, &v) in row.iter().enumerate() {
            let expected = (1.0 / 8.0 - if j == t { 1.0 } else { 0.0 }) / 3.0;
            assert!((v - expected).abs() < 1e-7, "{v} vs {expected}");
        }
    }
    let single = array![[3.0f32], [-1e4], [1e4]];
    let (l, g) = ce32(
        &single,
        &[0, 0, 0],
        &CrossEntropyOptions::default().label_smoothing(0.3),
    );
    assert_eq!(l, 0.0);
    // p = 1 exactly; what is left is the rounding of the smoothing coefficients to f32.
    assert!(g.iter().all(|&v| v.abs() < 1e-7), "{g}");
}

#[test]
fn fully_ignored_batch() {
    let logits = Array2::<f32>::from_elem((2, 4), 1.0);
    let o = CrossEntropyOptions::default().ignore_index(-100);
    let e = cross_entropy(logits.view().into_dyn(), &[-100i64, -100], &o).unwrap_err();
    assert!(matches!(e, LossError::NothingToAverage { .. }), "{e}");
    assert!(e.to_string().contains("0 non-ignored targets"), "{e}");
    // In place: refused before anything is written.
    let mut buf = logits.clone();
    assert!(fused_cross_entropy_in_place(buf.view_mut().into_dyn(), &[-100i64, -100], &o).is_err());
    assert_eq!(buf, logits);
    // With a sum the loss is 0 and so is the gradient.
    let o = o.reduction(Reduction::Sum);
    let (l, g) = {
        let mut g = Array2::from_elem((2, 4), 9.0f32);
        let l = fused_cross_entropy(
            logits.view().into_dyn(),
            &[-100i64, -100],
            &o,
            g.view_mut().into_dyn(),
        )
        .unwrap();
        (l[[]], g)
    };
    assert_eq!(l, 0.0);
    assert!(g.iter().all(|&v| v == 0.0));
    // Weights that are zero for every target: the mean has nothing to divide by.
    let o = CrossEntropyOptions::default().class_weights(vec![0.0, 1.0, 1.0, 1.0]);
    let e = cross_entropy(logits.view().into_dyn(), &[0usize, 0], &o).unwrap_err();
    assert!(matches!(e, LossError::NothingToAverage { .. }), "{e}");
}

#[test]
fn non_finite_logits() {
    let o = CrossEntropyOptions::default();
    for (bad, row) in [(f32::NAN, 1usize), (f32::INFINITY, 1)] {
        let mut logits = Array2::<f32>::zeros((3, 5));
        logits[[row, 2]] = bad;
        let e = cross_entropy(logits.view().into_dyn(), &[0usize, 0, 0], &o).unwrap_err();
        assert!(
            matches!(e, LossError::NonFiniteLogits { row: 1, .. }),
            "{e}"
        );
    }
    let mut logits = Array2::<f32>::zeros((2, 5));
    logits.row_mut(1).fill(f32::NEG_INFINITY);
    let e = cross_entropy(logits.view().into_dyn(), &[0usize, 0], &o).unwrap_err();
    assert!(
        matches!(e, LossError::NonFiniteLogits { row: 1, .. }),
        "{e}"
    );
    // A masked (−inf) class that is not the target is fine ...
    let logits = array![[0.0f32, f32::NEG_INFINITY, 1.0]];
    let (l, g) = ce32(
        &logits,
        &[2],
        &CrossEntropyOptions::default().label_smoothing(0.0),
    );
    assert!(l.is_finite() && g.iter().all(|v| v.is_finite()));
    assert_eq!(g[[0, 1]], 0.0);
    // ... and at the target the loss is +inf (not NaN) with a finite gradient.
    let (l, g) = ce32(&logits, &[1], &CrossEntropyOptions::default());
    assert_eq!(l, f32::INFINITY);
    assert!(g.iter().all(|v| v.is_finite()));
}

#[test]
fn bad_input_is_reported() {
    let logits = Array2::<f64>::zeros((2, 3));
    let x = logits.view().into_dyn();
    let o = CrossEntropyOptions::default();
    let e = cross_entropy(x.clone(), &[0usize, 3], &o).unwrap_err();
    assert!(
        matches!(
            e,
            LossError::ClassOutOfRange {
                position: 1,
                class: 3,
                classes: 3,
                ..
            }
        ),
        "{e}"
    );
    let e = cross_entropy(x.clone(), &[0i64, -1], &o).unwrap_err();
    assert!(
        matches!(e, LossError::ClassOutOfRange { class: -1, .. }),
        "{e}"
    );
    let e = cross_entropy(x.clone(), &[0usize], &o).unwrap_err();
    assert!(matches!(e, LossError::ShapeMismatch { .. }), "{e}");
    let e = cross_entropy(x.clone(), &[0usize, 1], &o.clone().label_smoothing(1.5)).unwrap_err();
    assert!(matches!(e, LossError::InvalidOption { .. }), "{e}");
    let e = cross_entropy(
        x.clone(),
        &[0usize, 1],
        &o.clone().class_weights(vec![1.0, 1.0]),
    )
    .unwrap_err();
    assert!(matches!(e, LossError::ShapeMismatch { .. }), "{e}");
    let e = cross_entropy(
        x.clone(),
        &[0usize, 1],
        &o.clone().class_weights(vec![1.0, -1.0, 1.0]),
    )
    .unwrap_err();
    assert!(matches!(e, LossError::InvalidOption { .. }), "{e}");
    let mut wrong = Array2::<f64>::zeros((3, 2));
    let e =
        fused_cross_entropy(x.clone(), &[0usize, 1], &o, wrong.view_mut().into_dyn()).unwrap_err();
    assert!(matches!(e, LossError::ShapeMismatch { .. }), "{e}");
    let scalar = ArrayD::<f64>::zeros(IxDyn(&[]));
    let e = cross_entropy(scalar.view(), &[0usize], &o).unwrap_err();
    assert!(matches!(e, LossError::InvalidShape { .. }), "{e}");
    let no_classes = Array2::<f64>::zeros((2, 0));
    let e = cross_entropy(no_classes.view().into_dyn(), &[0usize, 0], &o).unwrap_err();
    assert!(matches!(e, LossError::InvalidShape { .. }), "{e}");
    let e =
        cross_entropy_with_probs(x.clone(), x.clone(), &o.clone().ignore_index(-100)).unwrap_err();
    assert!(matches!(e, LossError::InvalidOption { .. }), "{e}");
    // The upstream gradient of a "none" reduction has the per-row shape.
    let g = ndarray::Array1::<f64>::ones(3).into_dyn();
    let e = cross_entropy_backward(x, &[0usize, 1], g.view(), &o.reduction(Reduction::None))
        .unwrap_err();
    assert!(matches!(e, LossError::ShapeMismatch { .. }), "{e}");
}

#[test]
fn f32_fused_kernel_agrees_with_f64() {
    let (n, v) = (37, 1000);
    let logits = Array2::from_shape_fn((n, v), |(i, j)| {
        (((i * 7919 + j * 104_729) % 1000) as f32 / 100.0 - 5.0) * 2.0
    });
    let targets: Vec<usize> = (0..n).map(|i| (i * 31) % v).collect();
    let o = CrossEntropyOptions::default().label_smoothing(0.1);
    let (l32, g32) = ce32(&logits, &targets, &o);
    let x64 = logits.mapv(f64::from).into_dyn();
    let l64 = cross_entropy(x64.view(), &targets, &o).unwrap()[[]];
    let g64 = cross_entropy_backward(x64.view(), &targets, one().view(), &o).unwrap();
    assert!(((l32 as f64) - l64).abs() / l64 < 1e-6, "{l32} vs {l64}");
    let worst = g32
        .iter()
        .zip(g64.iter())
        .map(|(a, b)| (*a as f64 - b).abs())
        .fold(0.0, f64::max);
    // Gradients are O(1/N); an error of 1e-9 is ~1e-7 relative to the largest entries.
    assert!(worst < 1e-8, "worst gradient difference {worst}");
}

#[test]
fn same_bits_for_one_and_two_threads() {
    let (n, v) = (64, 3000);
    let logits = Array2::from_shape_fn((n, v), |(i, j)| {
        ((i * 131 + j * 7) % 997) as f32 * 0.01 - 4.0
    });
    let targets: Vec<i64> = (0..n as i64)
        .map(|i| {
            if i % 9 == 0 {
                -100
            } else {
                (i * 37) % v as i64
            }
        })
        .collect();
    let o = CrossEntropyOptions::default()
        .ignore_index(-100)
        .label_smoothing(0.05)
        .class_weights((0..v).map(|c| 0.5 + (c % 3) as f64).collect::<Vec<_>>());
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut g = Array2::<f32>::zeros((n, v));
            let l = fused_cross_entropy(
                logits.view().into_dyn(),
                &targets,
                &o,
                g.view_mut().into_dyn(),
            )
            .unwrap();
            let none = cross_entropy(
                logits.view().into_dyn(),
                &targets,
                &o.clone().reduction(Reduction::None),
            )
            .unwrap();
            (l, g, none)
        })
    };
    let (l1, g1, n1) = run(1);
    let (l2, g2, n2) = run(2);
    assert_eq!(l1[[]].to_bits(), l2[[]].to_bits());
    assert!(g1
        .iter()
        .zip(g2.iter())
        .all(|(a, b)| a.to_bits() == b.to_bits()));
    assert!(n1
        .iter()
        .zip(n2.iter())
        .all(|(a, b)| a.to_bits() == b.to_bits()));
}
