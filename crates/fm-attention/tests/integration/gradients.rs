//! Finite-difference gradient checks (f64) of attention on fm-tensor's tape, for Q, K and V.

use crate::common::seeded;
use fm_attention::{autograd::attention, AttentionOptions};
use fm_tensor::autograd::{check_gradients, GradCheckConfig};
use ndarray::{Array2, ArrayD};

fn check(
    shape_q: (usize, usize, usize, usize),
    shape_kv: (usize, usize, usize, usize),
    opts: AttentionOptions,
) {
    let inputs: Vec<ArrayD<f64>> = vec![
        seeded::<f64>(shape_q, 1).into_dyn() * 1.5,
        seeded::<f64>(shape_kv, 2).into_dyn() * 1.5,
        seeded::<f64>(shape_kv, 3).into_dyn(),
    ];
    let report = check_gradients(
        |_tape, x| Ok(attention(x[0], x[1], x[2], &opts).expect("valid shapes")),
        &inputs,
        &GradCheckConfig::default(),
    )
    .unwrap();
    assert!(report.passed(), "{opts:?}: {report}");
    assert_eq!(
        report.checked,
        inputs.iter().map(|x| x.len()).sum::<usize>()
    );
}

#[test]
fn plain() {
    check((1, 2, 5, 3), (1, 2, 6, 3), AttentionOptions::new());
}

#[test]
fn causal_square_and_offset() {
    check(
        (2, 2, 5, 3),
        (2, 2, 5, 3),
        AttentionOptions::new().causal(true),
    );
    check(
        (1, 2, 3, 3),
        (1, 2, 6, 3),
        AttentionOptions::new().causal(true),
    );
    // More queries than keys: the first rows are fully masked (zero gradient).
    check(
        (1, 1, 6, 2),
        (1, 1, 4, 2),
        AttentionOptions::new().causal(true),
    );
}

#[test]
fn padded() {
    let pad = Array2::from_shape_vec(
        (2, 5),
        vec![
            true, true, false, true, false, true, false, false, false, false,
        ],
    )
    .unwrap();
    check(
        (2, 2, 4, 3),
        (2, 2, 5, 3),
        AttentionOptions::new().key_padding(pad.clone()),
    );
    check(
        (2, 2, 5, 3),
        (2, 2, 5, 3),
        AttentionOptions::new().key_padding(pad).causal(true),
    );
}

#[test]
fn grouped_query_alibi_additive_and_dropout() {
    check(
        (1, 4, 5, 3),
        (1, 2, 5, 3),
        AttentionOptions::new().causal(true),
    );
    check(
        (1, 3, 4, 2),
        (1, 1, 5, 2),
        AttentionOptions::new().alibi_slopes(vec![0.5, 0.25, 1.0]),
    );
    let mask = seeded::<f64>((1, 1, 4, 5), 9).into_dyn();
    check(
        (1, 2, 4, 2),
        (1, 2, 5, 2),
        AttentionOptions::new().additive_mask(mask),
    );
    check(
        (1, 2, 5, 3),
        (1, 2, 5, 3),
        AttentionOptions::new().dropout(0.4, 11).causal(true),
    );
}
