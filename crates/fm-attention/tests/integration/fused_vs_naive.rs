//! The fused, tiled kernels against the naive reference (materialised scores), in f32, within 1e-5:
//! every mask, bias and shape family, including sizes that leave partial tiles.

use crate::common::{assert_fused_matches_naive, seeded, Case};
use fm_attention::{attention_backward, attention_forward, AttentionOptions};
use ndarray::{Array2, ArrayD, IxDyn};

#[test]
fn causal_and_full_over_odd_sizes() {
    for &seq in &[1, 7, 65, 130] {
        for &head_dim in &[1, 3, 64] {
            for causal in [false, true] {
                assert_fused_matches_naive(
                    Case::square(seq, head_dim),
                    &AttentionOptions::new().causal(causal),
                );
            }
        }
    }
}

#[test]
fn more_keys_than_queries_and_more_queries_than_keys() {
    for &(seq_q, seq_k) in &[(1, 130), (7, 130), (65, 7), (130, 65), (3, 250)] {
        for causal in [false, true] {
            let case = Case {
                seq_q,
                seq_k,
                ..Case::square(1, 16)
            };
            assert_fused_matches_naive(case, &AttentionOptions::new().causal(causal));
        }
    }
}

#[test]
fn key_padding_with_a_fully_padded_batch_row() {
    let case = Case::square(130, 32);
    let mut pad = Array2::from_shape_fn((2, 130), |(b, j)| (j * 7 + b) % 5 != 0);
    pad.row_mut(1).slice_mut(ndarray::s![100..]).fill(false);
    assert_fused_matches_naive(case, &AttentionOptions::new().key_padding(pad.clone()));
    assert_fused_matches_naive(case, &AttentionOptions::new().key_padding(pad).causal(true));
}

#[test]
fn additive_masks_broadcast_from_several_shapes() {
    let case = Case::square(65, 8);
    let full = seeded::<f32>((2, 2, 65, 65), 3).into_dyn();
    let per_query_key = seeded::<f64>((1, 1, 65, 65), 4)
        .into_shape_with_order(IxDyn(&[65, 65]))
        .unwrap();
    let mut per_key = ArrayD::<f64>::zeros(IxDyn(&[2, 1, 1, 65]));
    per_key[[0, 0, 0, 3]] = f64::NEG_INFINITY;
    per_key[[1, 0, 0, 64]] = -5.0;
    for mask in [full.mapv(|x| x as f64), per_query_key, per_key] {
        assert_fused_matches_naive(case, &AttentionOptions::new().additive_mask(mask.clone()));
        assert_fused_matches_naive(
            case,
            &AttentionOptions::new().additive_mask(mask).causal(true),
        );
    }
}

#[test]
fn alibi_causal_and_not() {
    let case = Case {
        seq_q: 40,
        seq_k: 130,
        heads: 4,
        kv_heads: 4,
        ..Case::square(1, 16)
    };
    let slopes = vec![0.5, 0.25, 0.125, 0.0625];
    for causal in [false, true] {
        assert_fused_matches_naive(
            case,
            &AttentionOptions::new()
                .alibi_slopes(slopes.clone())
                .causal(causal),
        );
    }
}

#[test]
fn grouped_and_multi_query() {
    for kv_heads in [1, 2, 4] {
        let case = Case {
            heads: 4,
            kv_heads,
            ..Case::square(130, 16)
        };
        assert_fused_matches_naive(case, &AttentionOptions::new().causal(true));
    }
}

#[test]
fn value_dim_differs_from_head_dim_and_custom_scale() {
    let case = Case {
        v_dim: 5,
        ..Case::square(65, 3)
    };
    assert_fused_matches_naive(case, &AttentionOptions::new().scale(0.3).causal(true));
}

#[test]
fn dropout_matches_the_reference_mask() {
    let case = Case::square(130, 16);
    assert_fused_matches_naive(case, &AttentionOptions::new().dropout(0.3, 42).causal(true));
    assert_fused_matches_naive(case, &AttentionOptions::new().dropout(0.5, 7));
}

#[test]
fn dropout_is_seeded() {
    let [q, k, v, _] = Case::square(65, 8).inputs::<f32>(1);
    let run = |seed| {
        attention_forward(
            q.view(),
            k.view(),
            v.view(),
            &AttentionOptions::new().dropout(0.2, seed),
        )
        .unwrap()
        .output
    };
    assert_eq!(run(5), run(5));
    assert_ne!(run(5), run(6));
    // p = 0 is no dropout at all.
    let plain = attention_forward(q.view(), k.view(), v.view(), &AttentionOptions::new()).unwrap();
    let zero = attention_forward(
        q.view(),
        k.view(),
        v.view(),
        &AttentionOptions::new().dropout(0.0, 1),
    )
    .unwrap();
    assert_eq!(plain, zero);
}

#[test]
fn fully_masked_rows_give_zeros_not_nan() {
    // Causal with more queries than keys: the first 5 queries see no key. Batch row 1 is all padding.
    let case = Case {
        seq_q: 12,
        seq_k: 7,
        ..Case::square(1, 4)
    };
    let [q, k, v, grad] = case.inputs::<f32>(3);
    let mut pad = Array2::from_elem((2, 7), true);
    pad.row_mut(1).fill(false);
    let opts = AttentionOptions::new().causal(true).key_padding(pad);
    let out = attention_forward(q.view(), k.view(), v.view(), &opts).unwrap();
    let grads = attention_backward(
        q.view(),
        k.view(),
        v.view(),
        out.output.view(),
        out.lse.view(),
        grad.view(),
        &opts,
    )
    .unwrap();
    for h in 0..2 {
        for i in 0..12 {
            let masked = i < 5;
            let row = out.output.slice(ndarray::s![0, h, i, ..]);
            assert_eq!(row.iter().all(|&x| x == 0.0), masked, "row {i}");
            assert!(out
                .output
                .slice(ndarray::s![1, h, i, ..])
                .iter()
                .all(|&x| x == 0.0));
            assert_eq!(out.lse[[1, h, i]], f32::NEG_INFINITY);
            if masked {
                assert!(grads
                    .dq
                    .slice(ndarray::s![0, h, i, ..])
                    .iter()
                    .all(|&x| x == 0.0));
            }
        }
    }
    for g in [&grads.dq, &grads.dk, &grads.dv] {
        assert!(g.iter().all(|x| x.is_finite()));
        assert!(g
            .slice(ndarray::s![1, .., .., ..])
            .iter()
            .all(|&x| x == 0.0));
    }
}

#[test]
fn sdpa_entry_point_equals_the_general_one() {
    let [q, k, v, _] = Case::square(65, 16).inputs::<f32>(9);
    let plain =
        fm_attention::scaled_dot_product_attention(q.view(), k.view(), v.view(), true).unwrap();
    let general = attention_forward(
        q.view(),
        k.view(),
        v.view(),
        &AttentionOptions::new().causal(true),
    )
    .unwrap();
    assert_eq!(plain, general.output);
}
