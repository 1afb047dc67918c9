//! Cross-entropy forward + backward on f32 logits [2048, 4096] and [2048, 32768] (BENCHMARKS.md):
//! fm-loss's fused kernel (gradient into a buffer, and in place), beside the unfused chain of
//! separate passes (intermediate buffers allocated once). Throughput: 8 bytes per logit (read the logits, write the gradient).
//!
//! `cargo bench -p fm-criterion-benches --bench fm_loss_cross_entropy`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fm_benches::loss_optim::{fast_exp_nonpositive, UnfusedCrossEntropy};
use fm_loss::{fused_cross_entropy, fused_cross_entropy_in_place, CrossEntropyOptions};
use ndarray::Array2;

fn cross_entropy(c: &mut Criterion) {
    let mut group = c.benchmark_group("cross_entropy_fwd_bwd");
    group.sample_size(10);
    group.warm_up_time(std::time::Duration::from_secs(1));
    group.measurement_time(std::time::Duration::from_secs(3));
    let options = CrossEntropyOptions::default();
    for v in [4096usize, 32768] {
        let n = 2048;
        let logits = Array2::from_shape_fn((n, v), |(i, j)| {
            ((i * 31 + j * 17) % 1009) as f32 * 0.01 - 5.0
        });
        let targets: Vec<usize> = (0..n).map(|i| (i * 7919) % v).collect();
        let mut grad = Array2::<f32>::zeros((n, v));
        group.throughput(Throughput::Bytes(8 * (n * v) as u64));
        group.bench_function(format!("fused/{n}x{v}"), |b| {
            b.iter(|| {
                fused_cross_entropy(
                    logits.view().into_dyn(),
                    &targets,
                    &options,
                    grad.view_mut().into_dyn(),
                )
                .unwrap()
            })
        });
        // In place, each run consumes the previous run's gradient as its logits: the same work on
        // other (finite) values, without a refill copy in the timed loop.
        let mut buf = logits.clone();
        group.bench_function(format!("fused_in_place/{n}x{v}"), |b| {
            b.iter(|| {
                fused_cross_entropy_in_place(buf.view_mut().into_dyn(), &targets, &options).unwrap()
            })
        });
        let mut unfused = UnfusedCrossEntropy::new(n, v);
        group.bench_function(format!("unfused_reused_buffers/{n}x{v}"), |b| {
            b.iter(|| unfused.run(logits.view(), &targets, fast_exp_nonpositive))
        });
    }
    group.finish();
}

criterion_group!(benches, cross_entropy);
criterion_main!(benches);
