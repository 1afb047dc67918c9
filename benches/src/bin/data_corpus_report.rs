//! Corpus report: the fm-data collection, cleaning and deduplication pipeline on the Rust
//! documentation installed with the toolchain, and MinHash dedup throughput at 1 and 2 threads.
//!
//! ```text
//! cargo run --release -p fm-benches --bin data_corpus_report -- \
//!     [--root DIR] [--dump texts.jsonl] [--json report.json] [--no-timing] [--examples N]
//! ```
//!
//! `--no-timing` skips the MinHash throughput runs (the pipeline report alone); `--examples N`
//! lists up to N clusters per grain in the JSON report (default 10).
//!
//! `--root` defaults to `$(rustc --print sysroot)/share/doc/rust/html` (a subdirectory makes a
//! quick run). `--dump` writes the
//! cleaned texts that MinHash runs on (JSON Lines, field `text`) so that
//! `benches/scripts/minhash_vs_rensa.py` can run rensa on exactly the same input. The last line
//! printed is `MINHASH_JSON {...}` with the throughput figures, for that script.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use fm_data::collect::{DirectorySource, Document};
use fm_data::dedup::near::{near_dedup, NearDupConfig};
use fm_data::pipeline::{deduplicate, run_directory, CorpusConfig, CorpusReport};

struct Args {
    root: PathBuf,
    dump: Option<PathBuf>,
    json: Option<PathBuf>,
    timing: bool,
    examples: usize,
}

fn parse_args() -> Args {
    let mut args = Args {
        root: PathBuf::new(),
        dump: None,
        json: None,
        timing: true,
        examples: 10,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--root" => args.root = PathBuf::from(value()),
            "--dump" => args.dump = Some(PathBuf::from(value())),
            "--json" => args.json = Some(PathBuf::from(value())),
            "--no-timing" => args.timing = false,
            "--examples" => args.examples = value().parse().expect("--examples needs a number"),
            other => panic!("unknown argument {other}"),
        }
    }
    if args.root.as_os_str().is_empty() {
        let out = std::process::Command::new("rustc")
            .args(["--print", "sysroot"])
            .output()
            .expect("rustc --print sysroot");
        let sysroot = String::from_utf8(out.stdout).expect("utf-8 sysroot");
        args.root = PathBuf::from(sysroot.trim()).join("share/doc/rust/html");
    }
    args
}

fn print_grain(name: &str, g: &fm_data::pipeline::GrainReport, first: &str, other: &str) {
    println!(
        "  {name:<12} clusters {:>6}  documents removed {:>6}  bytes removed {:>11}",
        g.clusters, g.removed, g.bytes_removed
    );
    for e in g.examples.iter().take(5) {
        println!("      {first} {}", e.kept);
        for o in e.others.iter().take(3) {
            println!("        {other} {o}");
        }
        if e.others.len() > 3 {
            println!("        ... and {} more", e.others.len() - 3);
        }
    }
}

fn time_minhash(texts: &[&str], config: &NearDupConfig, threads: usize) -> (f64, usize) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    // Best of three: the machine is shared.
    let mut best = f64::INFINITY;
    let mut clusters = 0;
    for _ in 0..3 {
        let t = Instant::now();
        let r = pool
            .install(|| near_dedup(texts, config))
            .expect("near dedup");
        best = best.min(t.elapsed().as_secs_f64());
        clusters = r.clusters.len();
    }
    (best, clusters)
}

