//! Byte-level BPE on the Rust documentation corpus (see `fm_benches::rust_docs`): training at
//! vocabulary 4096, and encoding / decoding throughput on 1 and 2 threads. Encoding runs repeat over
//! the same text, so they measure the warm word cache; `data_bpe_report` also measures a cold
//! first pass and compares with Hugging Face `tokenizers` and tiktoken.
//!
//! Skipped (with a message) when the toolchain has no HTML documentation.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::time::Duration;

use fm_benches::rust_docs;
use fm_data::tokenizer::{BpeTrainer, Tokenizer};

fn bench_bpe(c: &mut Criterion) {
    let Some(root) = rust_docs::html_root() else {
        eprintln!("data_bpe: no Rust HTML documentation found; skipped");
        return;
    };
    let docs = rust_docs::load_documents(&root).expect("reading the Rust documentation");
    let bytes: usize = docs.iter().map(String::len).sum();
    let trainer = BpeTrainer::builder()
        .vocab_size(4096)
        .special_tokens(["<|endoftext|>"])
        .build()
        .unwrap();
    let pools: Vec<(usize, rayon::ThreadPool)> = [1, 2]
        .into_iter()
        .map(|n| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .unwrap();
            (n, pool)
        })
        .collect();

    let mut g = c.benchmark_group("bpe_train_vocab4096");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(15))
        .throughput(Throughput::Bytes(bytes as u64));
    for (n, pool) in &pools {
        g.bench_with_input(BenchmarkId::new("threads", n), n, |b, _| {
            b.iter(|| pool.install(|| trainer.train(&docs).unwrap()))
        });
    }
    g.finish();

    let tok = trainer.train(&docs).unwrap();
    let ids = tok.encode_batch_of(&docs);
    let mut g = c.benchmark_group("bpe_encode_vocab4096");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(8))
        .throughput(Throughput::Bytes(bytes as u64));
    for (n, pool) in &pools {
        g.bench_with_input(BenchmarkId::new("threads", n), n, |b, _| {
            b.iter(|| pool.install(|| tok.encode_batch_of(&docs)))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("bpe_decode_vocab4096");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("threads/1", |b| {
        b.iter(|| {
            ids.iter()
                .map(|d| tok.decode(d).unwrap().len())
                .sum::<usize>()
        })
    });
    g.finish();
}

criterion_group!(benches, bench_bpe);
criterion_main!(benches);
