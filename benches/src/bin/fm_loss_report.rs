//! Cross-entropy forward + backward: fm-loss's fused kernel beside the unfused chain of passes, in
//! one process, plus a STREAM triad for scale.
//!
//! ```text
//! cargo run --release -p fm-benches --bin fm_loss_report -- [--vocab 4096,32768] [--rows 2048]
//!     [--threads 1,2] [--reps 5] [--json]
//! ```
//!
//! Bytes per logit: 8 (read the logit, write its gradient). Variants: `fused` (gradient into a
//! separate buffer), `in_place` (gradient over the logits; each run consumes the previous run's
//! gradient as logits — same work, finite values), and the unfused chain of separate row-parallel
//! passes (max, subtract, exp, sum/log, subtract, gather, scatter, exp, row sum, combine) using the
//! same polynomial exp as the fused kernel: `unfused_reused` writes into [N, V] buffers allocated
//! once (the strongest baseline), `unfused_fresh` allocates each op's output as a tape would, and
//! `unfused_fresh_libm` does that with the standard library's exp. Mean reduction, class-index
//! targets.

use fm_benches::loss_optim::{
    fast_exp_nonpositive, time, unfused_cross_entropy, Triad, UnfusedCrossEntropy,
};
use fm_loss::{fused_cross_entropy, fused_cross_entropy_in_place, CrossEntropyOptions};
use ndarray::Array2;

fn list(args: &[String], flag: &str, default: &[usize]) -> Vec<usize> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.split(',').map(|x| x.parse().expect("a number")).collect())
        .unwrap_or_else(|| default.to_vec())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let vocabs = list(&args, "--vocab", &[4096, 32768]);
    let rows = list(&args, "--rows", &[2048])[0];
    let threads = list(&args, "--threads", &[1, 2]);
    let reps = list(&args, "--reps", &[5])[0];
    let json = args.iter().any(|a| a == "--json");
    let skip_unfused = args.iter().any(|a| a == "--fused-only");
    let options = CrossEntropyOptions::default();
    if !json {
        println!("cross-entropy fwd+bwd, f32, mean reduction; GB/s at 8 B/logit");
        println!(
            "{:>12} {:>3} {:>17} {:>10} {:>10} {:>8} {:>10}",
            "N x V", "thr", "variant", "median ms", "min ms", "GB/s", "vs fused"
        );
    }
    let mut triad = Triad::new(32 << 20);
    for &t in &threads {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build()
            .unwrap();
        pool.install(|| {
            let (triad_gbps, _) = triad.measure(5);
            if !json {
                println!("{:>12} {:>3} {:>17} {:>32.1}", "triad", t, "GB/s", triad_gbps);
            }
            for &v in &vocabs {
                let logits = Array2::from_shape_fn((rows, v), |(i, j)| ((i * 31 + j * 17) % 1009) as f32 * 0.01 - 5.0);
                let targets: Vec<usize> = (0..rows).map(|i| (i * 7919) % v).collect();
                let mut grad = Array2::<f32>::zeros((rows, v));
                let mut results: Vec<(&str, fm_benches::loss_optim::Timing)> = Vec::new();
                results.push((
                    "fused",
                    time(1, reps, || {
                        fused_cross_entropy(logits.view().into_dyn(), &targets, &options, grad.view_mut().into_dyn())
                            .unwrap();
                    }),
                ));
                let mut buf = logits.clone();
                results.push((
                    "in_place",
                    time(1, reps, || {
                        fused_cross_entropy_in_place(buf.view_mut().into_dyn(), &targets, &options).unwrap();
                    }),
                ));
                drop(buf);
                if !skip_unfused {
                    let mut workspace = UnfusedCrossEntropy::new(rows, v);
                    results.push((
                        "unfused_reused",
                        time(1, reps, || {
                            std::hint::black_box(workspace.run(logits.view(), &targets, fast_exp_nonpositive));
                        }),
                    ));
                    drop(workspace);
                    results.push((
                        "unfused_fresh",
                        time(1, reps, || {
                            std::hint::black_box(unfused_cross_entropy(logits.view(), &targets, fast_exp_nonpositive));
                        }),
                    ));
                    results.push((
                        "unfused_fresh_libm",
                        time(1, reps, || {
                            std::hint::black_box(unfused_cross_entropy(logits.view(), &targets, f32::exp));
                        }),
                    ));
                }
                let fused = results[0].1.median;
                for (variant, timing) in &results {
                    let gbps = 8.0 * (rows * v) as f64 / timing.median / 1e9;
                    if json {
                        println!(
                            "{{\"bench\":\"cross_entropy\",\"impl\":\"fm\",\"variant\":\"{variant}\",\"rows\":{rows},\"vocab\":{v},\"threads\":{t},\"median_s\":{},\"min_s\":{},\"gbps\":{gbps},\"triad_gbps\":{triad_gbps}}}",
                            timing.median, timing.min
                        );
                    } else {
                        println!(
                            "{:>12} {:>3} {:>17} {:>10.2} {:>10.2} {:>8.1} {:>9.2}x",
                            format!("{rows}x{v}"),
                            t,
                            variant,
                            timing.median * 1e3,
                            timing.min * 1e3,
                            gbps,
                            timing.median / fused
                        );
                    }
                }
            }
        });
    }
}
