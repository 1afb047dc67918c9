//! The main job: raw text in, a trained, evaluated, saved language model out.
//!
//! 1. Collect a folder of text (default: the Rust books installed with the toolchain under
//!    `$(rustc --print sysroot)/share/doc/rust/html`), convert HTML to text, clean, mask PII and
//!    deduplicate it (exact, near-duplicate, containment, repeated paragraphs) with fm-data.
//! 2. Split the documents by seed into train and held-out, train a byte-level BPE tokenizer on the
//!    training documents, encode both splits and pack them into windows of `context + 1` tokens.
//! 3. Train a small GPT (fm-nn) with AdamW and warmup + cosine decay (fm-optim) under fm-train's
//!    trainer: 2 threads, a wall-clock budget, checkpoints, a JSON Lines log, a loss-curve PNG.
//! 4. Evaluate held-out cross-entropy, perplexity and bits per byte (fm-eval) beside a unigram
//!    baseline fitted on the training tokens.
//! 5. Save a versioned model directory — weights, config, `tokenizer.json`, metrics, the corpus
//!    report, and a manifest with SHA-256 content hashes and the data it came from — and print a
//!    generated sample.
//!
//! ```text
//! cargo run --release -p fm --example end_to_end                      # the Rust books, ~5 minutes
//! cargo run --release -p fm --example end_to_end -- --data my/texts --minutes 10 --out runs
//! ```
//! Options: `--data DIR` (HTML, Markdown, text, JSONL or CSV files), `--minutes M` (training
//! budget, default 3), `--threads N` (default 2), `--out DIR` (default `runs`), `--vocab N`
//! (default 4096), `--seed S`.

use std::collections::BTreeMap;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use fm::data::collect::{DirectorySource, Document};
use fm::data::dataset::split::{split_indices, SplitFractions};
use fm::data::packing::{pack_documents, PackedWindows, PackingOptions, TailPolicy};
use fm::data::pipeline::{run_directory, CorpusConfig};
use fm::data::tokenizer::{BpeTokenizer, BpeTrainer, Tokenizer};
use fm::eval::{Direction, LanguageModelMetrics, Metric, MetricValues, TokenCrossEntropy};
use fm::nn::{generate, ForwardContext, GenerateOptions, Gpt, GptConfig};
use fm::optim::{AdamConfig, AdamW, LrSchedule};
use fm::tensor::autograd::{ParamStore, Tape};
use fm::train::{BoxError, LossOutput, StepContext, Trainer, TrainerConfig, VecLoader};
use ndarray::{s, Array2};
use sha2::{Digest, Sha256};

type Batch = (Array2<u32>, Array2<u32>);

const END_OF_TEXT: &str = "<|endoftext|>";
const PAD: &str = "<|pad|>";
const CONTEXT: usize = 128;
const BATCH: usize = 16;
/// The Rust books (not the API docs): BENCHMARKS.md's corpus, ~10 MB of text.
const RUST_BOOKS: [&str; 5] = [
    "book/**/*.html",
    "reference/**/*.html",
    "nomicon/**/*.html",
    "rust-by-example/**/*.html",
    "edition-guide/**/*.html",
];

struct Options {
    data: Option<PathBuf>,
    minutes: f64,
    threads: usize,
    out: PathBuf,
    vocab: usize,
    seed: u64,
}

fn parse_options() -> Result<Options, BoxError> {
    let mut options = Options {
        data: None,
        minutes: 3.0,
        threads: 2,
        out: PathBuf::from("runs"),
        vocab: 4096,
        seed: 20261129,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--data" => options.data = Some(PathBuf::from(value()?)),
            "--minutes" => options.minutes = value()?.parse()?,
            "--threads" => options.threads = value()?.parse()?,
            "--out" => options.out = PathBuf::from(value()?),
            "--vocab" => options.vocab = value()?.parse()?,
            "--seed" => options.seed = value()?.parse()?,
            other => return Err(format!("unknown option {other} (see the example's docs)").into()),
        }
    }
    if !options.minutes.is_finite() || options.minutes <= 0.0 || options.threads == 0 {
        return Err("--minutes must be > 0 and --threads ≥ 1".into());
    }
    Ok(options)
}

fn rust_docs_root() -> Result<PathBuf, BoxError> {
    let out = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()?;
    let root = PathBuf::from(String::from_utf8(out.stdout)?.trim()).join("share/doc/rust/html");
    if !root.is_dir() {
        return Err(format!(
            "{} is missing (install the rust-docs component, or pass --data DIR)",
            root.display()
        )
        .into());
    }
    Ok(root)
}

