//! AdamW step on one flat f32 parameter of 10M and 50M values (BENCHMARKS.md), with NaN checks on
//! (the default: one extra read of the gradient) and off. Throughput is set to the bytes a step must
//! move, 28 per parameter (read θ, g, m, v; write θ, m, v), so criterion reports GB/s.
//!
//! `cargo bench -p fm-criterion-benches --bench fm_optim_adamw`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fm_optim::{AdamConfig, AdamW, NamedParam, NonFinitePolicy, Optimizer};
use ndarray::{ArrayD, IxDyn};

fn adamw(c: &mut Criterion) {
    let mut group = c.benchmark_group("adamw_step");
    group.sample_size(10);
    group.warm_up_time(std::time::Duration::from_secs(1));
    group.measurement_time(std::time::Duration::from_secs(3));
    for n in [10_000_000usize, 50_000_000] {
        let mut theta = ArrayD::<f32>::from_elem(IxDyn(&[n]), 0.1);
        let mut grad = ArrayD::<f32>::from_elem(IxDyn(&[n]), 0.01);
        group.throughput(Throughput::Bytes(28 * n as u64));
        for (label, policy) in [
            ("checked", NonFinitePolicy::Error),
            ("unchecked", NonFinitePolicy::Unchecked),
        ] {
            let config = AdamConfig::adamw()
                .lr(3e-4)
                .weight_decay(0.01)
                .build()
                .unwrap();
            let mut opt = AdamW::<f32>::new(config).with_non_finite(policy);
            group.bench_function(format!("{label}/{n}"), |b| {
                b.iter(|| {
                    opt.step(&mut [NamedParam::new("theta", theta.view_mut(), grad.view_mut())])
                        .unwrap()
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, adamw);
criterion_main!(benches);
