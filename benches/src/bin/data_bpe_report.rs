//! fm-data's byte-level BPE on the Rust documentation corpus: training time, encode and decode
//! throughput. One measurement per process, printed as a JSON line, so that
//! `benches/scripts/data_bpe_compare.py` can interleave it with Hugging Face `tokenizers` and
//! tiktoken runs on the same text in one script.
//!
//! ```text
//! data_bpe_report dump-corpus corpus.jsonl
//!     Extracts the corpus (see fm_benches::rust_docs) and writes one JSON string per document.
//! data_bpe_report run --corpus corpus.jsonl --threads N --vocab V
//!         [--save tokenizer.json] [--ids-out ids.u32] [--encode-reps 3]
//!     Trains on the corpus in a rayon pool of N threads, then encodes it (cold: a freshly loaded
//!     tokenizer, empty word cache; warm: again with the cache filled) and decodes it.
//! data_bpe_report peers [--corpus IN.jsonl] [--vocab 4096,32768] [--threads 1,2] [--reps 3]
//!     (needs `--features bpe-peers`) Everything in this process, on the same text: fm-data's
//!     BPE beside Hugging Face's `tokenizers` crate (trained with the same settings; vocabulary
//!     and merges checked identical) and tiktoken-rs's CoreBPE built from fm's ranks (ids checked
//!     identical): training time, encode MB/s per thread count (batch), decode MB/s. Prints a
//!     Markdown table and one JSON line per vocabulary size.
//! ```

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::time::Instant;

use fm_benches::rust_docs;
use fm_data::tokenizer::{BpeTokenizer, BpeTrainer, Tokenizer};

fn usage() -> ! {
    eprintln!(
        "usage: data_bpe_report dump-corpus OUT.jsonl\n       \
         data_bpe_report run --corpus IN.jsonl --threads N --vocab V [--save PATH] \
         [--ids-out PATH] [--encode-reps R]\n       \
         data_bpe_report peers [--corpus IN.jsonl] [--vocab 4096,32768] [--threads 1,2] [--reps 3]"
    );
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("dump-corpus") if args.len() == 2 => dump_corpus(&args[1]),
        Some("run") => run(&args[1..]),
        Some("peers") => peers::main(&args[1..]),
        _ => usage(),
    }
}

fn dump_corpus(out: &str) {
    let root = rust_docs::html_root().unwrap_or_else(|| {
        eprintln!("no Rust documentation under `rustc --print sysroot`/share/doc/rust/html");
        std::process::exit(1)
    });
    let docs = rust_docs::load_documents(&root).expect("reading the HTML files");
    let mut w = std::io::BufWriter::new(fs::File::create(out).expect("creating the corpus file"));
    for d in &docs {
        serde_json::to_writer(&mut w, d).unwrap();
        w.write_all(b"\n").unwrap();
    }
    w.flush().unwrap();
    let bytes: usize = docs.iter().map(String::len).sum();
    println!(
        "{}",
        serde_json::json!({"documents": docs.len(), "bytes": bytes, "root": root})
    );
}

fn load_corpus(path: &str) -> Vec<String> {
    let f = fs::File::open(path).unwrap_or_else(|e| {
        eprintln!("{path}: {e}");
        std::process::exit(1)
    });
    BufReader::new(f)
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).expect("one JSON string per line"))
        .collect()
}

fn run(args: &[String]) {
    let mut corpus = None;
    let mut threads = 1usize;
    let mut vocab = 4096usize;
    let mut save = None;
    let mut ids_out = None;
    let mut reps = 3usize;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--corpus" => corpus = Some(value.clone()),
            "--threads" => threads = value.parse().unwrap_or_else(|_| usage()),
            "--vocab" => vocab = value.parse().unwrap_or_else(|_| usage()),
            "--save" => save = Some(value.clone()),
            "--ids-out" => ids_out = Some(value.clone()),
            "--encode-reps" => reps = value.parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    let docs = load_corpus(&corpus.unwrap_or_else(|| usage()));
    let bytes: usize = docs.iter().map(String::len).sum();
    let mb = bytes as f64 / 1e6;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();

    let trainer = BpeTrainer::builder()
        .vocab_size(vocab)
        .special_tokens(["<|endoftext|>"])
        .build()
        .unwrap();
    let t = Instant::now();
    let tok = pool.install(|| trainer.train(&docs)).unwrap();
    let train_s = t.elapsed().as_secs_f64();
    let json = tok.to_json_string();
    if let Some(path) = &save {
        tok.save(path).unwrap();
    }

    let mut cold = Vec::new();
    let mut warm = Vec::new();
    let mut decode = Vec::new();
    let mut ids: Vec<Vec<u32>> = Vec::new();
    for _ in 0..reps {
        // A freshly loaded tokenizer starts with an empty word cache on every thread.
        let fresh = BpeTokenizer::from_json_str(&json).unwrap();
        let t = Instant::now();
        ids = pool.install(|| fresh.encode_batch_of(&docs));
        cold.push(mb / t.elapsed().as_secs_f64());
        let t = Instant::now();
        let again = pool.install(|| fresh.encode_batch_of(&docs));
        warm.push(mb / t.elapsed().as_secs_f64());
        assert!(again == ids, "encoding is deterministic");
        let t = Instant::now();
        let texts: Vec<String> = pool.install(|| {
            use rayon::prelude::*;
            ids.par_iter().map(|d| fresh.decode(d).unwrap()).collect()
        });
        decode.push(mb / t.elapsed().as_secs_f64());
        assert!(texts == docs, "decode(encode(doc)) == doc");
    }
    let n_ids: usize = ids.iter().map(Vec::len).sum();
    if let Some(path) = &ids_out {
        let mut buf = Vec::with_capacity(n_ids * 4);
        for id in ids.iter().flatten() {
            buf.extend_from_slice(&id.to_le_bytes());
        }
        fs::write(path, buf).unwrap();
    }
    println!(
        "{}",
        serde_json::json!({
            "impl": "fm",
            "threads": threads,
            "vocab": vocab,
            "documents": docs.len(),
            "bytes": bytes,
            "vocab_size": tok.vocab_size(),
            "merges": tok.merges().len(),
            "train_s": train_s,
            "encode_cold_mbs": cold,
            "encode_warm_mbs": warm,
            "decode_mbs": decode,
            "ids": n_ids,
        })
    );
}

