//! Saving and loading: round trips, every kind of mismatch reported exactly, half-precision files,
//! and configuration errors with clear messages.

use std::path::PathBuf;

use fm_nn::checkpoint::{load_params, CONFIG_FILE, WEIGHTS_FILE};
use fm_nn::{
    EncoderClassifier, EncoderConfig, Gpt, GptConfig, Linear, Module, NnError, ParamBuilder,
    WeightProblem,
};
use fm_tensor::autograd::ParamStore;
use fm_tensor::init::Initializer;
use ndarray::{array, Array2};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fm-nn-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn gpt_round_trip_gives_identical_logits() {
    let dir = temp_dir("gpt-round-trip");
    let mut config = GptConfig::new(23, 8, 8, 2, 2);
    config.tie_embeddings = false;
    let model = Gpt::<f32>::new(config, 17).unwrap();
    model.save(&dir).unwrap();
    assert!(dir.join(CONFIG_FILE).exists() && dir.join(WEIGHTS_FILE).exists());
    // No temporary files are left behind.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
    let loaded = Gpt::<f32>::load(&dir).unwrap();
    let ids = array![[1u32, 2, 3, 22]];
    assert_eq!(
        model.logits(ids.view()).unwrap(),
        loaded.logits(ids.view()).unwrap()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn encoder_round_trip_gives_identical_predictions() {
    let dir = temp_dir("encoder-round-trip");
    let model = EncoderClassifier::<f64>::new(EncoderConfig::new(23, 8, 8, 1, 2, 3), 5).unwrap();
    model.save(&dir).unwrap();
    let loaded = EncoderClassifier::<f64>::load(&dir).unwrap();
    let ids = array![[1u32, 2, 3, 22], [4, 5, 0, 0]];
    let mask = array![[true, true, true, true], [true, true, false, false]];
    let tape = fm_tensor::Tape::no_grad();
    let a = model
        .forward(&model.context(&tape), ids.view(), Some(mask.view()))
        .unwrap()
        .value();
    let b = loaded
        .forward(&loaded.context(&tape), ids.view(), Some(mask.view()))
        .unwrap()
        .value();
    assert_eq!(a.array(), b.array());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn loading_other_weights_lists_every_mismatch() {
    let dir = temp_dir("mismatch");
    // Saved: tied, 2 layers, vocab 23. Expected: untied (lm_head missing), 1 layer (blocks.1.*
    // unexpected), vocab 29 (tok_emb shape).
    Gpt::<f32>::new(GptConfig::new(23, 8, 8, 2, 2), 1)
        .unwrap()
        .save(&dir)
        .unwrap();
    let mut other = GptConfig::new(29, 8, 8, 1, 2);
    other.tie_embeddings = false;
    let mut model = Gpt::<f32>::new(other, 1).unwrap();
    let params = model.parameters();
    let before = model.params().value(params[0].id).clone();
    let err = load_params(dir.join(WEIGHTS_FILE), &params, model.params_mut()).unwrap_err();
    let NnError::WeightMismatch { problems, .. } = &err else {
        panic!("expected a weight mismatch, got {err}");
    };
    assert!(problems.contains(&WeightProblem::Missing {
        name: "lm_head.weight".into(),
        expected_shape: vec![29, 8]
    }));
    assert!(problems.contains(&WeightProblem::WrongShape {
        name: "tok_emb.weight".into(),
        expected: vec![29, 8],
        found: vec![23, 8]
    }));
    let unexpected: Vec<&str> = problems
        .iter()
        .filter_map(|p| match p {
            WeightProblem::Unexpected { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(unexpected.len(), 12, "{unexpected:?}"); // every tensor of blocks.1
    assert!(unexpected.iter().all(|n| n.starts_with("blocks.1.")));
    assert_eq!(problems.len(), 14);
    let message = err.to_string();
    assert!(
        message.contains("missing tensor `lm_head.weight` (expected shape [29, 8])"),
        "{message}"
    );
    assert!(
        message.contains("tensor `tok_emb.weight` has shape [23, 8], the model expects [29, 8]"),
        "{message}"
    );
    // Nothing was changed.
    assert_eq!(model.params().value(params[0].id), &before);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A safetensors file written by hand: one tensor `name` with `dtype`, `shape` and raw `data`.
fn raw_safetensors(path: &std::path::Path, tensors: &[(&str, &str, Vec<usize>, Vec<u8>)]) {
    let mut header = String::from("{");
    let mut offset = 0;
    for (i, (name, dtype, shape, data)) in tensors.iter().enumerate() {
        if i > 0 {
            header.push(',');
        }
        header.push_str(&format!(
            "\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape:?},\"data_offsets\":[{offset},{}]}}",
            offset + data.len()
        ));
        offset += data.len();
    }
    header.push('}');
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend(header.as_bytes());
    for (_, _, _, data) in tensors {
        bytes.extend(data);
    }
    std::fs::write(path, bytes).unwrap();
}

fn tiny_linear(store: &mut ParamStore<f32>) -> Vec<fm_nn::ParamRef> {
    Linear::new(
        &mut ParamBuilder::new(store, 0).scope("fc"),
        2,
        2,
        true,
        Initializer::Zeros,
    )
    .unwrap()
    .parameters()
}

#[test]
fn half_precision_files_load_into_f32_and_integer_dtypes_are_reported() {
    let dir = temp_dir("half");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("half.safetensors");
    // F16 bits: 1.0 = 0x3C00, 0.5 = 0x3800, -2.0 = 0xC000, 0.0 = 0x0000; BF16: 1.5 = 0x3FC0.
    let f16: Vec<u8> = [0x3C00u16, 0x3800, 0xC000, 0x0000]
        .iter()
        .flat_map(|b| b.to_le_bytes())
        .collect();
    let bf16: Vec<u8> = [0x3FC0u16, 0x3FC0]
        .iter()
        .flat_map(|b| b.to_le_bytes())
        .collect();
    raw_safetensors(
        &path,
        &[
            ("fc.weight", "F16", vec![2, 2], f16),
            ("fc.bias", "BF16", vec![2], bf16),
        ],
    );
    let mut store = ParamStore::<f32>::new();
    let params = tiny_linear(&mut store);
    load_params(&path, &params, &mut store).unwrap();
    assert_eq!(
        store.value(params[0].id),
        &array![[1.0f32, 0.5], [-2.0, 0.0]].into_dyn()
    );
    assert_eq!(store.value(params[1].id), &array![1.5f32, 1.5].into_dyn());

    let ints: Vec<u8> = [1i64, 2].iter().flat_map(|v| v.to_le_bytes()).collect();
    let f32s: Vec<u8> = [0f32; 4].iter().flat_map(|v| v.to_le_bytes()).collect();
    raw_safetensors(
        &path,
        &[
            ("fc.weight", "F32", vec![2, 2], f32s),
            ("fc.bias", "I64", vec![2], ints),
        ],
    );
    let err = load_params(&path, &params, &mut store).unwrap_err();
    assert!(matches!(&err, NnError::WeightMismatch { problems, .. }
        if problems == &[WeightProblem::WrongDtype { name: "fc.bias".into(), found: "I64".into() }]));
    assert!(
        err.to_string().contains("tensor `fc.bias` has dtype I64"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn invalid_configs_are_clear_errors() {
    let message = |c: GptConfig| Gpt::<f32>::new(c, 0).unwrap_err().to_string();
    assert!(message(GptConfig::new(10, 8, 10, 1, 4))
        .contains("d_model (10) must be divisible by n_heads (4)"));
    let mut c = GptConfig::new(10, 8, 8, 1, 4);
    c.n_kv_heads = Some(3);
    assert!(message(c).contains("n_heads (4) must be divisible by n_kv_heads (3)"));
    let mut c = GptConfig::new(10, 8, 8, 1, 4);
    c.dropout = 1.0;
    assert!(message(c).contains("dropout must be in [0, 1)"));
    assert!(message(GptConfig::new(0, 8, 8, 1, 4)).contains("vocab_size must be at least 1"));
    let mut c = GptConfig::new(10, 8, 8, 1, 4);
    c.positions = fm_nn::PositionEncoding::Rotary;
    c.d_model = 12; // head dim 3: odd
    assert!(message(c).contains("even head dimension"));
}

#[test]
fn inputs_outside_the_model_are_clear_errors() {
    let model = Gpt::<f32>::new(GptConfig::new(10, 4, 8, 1, 2), 0).unwrap();
    let err = model.logits(array![[1u32, 2], [3, 10]].view()).unwrap_err();
    assert!(
        matches!(
            err,
            NnError::TokenOutOfRange {
                token: 10,
                row: 1,
                position: 1,
                vocab: 10
            }
        ),
        "{err}"
    );
    let err = model.logits(Array2::zeros((1, 5)).view()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "sequence of 5 tokens is longer than the model's context of 4"
    );
    let tape = fm_tensor::Tape::new();
    let ctx = model.context(&tape);
    let err = model
        .loss(&ctx, array![[1u32, 2]].view(), array![[1u32]].view())
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("expected shape [1, 2], got [1, 1]"),
        "{err}"
    );
}

#[test]
fn a_broken_config_file_names_file_and_line() {
    let dir = temp_dir("bad-config");
    Gpt::<f32>::new(GptConfig::new(10, 4, 8, 1, 2), 0)
        .unwrap()
        .save(&dir)
        .unwrap();
    std::fs::write(
        dir.join(CONFIG_FILE),
        "{\n  \"vocab_size\": 10,\n  \"d_model\": \"x\"\n}",
    )
    .unwrap();
    let err = Gpt::<f32>::load(&dir).unwrap_err().to_string();
    assert!(
        err.contains("config.json") && err.contains("line 3"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
