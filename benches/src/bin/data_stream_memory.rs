//! Streaming memory check: collect and clean a generated ~1 GB JSON Lines file and report peak
//! resident memory (VmHWM from /proc/self/status), which must stay near the batch in flight, far
//! below the file size.
//!
//! ```text
//! cargo run --release -p fm-benches --bin data_stream_memory -- [--mb 1024] [--file /tmp/x.jsonl]
//! ```
//!
//! The file is generated when missing (and removed afterwards unless `--keep`); it is never
//! committed. Documents flow through `JsonlReader` in batches of 4096, each batch cleaned in
//! parallel (NFKC, whitespace, PII masking, quality) and reduced to counts and an exact-dedup
//! hash set (8 bytes per document), then dropped.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use fm_data::collect::{ErrorPolicy, JsonlFields, JsonlReader};
use fm_data::pipeline::{run_documents, CorpusConfig};

fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn generate(path: &PathBuf, megabytes: u64) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    let words = [
        "memory", "stream", "batch", "token", "corpus", "rust", "model", "bounded", "the", "of",
        "and", "data", "with", "to", "that", "have", "be", "quality", "filter", "document",
    ];
    let mut state: u64 = 1;
    let mut written = 0u64;
    let mut i = 0u64;
    while written < megabytes * 1_000_000 {
        let mut text = String::new();
        for _ in 0..120 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            text.push_str(words[(state >> 59) as usize % words.len()]);
            text.push(' ');
        }
        // Every 50th record is broken, so the skip counts are exercised at scale.
        let line = if i % 50 == 49 {
            "{\"text\": broken\n".to_string()
        } else {
            format!("{{\"id\": {i}, \"text\": \"{text}contact{i}@example.com\"}}\n")
        };
        f.write_all(line.as_bytes()).expect("write");
        written += line.len() as u64;
        i += 1;
    }
    f.flush().expect("flush");
}

fn main() {
    let mut megabytes = 1024u64;
    let mut file = std::env::temp_dir().join("fm-data-stream-1gb.jsonl");
    let mut keep = false;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--mb" => megabytes = it.next().and_then(|v| v.parse().ok()).expect("--mb N"),
            "--file" => file = PathBuf::from(it.next().expect("--file PATH")),
            "--keep" => keep = true,
            other => panic!("unknown argument {other}"),
        }
    }
    let existed = file.exists();
    if !existed {
        let t = Instant::now();
        generate(&file, megabytes);
        println!(
            "generated {} in {:.1} s",
            file.display(),
            t.elapsed().as_secs_f64()
        );
    }
    let size = std::fs::metadata(&file).expect("stat").len();
    let before = vm_hwm_kib();
    let t = Instant::now();
    let mut reader =
        JsonlReader::open(&file, JsonlFields::new("text"), ErrorPolicy::Skip).expect("open");
    let config = CorpusConfig {
        exact: false,
        near: None,
        containment: None,
        lines: None,
        paragraphs: false,
        ..CorpusConfig::default()
    };
    let mut seen = std::collections::HashSet::new();
    let (mut docs_out, mut exact_dups, mut emails, mut bytes_out) = (0usize, 0usize, 0usize, 0u64);
    loop {
        let batch: Vec<_> = reader
            .by_ref()
            .take(4096)
            .collect::<Result<_, _>>()
            .expect("read");
        if batch.is_empty() {
            break;
        }
        let (docs, report) = run_documents(batch, &config).expect("clean");
        emails += report.cleaning.pii.emails;
        for d in &docs {
            if !seen.insert(fm_data::dedup::fnv1a64(d.text.as_bytes())) {
                exact_dups += 1;
            }
            bytes_out += d.text.len() as u64;
        }
        docs_out += docs.len();
    }
    let secs = t.elapsed().as_secs_f64();
    let s = reader.stats();
    println!(
        "streamed {:.0} MB: {} documents read, {} malformed lines skipped, {} kept after cleaning \
         ({} bytes), {} e-mails masked, {} exact duplicates, {:.1} s ({:.0} MB/s)",
        size as f64 / 1e6,
        s.documents,
        s.malformed_json,
        docs_out,
        bytes_out,
        emails,
        exact_dups,
        secs,
        size as f64 / 1e6 / secs
    );
    println!(
        "peak RSS (VmHWM): {:.1} MB before streaming, {:.1} MB after; input file {:.0} MB",
        before as f64 / 1024.0,
        vm_hwm_kib() as f64 / 1024.0,
        size as f64 / 1e6
    );
    if !existed && !keep {
        std::fs::remove_file(&file).expect("remove");
    }
}
