//! Criterion: fused causal attention (fm-attention) at the BENCHMARKS.md shapes — batch 4, heads 8,
//! head_dim 64, f32 — forward and forward+backward, with `Throughput::Elements` set to the FLOPs
//! (forward 4·B·H·T²·D/2 for causal, forward+backward 3.5×) so the report reads as GFLOP/s.
//! The naive reference runs at the two shorter lengths for comparison.
//! Side-by-side ratios with PyTorch: `benches/scripts/attention_vs_torch.py`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use fm_attention::{attention_backward, attention_forward, naive, AttentionOptions};
use fm_benches::random_f32;
use ndarray::Array4;

const BATCH: usize = 4;
const HEADS: usize = 8;
const HEAD_DIM: usize = 64;

fn tensor(seq: usize, seed: u64) -> Array4<f32> {
    Array4::from_shape_vec(
        (BATCH, HEADS, seq, HEAD_DIM),
        random_f32(BATCH * HEADS * seq * HEAD_DIM, seed),
    )
    .expect("sizes agree")
}

fn bench_attention(c: &mut Criterion) {
    let opts = AttentionOptions::new().causal(true);
    let mut group = c.benchmark_group("attention_causal_b4_h8_d64");
    group.sample_size(10);
    for seq in [128usize, 512, 1024, 2048] {
        let (q, k, v, d_o) = (
            tensor(seq, 1),
            tensor(seq, 2),
            tensor(seq, 3),
            tensor(seq, 4),
        );
        let fwd_flops = 4.0 * (BATCH * HEADS) as f64 * (seq * seq) as f64 * HEAD_DIM as f64 / 2.0;
        group.throughput(Throughput::Elements(fwd_flops as u64));
        group.bench_with_input(BenchmarkId::new("fused_fwd", seq), &seq, |b, _| {
            b.iter(|| attention_forward(q.view(), k.view(), v.view(), &opts).unwrap())
        });
        group.throughput(Throughput::Elements((3.5 * fwd_flops) as u64));
        group.bench_with_input(BenchmarkId::new("fused_fwd_bwd", seq), &seq, |b, _| {
            b.iter(|| {
                let out = attention_forward(q.view(), k.view(), v.view(), &opts).unwrap();
                attention_backward(
                    q.view(),
                    k.view(),
                    v.view(),
                    out.output.view(),
                    out.lse.view(),
                    d_o.view(),
                    &opts,
                )
                .unwrap()
            })
        });
        if seq <= 512 {
            group.bench_with_input(BenchmarkId::new("naive_fwd_bwd", seq), &seq, |b, _| {
                b.iter(|| {
                    let out =
                        naive::attention_forward(q.view(), k.view(), v.view(), &opts).unwrap();
                    naive::attention_backward(
                        q.view(),
                        k.view(),
                        v.view(),
                        out.output.view(),
                        out.lse.view(),
                        d_o.view(),
                        &opts,
                    )
                    .unwrap()
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_attention);
criterion_main!(benches);
