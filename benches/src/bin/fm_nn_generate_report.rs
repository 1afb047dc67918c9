//! Generation speed of fm-nn's GPT with the KV cache: configuration a of BENCHMARKS.md (vocab 4096,
//! context 256, d_model 256, 4 layers, 4 heads, MLP 4× GELU, LayerNorm, learned positions, tied
//! embeddings), batch 1, a 1-token prompt, greedy. BENCHMARKS.md asks for 256 new tokens; the
//! context of 256 holds the prompt too, so 255 new tokens fill it (the report prints the count, and
//! the PyTorch script generates the same number).
//!
//! ```text
//! cargo run --release -p fm-benches --bin fm_nn_generate_report -- [--threads 1,2] [--reps 5] [--json]
//! ```
//!
//! Greedy decoding; timing covers the whole `generate` call (prompt included), median and best of
//! `--reps` runs after one warm-up, in a rayon pool of each thread count. With `--json` each line is
//! one JSON object (read by `benches/scripts/generate_vs_torch.py`).

use fm_benches::{interleaved, pool};
use fm_nn::{generate, GenerateOptions, Gpt, GptConfig};

fn list(args: &[String], flag: &str, default: &[usize]) -> Vec<usize> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.split(',').map(|x| x.parse().expect("a number")).collect())
        .unwrap_or_else(|| default.to_vec())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let threads = list(&args, "--threads", &[1, 2]);
    let reps = list(&args, "--reps", &[5])[0];
    let json = args.iter().any(|a| a == "--json");
    let mut model = Gpt::<f32>::new(GptConfig::new(4096, 256, 256, 4, 4), 0).expect("config a");
    fm_nn::Module::eval(&mut model);
    let options = GenerateOptions {
        max_new_tokens: 256,
        ..GenerateOptions::greedy()
    };
    for &t in &threads {
        let mut generated = 0;
        let timing = pool(t).install(|| {
            interleaved(
                1,
                reps,
                &mut [&mut || {
                    let out = generate(&model, &[0], &options).expect("generation");
                    generated = out.tokens.len();
                }],
            )[0]
        });
        let tokens_per_s = generated as f64 / timing.median;
        if json {
            println!(
                "{{\"impl\":\"fm\",\"threads\":{t},\"tokens\":{generated},\"median_s\":{},\"best_s\":{},\"tokens_per_s\":{tokens_per_s}}}",
                timing.median, timing.best
            );
        } else {
            println!(
                "fm-nn generate, config a, {t} thread(s): {generated} tokens, median {:.3} s (best {:.3} s), {:.0} tokens/s",
                timing.median, timing.best, tokens_per_s
            );
        }
    }
}