fn main() -> Result<(), BoxError> {
    let options = parse_options()?;
    let started = Instant::now();

    // 1. Collect, clean, deduplicate.
    let (root, source) = match &options.data {
        Some(dir) => (dir.clone(), DirectorySource::new(dir)),
        None => {
            let root = rust_docs_root()?;
            (
                root.clone(),
                DirectorySource::new(&root).include(RUST_BOOKS)?,
            )
        }
    };
    println!("== 1. corpus: {}", root.display());
    let corpus_config = CorpusConfig::default();
    let (docs, report) = run_directory(&source, &corpus_config)?;
    println!(
        "   {} files, {} documents, {:.1} MB of text collected; {} documents, {:.1} MB kept",
        report.collect.files,
        report.collect.documents,
        report.collect.text_bytes as f64 / 1e6,
        report.documents_out,
        report.bytes_out as f64 / 1e6,
    );
    println!(
        "   removed: {} by quality rules, {} exact duplicates, {} near duplicates, {} containers; \
         {} repeated paragraphs dropped",
        report
            .collect
            .documents
            .saturating_sub(report.emptied)
            .saturating_sub(report.quality.passed),
        report.exact.removed,
        report.near.removed,
        report.containment.removed,
        report.paragraphs.dropped,
    );
    if docs.len() < 10 {
        return Err(format!(
            "only {} documents survived cleaning: too few to train on",
            docs.len()
        )
        .into());
    }

    // 2. Split, tokenizer, packing.
    let splits = split_indices(
        docs.len(),
        SplitFractions::new(0.95, 0.05, 0.0)?,
        options.seed,
    )?;
    let train_docs: Vec<&Document> = splits.train.iter().map(|&i| &docs[i]).collect();
    let held_out_docs: Vec<&Document> = splits.validation.iter().map(|&i| &docs[i]).collect();
    let train_texts: Vec<&str> = train_docs.iter().map(|d| d.text.as_str()).collect();
    let held_out_texts: Vec<&str> = held_out_docs.iter().map(|d| d.text.as_str()).collect();
    let t = Instant::now();
    let tokenizer = BpeTrainer::builder()
        .vocab_size(options.vocab)
        .min_frequency(2)
        .special_tokens([END_OF_TEXT, PAD])
        .build()?
        .train(&train_texts)?;
    let eot = tokenizer
        .token_to_id(END_OF_TEXT)
        .ok_or("no end-of-text id")?;
    let pad = tokenizer.token_to_id(PAD).ok_or("no padding id")?;
    let train_ids = tokenizer.encode_batch_of(&train_texts);
    let held_out_ids = tokenizer.encode_batch_of(&held_out_texts);
    let train_windows = pack_documents(&train_ids, &PackingOptions::new(CONTEXT, eot))?;
    let held_out_windows = pack_documents(
        &held_out_ids,
        &PackingOptions::new(CONTEXT, eot).tail(TailPolicy::Pad { pad_id: pad }),
    )?;
    let train_tokens: usize = train_ids.iter().map(Vec::len).sum();
    println!(
        "== 2. {} train / {} held-out documents; BPE vocab {} trained in {:.2} s; {} train tokens \
         ({:.2} bytes/token) in {} windows, {} held-out windows",
        train_docs.len(),
        held_out_docs.len(),
        tokenizer.vocab_size(),
        t.elapsed().as_secs_f64(),
        train_tokens,
        train_texts.iter().map(|t| t.len()).sum::<usize>() as f64 / train_tokens as f64,
        train_windows.len(),
        held_out_windows.len(),
    );

    // 3. Train.
    let mut config = GptConfig::new(tokenizer.vocab_size(), CONTEXT, 128, 4, 4);
    config.dropout = 0.0;
    let mut model = Gpt::<f32>::new(config.clone(), options.seed)?;
    let mut params = std::mem::take(model.params_mut());
    let batches = make_batches(&train_windows, BATCH);
    let step_time = calibrate(&model, &params, &batches[0], options.threads)?;
    let budget = Duration::from_secs_f64(options.minutes * 60.0);
    let total_steps = ((budget.as_secs_f64() / step_time) as u64).max(20);
    let n_params: usize = params.iter().map(|(_, p)| p.value().len()).sum();
    println!(
        "== 3. GPT d_model {} × {} layers, {:.2} M parameters; ~{:.0} ms/step on {} threads → {} steps \
         (batch {} × {} tokens, budget {:.1} min)",
        config.d_model,
        config.n_layers,
        n_params as f64 / 1e6,
        step_time * 1e3,
        options.threads,
        total_steps,
        BATCH,
        CONTEXT,
        options.minutes,
    );
    let run_dir = options.out.join("rust-docs-gpt-run");
    fs::create_dir_all(&run_dir)?;
    let adamw = AdamConfig::adamw().lr(1e-3).weight_decay(0.01).build()?;
    let schedule = LrSchedule::warmup_cosine(total_steps.min(100) / 2, total_steps, 1e-4)?;
    let mut optimizer = AdamW::<f32>::new(adamw).with_schedule(schedule)?;
    let mut loader = VecLoader::new(batches, options.seed)?;
    let trainer_config = TrainerConfig {
        max_steps: Some(total_steps),
        // A safety net: the step count above is an estimate.
        max_wall_clock: Some(budget.mul_f64(1.25)),
        clip_norm: Some(1.0),
        eval_every: Some((total_steps / 4).max(1)),
        checkpoint_every: Some((total_steps / 4).max(1)),
        log_every: 10,
        seed: options.seed,
        threads: Some(options.threads),
        checkpoint_dir: Some(run_dir.join("checkpoints")),
        keep_last: 2,
        // Each run of the example starts afresh (a resumed run would skip the data pipeline's
        // randomness checks); fm-train's tests cover resume.
        resume: false,
        metrics_log: Some(run_dir.join("metrics.jsonl")),
        loss_plot: Some(run_dir.join("loss.png")),
        progress: true,
        ..TrainerConfig::default()
    };
    let _ = fs::remove_dir_all(run_dir.join("checkpoints"));
    let eval_batches = make_batches(&held_out_windows, BATCH);
    let quick_eval: Vec<Batch> = eval_batches.iter().take(4).cloned().collect();
    let model_ref = &model;
    let loss_fn = |ctx: &StepContext,
                   p: &ParamStore<f32>,
                   (ids, targets): &Batch|
     -> Result<LossOutput<f32>, BoxError> {
        let tape = Tape::new();
        let forward = ForwardContext::new(&tape, p).with_dropout_seed(ctx.seed);
        let loss = model_ref.loss(&forward, ids.view(), targets.view())?;
        let value = f64::from(loss.item()?);
        drop(forward);
        Ok(LossOutput {
            loss: value,
            grads: tape.backward(loss)?,
            tokens: ids.len() as u64,
        })
    };
    let mut eval_fn = |p: &ParamStore<f32>, _step: u64| -> Result<MetricValues, BoxError> {
        let metrics = evaluate(model_ref, p, &quick_eval, pad, None)?;
        let mut values = MetricValues::new();
        values.insert(
            "held_out_loss",
            Ok(metrics.mean_cross_entropy),
            Direction::LowerIsBetter,
        );
        Ok(values)
    };
    let mut trainer = Trainer::new(trainer_config)?;
    let summary = trainer.fit(
        &mut params,
        &mut optimizer,
        &mut loader,
        loss_fn,
        Some(&mut eval_fn),
    )?;
    println!(
        "   {} steps, {} tokens in {:.1} s ({:.0} tokens/s); stopped: {:?}; final train loss {:.3}",
        summary.steps,
        summary.tokens_seen,
        summary.wall_time.as_secs_f64(),
        summary.tokens_seen as f64 / summary.wall_time.as_secs_f64(),
        summary.stop_reason,
        summary.final_loss.unwrap_or(f64::NAN),
    );
    *model.params_mut() = params;

    // 4. Evaluate.
    let held_out_bytes = target_bytes(&held_out_texts, &held_out_ids, &tokenizer)?;
    let metrics = evaluate(
        &model,
        model.params(),
        &eval_batches,
        pad,
        Some(held_out_bytes),
    )?;
    let unigram = unigram_baseline(
        &train_ids,
        &held_out_windows,
        tokenizer.vocab_size(),
        pad,
        eot,
        held_out_bytes,
    );
    println!(
        "== 4. held-out: cross-entropy {:.3} nats/token, perplexity {:.1}, {:.3} bits/byte over {} tokens",
        metrics.mean_cross_entropy,
        metrics.perplexity,
        metrics.bits_per_byte.unwrap_or(f64::NAN),
        metrics.tokens,
    );
    println!(
        "   unigram baseline: cross-entropy {:.3}, perplexity {:.1}, {:.3} bits/byte",
        unigram.0,
        unigram.0.exp(),
        unigram.1,
    );

    // 5. Save a versioned model directory, then sample.
    let models = options.out.join("models").join("rust-docs-gpt");
    let version = next_version(&models)?;
    let staging = models.join(format!(".v{version}.tmp"));
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir_all(&staging)?;
    model.save(&staging)?;
    tokenizer.save(staging.join("tokenizer.json"))?;
    let metrics_json = serde_json::json!({
        "held_out": {
            "cross_entropy": metrics.mean_cross_entropy,
            "perplexity": metrics.perplexity,
            "bits_per_token": metrics.bits_per_token,
            "bits_per_byte": metrics.bits_per_byte,
            "tokens": metrics.tokens,
            "bytes": metrics.bytes,
        },
        "unigram_baseline": { "cross_entropy": unigram.0, "perplexity": unigram.0.exp(), "bits_per_byte": unigram.1 },
        "training": {
            "steps": summary.steps,
            "tokens_seen": summary.tokens_seen,
            "wall_time_s": summary.wall_time.as_secs_f64(),
            "final_loss": summary.final_loss,
            "threads": options.threads,
            "stop_reason": format!("{:?}", summary.stop_reason),
        },
    });
    write_json(&staging.join("metrics.json"), &metrics_json)?;
    write_json(
        &staging.join("corpus_report.json"),
        &serde_json::to_value(&report)?,
    )?;
    let manifest = manifest(
        &staging,
        &root,
        &docs,
        &splits.train,
        &splits.validation,
        &options,
        version,
    )?;
    write_json(&staging.join("manifest.json"), &manifest)?;
    let final_dir = models.join(format!("v{version}"));
    fs::rename(&staging, &final_dir)?;
    println!("== 5. saved {}", final_dir.display());

    let reloaded = Gpt::<f32>::load(&final_dir)?;
    let prompt = tokenizer.encode("fn main() {")?;
    let sample_options = GenerateOptions {
        max_new_tokens: 80,
        temperature: 0.8,
        top_k: Some(40),
        seed: options.seed,
        stop_tokens: vec![eot],
        ..GenerateOptions::greedy()
    };
    let generated = generate(&reloaded, &prompt, &sample_options)?;
    let mut text = tokenizer.decode(&prompt)?;
    text.push_str(&String::from_utf8_lossy(&decode_bytes(
        &tokenizer,
        &generated.tokens,
    )?));
    println!("   sample (temperature 0.8, top-k 40):\n---\n{text}\n---");
    println!("done in {:.1} min", started.elapsed().as_secs_f64() / 60.0);
    Ok(())
}

