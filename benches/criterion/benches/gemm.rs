//! Criterion benchmarks of fm's f32 GEMM at the shapes of BENCHMARKS.md (including the M = 1
//! matrix-vector shapes), reported as GFLOP/s (`Throughput::Elements(2·m·n·k)`).
//!
//! `cargo bench -p fm-criterion-benches --bench gemm` runs on rayon's global pool (all cores); set
//! `RAYON_NUM_THREADS=1` for one thread. The side-by-side comparison with the peers is the
//! `gemm_report` program.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use fm_benches::{random_f32, GEMM_SHAPES, MATVEC_SHAPES};
use ndarray::Array2;

fn bench_gemm(c: &mut Criterion) {
    let mut group = c.benchmark_group("gemm_f32");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    for shape in GEMM_SHAPES.iter().chain(MATVEC_SHAPES) {
        let (m, n, k) = (shape.m, shape.n, shape.k);
        let a = Array2::from_shape_vec((m, k), random_f32(m * k, 1)).unwrap();
        let b = Array2::from_shape_vec((k, n), random_f32(k * n, 2)).unwrap();
        let mut out = Array2::<f32>::zeros((m, n));
        group.throughput(Throughput::Elements(shape.flops() as u64));
        group.bench_function(BenchmarkId::new("fm", shape.label()), |bench| {
            bench.iter(|| {
                fm_tensor::gemm::gemm(1.0, a.view(), b.view(), 0.0, out.view_mut()).unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_gemm);
criterion_main!(benches);
