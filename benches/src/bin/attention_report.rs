//! Fused attention against the naive reference (materialised scores) and fm's own GEMM, in one run.
//!
//! Shapes of BENCHMARKS.md: causal, batch 4, heads 8, head_dim 64, seq 128/512/1024/2048, `f32`,
//! forward and forward+backward, at 1 and 2 threads (a rayon pool of that size). For each: median
//! time, GFLOP/s (forward 4·B·H·Tq·Tk·D halved for causal; forward+backward 3.5× the forward — the
//! same convention for fused and naive, whatever work each really does), the fraction of fm's GEMM
//! GFLOP/s (1024³, measured in this program at the same thread count), and the peak extra heap bytes of
//! one forward+backward (a counting global allocator; outputs and gradients included, inputs not).
//!
//! Run: `cargo run --release -p fm-benches --bin attention_report [-- --threads 1,2 --seqs 128,2048
//! --runs 5 --json]`. With `--json` every result is also printed as one JSON object per line
//! (prefix `JSON `), which `benches/scripts/attention_vs_torch.py` reads.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use fm_attention::{attention_backward, attention_forward, naive, AttentionOptions};
use fm_benches::{interleaved, pool, random_f32};
use ndarray::{Array2, Array4};

/// Counts live heap bytes and their peak, on top of the system allocator.
struct CountingAllocator;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts bytes.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        ptr
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Peak heap bytes allocated by `f` beyond what was live when it started.
fn peak_extra_bytes(f: impl FnOnce()) -> usize {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    f();
    PEAK.load(Ordering::Relaxed) - base
}

const BATCH: usize = 4;
const HEADS: usize = 8;
const HEAD_DIM: usize = 64;

struct Args {
    threads: Vec<usize>,
    seqs: Vec<usize>,
    runs: usize,
    json: bool,
    skip_naive: bool,
}

fn parse_list(s: &str) -> Vec<usize> {
    s.split(',')
        .map(|x| x.trim().parse().expect("a list of integers"))
        .collect()
}

fn parse_args() -> Args {
    let mut args = Args {
        threads: vec![1, 2],
        seqs: vec![128, 512, 1024, 2048],
        runs: 5,
        json: false,
        skip_naive: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--threads" => args.threads = parse_list(&it.next().expect("--threads LIST")),
            "--seqs" => args.seqs = parse_list(&it.next().expect("--seqs LIST")),
            "--runs" => args.runs = it.next().expect("--runs N").parse().expect("an integer"),
            "--json" => args.json = true,
            "--skip-naive" => args.skip_naive = true,
            other => panic!("unknown argument {other}"),
        }
    }
    args
}

fn tensor(seq: usize, seed: u64) -> Array4<f32> {
    Array4::from_shape_vec(
        (BATCH, HEADS, seq, HEAD_DIM),
        random_f32(BATCH * HEADS * seq * HEAD_DIM, seed),
    )
    .expect("sizes agree")
}

/// Forward FLOPs (causal) by the BENCHMARKS.md convention.
fn forward_flops(seq: usize) -> f64 {
    4.0 * (BATCH * HEADS) as f64 * (seq * seq) as f64 * HEAD_DIM as f64 / 2.0
}

type Forward = fn(
    ndarray::ArrayView4<'_, f32>,
    ndarray::ArrayView4<'_, f32>,
    ndarray::ArrayView4<'_, f32>,
    &AttentionOptions,
) -> fm_attention::Result<fm_attention::AttentionOutput<f32>>;
type Backward = fn(
    ndarray::ArrayView4<'_, f32>,
    ndarray::ArrayView4<'_, f32>,
    ndarray::ArrayView4<'_, f32>,
    ndarray::ArrayView4<'_, f32>,
    ndarray::ArrayView3<'_, f32>,
    ndarray::ArrayView4<'_, f32>,
    &AttentionOptions,
) -> fm_attention::Result<fm_attention::AttentionGrads<f32>>;

struct Impl {
    name: &'static str,
    forward: Forward,
    backward: Backward,
}

const FUSED: Impl = Impl {
    name: "fused",
    forward: attention_forward,
    backward: attention_backward,
};
const NAIVE: Impl = Impl {
    name: "naive",
    forward: naive::attention_forward,
    backward: naive::attention_backward,
};

