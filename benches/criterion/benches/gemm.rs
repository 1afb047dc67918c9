//! Criterion benchmarks of fm's f32 GEMM at the shapes of BENCHMARKS.md (including the M = 1
//! matrix-vector shapes), reported as GFLOP/s (`Throughput::Elements(2·m·n·k)`).
//!
//! `cargo bench -p fm-criterion-benches --bench gemm` runs on rayon's global pool (all cores); set
//! `RAYON_NUM_THREADS=1` for one thread. The side-by-side comparison with the peers is the
//! `gemm_report` program.
//!
//! `gemm_prepacked_blocks` times the pattern pre-packing is for (fm-attention's scores): sixteen
//! 112 × 64 blocks of Q against sixteen 64 × 128 blocks of Kᵀ, every pair, with `gemm` (both packed
//! on every call) and with `gemm_prepacked` (each block packed once, packing timed too).

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

fn bench_prepacked_blocks(c: &mut Criterion) {
    use fm_tensor::gemm::{gemm, gemm_prepacked, PackedLhs, PackedRhs};
    let (rows, depth, cols, blocks) = (112, 64, 128, 16);
    let block = |r: usize, c: usize, seed: u64| {
        Array2::from_shape_vec((r, c), random_f32(r * c, seed)).unwrap()
    };
    let keys: Vec<Array2<f32>> = (0..blocks)
        .map(|s| block(cols, depth, 100 + s as u64))
        .collect();
    let queries: Vec<Array2<f32>> = (0..blocks).map(|s| block(rows, depth, s as u64)).collect();
    let mut out = Array2::<f32>::zeros((rows, cols));
    let mut group = c.benchmark_group("gemm_prepacked_blocks");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(
            (2 * rows * depth * cols * blocks * blocks) as u64,
        ));
    group.bench_function("gemm", |bench| {
        bench.iter(|| {
            for q in &queries {
                for k in &keys {
                    gemm(1.0, q.view(), k.t(), 0.0, out.view_mut()).unwrap();
                }
            }
        })
    });
    group.bench_function("gemm_prepacked", |bench| {
        bench.iter(|| {
            let kt: Vec<PackedRhs<f32>> = keys.iter().map(|k| PackedRhs::new(k.t())).collect();
            for q in &queries {
                let q = PackedLhs::new(q.view());
                for k in &kt {
                    gemm_prepacked(1.0, &q, k, 0.0, out.view_mut()).unwrap();
                }
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench_gemm, bench_prepacked_blocks);
criterion_main!(benches);