#[cfg(not(feature = "bpe-peers"))]
mod peers {
    pub fn main(_: &[String]) {
        eprintln!("`peers` needs the peers: cargo run --release -p fm-benches --features bpe-peers --bin data_bpe_report -- peers");
        std::process::exit(2)
    }
}

/// `peers`: fm-data's BPE, HF `tokenizers` and tiktoken-rs in one process.
#[cfg(feature = "bpe-peers")]
mod peers {
    use std::time::Instant;

    use fm_benches::bpe_peers::{
        fm_trainer, hf_train, json_differences, same_model, tiktoken_from_fm, HfTokenizer,
    };
    use fm_benches::rust_docs;
    use fm_data::tokenizer::{BpeTokenizer, Tokenizer};
    use rayon::prelude::*;

    fn list(value: &str) -> Vec<usize> {
        value
            .split(',')
            .map(|v| v.parse().unwrap_or_else(|_| super::usage()))
            .collect()
    }

    fn secs(f: impl FnOnce()) -> f64 {
        let t = Instant::now();
        f();
        t.elapsed().as_secs_f64()
    }

    /// Fastest of `reps` timings (each contender's runs interleaved with the others' by the caller).
    fn best(times: &[f64]) -> f64 {
        times.iter().copied().fold(f64::INFINITY, f64::min)
    }

