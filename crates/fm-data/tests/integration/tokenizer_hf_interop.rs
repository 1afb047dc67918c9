//! fm-data's byte-level BPE against Hugging Face `tokenizers`, through committed fixtures made by
//! `tests/fixtures/tokenizer/hf_tokenizer_fixtures.py` (see its docstring): HF-trained tokenizers
//! load here and encode as HF does, training here on the same text gives HF's vocabulary and merges
//! (and the same file, byte for byte), and the pre-tokenizer splits as HF's regex does.

use std::fs;
use std::path::{Path, PathBuf};

use fm_data::tokenizer::byte_level::{bytes_to_token_string, split_gpt2};
use fm_data::tokenizer::{BpeTokenizer, BpeTrainer, Tokenizer};
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tokenizer")
        .join(name)
}

fn read_json(name: &str) -> Value {
    serde_json::from_str(&fs::read_to_string(fixture(name)).unwrap()).unwrap()
}

fn cases() -> Vec<String> {
    serde_json::from_value(read_json("cases.json")).unwrap()
}

/// The training text as the script fed it to HF: one text per line, line ends kept.
fn training_lines() -> Vec<String> {
    let text = fs::read_to_string(fixture("train.txt")).unwrap();
    text.split_inclusive('\n').map(str::to_string).collect()
}

fn ids_of(v: &Value) -> Vec<Vec<u32>> {
    serde_json::from_value(v.clone()).unwrap()
}

#[test]
fn hf_trained_tokenizers_encode_and_decode_as_hf_does() {
    let hf = read_json("hf_encodings.json");
    let cases = cases();
    for (name, expected) in hf["tokenizers"].as_object().unwrap() {
        let tok = BpeTokenizer::from_file(fixture(name)).unwrap();
        let hf_ids = ids_of(&expected["ids"]);
        let hf_decoded: Vec<String> = serde_json::from_value(expected["decoded"].clone()).unwrap();
        assert_eq!(hf_ids.len(), cases.len());
        for ((text, want), want_text) in cases.iter().zip(&hf_ids).zip(&hf_decoded) {
            let got = tok.encode(text).unwrap();
            assert_eq!(&got, want, "{name}: ids of {text:?}");
            assert_eq!(&tok.decode(&got).unwrap(), want_text, "{name}: {text:?}");
            assert_eq!(&tok.decode(&got).unwrap(), text, "{name}: round trip");
        }
        let refs: Vec<&str> = cases.iter().map(String::as_str).collect();
        assert_eq!(tok.encode_batch(&refs).unwrap(), hf_ids, "{name}: batch");
    }
}

#[test]
fn pre_tokenizer_splits_as_hf_regex_does() {
    let hf = read_json("hf_encodings.json");
    let expected: Vec<Vec<String>> = serde_json::from_value(hf["pre_tokenized"].clone()).unwrap();
    for (text, want) in cases().iter().zip(&expected) {
        // HF reports pieces in the byte ↔ character map.
        let got: Vec<String> = split_gpt2(text)
            .map(|p| bytes_to_token_string(p.as_bytes()))
            .collect();
        assert_eq!(&got, want, "pieces of {text:?}");
    }
}

#[test]
fn training_gives_hf_vocabulary_merges_and_file() {
    let hf = read_json("hf_encodings.json");
    let lines = training_lines();
    for (name, settings) in hf["tokenizers"].as_object().unwrap() {
        let specials: Vec<String> =
            serde_json::from_value(settings["special_tokens"].clone()).unwrap();
        let tok = BpeTrainer::builder()
            .vocab_size(settings["vocab_size"].as_u64().unwrap() as usize)
            .min_frequency(settings["min_frequency"].as_u64().unwrap())
            .special_tokens(specials)
            .build()
            .unwrap()
            .train(&lines)
            .unwrap();
        let theirs = BpeTokenizer::from_file(fixture(name)).unwrap();
        let ours_merges: Vec<_> = tok.merges().collect();
        let their_merges: Vec<_> = theirs.merges().collect();
        if let Some(k) = (0..ours_merges.len().min(their_merges.len()))
            .find(|&k| ours_merges[k] != their_merges[k])
        {
            panic!(
                "{name}: merge {k} differs: ours {:?}, HF {:?}",
                ours_merges[k], their_merges[k]
            );
        }
        assert_eq!(ours_merges.len(), their_merges.len(), "{name}: merge count");
        assert!(
            tok.model_vocab().eq(theirs.model_vocab()),
            "{name}: vocabulary"
        );
        let hf_text = fs::read_to_string(fixture(name)).unwrap();
        assert!(
            tok.to_json_string() == hf_text,
            "{name}: the file written here differs from HF's"
        );
    }
}

#[test]
fn fm_trained_fixture_is_reproduced_and_encodes_as_recorded() {
    // fm_trained.tokenizer.json and fm_encodings.json come from `cargo run -p fm-data --example
    // tokenizer_fixture`; the script's `verify` mode checked that HF encodes them identically.
    let recorded = read_json("fm_encodings.json");
    let settings = &recorded["settings"];
    let specials: Vec<String> = serde_json::from_value(settings["special_tokens"].clone()).unwrap();
    let tok = BpeTrainer::builder()
        .vocab_size(settings["vocab_size"].as_u64().unwrap() as usize)
        .min_frequency(settings["min_frequency"].as_u64().unwrap())
        .special_tokens(specials)
        .build()
        .unwrap()
        .train(&training_lines())
        .unwrap();
    let file = fs::read_to_string(fixture("fm_trained.tokenizer.json")).unwrap();
    assert!(
        tok.to_json_string() == file,
        "training no longer reproduces the fixture"
    );
    let texts: Vec<String> = serde_json::from_value(recorded["texts"].clone()).unwrap();
    let ids = ids_of(&recorded["ids"]);
    let loaded = BpeTokenizer::from_file(fixture("fm_trained.tokenizer.json")).unwrap();
    for (text, want) in texts.iter().zip(&ids) {
        assert_eq!(&loaded.encode(text).unwrap(), want, "ids of {text:?}");
    }
}

#[test]
fn prefix_space_option_encodes_as_hf_does() {
    let hf = read_json("hf_encodings.json");
    let prefix = &hf["prefix_space"];
    let name = prefix["tokenizer"].as_str().unwrap();
    let json = fs::read_to_string(fixture(name)).unwrap();
    // Switch the pre-tokenizer's option, as the script did in HF.
    let pre = "\"pre_tokenizer\": {\n    \"type\": \"ByteLevel\",\n    \"add_prefix_space\": false";
    assert!(json.contains(pre));
    let json = json.replace(pre, &pre.replace("false", "true"));
    let tok = BpeTokenizer::from_json_str(&json).unwrap();
    assert!(tok.options().add_prefix_space);
    for (text, want) in cases().iter().zip(&ids_of(&prefix["ids"])) {
        assert_eq!(&tok.encode(text).unwrap(), want, "ids of {text:?}");
    }
}
