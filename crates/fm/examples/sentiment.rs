//! A sentiment-style classifier trained on a small labelled set, with the fm crates as a user would
//! use them.
//!
//! 1. Read labelled JSON Lines (`{"text": ..., "label": ...}`; any set of string labels) with
//!    fm-data; a malformed line stops the run with an error naming the file and the line. The
//!    default set, `examples/data/sentiment.jsonl`, is synthetic: 4 000 review-like sentences made
//!    by the seeded `make_sentiment.py` beside it, with negations ("not bad" is positive), contrasts
//!    ("great but slow": the clause after "but" decides) and hedges, so that a bag of words is
//!    not enough (a unigram logistic regression scores about 53% on it).
//! 2. Split it into train / validation / test (70 / 15 / 15), stratified by label and seeded.
//! 3. Train a byte-level BPE tokenizer on the training texts only. BPE rather than the char
//!    tokenizer: sentences become ~12 tokens instead of ~60 characters (attention costs grow with
//!    the square of the length), a word like "not" is one token the model can attend to, and
//!    unseen words still encode (as bytes). Sequences are truncated to `--max-len` tokens and each
//!    batch is padded to its longest, with a padding mask.
//! 4. Train fm-nn's `EncoderClassifier` (one bidirectional block, width 64, mean pooling) with
//!    fm-optim's AdamW (warmup + cosine decay) and fm-loss's cross-entropy under fm-train's
//!    `Trainer`: 2 threads, seeded, a fixed number of epochs, validation accuracy after each
//!    epoch. (One block learns this set faster and more reliably across seeds than two.)
//! 5. Evaluate on the test split with fm-eval — accuracy, macro F1, per-class precision and recall,
//!    the confusion matrix — beside the majority-class baseline, and on the negated test sentences
//!    alone; print a few predictions.
//! 6. Save the model, `tokenizer.json` and the label names under `runs/sentiment/model`.
//!
//! ```text
//! cargo run --release -p fm --example sentiment
//! cargo run --release -p fm --example sentiment -- --data my/reviews.jsonl --epochs 10
//! ```
//! Options: `--data PATH` (JSON Lines with `text` and `label` fields), `--epochs N` (default 12),
//! `--minutes M` (a wall-clock cap, default 3), `--threads N` (default 2), `--max-len N` (tokens,
//! default 48), `--vocab N` (BPE vocabulary, default 1000), `--out DIR` (default `runs`),
//! `--seed S`.
//!
//! The run is deterministic for a seed: the same metrics and the same weight fingerprint on every
//! run and for any thread count, as long as it ends on `--epochs` (if the `--minutes` cap stops it
//! first, it says so, and the result depends on the machine's speed).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use fm::data::collect::JsonlFields;
use fm::data::dataset::collate::{Collate, PadCollate};
use fm::data::dataset::split::Splits;
use fm::data::labels::{read_labelled_jsonl, stratified_split, LabelVocab, LabelledText};
use fm::data::tokenizer::{BpeTokenizer, BpeTrainer, Tokenizer};
use fm::eval::{Accuracy, Average, ConfusionMatrix, Direction, Metric, MetricValues, ZeroDivision};
use fm::nn::{EncoderClassifier, EncoderConfig, ForwardContext, Module};
use fm::optim::{AdamConfig, AdamW, LrSchedule};
use fm::tensor::autograd::{ParamStore, Tape};
use fm::train::rng::SplitMix64;
use fm::train::{BoxError, LossOutput, StepContext, StopReason, Trainer, TrainerConfig, VecLoader};
use ndarray::Array2;

const PAD: &str = "<|pad|>";
const BATCH: usize = 32;
const DEFAULT_DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data/sentiment.jsonl");

struct Options {
    data: PathBuf,
    epochs: u64,
    minutes: f64,
    threads: usize,
    max_len: usize,
    vocab: usize,
    out: PathBuf,
    seed: u64,
}

fn parse_options() -> Result<Options, BoxError> {
    let mut options = Options {
        data: PathBuf::from(DEFAULT_DATA),
        epochs: 12,
        minutes: 3.0,
        threads: 2,
        max_len: 48,
        vocab: 1000,
        out: PathBuf::from("runs"),
        seed: 20261129,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--data" => options.data = PathBuf::from(value()?),
            "--epochs" => options.epochs = value()?.parse()?,
            "--minutes" => options.minutes = value()?.parse()?,
            "--threads" => options.threads = value()?.parse()?,
            "--max-len" => options.max_len = value()?.parse()?,
            "--vocab" => options.vocab = value()?.parse()?,
            "--out" => options.out = PathBuf::from(value()?),
            "--seed" => options.seed = value()?.parse()?,
            other => return Err(format!("unknown option {other} (see the example's docs)").into()),
        }
    }
    if options.epochs == 0 || options.threads == 0 || options.max_len == 0 {
        return Err("--epochs, --threads and --max-len must be ≥ 1".into());
    }
    if !options.minutes.is_finite() || options.minutes <= 0.0 {
        return Err("--minutes must be > 0".into());
    }
    Ok(options)
}

