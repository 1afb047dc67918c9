//! Training throughput of fm-nn's GPT for the two configurations of BENCHMARKS.md: tokens/s for
//! forward + backward + AdamW step, at a given thread count, with peak memory and the share of the
//! step spent in GEMM, in attention and in everything else.
//!
//! ```text
//! cargo run --release -p fm-benches --bin fm_train_report -- --config a --threads 1 [--steps 5 --warmup 2 --json]
//!     [--recycling on|off]   # fm_tensor::buffers on (default) or off, to measure what it saves
//! python benches/scripts/gpt_train_vs_torch.py --rust target/release/fm_train_report   # beside PyTorch
//! ```
//!
//! How the shares are measured: after the timed steps, the same program re-times in isolation (same
//! thread pool, same shapes, median of a few runs) every matrix product one step performs — each
//! linear layer's forward `x·Wᵀ` and its two backward products `dY·W` and `dYᵀ·X`, and the tied
//! output projection's three — and the fused attention kernel's forward and backward for every
//! layer. "GEMM" and "attention" are those sums; "other" is the measured step time minus both
//! (norms, GELU, embedding, residual adds, cross-entropy, the optimizer, the tape). An estimate,
//! since kernels timed alone find warmer caches than inside a step. Page faults per step are the
//! process's minor faults (`/proc/self/stat`) during the step: memory mapped in (and zeroed) anew.

use std::time::Instant;

use fm_attention::{attention_backward, attention_forward, AttentionOptions};
use fm_benches::{pool, random_f32};
use fm_nn::{Activation, Gpt, GptConfig, NormKind, PositionEncoding};
use fm_optim::{AdamConfig, AdamW, Optimizer};
use fm_tensor::autograd::Tape;
use fm_tensor::gemm::gemm;
use ndarray::{Array2, Array4};

struct Shape {
    name: &'static str,
    vocab: usize,
    context: usize,
    d_model: usize,
    n_layers: usize,
    n_heads: usize,
    batch: usize,
}

const CONFIGS: [Shape; 2] = [
    Shape {
        name: "a",
        vocab: 4096,
        context: 256,
        d_model: 256,
        n_layers: 4,
        n_heads: 4,
        batch: 8,
    },
    Shape {
        name: "b",
        vocab: 4096,
        context: 512,
        d_model: 512,
        n_layers: 8,
        n_heads: 8,
        batch: 4,
    },
];

struct Args {
    config: String,
    threads: usize,
    steps: usize,
    warmup: usize,
    json: bool,
    recycling: Recycling,
}

/// Whether op outputs reuse freed memory (`fm_tensor::buffers`). Not switched within a run:
/// turning recycling off empties the pool, so the next "on" step would start cold.
#[derive(Clone, Copy, PartialEq)]
enum Recycling {
    On,
    Off,
}

fn parse_args() -> Args {
    let mut args = Args {
        config: "a".into(),
        threads: 1,
        steps: 5,
        warmup: 2,
        json: false,
        recycling: Recycling::On,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--config" => args.config = value(),
            "--threads" => args.threads = value().parse().expect("--threads N"),
            "--steps" => args.steps = value().parse().expect("--steps N"),
            "--warmup" => args.warmup = value().parse().expect("--warmup N"),
            "--json" => args.json = true,
            "--recycling" => {
                args.recycling = match value().as_str() {
                    "on" => Recycling::On,
                    "off" => Recycling::Off,
                    other => panic!("--recycling must be on or off, got {other}"),
                }
            }
            other => panic!("unknown option {other}"),
        }
    }
    args
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Minor page faults of this process so far (field 10 of /proc/self/stat; 0 where unavailable).
fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    rest.split_whitespace()
        .nth(7)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Median seconds of `f` over a few runs, after one warm-up run.
fn time_median(mut f: impl FnMut()) -> f64 {
    f();
    let mut runs: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    median(&mut runs)
}

/// One linear layer's three products for `n` rows, `inputs` → `outputs` features.
fn linear_products_s(n: usize, inputs: usize, outputs: usize) -> f64 {
    let x = Array2::from_shape_vec((n, inputs), random_f32(n * inputs, 1)).unwrap();
    let w = Array2::from_shape_vec((outputs, inputs), random_f32(outputs * inputs, 2)).unwrap();
    let dy = Array2::from_shape_vec((n, outputs), random_f32(n * outputs, 3)).unwrap();
    let mut y = Array2::<f32>::zeros((n, outputs));
    let mut dx = Array2::<f32>::zeros((n, inputs));
    let mut dw = Array2::<f32>::zeros((outputs, inputs));
    time_median(|| {
        gemm(1.0, x.view(), w.t(), 0.0, y.view_mut()).unwrap();
        gemm(1.0, dy.view(), w.view(), 0.0, dx.view_mut()).unwrap();
        gemm(1.0, dy.t(), x.view(), 0.0, dw.view_mut()).unwrap();
    })
}

