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

mod packed_qkv {
    use super::*;
    use fm_attention::autograd::attention_packed_qkv;
    use fm_tensor::{Tape, Var};

    fn seeded3((b, t, w): (usize, usize, usize), seed: u64) -> ArrayD<f64> {
        seeded::<f64>((1, b, t, w), seed)
            .into_shape_with_order(ndarray::IxDyn(&[b, t, w]))
            .unwrap()
    }

    /// The composition attention_packed_qkv replaces: split, reshape, permute, attention, merge.
    fn unfused<'t>(
        qkv: Var<'t, f64>,
        (heads, kv_heads, head_dim): (usize, usize, usize),
        opts: &AttentionOptions,
    ) -> Var<'t, f64> {
        let shape = qkv.shape();
        let (b, t) = (shape[0] as isize, shape[1] as isize);
        let parts = qkv
            .split(
                -1,
                &[heads * head_dim, kv_heads * head_dim, kv_heads * head_dim],
            )
            .unwrap();
        let heads_of = |v: Var<'t, f64>, n: usize| {
            v.reshape(&[b, t, n as isize, head_dim as isize])
                .unwrap()
                .permute(&[0, 2, 1, 3])
                .unwrap()
        };
        let out = attention(
            heads_of(parts[0], heads),
            heads_of(parts[1], kv_heads),
            heads_of(parts[2], kv_heads),
            opts,
        )
        .unwrap();
        out.permute(&[0, 2, 1, 3])
            .unwrap()
            .reshape(&[b, t, (heads * head_dim) as isize])
            .unwrap()
    }

    fn cases() -> Vec<((usize, usize, usize), AttentionOptions)> {
        vec![
            ((2, 2, 3), AttentionOptions::new()),
            ((4, 2, 3), AttentionOptions::new().causal(true)),
            ((3, 1, 2), AttentionOptions::new().causal(true)),
        ]
    }

    #[test]
    fn gradients_match_finite_differences() {
        for ((h, kv, hd), opts) in cases() {
            let qkv: ArrayD<f64> = seeded3((2, 5, (h + 2 * kv) * hd), 7) * 1.5;
            let report = check_gradients(
                |_tape, x| Ok(attention_packed_qkv(x[0], h, kv, hd, &opts).expect("valid")),
                std::slice::from_ref(&qkv),
                &GradCheckConfig::default(),
            )
            .unwrap();
            assert!(report.passed(), "{opts:?}: {report}");
            assert_eq!(report.checked, qkv.len());
        }
    }

    #[test]
    fn equals_the_unfused_composition_forward_and_backward() {
        for ((h, kv, hd), opts) in cases() {
            let qkv = seeded3((2, 6, (h + 2 * kv) * hd), 11);
            let upstream = seeded3((2, 6, h * hd), 12);
            let run = |fused: bool| {
                let tape = Tape::<f64>::new();
                let x = tape.variable(qkv.clone());
                let out = if fused {
                    attention_packed_qkv(x, h, kv, hd, &opts).unwrap()
                } else {
                    unfused(x, (h, kv, hd), &opts)
                };
                let grads = tape.backward_with(out, upstream.clone()).unwrap();
                (out.value().into_array(), grads.of(x).unwrap().clone())
            };
            let ((out_f, grad_f), (out_u, grad_u)) = (run(true), run(false));
            assert_eq!(out_f.shape(), out_u.shape());
            let close = |a: &ArrayD<f64>, b: &ArrayD<f64>| {
                a.iter()
                    .zip(b)
                    .all(|(x, y)| (x - y).abs() <= 1e-12 * (1.0 + y.abs()))
            };
            assert!(close(&out_f, &out_u), "{opts:?}: outputs differ");
            assert!(close(&grad_f, &grad_u), "{opts:?}: gradients differ");
        }
    }

    #[test]
    fn a_transposed_input_gives_the_same_result() {
        let (h, kv, hd) = (2, 1, 3);
        let qkv = seeded3((2, 4, (h + 2 * kv) * hd), 5);
        // The same values in reversed (column-major) memory order.
        let reversed = qkv.t().as_standard_layout().into_owned().reversed_axes();
        assert!(!reversed.is_standard_layout());
        let out_of = |x: ArrayD<f64>| {
            let tape = Tape::<f64>::new();
            let v = tape.variable(x);
            let opts = AttentionOptions::new().causal(true);
            attention_packed_qkv(v, h, kv, hd, &opts)
                .unwrap()
                .value()
                .into_array()
        };
        assert_eq!(out_of(qkv), out_of(reversed));
    }

    #[test]
    fn bad_widths_and_head_counts_are_errors() {
        let tape = Tape::<f64>::new();
        let x = tape.variable(ArrayD::<f64>::zeros(ndarray::IxDyn(&[1, 3, 12])));
        let opts = AttentionOptions::new();
        let message = |r: fm_attention::Result<Var<'_, f64>>| r.expect_err("an error").to_string();
        let wrong_width = message(attention_packed_qkv(x, 2, 1, 2, &opts));
        assert!(
            wrong_width.contains("[1, 3, 12]") && wrong_width.contains('8'),
            "{wrong_width}"
        );
        assert!(message(attention_packed_qkv(x, 3, 2, 2, &opts)).contains("multiple of kv_heads"));
        assert!(message(attention_packed_qkv(x, 4, 0, 3, &opts)).contains("multiple of kv_heads"));
        let flat = tape.variable(ArrayD::<f64>::zeros(ndarray::IxDyn(&[3, 12])));
        assert!(message(attention_packed_qkv(flat, 2, 1, 3, &opts)).contains("[3, 12]"));
    }
}
