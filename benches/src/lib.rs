//! Shared helpers for fm benchmarks and reports: the shapes of BENCHMARKS.md, timing with warm-up
//! and median/best, and the machine's ceilings (FMA peak, STREAM-triad bandwidth) measured in the
//! same process as the kernels they are compared with.

use std::time::Instant;

/// A GEMM problem `C[m×n] = A[m×k]·B[k×n]` with a label for the report.
#[derive(Debug, Clone, Copy)]
pub struct GemmShape {
    /// What the shape stands for.
    pub group: &'static str,
    /// Rows of A and C.
    pub m: usize,
    /// Columns of B and C.
    pub n: usize,
    /// Inner dimension.
    pub k: usize,
}

impl GemmShape {
    /// Floating-point operations, 2·m·n·k.
    pub fn flops(&self) -> f64 {
        2.0 * self.m as f64 * self.n as f64 * self.k as f64
    }

    /// `m×n×k`.
    pub fn label(&self) -> String {
        format!("{}×{}×{}", self.m, self.n, self.k)
    }
}

const fn shape(group: &'static str, m: usize, n: usize, k: usize) -> GemmShape {
    GemmShape { group, m, n, k }
}

/// The GEMM shapes of BENCHMARKS.md (M×N×K): square, LLM-shaped, GPT configuration a.
pub const GEMM_SHAPES: &[GemmShape] = &[
    shape("square", 256, 256, 256),
    shape("square", 512, 512, 512),
    shape("square", 1024, 1024, 1024),
    shape("square", 2048, 2048, 2048),
    shape("llm", 128, 768, 768),
    shape("llm", 512, 3072, 768),
    shape("llm", 512, 768, 3072),
    shape("llm", 4096, 512, 64),
    shape("gpt-a", 2048, 768, 256),
    shape("gpt-a", 2048, 1024, 256),
    shape("gpt-a", 2048, 256, 1024),
    shape("gpt-a", 2048, 4096, 256),
];

/// Matrix-vector shapes (M = 1, decoding): `1×n×k`.
pub const MATVEC_SHAPES: &[GemmShape] = &[
    shape("matvec", 1, 768, 3072),
    shape("matvec", 1, 3072, 768),
    shape("matvec", 1, 4096, 256),
];

/// Median and best of a set of timings, in seconds.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Median time of one run.
    pub median: f64,
    /// Fastest run.
    pub best: f64,
}

impl Timing {
    /// From raw per-run times.
    pub fn from_runs(runs: &mut [f64]) -> Timing {
        runs.sort_by(|a, b| a.total_cmp(b));
        Timing {
            median: runs[runs.len() / 2],
            best: runs[0],
        }
    }
}

/// Seconds taken by one call of `f`.
pub fn time_once(mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    f();
    start.elapsed().as_secs_f64()
}

/// Runs several contenders interleaved (`warmup` untimed rounds, then `runs` timed rounds, each
/// round calling every contender once in turn), so slow drifts of a shared machine hit all alike.
pub fn interleaved(warmup: usize, runs: usize, contenders: &mut [&mut dyn FnMut()]) -> Vec<Timing> {
    for _ in 0..warmup {
        for f in contenders.iter_mut() {
            f();
        }
    }
    let mut times = vec![Vec::with_capacity(runs); contenders.len()];
    for _ in 0..runs {
        for (f, t) in contenders.iter_mut().zip(times.iter_mut()) {
            t.push(time_once(f));
        }
    }
    times.iter_mut().map(|t| Timing::from_runs(t)).collect()
}

/// A rayon pool of exactly `threads` threads.
pub fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool")
}

/// Deterministic f32 values in [-1, 1).
pub fn random_f32(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// Vector width of an FMA peak measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FmaWidth {
    /// The widest this CPU has (512-bit with AVX-512F, else 256-bit with AVX2+FMA, else 128-bit).
    Widest,
    /// 256-bit AVX2 FMAs (to see whether 512-bit FMAs run at full rate on this machine).
    Avx2,
}

/// FMA peak in GFLOP/s, all `threads` threads at once (total): independent accumulator chains of
/// fused multiply-adds, many more than latency × pipes. Best of `repeats` short runs, so a shared
/// machine's busy moments do not lower the ceiling.
pub fn fma_peak_gflops(threads: usize, width: FmaWidth, repeats: usize) -> f64 {
    const ITERS: usize = 5_000_000;
    let pool = pool(threads);
    let per_thread_flops = peak::flops_per_iteration(width) * ITERS as f64;
    let mut best = 0.0f64;
    for _ in 0..repeats {
        let secs = pool.install(|| {
            time_once(|| {
                pool.broadcast(|_| std::hint::black_box(peak::run(ITERS, width)));
            })
        });
        best = best.max(per_thread_flops * threads as f64 / secs / 1e9);
    }
    best
}

