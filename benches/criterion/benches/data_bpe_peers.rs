//! fm-data's byte-level BPE beside Hugging Face `tokenizers` (Rust crate) and tiktoken-rs, on the
//! Rust documentation corpus (see `fm_benches::rust_docs`), same text in the same process:
//! training at vocabulary 4096 (fm vs HF, same settings), encoding on 1 and 2 threads (batch over
//! documents; tiktoken has no batch API, so its documents are spread over the same rayon pool) and
//! decoding. `data_bpe_report peers` prints the same comparison as a table, with cold-cache
//! encodes and the identity checks.
//!
//! Needs `--features bpe-peers`; skipped (with a message) when the toolchain has no HTML docs.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rayon::prelude::*;

use fm_benches::bpe_peers::{fm_trainer, hf_train, tiktoken_from_fm};
use fm_benches::rust_docs;
use fm_data::tokenizer::Tokenizer;

fn bench_peers(c: &mut Criterion) {
    let Some(root) = rust_docs::html_root() else {
        eprintln!("data_bpe_peers: no Rust HTML documentation found; skipped");
        return;
    };
    let docs = rust_docs::load_documents(&root).expect("reading the Rust documentation");
    let refs: Vec<&str> = docs.iter().map(String::as_str).collect();
    let bytes: usize = docs.iter().map(String::len).sum();
    let vocab = 4096;
    let pools: Vec<(usize, rayon::ThreadPool)> = [1, 2]
        .into_iter()
        .map(|n| (n, fm_benches::pool(n)))
        .collect();

    let trainer = fm_trainer(vocab);
    let mut g = c.benchmark_group("bpe_peers_train_vocab4096");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .throughput(Throughput::Bytes(bytes as u64));
    let (_, two) = &pools[1];
    g.bench_function("fm/threads/2", |b| {
        b.iter(|| two.install(|| trainer.train(&docs).unwrap()))
    });
    g.bench_function("hf/threads/2", |b| {
        b.iter(|| two.install(|| hf_train(&docs, vocab)))
    });
    g.finish();

    let fm = trainer.train(&docs).unwrap();
    let hf = hf_train(&docs, vocab);
    let tiktoken = tiktoken_from_fm(&fm);
    let ids = fm.encode_batch_of(&docs);
    assert!(
        docs.iter()
            .zip(&ids)
            .all(|(d, i)| &tiktoken.encode_ordinary(d) == i),
        "tiktoken built from fm's ranks gives fm's ids"
    );

    let mut g = c.benchmark_group("bpe_peers_encode_vocab4096");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Bytes(bytes as u64));
    for (n, pool) in &pools {
        g.bench_with_input(BenchmarkId::new("fm", n), n, |b, _| {
            b.iter(|| pool.install(|| fm.encode_batch_of(&docs)))
        });
        g.bench_with_input(BenchmarkId::new("tiktoken", n), n, |b, _| {
            b.iter(|| {
                pool.install(|| {
                    docs.par_iter()
                        .map(|d| tiktoken.encode_ordinary(d))
                        .collect::<Vec<_>>()
                })
            })
        });
        g.bench_with_input(BenchmarkId::new("hf_fast", n), n, |b, _| {
            b.iter(|| pool.install(|| hf.encode_batch_fast(refs.clone(), false).unwrap()))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("bpe_peers_decode_vocab4096");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Bytes(bytes as u64));
    let (_, one) = &pools[0];
    g.bench_function("fm/threads/1", |b| {
        b.iter(|| {
            one.install(|| {
                ids.iter()
                    .map(|d| fm.decode(d).unwrap().len())
                    .sum::<usize>()
            })
        })
    });
    g.bench_function("tiktoken/threads/1", |b| {
        b.iter(|| {
            ids.iter()
                .map(|d| {
                    String::from_utf8(tiktoken.decode_bytes(d).unwrap())
                        .unwrap()
                        .len()
                })
                .sum::<usize>()
        })
    });
    g.bench_function("hf/threads/1", |b| {
        b.iter(|| {
            ids.iter()
                .map(|d| hf.decode(d, false).unwrap().len())
                .sum::<usize>()
        })
    });
    g.finish();
}

criterion_group!(benches, bench_peers);
criterion_main!(benches);
