//! Shared helpers for the integration tests: seeded inputs and comparisons.
#![allow(dead_code)]

use fm_attention::{attention_backward, attention_forward, naive, AttentionOptions};
use fm_tensor::Element;
use ndarray::{Array, Array4, Dimension};

/// Deterministic values in [−1, 1) from a seed (SplitMix64).
pub fn seeded<T: Element>(shape: (usize, usize, usize, usize), seed: u64) -> Array4<T> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(1);
    Array4::from_shape_simple_fn(shape, || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        T::from_f64_lossy((z >> 11) as f64 / (1u64 << 52) as f64 - 1.0)
    })
}

/// Largest |a − b| / max(1, |b|); NaN anywhere counts as infinitely wrong.
pub fn max_rel_diff<T: Element, D: Dimension>(a: &Array<T, D>, b: &Array<T, D>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.iter()
        .zip(b.iter())
        .map(|(&x, &y)| {
            let (x, y) = (x.to_f64_lossless(), y.to_f64_lossless());
            if x.is_nan() || y.is_nan() {
                f64::INFINITY
            } else if x == y {
                0.0
            } else {
                (x - y).abs() / y.abs().max(1.0)
            }
        })
        .fold(0.0, f64::max)
}

/// Shapes of one comparison: batch, heads, kv_heads, seq_q, seq_k, head_dim, v_dim.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    pub batch: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub seq_q: usize,
    pub seq_k: usize,
    pub head_dim: usize,
    pub v_dim: usize,
}

impl Case {
    pub fn square(seq: usize, head_dim: usize) -> Self {
        Case {
            batch: 2,
            heads: 2,
            kv_heads: 2,
            seq_q: seq,
            seq_k: seq,
            head_dim,
            v_dim: head_dim,
        }
    }

    pub fn inputs<T: Element>(&self, seed: u64) -> [Array4<T>; 4] {
        [
            seeded((self.batch, self.heads, self.seq_q, self.head_dim), seed),
            seeded(
                (self.batch, self.kv_heads, self.seq_k, self.head_dim),
                seed + 1,
            ),
            seeded(
                (self.batch, self.kv_heads, self.seq_k, self.v_dim),
                seed + 2,
            ),
            seeded((self.batch, self.heads, self.seq_q, self.v_dim), seed + 3),
        ]
    }
}

/// Runs fused and naive forward and backward in f32 and asserts every result agrees within 1e-5.
pub fn assert_fused_matches_naive(case: Case, opts: &AttentionOptions) {
    let [q, k, v, grad] = case.inputs::<f32>(7);
    // Scale inputs up a little so the softmax is not nearly uniform.
    let (q, k) = (q * 2.0, k * 2.0);
    let fused = attention_forward(q.view(), k.view(), v.view(), opts).expect("fused forward");
    let reference =
        naive::attention_forward(q.view(), k.view(), v.view(), opts).expect("naive forward");
    let tol = 1e-5;
    let out_err = max_rel_diff(&fused.output, &reference.output);
    assert!(
        out_err <= tol,
        "{case:?} {opts:?}: output differs by {out_err:e}"
    );
    let lse_err = max_rel_diff(&fused.lse, &reference.lse);
    assert!(lse_err <= tol, "{case:?}: lse differs by {lse_err:e}");
    let fg = attention_backward(
        q.view(),
        k.view(),
        v.view(),
        fused.output.view(),
        fused.lse.view(),
        grad.view(),
        opts,
    )
    .expect("fused backward");
    let ng = naive::attention_backward(
        q.view(),
        k.view(),
        v.view(),
        reference.output.view(),
        reference.lse.view(),
        grad.view(),
        opts,
    )
    .expect("naive backward");
    for (name, a, b) in [
        ("dq", &fg.dq, &ng.dq),
        ("dk", &fg.dk, &ng.dk),
        ("dv", &fg.dv, &ng.dv),
    ] {
        let err = max_rel_diff(a, b);
        assert!(err <= tol, "{case:?} {opts:?}: {name} differs by {err:e}");
    }
}
