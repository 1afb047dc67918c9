//! AdamW step bandwidth beside a STREAM triad measured in the same process.
//!
//! ```text
//! cargo run --release -p fm-benches --bin fm_optim_report -- [--sizes 10000000,50000000]
//!     [--threads 1,2] [--reps 7] [--json]
//! ```
//!
//! Bytes per parameter: 28 (read θ, g, m, v; write θ, m, v, f32). "checked" is the default
//! configuration (gradients read once more to refuse NaN/inf before anything is written);
//! "unchecked" is `NonFinitePolicy::Unchecked`. The triad (a = b + s·c, 12 bytes per element by
//! STREAM's convention) is measured right before and right after each AdamW measurement, in the same
//! rayon pool, and the ratio uses their mean. With `--json` each measurement is one JSON line (read
//! by `benches/scripts/loss_optim_vs_torch.py`).

use fm_benches::loss_optim::{time, Triad};
use fm_optim::{AdamConfig, AdamW, NamedParam, NonFinitePolicy, Optimizer};
use ndarray::{ArrayD, IxDyn};

fn list(args: &[String], flag: &str, default: &[usize]) -> Vec<usize> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.split(',').map(|x| x.parse().expect("a number")).collect())
        .unwrap_or_else(|| default.to_vec())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let sizes = list(&args, "--sizes", &[10_000_000, 50_000_000]);
    let threads = list(&args, "--threads", &[1, 2]);
    let reps = list(&args, "--reps", &[7])[0];
    let json = args.iter().any(|a| a == "--json");
    if !json {
        println!("AdamW step, f32, 28 B/param; triad = STREAM a=b+s*c (12 B/elem), same process and pool");
        println!(
            "{:>10} {:>3} {:>9} {:>10} {:>10} {:>10} {:>9} {:>9} {:>7}",
            "params", "thr", "variant", "median ms", "min ms", "Mparam/s", "GB/s", "triad", "ratio"
        );
    }
    let mut triad = Triad::new(32 << 20);
    for &t in &threads {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build()
            .unwrap();
        pool.install(|| {
            for &n in &sizes {
                let mut theta = ArrayD::<f32>::from_elem(IxDyn(&[n]), 0.1);
                let mut grad = ArrayD::<f32>::from_shape_fn(IxDyn(&[n]), |i| ((i[0] % 97) as f32 - 48.0) * 1e-3);
                for (variant, policy) in [("checked", NonFinitePolicy::Error), ("unchecked", NonFinitePolicy::Unchecked)] {
                    let config = AdamConfig::adamw().lr(3e-4).weight_decay(0.01).build().unwrap();
                    let mut opt = AdamW::<f32>::new(config).with_non_finite(policy);
                    let (before, _) = triad.measure(5);
                    let timing = time(2, reps, || {
                        opt.step(&mut [NamedParam::new("theta", theta.view_mut(), grad.view_mut())])
                            .unwrap();
                    });
                    let (after, _) = triad.measure(5);
                    let triad_gbps = (before + after) / 2.0;
                    let gbps = 28.0 * n as f64 / timing.median / 1e9;
                    if json {
                        println!(
                            "{{\"bench\":\"adamw\",\"impl\":\"fm\",\"variant\":\"{variant}\",\"n\":{n},\"threads\":{t},\"median_s\":{},\"min_s\":{},\"gbps\":{gbps},\"triad_gbps\":{triad_gbps}}}",
                            timing.median, timing.min
                        );
                    } else {
                        println!(
                            "{:>10} {:>3} {:>9} {:>10.2} {:>10.2} {:>10.0} {:>9.1} {:>9.1} {:>6.0}%",
                            n,
                            t,
                            variant,
                            timing.median * 1e3,
                            timing.min * 1e3,
                            n as f64 / timing.median / 1e6,
                            gbps,
                            triad_gbps,
                            100.0 * gbps / triad_gbps
                        );
                    }
                }
            }
        });
    }
}