fn attention_s(shape: &Shape) -> f64 {
    let (b, h, t, d) = (
        shape.batch,
        shape.n_heads,
        shape.context,
        shape.d_model / shape.n_heads,
    );
    let make =
        |seed| Array4::from_shape_vec((b, h, t, d), random_f32(b * h * t * d, seed)).unwrap();
    let (q, k, v, dout) = (make(4), make(5), make(6), make(7));
    let opts = AttentionOptions::new().causal(true);
    time_median(|| {
        let out = attention_forward(q.view(), k.view(), v.view(), &opts).unwrap();
        attention_backward(
            q.view(),
            k.view(),
            v.view(),
            out.output.view(),
            out.lse.view(),
            dout.view(),
            &opts,
        )
        .unwrap();
    })
}

fn main() {
    let args = parse_args();
    let shape = CONFIGS
        .iter()
        .find(|c| c.name == args.config)
        .unwrap_or_else(|| panic!("--config must be a or b, got {}", args.config));
    let mut config = GptConfig::new(
        shape.vocab,
        shape.context,
        shape.d_model,
        shape.n_layers,
        shape.n_heads,
    );
    config.activation = Activation::Gelu;
    config.norm = NormKind::LayerNorm;
    config.positions = PositionEncoding::Learned;
    config.tie_embeddings = true;
    config.dropout = 0.0;
    let workers = pool(args.threads);
    let tokens = shape.batch * shape.context;
    let ids_all = Array2::from_shape_fn((shape.batch, shape.context + 1), |(i, j)| {
        ((i * 7919 + j * 104_729) % shape.vocab) as u32
    });
    let ids = ids_all.slice(ndarray::s![.., ..shape.context]).to_owned();
    let targets = ids_all.slice(ndarray::s![.., 1..]).to_owned();

    let (steps, n_params) = workers.install(|| {
        let mut model = Gpt::<f32>::new(config.clone(), 0).expect("valid config");
        let n_params: usize = model.params().iter().map(|(_, p)| p.value().len()).sum();
        let mut optimizer = AdamW::<f32>::new(
            AdamConfig::adamw()
                .lr(3e-4)
                .weight_decay(0.01)
                .build()
                .unwrap(),
        );
        fm_tensor::buffers::set_recycling(args.recycling == Recycling::On);
        let mut steps = Vec::new();
        for step in 0..args.warmup + args.steps {
            let faults = minor_faults();
            let t = Instant::now();
            let tape = Tape::new();
            let ctx = model.context(&tape);
            let loss = model
                .loss(&ctx, ids.view(), targets.view())
                .expect("forward");
            let grads = tape.backward(loss).expect("backward");
            // The tape holds the parameters' values for its backward pass: while it lives, the
            // optimizer's in-place update would have to copy each parameter first.
            drop(ctx);
            drop(tape);
            model.params_mut().accumulate(&grads).expect("accumulate");
            drop(grads);
            optimizer.step(model.params_mut()).expect("AdamW step");
            model.params_mut().zero_grad();
            if step >= args.warmup {
                let seconds = t.elapsed().as_secs_f64();
                steps.push((seconds, minor_faults() - faults));
            }
        }
        fm_tensor::buffers::set_recycling(true);
        (steps, n_params)
    });
    // Median and best seconds, and the median page faults, of the timed steps.
    let mut times: Vec<f64> = steps.iter().map(|s| s.0).collect();
    let mut faults: Vec<f64> = steps.iter().map(|s| s.1 as f64).collect();
    assert!(
        !times.is_empty(),
        "at least one timed step (--steps 1 or more)"
    );
    let best_s = times.iter().cloned().fold(f64::MAX, f64::min);
    let (step_s, faults_per_step) = (median(&mut times), median(&mut faults));

    let (gemm_s, attention_s) = workers.install(|| {
        let (n, d) = (tokens, shape.d_model);
        let per_layer = linear_products_s(n, d, 3 * d)
            + linear_products_s(n, d, d)
            + linear_products_s(n, d, 4 * d)
            + linear_products_s(n, 4 * d, d);
        let gemm_s = per_layer * shape.n_layers as f64 + linear_products_s(n, d, shape.vocab);
        (gemm_s, attention_s(shape) * shape.n_layers as f64)
    });
    let other_s = (step_s - gemm_s - attention_s).max(0.0);
    let row = serde_json::json!({
        "impl": "fm",
        "config": shape.name,
        "threads": args.threads,
        "parameters": n_params,
        "tokens_per_step": tokens,
        "tokens_per_s_median": tokens as f64 / step_s,
        "tokens_per_s_best": tokens as f64 / best_s,
        "step_ms_median": step_s * 1e3,
        "share_gemm": gemm_s / step_s,
        "share_attention": attention_s / step_s,
        "share_other": other_s / step_s,
        "peak_rss_mib": peak_rss_mib(),
        "page_faults_per_step": faults_per_step,
        "steps": args.steps,
    });
    if args.json {
        println!("{row}");
    } else {
        println!(
            "config {} ({:.1} M parameters), {} thread(s): {:.0} tokens/s (median; best {:.0}), \
             step {:.0} ms; GEMM {:.0}%, attention {:.0}%, other {:.0}%; peak RSS {:.0} MiB, \
             {:.0} page faults per step",
            shape.name,
            n_params as f64 / 1e6,
            args.threads,
            tokens as f64 / step_s,
            tokens as f64 / best_s,
            step_s * 1e3,
            100.0 * gemm_s / step_s,
            100.0 * attention_s / step_s,
            100.0 * other_s / step_s,
            peak_rss_mib(),
            faults_per_step,
        );
    }
}
