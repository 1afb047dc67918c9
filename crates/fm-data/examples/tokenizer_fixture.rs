//! Writes the fm-trained fixture that Hugging Face `tokenizers` is checked against:
//! `tests/fixtures/tokenizer/fm_trained.tokenizer.json` (trained here on `train.txt`) and
//! `fm_encodings.json` (the settings, and fm's ids for every text of `cases.json`).
//!
//! ```text
//! cargo run -p fm-data --example tokenizer_fixture
//! python crates/fm-data/tests/fixtures/tokenizer/hf_tokenizer_fixtures.py verify
//! ```

use std::fs;
use std::path::Path;

use fm_data::tokenizer::{BpeTrainer, Tokenizer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tokenizer");
    let text = fs::read_to_string(dir.join("train.txt"))?;
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    // Other settings than the HF-trained fixtures: more specials, no minimum frequency.
    let (vocab_size, min_frequency) = (700, 0);
    let specials = ["<|endoftext|>", "<|pad|>", "<mask>"];
    let tok = BpeTrainer::builder()
        .vocab_size(vocab_size)
        .min_frequency(min_frequency)
        .special_tokens(specials)
        .build()?
        .train(&lines)?;
    tok.save(dir.join("fm_trained.tokenizer.json"))?;

    let mut texts: Vec<String> =
        serde_json::from_str(&fs::read_to_string(dir.join("cases.json"))?)?;
    texts.push("<mask> is <|pad|><|pad|> and <|endoftext|>".into());
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let ids = tok.encode_batch(&refs)?;
    let out = serde_json::json!({
        "settings": {
            "vocab_size": vocab_size,
            "min_frequency": min_frequency,
            "special_tokens": specials,
        },
        "texts": texts,
        "ids": ids,
    });
    fs::write(
        dir.join("fm_encodings.json"),
        serde_json::to_string(&out)? + "\n",
    )?;
    println!(
        "wrote fm_trained.tokenizer.json (vocab {}) and fm_encodings.json ({} texts)",
        tok.vocab_size(),
        texts.len()
    );
    Ok(())
}