fn main() {
    let args = parse_args();
    println!("corpus: {}", args.root.display());
    let mut source = DirectorySource::new(&args.root);
    // The toolchain's docs also hold search indexes and sources as .js/.md; we read pages.
    source = source.include(["**/*.html"]).expect("glob");
    let full = CorpusConfig {
        examples: args.examples,
        ..CorpusConfig::default()
    };
    let clean_only = CorpusConfig {
        exact: false,
        near: None,
        containment: None,
        lines: None,
        paragraphs: false,
        ..full.clone()
    };
    let t0 = Instant::now();
    let (cleaned, mut report): (Vec<Document>, CorpusReport) =
        run_directory(&source, &clean_only).expect("collect");
    let collect_s = t0.elapsed().as_secs_f64();
    let texts: Vec<&str> = cleaned.iter().map(|d| d.text.as_str()).collect();
    let mb = texts.iter().map(|t| t.len()).sum::<usize>() as f64 / 1e6;

    if let Some(path) = &args.dump {
        let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("dump file"));
        for t in &texts {
            serde_json::to_writer(&mut f, &serde_json::json!({ "text": t })).expect("json");
            f.write_all(b"\n").expect("write");
        }
        f.flush().expect("flush");
    }

    let near = full.near.expect("near config");
    let ((s1, c1), s2) = if args.timing {
        let one = time_minhash(&texts, &near, 1);
        let two = time_minhash(&texts, &near, 2);
        assert_eq!(one.1, two.1, "clusters must not depend on the thread count");
        (one, two.0)
    } else {
        ((f64::NAN, 0), f64::NAN)
    };

    let t1 = Instant::now();
    let (out, dedup) = deduplicate(cleaned.clone(), &full).expect("dedup");
    let dedup_s = t1.elapsed().as_secs_f64();
    report.exact = dedup.exact;
    report.near = dedup.near;
    report.containment = dedup.containment;
    report.lines = dedup.lines;
    report.line_emptied = dedup.line_emptied;
    report.paragraphs = dedup.paragraphs;
    report.paragraph_emptied = dedup.paragraph_emptied;
    report.documents_out = out.len();
    report.bytes_out = dedup.bytes_out;

    let c = &report.collect;
    println!(
        "collected: {} files, {} documents, {} bytes of HTML -> {} bytes of text ({} elements dropped); skipped: {} invalid UTF-8, {} empty  [{collect_s:.1} s incl. cleaning]",
        c.files, c.documents, report.html.bytes_in, report.html.bytes_out, report.html.elements_dropped, c.invalid_utf8, c.empty
    );
    let cl = &report.cleaning;
    println!(
        "cleaning: unicode (NFKC) changed {} documents; whitespace: {} control chars removed, {} runs collapsed, {} blank lines dropped, {} code blocks kept as written; bytes {} -> {}",
        cl.unicode_changed, cl.whitespace.control_removed, cl.whitespace.runs_collapsed,
        cl.whitespace.blank_lines_dropped, cl.whitespace.code_blocks_kept, cl.bytes_in, cl.bytes_out
    );
    println!(
        "PII masked: {} e-mails, {} IPv4, {} IPv6, {} phone numbers",
        cl.pii.emails, cl.pii.ipv4, cl.pii.ipv6, cl.pii.phones
    );
    let q = &report.quality;
    println!(
        "quality (technical thresholds): {} passed, {} rejected: {} too short, {} too long, {} word length, {} symbols, {} bullets, {} ellipses, {} duplicate lines, {} alphabetic; {} emptied by cleaning",
        q.passed, q.rejected(), q.too_short, q.too_long, q.word_length, q.symbols,
        q.bullet_lines, q.ellipsis_lines, q.duplicate_lines, q.alphabetic, report.emptied
    );
    println!("deduplication ({dedup_s:.1} s):");
    print_grain("exact", &report.exact, "kept", "removed");
    print_grain("near (MinHash)", &report.near, "kept", "removed");
    print_grain(
        "containment",
        &report.containment,
        "removed",
        "contains (kept)",
    );
    let l = &report.lines;
    println!(
        "  lines        {} prose lines seen, {} distinct boilerplate (in >= {} documents), {} occurrences dropped ({} bytes) from {} documents; {} documents emptied",
        l.lines, l.boilerplate_distinct,
        full.lines.map_or(0, |c| c.min_document_frequency), l.dropped, l.bytes_dropped,
        l.documents_changed, report.line_emptied
    );
    let p = &report.paragraphs;
    println!(
        "  paragraphs   {} seen, {} distinct repeated, {} occurrences dropped ({} bytes); {} documents emptied",
        p.paragraphs, p.repeated_distinct, p.dropped, p.bytes_dropped, report.paragraph_emptied
    );
    println!(
        "out: {} documents, {} bytes",
        report.documents_out, report.bytes_out
    );
    println!(
        "MinHash dedup end to end (shingling, 128 perms, LSH {:?}, clusters) on {} texts, {mb:.1} MB:",
        near.bands().expect("bands"),
        texts.len()
    );
    for (threads, s) in [(1, s1), (2, s2)].into_iter().filter(|_| args.timing) {
        println!(
            "  {threads} thread(s): {s:.3} s  {:.0} docs/s  {:.1} MB/s",
            texts.len() as f64 / s,
            mb / s
        );
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report).expect("json")).expect("write");
    }
    println!(
        "MINHASH_JSON {}",
        serde_json::json!({
            "documents": texts.len(), "megabytes": mb,
            "seconds_1_thread": s1, "seconds_2_threads": s2, "clusters": c1,
        })
    );
}
