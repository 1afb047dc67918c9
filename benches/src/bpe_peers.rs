//! fm-data's byte-level BPE beside its peers, set up identically: Hugging Face's `tokenizers`
//! crate trained with the same settings, and tiktoken's `CoreBPE` built from fm's vocabulary.
//! Used by the `data_bpe_peers` bench and `data_bpe_report peers` (feature `bpe-peers`).

use std::collections::HashSet;

use fm_data::tokenizer::byte_level::token_string_to_bytes;
use fm_data::tokenizer::{BpeTokenizer, BpeTrainer};
use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::normalizers::NormalizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::processors::PostProcessorWrapper;
use tokenizers::{AddedToken, TokenizerBuilder, TokenizerImpl};

/// The one special token both trainers get.
pub const SPECIAL: &str = "<|endoftext|>";

/// The GPT-2 pre-tokenizer pattern (what fm's scanner and HF's `ByteLevel` implement).
pub const GPT2_PATTERN: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

/// A Hugging Face tokenizer: BPE model, byte-level pre-tokenizer and decoder.
pub type HfTokenizer =
    TokenizerImpl<BPE, NormalizerWrapper, ByteLevel, PostProcessorWrapper, ByteLevel>;

/// fm's trainer: vocabulary `vocab`, [`SPECIAL`], min frequency 0.
pub fn fm_trainer(vocab: usize) -> BpeTrainer {
    BpeTrainer::builder()
        .vocab_size(vocab)
        .min_frequency(0)
        .special_tokens([SPECIAL])
        .build()
        .expect("valid trainer settings")
}

/// Trains HF's BPE with the settings under which it learns what fm learns: the same vocabulary
/// size and special token, min frequency 0, the 256 byte characters as initial alphabet, GPT-2
/// pre-tokenization without a prefix space. Runs on the current rayon pool.
pub fn hf_train<S: AsRef<str> + Send + Sync>(docs: &[S], vocab: usize) -> HfTokenizer {
    let mut tok: HfTokenizer = TokenizerBuilder::new()
        .with_model(BPE::default())
        .with_normalizer(None)
        .with_pre_tokenizer(Some(ByteLevel::default().add_prefix_space(false)))
        .with_post_processor(None)
        .with_decoder(Some(ByteLevel::default()))
        .build()
        .expect("an HF tokenizer from parts");
    let mut trainer = BpeTrainerBuilder::new()
        .vocab_size(vocab)
        .min_frequency(0)
        .special_tokens(vec![AddedToken::from(SPECIAL, true)])
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect::<HashSet<char>>())
        .show_progress(false)
        .build();
    tok.train(&mut trainer, docs.iter().map(|d| d.as_ref()))
        .expect("HF training");
    tok
}

/// Whether HF's tokenizer has fm's vocabulary, merges and added tokens: `Ok` with whether the
/// two `tokenizer.json` files are byte-identical too, or `Err` naming the first difference.
pub fn same_model(fm: &BpeTokenizer, hf: &HfTokenizer) -> Result<bool, String> {
    // Pretty, as HF's `save` writes files (fm writes that layout).
    let hf_json = hf.to_string(true).map_err(|e| e.to_string())?;
    let fm_json = fm.to_json_string();
    let hf_v: serde_json::Value = serde_json::from_str(&hf_json).map_err(|e| e.to_string())?;
    let fm_v: serde_json::Value = serde_json::from_str(&fm_json).map_err(|e| e.to_string())?;
    for (part, a, b) in [
        (
            "model.vocab",
            &fm_v["model"]["vocab"],
            &hf_v["model"]["vocab"],
        ),
        (
            "model.merges",
            &fm_v["model"]["merges"],
            &hf_v["model"]["merges"],
        ),
        ("added_tokens", &fm_v["added_tokens"], &hf_v["added_tokens"]),
    ] {
        if a != b {
            let (na, nb) = (
                a.as_array()
                    .map(Vec::len)
                    .or(a.as_object().map(|o| o.len())),
                b.as_array()
                    .map(Vec::len)
                    .or(b.as_object().map(|o| o.len())),
            );
            return Err(format!("{part} differs (fm {na:?} entries, HF {nb:?})"));
        }
    }
    Ok(fm_json == hf_json)
}

/// The top-level `tokenizer.json` fields (and `model` fields) whose values differ between fm's
/// file and HF's, for reporting why the files are not byte-identical.
pub fn json_differences(fm: &BpeTokenizer, hf: &HfTokenizer) -> Vec<String> {
    let parse = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap_or_default();
    let fm_v = parse(&fm.to_json_string());
    let hf_v = parse(&hf.to_string(false).unwrap_or_default());
    let mut out = Vec::new();
    let (Some(a), Some(b)) = (fm_v.as_object(), hf_v.as_object()) else {
        return vec!["not both JSON objects".into()];
    };
    for key in a.keys().chain(b.keys().filter(|k| !a.contains_key(*k))) {
        if a.get(key) == b.get(key) {
            continue;
        }
        match (a.get(key), b.get(key)) {
            (Some(serde_json::Value::Object(x)), Some(serde_json::Value::Object(y))) => {
                for sub in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                    if x.get(sub) != y.get(sub) {
                        out.push(format!(
                            "{key}.{sub}: fm {:?} HF {:?}",
                            short(x.get(sub)),
                            short(y.get(sub))
                        ));
                    }
                }
            }
            (x, y) => out.push(format!("{key}: fm {:?} HF {:?}", short(x), short(y))),
        }
    }
    out
}

fn short(v: Option<&serde_json::Value>) -> String {
    let text = v.map(|v| v.to_string()).unwrap_or_else(|| "absent".into());
    text.chars().take(80).collect()
}

/// tiktoken's BPE with fm's vocabulary: each byte-level token string mapped back to its bytes,
/// ranked by its fm id (ids grow with merge order, which is what tiktoken's ranks mean), and the
/// special tokens as tiktoken specials, with the GPT-2 pattern.
pub fn tiktoken_from_fm(fm: &BpeTokenizer) -> tiktoken_rs::CoreBPE {
    let encoder = fm
        .model_vocab()
        .map(|(token, id)| {
            let bytes = token_string_to_bytes(token).expect("byte-level vocabulary strings");
            (bytes, id)
        })
        .collect();
    let specials = fm
        .added_tokens()
        .iter()
        .map(|t| (t.content.clone(), t.id))
        .collect();
    tiktoken_rs::CoreBPE::new(encoder, specials, GPT2_PATTERN).expect("tiktoken from fm's ranks")
}