/// Consecutive windows grouped into batches (the last, short batch is kept).
fn make_batches(windows: &PackedWindows, batch: usize) -> Vec<Batch> {
    (0..windows.len())
        .step_by(batch)
        .map(|start| {
            let end = (start + batch).min(windows.len());
            (
                windows.inputs.slice(s![start..end, ..]).to_owned(),
                windows.targets.slice(s![start..end, ..]).to_owned(),
            )
        })
        .collect()
}

/// Seconds per training step (forward, backward), measured on a copy of the parameters.
fn calibrate(
    model: &Gpt<f32>,
    params: &ParamStore<f32>,
    (ids, targets): &Batch,
    threads: usize,
) -> Result<f64, BoxError> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    pool.install(|| {
        let mut times = Vec::new();
        for _ in 0..3 {
            let t = Instant::now();
            let tape = Tape::new();
            let forward = ForwardContext::new(&tape, params);
            let loss = model.loss(&forward, ids.view(), targets.view())?;
            drop(forward);
            tape.backward(loss)?;
            times.push(t.elapsed().as_secs_f64());
        }
        // The optimizer step and the loop add a little; 10% covers it.
        Ok(times[1..].iter().cloned().fold(f64::MAX, f64::min) * 1.1)
    })
}

/// Held-out token cross-entropy (padding targets ignored), with bits per byte when `bytes` is given.
fn evaluate(
    model: &Gpt<f32>,
    params: &ParamStore<f32>,
    batches: &[Batch],
    pad: u32,
    bytes: Option<u64>,
) -> Result<LanguageModelMetrics, BoxError> {
    let vocab = model.config().vocab_size;
    let mut metric = TokenCrossEntropy::new(vocab)?.with_ignore_index(pad as usize);
    for (ids, targets) in batches {
        let tape = Tape::no_grad();
        let forward = ForwardContext::new(&tape, params);
        let logits = model.forward(&forward, ids.view())?.value().into_array();
        let rows = logits.into_shape_with_order((ids.len(), vocab))?;
        let flat: Vec<u32> = targets.iter().copied().collect();
        metric.update_logits(rows.view(), flat.as_slice())?;
    }
    if let Some(bytes) = bytes {
        metric.add_bytes(bytes);
    }
    Ok(metric.compute()?)
}

