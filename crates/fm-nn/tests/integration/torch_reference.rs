//! The GPT's logits, loss and every parameter's gradient against PyTorch (float64 reference, our
//! f32 forward and backward), for the fixtures written by `fixtures/make_gpt_fixture.py`.
//!
//! Tolerance: every element within 1e-4 relative to the largest magnitude of its tensor
//! (`|ours − torch| ≤ 1e-4 · max|torch|`), which keeps near-zero elements from turning rounding
//! noise into huge relative errors.

use std::path::PathBuf;

use fm_nn::{Gpt, GptConfig, Module};
use fm_tensor::autograd::Tape;
use fm_tensor::safetensors::SafeTensorsFile;
use ndarray::{Array2, ArrayD};

const TOLERANCE: f64 = 1e-4;

fn fixture(name: &str) -> SafeTensorsFile {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("{name}.safetensors"));
    SafeTensorsFile::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn ids(file: &SafeTensorsFile, name: &str) -> Array2<u32> {
    file.tensor::<f32>(name)
        .unwrap()
        .mapv(|v| v as u32)
        .into_dimensionality()
        .unwrap()
}

/// Largest `|ours − reference| / max|reference|` over the tensor.
fn relative_error(ours: &ArrayD<f32>, reference: &ArrayD<f32>, what: &str) -> f64 {
    assert_eq!(ours.shape(), reference.shape(), "{what}: shapes differ");
    let scale = reference
        .iter()
        .fold(0f64, |m, &v| m.max(f64::from(v).abs()))
        .max(1e-12);
    ours.iter()
        .zip(reference)
        .map(|(&a, &b)| (f64::from(a) - f64::from(b)).abs() / scale)
        .fold(0.0, f64::max)
}

fn check_against_torch(name: &str) {
    // Every output a kernel takes for overwriting starts as NaN: an element it left unwritten would
    // show in the comparison (fm_tensor::buffers).
    fm_tensor::buffers::poison_buffers_for_overwrite(true);
    let file = fixture(name);
    let config: GptConfig =
        serde_json::from_str(&file.metadata().unwrap()["config"]).expect("config metadata");
    let mut model = Gpt::<f32>::new(config, 0).unwrap();
    let params = model.parameters();
    for p in &params {
        let value = file.tensor::<f32>(&format!("param.{}", p.name)).unwrap();
        model.params_mut().set_value(p.id, value).unwrap();
    }
    let (input_ids, targets) = (ids(&file, "input_ids"), ids(&file, "targets"));

    let tape = Tape::new();
    let ctx = model.context(&tape);
    let logits = model.forward(&ctx, input_ids.view()).unwrap();
    let loss = model.loss(&ctx, input_ids.view(), targets.view()).unwrap();
    let grads = tape.backward(loss).unwrap();

    let mut worst = Vec::new();
    let err = relative_error(
        logits.value().array(),
        &file.tensor::<f32>("logits").unwrap(),
        "logits",
    );
    worst.push(("logits".to_string(), err));
    let torch_loss = f64::from(file.tensor::<f32>("loss").unwrap()[[0]]);
    let ours = f64::from(loss.item().unwrap());
    worst.push((
        "loss".to_string(),
        (ours - torch_loss).abs() / torch_loss.abs(),
    ));
    for p in &params {
        let grad = grads
            .param(p.id)
            .unwrap_or_else(|| panic!("no gradient for {}", p.name));
        let reference = file.tensor::<f32>(&format!("grad.{}", p.name)).unwrap();
        worst.push((p.name.clone(), relative_error(grad, &reference, &p.name)));
    }
    // Every parameter of the fixture was used (and none is left over).
    let fixture_params = file.names().filter(|n| n.starts_with("param.")).count();
    assert_eq!(fixture_params, params.len());
    for (what, err) in &worst {
        assert!(
            *err <= TOLERANCE,
            "{name}: {what} differs from torch by {err:.3e}"
        );
    }
    let max = worst.iter().map(|(_, e)| *e).fold(0.0, f64::max);
    println!(
        "{name}: {} tensors, max relative error {max:.2e}",
        worst.len()
    );
}

#[test]
fn gpt_with_learned_positions_tied_embeddings_gelu_layernorm_matches_torch() {
    check_against_torch("gpt_learned_tied_gelu_layernorm");
}

#[test]
fn gpt_with_rope_gqa_swiglu_rmsnorm_matches_torch() {
    check_against_torch("gpt_rope_gqa_swiglu_rmsnorm");
}
