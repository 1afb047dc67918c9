//! Decode-step cost with a KV cache: fm-attention's `MultiHeadAttention::decode_step` for one new
//! token at several cache lengths, at 1 and 2 threads, and a least-squares fit
//! `time(L) = fixed + per_position · L` showing that a step grows only by a term linear in the cache
//! length L. The attention kernel alone (`attention_forward` of one query over L cached keys) is
//! timed in the same rounds: its slope is the linear term's expected size.
//!
//! ```text
//! cargo run --release -p fm-benches --bin attention_decode_report -- [--lens 128,256,512,1024,2048]
//!     [--threads 1,2] [--runs 15] [--steps 200]
//! ```
//!
//! Shape: GPT configuration a of BENCHMARKS.md for one layer: d_model 256, 4 heads (head_dim 64),
//! 4 KV heads, causal, projection biases, batch 1, f32, on a no-grad tape (generation). Each timed
//! run is `--steps` decode steps at exactly cache length L (the cache is rolled back to L before each
//! step); lengths are interleaved round by round so the shared machine's drift hits all alike.

use fm_attention::{
    attention_forward, AttentionOptions, KvCache, MhaConfig, MhaOptions, MultiHeadAttention,
};
use fm_benches::{interleaved, pool, random_f32, Timing};
use fm_tensor::autograd::{ParamStore, Tape};
use ndarray::{Array3, Array4};

fn list(args: &[String], flag: &str, default: &[usize]) -> Vec<usize> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.split(',').map(|x| x.parse().expect("a number")).collect())
        .unwrap_or_else(|| default.to_vec())
}

/// Least-squares line through `(x, y)`: `(intercept, slope)`.
fn fit_line(points: &[(f64, f64)]) -> (f64, f64) {
    let n = points.len() as f64;
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let (mx, my) = (sx / n, sy / n);
    let sxy: f64 = points.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = points.iter().map(|(x, _)| (x - mx) * (x - mx)).sum();
    let slope = sxy / sxx;
    (my - slope * mx, slope)
}

fn random4(shape: (usize, usize, usize, usize), seed: u64) -> Array4<f32> {
    Array4::from_shape_vec(
        shape,
        random_f32(shape.0 * shape.1 * shape.2 * shape.3, seed),
    )
    .unwrap()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let lens = list(&args, "--lens", &[128, 256, 512, 1024, 2048]);
    let threads = list(&args, "--threads", &[1, 2]);
    let runs = list(&args, "--runs", &[15])[0];
    let steps = list(&args, "--steps", &[200])[0];

    let (d_model, n_heads) = (256, 4);
    let config = MhaConfig::new(d_model, n_heads).causal(true);
    let head_dim = config.head_dim();
    let mut store = ParamStore::<f32>::new();
    let mha = MultiHeadAttention::new(&mut store, "attn", config, 1).unwrap();
    let token = Array3::from_shape_vec((1, 1, d_model), random_f32(d_model, 2)).unwrap();
    let opts = MhaOptions::new();

    // One cache per length, filled to L with random keys and values, with room for one more.
    let mut caches: Vec<KvCache<f32>> = lens
        .iter()
        .map(|&len| {
            let mut cache = mha.new_cache::<f32>(1, len + 1).unwrap();
            let k = random4((1, n_heads, len, head_dim), 3);
            let v = random4((1, n_heads, len, head_dim), 4);
            cache.append(k.view(), v.view()).unwrap();
            cache
        })
        .collect();
    // The kernel-alone runs read their own copies (the step runs hold the caches mutably).
    let kernel_caches = caches.clone();
    let query = random4((1, n_heads, 1, head_dim), 5);
    let kernel_opts = AttentionOptions::new().causal(true);

    println!(
        "decode step, MultiHeadAttention (d_model {d_model}, {n_heads} heads, head_dim {head_dim}), batch 1, f32, \
         {steps} steps per run, {runs} runs; times per step"
    );
    println!(
        "{:>3} {:>6} {:>12} {:>12} {:>12} {:>14} {:>12}",
        "thr", "cache", "step med µs", "step min µs", "tokens/s", "kernel med µs", "fit µs"
    );
    for &t in &threads {
        let timings: Vec<(Timing, Timing)> = pool(t).install(|| {
            let mut step_runs: Vec<Box<dyn FnMut() + '_>> = Vec::new();
            let mut kernel_runs: Vec<Box<dyn FnMut() + '_>> = Vec::new();
            for cache in caches.iter_mut() {
                let (mha, store, token, opts) = (&mha, &store, &token, &opts);
                step_runs.push(Box::new(move || {
                    let len = cache.len().min(cache.capacity() - 1);
                    for _ in 0..steps {
                        cache.truncate(len).unwrap();
                        let tape = Tape::<f32>::no_grad();
                        let x = tape.constant(token.clone());
                        let y = mha.decode_step(store, x, cache, opts).unwrap();
                        std::hint::black_box(y.value());
                    }
                    cache.truncate(len).unwrap();
                }));
            }
            for cache in kernel_caches.iter() {
                let (query, kernel_opts) = (&query, &kernel_opts);
                kernel_runs.push(Box::new(move || {
                    for _ in 0..steps {
                        let out = attention_forward(
                            query.view(),
                            cache.keys(),
                            cache.values(),
                            kernel_opts,
                        )
                        .unwrap();
                        std::hint::black_box(out.output);
                    }
                }));
            }
            let mut contenders: Vec<&mut dyn FnMut()> = Vec::new();
            for (s, k) in step_runs.iter_mut().zip(kernel_runs.iter_mut()) {
                contenders.push(s.as_mut());
                contenders.push(k.as_mut());
            }
            let all = interleaved(3, runs, &mut contenders);
            all.chunks(2).map(|pair| (pair[0], pair[1])).collect()
        });
        let per_step = |t: &Timing| (t.median / steps as f64, t.best / steps as f64);
        let points: Vec<(f64, f64)> = lens
            .iter()
            .zip(&timings)
            .map(|(&len, (s, _))| (len as f64, per_step(s).0 * 1e6))
            .collect();
        let kernel_points: Vec<(f64, f64)> = lens
            .iter()
            .zip(&timings)
            .map(|(&len, (_, k))| (len as f64, per_step(k).0 * 1e6))
            .collect();
        let (fixed, per_position) = fit_line(&points);
        let (kernel_fixed, kernel_per_position) = fit_line(&kernel_points);
        for ((&len, (s, k)), &(_, med_us)) in lens.iter().zip(&timings).zip(&points) {
            let (_, best) = per_step(s);
            println!(
                "{:>3} {:>6} {:>12.1} {:>12.1} {:>12.0} {:>14.1} {:>12.1}",
                t,
                len,
                med_us,
                best * 1e6,
                1e6 / med_us,
                per_step(k).0 * 1e6,
                fixed + per_position * len as f64
            );
        }
        println!(
            "{t} thread(s): fit step = {fixed:.1} µs + {:.2} ns × L; kernel alone = {kernel_fixed:.1} µs + {:.2} ns × L; \
             step slope / kernel slope = {:.2}",
            per_position * 1e3,
            kernel_per_position * 1e3,
            per_position / kernel_per_position
        );
        if let (Some(first), Some(last)) = (points.first(), points.last()) {
            println!(
                "{t} thread(s): L {} → {}: step time × {:.2}, tokens/s {:.0} → {:.0}",
                first.0,
                last.0,
                last.1 / first.1,
                1e6 / first.1,
                1e6 / last.1
            );
        }
    }
}
