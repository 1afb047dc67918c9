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
         [--ids-out PATH] [--encode-reps R]"
    );
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("dump-corpus") if args.len() == 2 => dump_corpus(&args[1]),
        Some("run") => run(&args[1..]),
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
