//! Results are bitwise identical whatever the number of threads (work is split over outputs only).

use crate::common::Case;
use fm_attention::{attention_backward, attention_forward, AttentionOptions};

fn run_in_pool(threads: usize, case: Case, opts: &AttentionOptions) -> Vec<ndarray::Array4<f32>> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let [q, k, v, grad] = case.inputs::<f32>(21);
        let out = attention_forward(q.view(), k.view(), v.view(), opts).unwrap();
        let g = attention_backward(
            q.view(),
            k.view(),
            v.view(),
            out.output.view(),
            out.lse.view(),
            grad.view(),
            opts,
        )
        .unwrap();
        vec![
            out.output,
            out.lse.insert_axis(ndarray::Axis(3)),
            g.dq,
            g.dk,
            g.dv,
        ]
    })
}

#[test]
fn one_two_and_three_threads_give_the_same_bits() {
    let case = Case {
        batch: 2,
        heads: 4,
        kv_heads: 2,
        seq_q: 300,
        seq_k: 300,
        head_dim: 32,
        v_dim: 32,
    };
    for opts in [
        AttentionOptions::new().causal(true),
        AttentionOptions::new().dropout(0.1, 3),
    ] {
        let one = run_in_pool(1, case, &opts);
        for threads in [2, 3] {
            let many = run_in_pool(threads, case, &opts);
            for (a, b) in one.iter().zip(&many) {
                let same = a
                    .iter()
                    .zip(b.iter())
                    .all(|(x, y)| x.to_bits() == y.to_bits());
                assert!(same, "{threads} threads differ from 1");
            }
        }
    }
}