/// The bytes the held-out targets stand for: every document's text, less the first token of the
/// stream (it is never a target). End-of-text tokens stand for no bytes.
fn target_bytes(
    texts: &[&str],
    ids: &[Vec<u32>],
    tokenizer: &BpeTokenizer,
) -> Result<u64, BoxError> {
    let total: usize = texts.iter().map(|t| t.len()).sum();
    let first = ids.iter().find_map(|d| d.first().copied());
    let first_len = match first {
        Some(id) => decode_bytes(tokenizer, &[id])?.len(),
        None => 0,
    };
    Ok((total - first_len) as u64)
}

/// Raw bytes of `ids` (a byte-level token may hold part of a UTF-8 character).
fn decode_bytes(tokenizer: &BpeTokenizer, ids: &[u32]) -> Result<Vec<u8>, BoxError> {
    Ok(tokenizer.decode_bytes(ids)?)
}

/// Cross-entropy (nats/token) and bits per byte of a unigram model fitted on the training tokens
/// (add-one smoothing), on the same held-out targets as the GPT.
fn unigram_baseline(
    train_ids: &[Vec<u32>],
    held_out: &PackedWindows,
    vocab: usize,
    pad: u32,
    eot: u32,
    bytes: u64,
) -> (f64, f64) {
    let mut counts = vec![1.0f64; vocab];
    let mut total = vocab as f64;
    for doc in train_ids {
        for &id in doc.iter().chain(std::iter::once(&eot)) {
            counts[id as usize] += 1.0;
            total += 1.0;
        }
    }
    let (mut nll, mut n) = (0.0, 0u64);
    for &t in held_out.targets.iter() {
        if t != pad {
            nll -= (counts[t as usize] / total).ln();
            n += 1;
        }
    }
    (nll / n as f64, nll / std::f64::consts::LN_2 / bytes as f64)
}