/// One padded batch: ids and mask `[batch, longest]`, and a class id per row.
#[derive(Clone)]
struct Batch {
    ids: Array2<u32>,
    mask: Array2<bool>,
    labels: Vec<u32>,
}

/// Batches of `rows` (in the given order) padded to the longest row of each batch.
fn make_batches(
    rows: &[usize],
    ids: &[Vec<u32>],
    labels: &[u32],
    pad: u32,
) -> Result<Vec<Batch>, BoxError> {
    let collate = PadCollate::new(pad);
    rows.chunks(BATCH)
        .map(|chunk| {
            let padded = collate.collate(chunk.iter().map(|&i| ids[i].clone()).collect())?;
            Ok(Batch {
                ids: padded.ids,
                mask: padded.attention_mask.mapv(|m| m == 1),
                labels: chunk.iter().map(|&i| labels[i]).collect(),
            })
        })
        .collect()
}

/// Train / validation / test indices, each stratified by label and sorted.
fn three_way_split(labels: &[&str], seed: u64) -> Result<Splits, BoxError> {
    let (rest, test) = stratified_split(labels, 0.15, seed)?;
    let rest_labels: Vec<&str> = rest.iter().map(|&i| labels[i]).collect();
    // 15% of the whole is 0.15 / 0.85 of what is left.
    let (train, validation) = stratified_split(&rest_labels, 0.15 / 0.85, seed ^ 0x5eed)?;
    let back = |local: Vec<usize>| local.into_iter().map(|j| rest[j]).collect::<Vec<_>>();
    Ok(Splits {
        train: back(train),
        validation: back(validation),
        test,
    })
}

/// Class logits `[rows, classes]` of every batch, stacked (no gradients).
fn logits(
    model: &EncoderClassifier<f32>,
    params: &ParamStore<f32>,
    batches: &[Batch],
) -> Result<Vec<Vec<f32>>, BoxError> {
    let mut out = Vec::new();
    for batch in batches {
        let tape = Tape::no_grad();
        let ctx = ForwardContext::new(&tape, params);
        let scores = model.forward(&ctx, batch.ids.view(), Some(batch.mask.view()))?;
        let scores = scores.value().into_dimensionality::<ndarray::Ix2>()?;
        out.extend(scores.outer_iter().map(|row| row.to_vec()));
    }
    Ok(out)
}

/// The class with the highest logit (the first on a tie).
fn argmax(row: &[f32]) -> u32 {
    (0..row.len()).fold(0, |best, c| if row[c] > row[best] { c } else { best }) as u32
}

/// The softmax probability of the highest logit: 1 / Σ exp(logit − max).
fn top_probability(row: &[f32]) -> f32 {
    let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = row.iter().map(|v| (v - max).exp()).sum();
    1.0 / sum
}

/// English negation cues, for the "negated sentences" slice of the test set.
fn is_negated(text: &str) -> bool {
    let lower = text.to_lowercase();
    lower.contains("n't")
        || lower
            .split(|c: char| !c.is_alphanumeric())
            .any(|w| matches!(w, "not" | "never" | "no" | "nothing"))
}

/// FNV-1a over the bits of every parameter: equal fingerprints mean bit-identical weights.
fn fingerprint(params: &ParamStore<f32>) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for (_, p) in params.iter() {
        for v in p.value().iter() {
            for byte in v.to_bits().to_le_bytes() {
                hash = (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3);
            }
        }
    }
    hash
}

fn print_report(title: &str, cm: &ConfusionMatrix, classes: &LabelVocab) -> Result<(), BoxError> {
    let per_class = cm.per_class(1.0, ZeroDivision::Zero)?;
    println!(
        "   {title}: accuracy {:.4}, macro F1 {:.4}",
        cm.accuracy()?,
        cm.fbeta(1.0, Average::Macro, ZeroDivision::Zero)?
    );
    for (c, name) in classes.labels().iter().enumerate() {
        println!(
            "     {name:>12}: precision {:.4}  recall {:.4}  F1 {:.4}  support {}",
            per_class.precision[c], per_class.recall[c], per_class.fbeta[c], per_class.support[c]
        );
    }
    Ok(())
}