mod peak {
    use super::FmaWidth;

    /// Independent accumulators: 16 chains of 4-cycle FMAs on 2 pipes keeps both pipes busy.
    const CHAINS: usize = 16;

    /// FLOPs one iteration of [`run`] performs at `width`.
    pub fn flops_per_iteration(width: FmaWidth) -> f64 {
        let lanes = if width == FmaWidth::Widest && has_avx512() {
            16
        } else if has_avx2() {
            8
        } else {
            4
        };
        (CHAINS * lanes * 2) as f64
    }

    #[cfg(target_arch = "x86_64")]
    fn has_avx512() -> bool {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(target_arch = "x86_64")]
    fn has_avx2() -> bool {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    #[allow(dead_code)]
    fn has_avx512() -> bool {
        false
    }
    #[cfg(not(target_arch = "x86_64"))]
    fn has_avx2() -> bool {
        false
    }

    /// `iters` rounds of CHAINS independent vector FMAs; returns a sum so nothing is optimised away.
    pub fn run(iters: usize, width: FmaWidth) -> f32 {
        #[cfg(target_arch = "x86_64")]
        {
            if width == FmaWidth::Widest && has_avx512() {
                // SAFETY: AVX-512F was detected.
                return unsafe { run_avx512(iters) };
            }
            if has_avx2() {
                // SAFETY: AVX2 and FMA were detected.
                return unsafe { run_avx2(iters) };
            }
        }
        run_portable(iters)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn run_avx512(iters: usize) -> f32 {
        use std::arch::x86_64::*;
        let mut acc = [_mm512_set1_ps(0.0); CHAINS];
        let x = _mm512_set1_ps(0.999_999);
        let y = _mm512_set1_ps(1e-7);
        for _ in 0..iters {
            for a in acc.iter_mut() {
                *a = _mm512_fmadd_ps(*a, x, y);
            }
        }
        acc.iter().map(|&a| _mm512_reduce_add_ps(a)).sum()
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_avx2(iters: usize) -> f32 {
        use std::arch::x86_64::*;
        let mut acc = [_mm256_set1_ps(0.0); CHAINS];
        let x = _mm256_set1_ps(0.999_999);
        let y = _mm256_set1_ps(1e-7);
        for _ in 0..iters {
            for a in acc.iter_mut() {
                *a = _mm256_fmadd_ps(*a, x, y);
            }
        }
        let mut out = [0.0f32; 8];
        for a in acc {
            let mut lanes = [0.0f32; 8];
            // SAFETY: `lanes` has room for 8 f32.
            unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), a) };
            for (o, l) in out.iter_mut().zip(lanes) {
                *o += l;
            }
        }
        out.iter().sum()
    }

    fn run_portable(iters: usize) -> f32 {
        let mut acc = [[0.0f32; 4]; CHAINS];
        for _ in 0..iters {
            for a in acc.iter_mut() {
                for l in a.iter_mut() {
                    *l = *l * 0.999_999 + 1e-7;
                }
            }
        }
        acc.iter().flatten().sum()
    }
}

/// STREAM-triad bandwidth in GB/s (`a[i] = b[i] + s·c[i]`, 3 arrays of 16M f32 = 192 MiB, far
/// beyond L3, counted as 12 bytes per element) with `threads` threads splitting the arrays; best
/// of `repeats` passes.
pub fn triad_gbps(threads: usize, repeats: usize) -> f64 {
    use rayon::prelude::*;
    const LEN: usize = 1 << 24;
    const CHUNK: usize = 1 << 16;
    let b = vec![1.0f32; LEN];
    let c = vec![2.0f32; LEN];
    let mut a = vec![0.0f32; LEN];
    let pool = pool(threads);
    let mut best = f64::INFINITY;
    for _ in 0..repeats {
        let secs = pool.install(|| {
            time_once(|| {
                a.par_chunks_mut(CHUNK)
                    .zip(b.par_chunks(CHUNK))
                    .zip(c.par_chunks(CHUNK))
                    .for_each(|((a, b), c)| {
                        for ((a, &b), &c) in a.iter_mut().zip(b).zip(c) {
                            *a = b + 3.0 * c;
                        }
                    })
            })
        });
        best = best.min(secs);
    }
    std::hint::black_box(&a);
    (3 * 4 * LEN) as f64 / best / 1e9
}

/// Helpers shared by the fm-loss and fm-optim benches and reports.
pub mod loss_optim;

/// The Rust documentation corpus shipped with the toolchain (fm-data benches).
pub mod rust_docs;

#[cfg(feature = "bpe-peers")]
pub mod bpe_peers;