fn next_version(models: &Path) -> Result<u64, BoxError> {
    fs::create_dir_all(models)?;
    let mut latest = 0;
    for entry in fs::read_dir(models)? {
        let name = entry?.file_name();
        if let Some(v) = name
            .to_str()
            .and_then(|n| n.strip_prefix('v'))
            .and_then(|v| v.parse::<u64>().ok())
        {
            latest = latest.max(v);
        }
    }
    Ok(latest + 1)
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<(), BoxError> {
    let mut file = fs::File::create(path)?;
    file.write_all(serde_json::to_string_pretty(value)?.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Content hashes of every file in the model directory, and where the data came from: the corpus
/// root, the documents of each split (source path and content hash), and a hash over that list.
fn manifest(
    dir: &Path,
    root: &Path,
    docs: &[Document],
    train: &[usize],
    held_out: &[usize],
    options: &Options,
    version: u64,
) -> Result<serde_json::Value, BoxError> {
    let mut files = BTreeMap::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        files.insert(name, sha256_hex(&fs::read(&path)?));
    }
    let listing = |indices: &[usize]| -> Vec<String> {
        indices
            .iter()
            .map(|&i| {
                let d = &docs[i];
                let relative = d.path.strip_prefix(root).unwrap_or(&d.path);
                format!("{}:{}:{:016x}", relative.display(), d.line, d.hash)
            })
            .collect()
    };
    let (train_list, held_out_list) = (listing(train), listing(held_out));
    let corpus_hash =
        sha256_hex((train_list.join("\n") + "\n--\n" + &held_out_list.join("\n")).as_bytes());
    let texts_hash = {
        let mut hasher = Sha256::new();
        for d in docs {
            hasher.update(d.text.as_bytes());
            hasher.update([0u8]);
        }
        hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    Ok(serde_json::json!({
        "name": "rust-docs-gpt",
        "version": version,
        "created_unix_s": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs(),
        "fm_version": env!("CARGO_PKG_VERSION"),
        "files_sha256": files,
        "data": {
            "root": root.display().to_string(),
            "documents": docs.len(),
            "cleaned_text_sha256": texts_hash,
            "split_listing_sha256": corpus_hash,
            "split_seed": options.seed,
            "train_documents": train_list,
            "held_out_documents": held_out_list,
        },
    }))
}
