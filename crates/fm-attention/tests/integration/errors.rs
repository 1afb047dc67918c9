//! Every bad input gives an error that names the shapes, never a panic.

use fm_attention::{
    attention_backward, attention_forward, autograd::attention, AttentionError, AttentionOptions,
};
use ndarray::{Array2, Array3, Array4, ArrayD, IxDyn};

fn zeros(shape: (usize, usize, usize, usize)) -> Array4<f32> {
    Array4::zeros(shape)
}

fn forward_err(
    q: (usize, usize, usize, usize),
    k: (usize, usize, usize, usize),
    v: (usize, usize, usize, usize),
    opts: &AttentionOptions,
) -> String {
    let err = attention_forward(zeros(q).view(), zeros(k).view(), zeros(v).view(), opts)
        .expect_err("bad input must be refused");
    // The naive reference validates the same way.
    let naive_err = fm_attention::naive::attention_forward(
        zeros(q).view(),
        zeros(k).view(),
        zeros(v).view(),
        opts,
    )
    .expect_err("bad input must be refused");
    assert_eq!(
        std::mem::discriminant(&err),
        std::mem::discriminant(&naive_err)
    );
    err.to_string()
}

#[test]
fn mismatched_head_dim() {
    let msg = forward_err(
        (1, 2, 4, 8),
        (1, 2, 4, 6),
        (1, 2, 4, 8),
        &AttentionOptions::new(),
    );
    assert!(
        msg.contains("head_dim") && msg.contains("[1, 2, 4, 8]") && msg.contains("[1, 2, 4, 6]"),
        "{msg}"
    );
}

#[test]
fn k_and_v_sequence_lengths_differ() {
    let msg = forward_err(
        (1, 2, 4, 8),
        (1, 2, 5, 8),
        (1, 2, 6, 8),
        &AttentionOptions::new(),
    );
    assert!(
        msg.contains("seq lengths") && msg.contains("[1, 2, 5, 8]") && msg.contains("[1, 2, 6, 8]"),
        "{msg}"
    );
}

#[test]
fn heads_not_divisible_by_kv_heads() {
    let err = attention_forward(
        zeros((1, 4, 3, 2)).view(),
        zeros((1, 3, 3, 2)).view(),
        zeros((1, 3, 3, 2)).view(),
        &AttentionOptions::new(),
    )
    .unwrap_err();
    assert!(matches!(err, AttentionError::InvalidConfig { .. }));
    assert!(
        err.to_string().contains("4 query heads") && err.to_string().contains("3 kv heads"),
        "{err}"
    );
}

#[test]
fn batch_and_kv_heads_mismatch() {
    let msg = forward_err(
        (2, 2, 4, 8),
        (1, 2, 4, 8),
        (1, 2, 4, 8),
        &AttentionOptions::new(),
    );
    assert!(msg.contains("batch"), "{msg}");
    let msg = forward_err(
        (1, 2, 4, 8),
        (1, 2, 4, 8),
        (1, 1, 4, 8),
        &AttentionOptions::new(),
    );
    assert!(msg.contains("heads"), "{msg}");
}

#[test]
fn empty_sequences_and_head_dim() {
    let msg = forward_err(
        (1, 1, 0, 4),
        (1, 1, 3, 4),
        (1, 1, 3, 4),
        &AttentionOptions::new(),
    );
    assert!(
        msg.contains("empty sequence") && msg.contains("[1, 1, 0, 4]"),
        "{msg}"
    );
    let msg = forward_err(
        (1, 1, 2, 4),
        (1, 1, 0, 4),
        (1, 1, 0, 4),
        &AttentionOptions::new(),
    );
    assert!(msg.contains("empty sequence"), "{msg}");
    let msg = forward_err(
        (1, 1, 2, 0),
        (1, 1, 2, 0),
        (1, 1, 2, 3),
        &AttentionOptions::new(),
    );
    assert!(msg.contains("empty head_dim"), "{msg}");
}

#[test]
fn masks_of_the_wrong_shape() {
    let shapes = ((2, 2, 4, 8), (2, 2, 5, 8), (2, 2, 5, 8));
    let pad = AttentionOptions::new().key_padding(Array2::from_elem((2, 4), true));
    let msg = forward_err(shapes.0, shapes.1, shapes.2, &pad);
    assert!(
        msg.contains("key_padding") && msg.contains("[2, 5]") && msg.contains("[2, 4]"),
        "{msg}"
    );
    let additive = AttentionOptions::new().additive_mask(ArrayD::<f32>::zeros(IxDyn(&[3, 4, 5])));
    let msg = forward_err(shapes.0, shapes.1, shapes.2, &additive);
    assert!(
        msg.contains("additive_mask") && msg.contains("[3, 4, 5]") && msg.contains("[2, 2, 4, 5]"),
        "{msg}"
    );
    let too_many_axes =
        AttentionOptions::new().additive_mask(ArrayD::<f32>::zeros(IxDyn(&[1, 2, 2, 4, 5])));
    assert!(forward_err(shapes.0, shapes.1, shapes.2, &too_many_axes).contains("additive_mask"));
    let alibi = AttentionOptions::new().alibi_slopes(vec![1.0; 3]);
    let msg = forward_err(shapes.0, shapes.1, shapes.2, &alibi);
    assert!(
        msg.contains("alibi_slopes") && msg.contains("3 slopes"),
        "{msg}"
    );
}

#[test]
fn bad_dropout_and_scale() {
    let s = ((1, 1, 2, 2), (1, 1, 2, 2), (1, 1, 2, 2));
    for p in [1.0, -0.1, f64::NAN] {
        assert!(
            forward_err(s.0, s.1, s.2, &AttentionOptions::new().dropout(p, 0)).contains("dropout")
        );
    }
    assert!(
        forward_err(s.0, s.1, s.2, &AttentionOptions::new().scale(f64::INFINITY)).contains("scale")
    );
}

#[test]
fn backward_checks_saved_shapes() {
    let q = zeros((1, 2, 4, 8));
    let ok_lse = Array3::<f32>::zeros((1, 2, 4));
    let bad_out = zeros((1, 2, 3, 8));
    let err = attention_backward(
        q.view(),
        q.view(),
        q.view(),
        bad_out.view(),
        ok_lse.view(),
        q.view(),
        &AttentionOptions::new(),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("output") && err.to_string().contains("[1, 2, 3, 8]"),
        "{err}"
    );
    let bad_lse = Array3::<f32>::zeros((1, 2, 5));
    let err = attention_backward(
        q.view(),
        q.view(),
        q.view(),
        q.view(),
        bad_lse.view(),
        q.view(),
        &AttentionOptions::new(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("lse"), "{err}");
}

#[test]
fn autograd_refuses_bad_shapes_with_the_same_error() {
    let tape = fm_tensor::Tape::<f32>::new();
    let q = tape.variable(zeros((1, 2, 4, 8)));
    let k = tape.variable(zeros((1, 2, 4, 6)));
    let err = attention(q, k, k, &AttentionOptions::new()).unwrap_err();
    assert!(matches!(err, AttentionError::Shape { .. }), "{err}");
    let x = tape.variable(Array3::<f32>::zeros((1, 2, 3)));
    assert!(attention(x, x, x, &AttentionOptions::new()).is_err());
}