fn gemm_gflops(runs: usize) -> f64 {
    let n = 1024;
    let a = Array2::from_shape_vec((n, n), random_f32(n * n, 1)).expect("square");
    let b = Array2::from_shape_vec((n, n), random_f32(n * n, 2)).expect("square");
    let mut c = Array2::<f32>::zeros((n, n));
    let t = interleaved(
        1,
        runs.max(5),
        &mut [&mut || {
            fm_tensor::gemm(1.0, a.view(), b.view(), 0.0, c.view_mut()).expect("shapes agree");
        }],
    );
    2.0 * (n * n * n) as f64 / t[0].median / 1e9
}

fn main() {
    let args = parse_args();
    let opts = AttentionOptions::new().causal(true);
    println!(
        "attention, causal, batch {BATCH}, heads {HEADS}, head_dim {HEAD_DIM}, f32; median of {} runs",
        args.runs
    );
    println!("FLOPs: forward 4·B·H·T²·D/2 (causal), forward+backward 3.5× forward; % GEMM = of fm GEMM 1024³ at the same threads");
    for &threads in &args.threads {
        pool(threads).install(|| {
            let gemm = gemm_gflops(args.runs);
            println!("\n== {threads} thread(s): fm GEMM 1024³ {gemm:.1} GFLOP/s");
            println!(
                "{:>5} {:>6} {:>9} {:>11} {:>9} {:>8} {:>12} {:>9}",
                "seq", "impl", "pass", "median ms", "best ms", "GFLOP/s", "% of GEMM", "extra MiB"
            );
            if args.json {
                println!("JSON {{\"kind\":\"gemm\",\"threads\":{threads},\"gflops\":{gemm:.3}}}");
            }
            for &seq in &args.seqs {
                let (q, k, v, d_o) = (tensor(seq, 1), tensor(seq, 2), tensor(seq, 3), tensor(seq, 4));
                let impls: Vec<&Impl> = if args.skip_naive { vec![&FUSED] } else { vec![&FUSED, &NAIVE] };
                let mut ratios = Vec::new();
                for imp in impls {
                    let fwd = || (imp.forward)(q.view(), k.view(), v.view(), &opts).expect("valid shapes");
                    let fwd_bwd = || {
                        let out = fwd();
                        (imp.backward)(
                            q.view(),
                            k.view(),
                            v.view(),
                            out.output.view(),
                            out.lse.view(),
                            d_o.view(),
                            &opts,
                        )
                        .expect("valid shapes")
                    };
                    let mem_fwd = peak_extra_bytes(|| drop(fwd()));
                    let mem_both = peak_extra_bytes(|| drop(fwd_bwd()));
                    let t = interleaved(1, args.runs, &mut [&mut || drop(fwd()), &mut || drop(fwd_bwd())]);
                    for (pass, timing, flops, mem) in [
                        ("fwd", t[0], forward_flops(seq), mem_fwd),
                        ("fwd+bwd", t[1], 3.5 * forward_flops(seq), mem_both),
                    ] {
                        let gflops = flops / timing.median / 1e9;
                        println!(
                            "{seq:>5} {:>6} {pass:>9} {:>11.2} {:>9.2} {gflops:>8.1} {:>11.0}% {:>9.1}",
                            imp.name,
                            timing.median * 1e3,
                            timing.best * 1e3,
                            100.0 * gflops / gemm,
                            mem as f64 / (1 << 20) as f64
                        );
                        ratios.push(timing.median);
                        if args.json {
                            println!(
                                "JSON {{\"kind\":\"attention\",\"impl\":\"{}\",\"threads\":{threads},\"seq\":{seq},\"pass\":\"{pass}\",\"median_s\":{:.6},\"best_s\":{:.6},\"gflops\":{gflops:.3},\"extra_bytes\":{mem}}}",
                                imp.name, timing.median, timing.best
                            );
                        }
                    }
                }
                if ratios.len() == 4 {
                    println!(
                        "{seq:>5} fused speed-up over naive: fwd {:.2}×, fwd+bwd {:.2}×",
                        ratios[2] / ratios[0],
                        ratios[3] / ratios[1]
                    );
                }
            }
        });
    }
}
