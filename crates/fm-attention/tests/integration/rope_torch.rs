//! RoPE against PyTorch: outputs and input gradients of the rotate-half (Hugging Face Llama)
//! formulation, from `tests/fixtures/make_rope_fixture.py` (float64 reference).

use fm_attention::positional::{RopePositions, RotaryEmbedding};
use fm_tensor::autograd::Tape;
use fm_tensor::SafeTensorsFile;
use ndarray::{Array2, Array4, ArrayD, Ix2, Ix4};

fn fixture() -> SafeTensorsFile {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/rope_torch.safetensors"
    );
    SafeTensorsFile::open(path).expect("fixture present (run make_rope_fixture.py)")
}

struct Case {
    x: Array4<f64>,
    r: Array4<f64>,
    positions: Array2<usize>,
    base: f64,
    out: Array4<f64>,
    grad: Array4<f64>,
}

fn load(file: &SafeTensorsFile, name: &str) -> Case {
    let get =
        |field: &str| -> ArrayD<f64> { file.tensor::<f64>(&format!("{name}.{field}")).unwrap() };
    let four = |field: &str| get(field).into_dimensionality::<Ix4>().unwrap();
    Case {
        x: four("x"),
        r: four("r"),
        positions: get("positions")
            .into_dimensionality::<Ix2>()
            .unwrap()
            .mapv(|p| p as usize),
        base: get("base")[[0]],
        out: four("out"),
        grad: four("grad"),
    }
}

fn max_abs_diff<'a>(
    a: impl IntoIterator<Item = &'a f64>,
    b: impl IntoIterator<Item = &'a f64>,
) -> f64 {
    a.into_iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// Runs RoPE on the tape in f64 and returns (output, gradient of Σ out·r).
fn run_f64(case: &Case, positions: RopePositions<'_>) -> (ArrayD<f64>, ArrayD<f64>) {
    let rope = RotaryEmbedding::new(case.x.dim().3, case.base).unwrap();
    let tape = Tape::<f64>::new();
    let x = tape.variable(case.x.clone());
    let out = rope.apply_at(x, positions).unwrap();
    let grads = tape.backward_with(out, case.r.clone().into_dyn()).unwrap();
    (out.value().into_array(), grads.of(x).unwrap().clone())
}

#[test]
fn start_position_matches_pytorch() {
    let case = load(&fixture(), "start");
    let start = case.positions[[0, 0]];
    let (out, grad) = run_f64(&case, RopePositions::Start(start));
    let (e_out, e_grad) = (
        max_abs_diff(&out, &case.out),
        max_abs_diff(&grad, &case.grad),
    );
    assert!(
        e_out < 1e-12 && e_grad < 1e-12,
        "out {e_out:e}, grad {e_grad:e}"
    );
}

#[test]
fn position_ids_match_pytorch() {
    let case = load(&fixture(), "ids");
    let (out, grad) = run_f64(&case, RopePositions::Ids(case.positions.view()));
    let (e_out, e_grad) = (
        max_abs_diff(&out, &case.out),
        max_abs_diff(&grad, &case.grad),
    );
    assert!(
        e_out < 1e-12 && e_grad < 1e-12,
        "out {e_out:e}, grad {e_grad:e}"
    );
}

#[test]
fn f32_matches_pytorch_within_1e_6() {
    let file = fixture();
    for name in ["start", "ids"] {
        let case = load(&file, name);
        let rope = RotaryEmbedding::new(case.x.dim().3, case.base).unwrap();
        let x32 = case.x.mapv(|v| v as f32);
        let out = fm_attention::positional::rope_forward(
            &rope,
            x32.view(),
            RopePositions::Ids(case.positions.view()),
        )
        .unwrap()
        .mapv(f64::from);
        let err = max_abs_diff(&out, &case.out);
        assert!(
            err < 1e-6,
            "{name}: f32 output differs from PyTorch f64 by {err:e}"
        );
    }
}