    pub fn main(args: &[String]) {
        let mut corpus = None;
        let mut vocabs = vec![4096, 32768];
        let mut threads = vec![1, 2];
        let mut reps = 3usize;
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let value = it.next().unwrap_or_else(|| super::usage());
            match flag.as_str() {
                "--corpus" => corpus = Some(value.clone()),
                "--vocab" => vocabs = list(value),
                "--threads" => threads = list(value),
                "--reps" => reps = value.parse().unwrap_or_else(|_| super::usage()),
                _ => super::usage(),
            }
        }
        let docs: Vec<String> = match corpus {
            Some(path) => super::load_corpus(&path),
            None => {
                let root = rust_docs::html_root().unwrap_or_else(|| {
                    eprintln!(
                        "no Rust documentation under `rustc --print sysroot`/share/doc/rust/html"
                    );
                    std::process::exit(1)
                });
                rust_docs::load_documents(&root).expect("reading the HTML files")
            }
        };
        let bytes: usize = docs.iter().map(String::len).sum();
        let mb = bytes as f64 / 1e6;
        let refs: Vec<&str> = docs.iter().map(String::as_str).collect();
        let pools: Vec<(usize, rayon::ThreadPool)> =
            threads.iter().map(|&n| (n, fm_benches::pool(n))).collect();
        println!(
            "corpus: {} documents, {:.2} MB; best of {reps} interleaved repetitions; peers: HF tokenizers 0.22 (Rust, onig), tiktoken-rs 0.12",
            docs.len(),
            mb
        );
        println!();
        println!("| vocab | threads | train fm (s) | train HF (s) | HF/fm | encode fm cold (MB/s) | fm warm | HF | HF fast | tiktoken | fm/tiktoken | fm/HF | decode fm (MB/s) | HF | tiktoken | fm/tiktoken |");
        println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        for &vocab in &vocabs {
            let trainer = fm_trainer(vocab);
            // Training, fm and HF interleaved, per thread count.
            let mut train = Vec::new();
            let mut fm_tok = None;
            let mut hf_tok: Option<HfTokenizer> = None;
            for (n, pool) in &pools {
                let (mut t_fm, mut t_hf) = (Vec::new(), Vec::new());
                for _ in 0..reps.min(2) {
                    t_fm.push(secs(|| {
                        fm_tok = Some(pool.install(|| trainer.train(&docs)).unwrap())
                    }));
                    t_hf.push(secs(|| {
                        hf_tok = Some(pool.install(|| hf_train(&docs, vocab)))
                    }));
                }
                train.push((*n, best(&t_fm), best(&t_hf)));
            }
            let fm_tok = fm_tok.expect("at least one thread count");
            let hf_tok = hf_tok.expect("at least one thread count");
            let model_check = same_model(&fm_tok, &hf_tok);
            let fm_json = fm_tok.to_json_string();
            let hf_json = hf_tok.to_string(false).unwrap();
            let tiktoken = tiktoken_from_fm(&fm_tok);

            // Same ids from all three (fm with special tokens recognised; the corpus has none).
            let fm_ids = fm_tok.encode_batch_of(&docs);
            let hf_ids: Vec<Vec<u32>> = hf_tok
                .encode_batch_fast(refs.clone(), false)
                .unwrap()
                .iter()
                .map(|e| e.get_ids().to_vec())
                .collect();
            let tk_ids: Vec<Vec<u32>> = docs
                .par_iter()
                .map(|d| tiktoken.encode_ordinary(d))
                .collect();
            let ids_hf_same = fm_ids == hf_ids;
            let ids_tk_same = fm_ids == tk_ids;
            let n_ids: usize = fm_ids.iter().map(Vec::len).sum();

            let mut rows = Vec::new();
            for (i, (n, pool)) in pools.iter().enumerate() {
                let mut t = vec![Vec::new(); 8];
                for _ in 0..reps {
                    let fresh = BpeTokenizer::from_json_str(&fm_json).unwrap();
                    let hf_fresh: HfTokenizer = hf_json.parse().unwrap();
                    pool.install(|| {
                        let mut out = Vec::new();
                        t[0].push(secs(|| out = fresh.encode_batch_of(&docs)));
                        assert!(out == fm_ids);
                        t[1].push(secs(|| out = fresh.encode_batch_of(&docs)));
                        assert!(out == fm_ids);
                        t[2].push(secs(|| {
                            std::hint::black_box(
                                hf_fresh.encode_batch(refs.clone(), false).unwrap(),
                            );
                        }));
                        t[3].push(secs(|| {
                            std::hint::black_box(
                                hf_fresh.encode_batch_fast(refs.clone(), false).unwrap(),
                            );
                        }));
                        t[4].push(secs(|| {
                            out = docs
                                .par_iter()
                                .map(|d| tiktoken.encode_ordinary(d))
                                .collect();
                        }));
                        assert!(out == tk_ids);
                        let mut texts = Vec::new();
                        t[5].push(secs(|| {
                            texts = fm_ids
                                .par_iter()
                                .map(|d| fresh.decode(d).unwrap())
                                .collect();
                        }));
                        assert!(texts == docs);
                        t[6].push(secs(|| {
                            let id_refs: Vec<&[u32]> = fm_ids.iter().map(Vec::as_slice).collect();
                            texts = hf_fresh.decode_batch(&id_refs, false).unwrap();
                        }));
                        t[7].push(secs(|| {
                            texts = fm_ids
                                .par_iter()
                                .map(|d| {
                                    String::from_utf8(tiktoken.decode_bytes(d).unwrap()).unwrap()
                                })
                                .collect();
                        }));
                        assert!(texts == docs);
                    });
                }
                let mbs: Vec<f64> = t.iter().map(|v| mb / best(v)).collect();
                let (_, train_fm, train_hf) = train[i];
                println!(
                    "| {vocab} | {n} | {train_fm:.3} | {train_hf:.3} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {:.1} | {:.0} | {:.0} | {:.0} | {:.2} |",
                    train_hf / train_fm,
                    mbs[0], mbs[1], mbs[2], mbs[3], mbs[4],
                    mbs[0] / mbs[4],
                    mbs[0] / mbs[3].max(mbs[2]),
                    mbs[5], mbs[6], mbs[7],
                    mbs[5] / mbs[7],
                );
                rows.push(serde_json::json!({
                    "threads": n, "train_fm_s": train_fm, "train_hf_s": train_hf,
                    "encode_fm_cold_mbs": mbs[0], "encode_fm_warm_mbs": mbs[1],
                    "encode_hf_mbs": mbs[2], "encode_hf_fast_mbs": mbs[3], "encode_tiktoken_mbs": mbs[4],
                    "decode_fm_mbs": mbs[5], "decode_hf_mbs": mbs[6], "decode_tiktoken_mbs": mbs[7],
                }));
            }
            eprintln!(
                "{}",
                serde_json::json!({
                    "vocab": vocab, "documents": docs.len(), "bytes": bytes, "ids": n_ids,
                    "vocab_size": fm_tok.vocab_size(), "merges": fm_tok.merges().len(),
                    "hf_same_vocab_and_merges": model_check.is_ok(),
                    "hf_tokenizer_json_byte_identical": model_check.clone().unwrap_or(false),
                    "hf_difference": model_check.err(),
                    "hf_json_fields_differing": json_differences(&fm_tok, &hf_tok),
                    "hf_same_ids": ids_hf_same, "tiktoken_same_ids": ids_tk_same,
                    "rows": rows,
                })
            );
        }
    }
}