fn print_confusion(cm: &ConfusionMatrix, classes: &LabelVocab) {
    let width = classes
        .labels()
        .iter()
        .map(String::len)
        .max()
        .unwrap_or(4)
        .max(6);
    print!("     {:>width$}", "true \\ predicted");
    for name in classes.labels() {
        print!("  {name:>width$}");
    }
    println!();
    for (t, name) in classes.labels().iter().enumerate() {
        print!("     {name:>w$}", w = width.max(16));
        for p in 0..classes.len() {
            print!("  {:>width$}", cm.get(t, p));
        }
        println!();
    }
}

fn main() {
    // Errors are printed with their message (file and line for a bad data line), not as Debug.
    if let Err(error) = run() {
        eprintln!("error: {error}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), BoxError> {
    let options = parse_options()?;
    let started = std::time::Instant::now();

    // 1. Read the labelled set.
    let fields = JsonlFields::new("text").with_label("label");
    let examples: Vec<LabelledText> = read_labelled_jsonl(&options.data, &fields)?;
    let classes = LabelVocab::from_labels(examples.iter().map(|e| e.label.as_str()));
    if classes.len() < 2 {
        return Err(format!(
            "{}: only one label ({:?}); a classifier needs at least two",
            options.data.display(),
            classes.labels()
        )
        .into());
    }
    let label_names: Vec<&str> = examples.iter().map(|e| e.label.as_str()).collect();
    let labels: Vec<u32> = label_names
        .iter()
        .map(|l| classes.id(l).expect("every label is in the set"))
        .collect();
    let counts = fm::data::labels::class_counts(&label_names);
    println!(
        "== 1. {} labelled texts from {}; classes {:?}",
        examples.len(),
        options.data.display(),
        counts
    );

    // 2. Stratified, seeded split.
    let Splits {
        train,
        validation,
        test,
    } = three_way_split(&label_names, options.seed)?;
    if train.is_empty() || validation.is_empty() || test.is_empty() {
        return Err(format!(
            "{}: too few texts for a train / validation / test split ({} train, {} validation, {} test)",
            options.data.display(),
            train.len(),
            validation.len(),
            test.len()
        )
        .into());
    }
    println!(
        "== 2. split (stratified, seed {}): {} train / {} validation / {} test",
        options.seed,
        train.len(),
        validation.len(),
        test.len()
    );

    // 3. Tokenizer trained on the training texts only; truncate, then pad per batch.
    let train_texts: Vec<&str> = train.iter().map(|&i| examples[i].text.as_str()).collect();
    let tokenizer: BpeTokenizer = BpeTrainer::builder()
        .vocab_size(options.vocab)
        .min_frequency(2)
        .special_tokens([PAD])
        .build()?
        .train(&train_texts)?;
    let pad = tokenizer.token_to_id(PAD).ok_or("no padding id")?;
    let all_texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
    let mut ids = tokenizer.encode_batch_of(&all_texts);
    let mut truncated = 0;
    for row in &mut ids {
        if row.len() > options.max_len {
            row.truncate(options.max_len);
            truncated += 1;
        }
    }
    let mean_len = ids.iter().map(Vec::len).sum::<usize>() as f64 / ids.len() as f64;
    println!(
        "== 3. BPE vocabulary {} (trained on the training texts); {mean_len:.1} tokens per text on \
         average, {truncated} texts truncated to {} tokens",
        tokenizer.vocab_size(),
        options.max_len
    );

    // 4. Train.
    let mut config = EncoderConfig::new(
        tokenizer.vocab_size(),
        options.max_len,
        64,
        1,
        4,
        classes.len(),
    );
    config.dropout = 0.1;
    let mut model = EncoderClassifier::<f32>::new(config.clone(), options.seed)?;
    // The same architecture in evaluation mode (no dropout) for validation during training; it
    // reads the trainer's parameters, not its own.
    let mut eval_model = EncoderClassifier::<f32>::new(config.clone(), options.seed)?;
    eval_model.set_training(false);
    let mut params = std::mem::take(model.params_mut());
    let n_params: usize = params.iter().map(|(_, p)| p.value().len()).sum();

    let mut shuffled = train.clone();
    SplitMix64::new(options.seed).shuffle(&mut shuffled);
    let train_batches = make_batches(&shuffled, &ids, &labels, pad)?;
    let validation_batches = make_batches(&validation, &ids, &labels, pad)?;
    let test_batches = make_batches(&test, &ids, &labels, pad)?;
    let steps_per_epoch = train_batches.len() as u64;
    let total_steps = steps_per_epoch * options.epochs;
    println!(
        "== 4. EncoderClassifier d_model {}, {} block(s), {} heads, {:.0} k parameters; {} epochs × {} \
         steps of {BATCH} texts on {} threads",
        config.d_model,
        config.n_layers,
        config.n_heads,
        n_params as f64 / 1e3,
        options.epochs,
        steps_per_epoch,
        options.threads
    );

    let run_dir = options.out.join("sentiment");
    std::fs::create_dir_all(&run_dir)?;
    let adamw = AdamConfig::adamw().lr(2e-3).weight_decay(0.01).build()?;
    let warmup = (total_steps / 10).max(1).min(total_steps - 1);
    let schedule = LrSchedule::warmup_cosine(warmup, total_steps, 1e-4)?;
    let mut optimizer = AdamW::<f32>::new(adamw).with_schedule(schedule)?;
    let mut loader = VecLoader::new(train_batches, options.seed)?;
    let trainer_config = TrainerConfig {
        max_steps: Some(total_steps),
        max_wall_clock: Some(Duration::from_secs_f64(options.minutes * 60.0)),
        clip_norm: Some(1.0),
        eval_every: Some(steps_per_epoch),
        log_every: (steps_per_epoch / 4).max(1),
        seed: options.seed,
        threads: Some(options.threads),
        metrics_log: Some(run_dir.join("metrics.jsonl")),
        loss_plot: Some(run_dir.join("loss.png")),
        progress: true,
        ..TrainerConfig::default()
    };
    // A fresh log per run (the trainer appends).
    let _ = std::fs::remove_file(run_dir.join("metrics.jsonl"));
    let model_ref = &model;
    let loss_fn = |ctx: &StepContext,
                   p: &ParamStore<f32>,
                   batch: &Batch|
     -> Result<LossOutput<f32>, BoxError> {
        let tape = Tape::new();
        let forward = ForwardContext::new(&tape, p).with_dropout_seed(ctx.seed);
        let loss = model_ref.loss(
            &forward,
            batch.ids.view(),
            Some(batch.mask.view()),
            &batch.labels,
        )?;
        let value = f64::from(loss.item()?);
        drop(forward);
        Ok(LossOutput {
            loss: value,
            grads: tape.backward(loss)?,
            tokens: batch.mask.iter().filter(|&&m| m).count() as u64,
        })
    };
    let eval_ref = &eval_model;
    let n_classes = classes.len();
    let mut eval_fn = |p: &ParamStore<f32>, step: u64| -> Result<MetricValues, BoxError> {
        let scores = logits(eval_ref, p, &validation_batches)?;
        let predicted: Vec<u32> = scores.iter().map(|r| argmax(r)).collect();
        let truth: Vec<u32> = validation_batches
            .iter()
            .flat_map(|b| b.labels.iter().copied())
            .collect();
        let mut accuracy = Accuracy::new(n_classes)?;
        accuracy.update(truth.as_slice(), predicted.as_slice())?;
        let mut values = MetricValues::new();
        values.insert(
            "validation_accuracy",
            accuracy.compute(),
            Direction::HigherIsBetter,
        );
        println!(
            "   epoch {:>2}: validation accuracy {:.4}",
            step / steps_per_epoch,
            accuracy.compute()?
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
        "   {} steps in {:.1} s; stopped: {:?}; final train loss {:.4}; weight fingerprint {:016x}",
        summary.steps,
        summary.wall_time.as_secs_f64(),
        summary.stop_reason,
        summary.final_loss.unwrap_or(f64::NAN),
        fingerprint(&params)
    );
    if !matches!(summary.stop_reason, StopReason::MaxSteps) {
        println!(
            "   note: training stopped before {} epochs ({:?}); the result depends on this machine's \
             speed (raise --minutes for a run that is the same everywhere)",
            options.epochs, summary.stop_reason
        );
    }
    *model.params_mut() = params;
    model.set_training(false);

    // 5. Test-set evaluation beside the majority-class baseline.
    let scores = logits(&model, model.params(), &test_batches)?;
    let predicted: Vec<u32> = scores.iter().map(|r| argmax(r)).collect();
    let truth: Vec<u32> = test.iter().map(|&i| labels[i]).collect();
    let mut train_counts = vec![0usize; classes.len()];
    for &i in &train {
        train_counts[labels[i] as usize] += 1;
    }
    // The most frequent training class (the first such class on a tie).
    let majority = (0..classes.len()).fold(0, |best, c| {
        if train_counts[c] > train_counts[best] {
            c
        } else {
            best
        }
    }) as u32;
    let mut model_cm = ConfusionMatrix::new(classes.len())?;
    model_cm.update(truth.as_slice(), predicted.as_slice())?;
    let mut baseline_cm = ConfusionMatrix::new(classes.len())?;
    baseline_cm.update(truth.as_slice(), vec![majority; truth.len()].as_slice())?;
    println!("== 5. test set ({} texts)", truth.len());
    print_report("model", &model_cm, &classes)?;
    print_report(
        &format!(
            "majority-class baseline (always {:?})",
            classes.label(majority).unwrap_or_default()
        ),
        &baseline_cm,
        &classes,
    )?;
    println!("   confusion matrix of the model:");
    print_confusion(&model_cm, &classes);
    let negated: Vec<usize> = (0..test.len())
        .filter(|&k| is_negated(&examples[test[k]].text))
        .collect();
    if !negated.is_empty() {
        let correct = negated
            .iter()
            .filter(|&&k| predicted[k] == truth[k])
            .count();
        println!(
            "   negated sentences (not, n't, never, no): {correct} / {} correct ({:.4})",
            negated.len(),
            correct as f64 / negated.len() as f64
        );
    }
    println!("   a few test predictions:");
    let shown: Vec<usize> = negated
        .iter()
        .copied()
        .take(4)
        .chain((0..test.len()).filter(|k| !negated.contains(k)).take(4))
        .collect();
    for k in shown {
        let mark = if predicted[k] == truth[k] {
            "ok  "
        } else {
            "MISS"
        };
        println!(
            "     [{mark}] {:>9} ({:.2}) true {:>9}: {}",
            classes.label(predicted[k]).unwrap_or_default(),
            top_probability(&scores[k]),
            classes.label(truth[k]).unwrap_or_default(),
            examples[test[k]].text
        );
    }
    // Sentences the model has never seen, for the default positive / negative labels.
    if classes.labels() == ["negative", "positive"] {
        let probes = [
            "the food was not bad.",
            "the food was not good.",
            "i did not enjoy the movie.",
            "the acting was great but the plot was awful.",
            "the plot was awful but the acting was great.",
            "although the battery was weak, the screen was lovely.",
        ];
        let probe_ids: Vec<Vec<u32>> = tokenizer
            .encode_batch_of(&probes)
            .into_iter()
            .map(|mut row| {
                row.truncate(options.max_len);
                row
            })
            .collect();
        let rows: Vec<usize> = (0..probes.len()).collect();
        let probe_batches = make_batches(&rows, &probe_ids, &vec![0; probes.len()], pad)?;
        let probe_scores = logits(&model, model.params(), &probe_batches)?;
        println!("   new sentences:");
        for (text, row) in probes.iter().zip(&probe_scores) {
            println!(
                "     {:>9} ({:.2}): {text}",
                classes.label(argmax(row)).unwrap_or_default(),
                top_probability(row)
            );
        }
    }

    // 6. Save the model, the tokenizer and the label names.
    let model_dir = run_dir.join("model");
    model.save(&model_dir)?;
    tokenizer.save(model_dir.join("tokenizer.json"))?;
    let metrics: BTreeMap<&str, f64> = BTreeMap::from([
        ("test_accuracy", model_cm.accuracy()?),
        (
            "test_macro_f1",
            model_cm.fbeta(1.0, Average::Macro, ZeroDivision::Zero)?,
        ),
        ("baseline_accuracy", baseline_cm.accuracy()?),
        (
            "baseline_macro_f1",
            baseline_cm.fbeta(1.0, Average::Macro, ZeroDivision::Zero)?,
        ),
    ]);
    std::fs::write(
        model_dir.join("labels.json"),
        serde_json::to_string_pretty(classes.labels())?,
    )?;
    std::fs::write(
        model_dir.join("metrics.json"),
        serde_json::to_string_pretty(&metrics)?,
    )?;
    println!(
        "== 6. saved {} (weights, config, tokenizer.json, labels.json, metrics.json); log and loss \
         curve in {}",
        model_dir.display(),
        run_dir.display()
    );
    println!("done in {:.1} s", started.elapsed().as_secs_f64());
    if model_cm.accuracy()? <= baseline_cm.accuracy()? {
        eprintln!("the model did not beat the majority-class baseline");
        std::process::exit(1);
    }
    Ok(())
}
