//! MultiHeadAttention against PyTorch: a Llama-style layer (nn.Linear layout, rotate-half RoPE,
//! `F.scaled_dot_product_attention(enable_gqa=True)`) from `tests/fixtures/make_mha_fixture.py`,
//! float64. The PyTorch weights load by name through `MultiHeadAttention::from_store`; outputs and
//! the gradients of the input and all eight projection parameters are compared.

use fm_attention::{MhaConfig, MhaOptions, MultiHeadAttention};
use fm_tensor::autograd::{ParamStore, Tape};
use fm_tensor::SafeTensorsFile;
use ndarray::{ArrayD, Ix2};

fn fixture() -> SafeTensorsFile {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/mha_torch.safetensors"
    );
    SafeTensorsFile::open(path).expect("fixture present (run make_mha_fixture.py)")
}

fn max_abs_diff(a: &ArrayD<f64>, b: &ArrayD<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

const PROJECTIONS: [&str; 8] = [
    "q_proj.weight",
    "k_proj.weight",
    "v_proj.weight",
    "o_proj.weight",
    "q_proj.bias",
    "k_proj.bias",
    "v_proj.bias",
    "o_proj.bias",
];

fn check_case(name: &str) {
    // Every output a kernel takes for overwriting starts as NaN: an element it left unwritten would
    // show in the comparison (fm_tensor::buffers).
    fm_tensor::buffers::poison_buffers_for_overwrite(true);
    let file = fixture();
    let get = |field: &str| file.tensor::<f64>(&format!("{name}.{field}")).unwrap();
    let c = get("config");
    let (d_model, heads, kv_heads) = (c[0] as usize, c[1] as usize, c[2] as usize);
    let mut config = MhaConfig::new(d_model, heads)
        .kv_heads(kv_heads)
        .causal(c[3] == 1.0);
    if c[4] > 0.0 {
        config = config.rope(c[4]);
    }
    let mut store = ParamStore::<f64>::new();
    for p in PROJECTIONS {
        store
            .add(format!("attn.{p}"), get(&format!("attn.{p}")))
            .unwrap();
    }
    let mha = MultiHeadAttention::from_store(&store, "attn", config).unwrap();
    let padding = file.contains(&format!("{name}.padding")).then(|| {
        get("padding")
            .into_dimensionality::<Ix2>()
            .unwrap()
            .mapv(|v| v == 1.0)
    });
    let opts = match &padding {
        Some(mask) => MhaOptions::new().key_padding(mask.view()),
        None => MhaOptions::new(),
    };

    let tape = Tape::<f64>::new();
    let x = tape.variable(get("x"));
    let out = mha.forward(&store, x, &opts).unwrap();
    let err = max_abs_diff(&out.value().into_array(), &get("out"));
    assert!(
        err < 1e-12,
        "{name}: output differs from PyTorch by {err:e}"
    );

    let grads = tape.backward_with(out, get("r")).unwrap();
    let err = max_abs_diff(grads.of(x).unwrap(), &get("grad.x"));
    assert!(err < 1e-12, "{name}: input gradient differs by {err:e}");
    for p in PROJECTIONS {
        let id = store.id(&format!("attn.{p}")).unwrap();
        let err = max_abs_diff(grads.param(id).unwrap(), &get(&format!("grad.attn.{p}")));
        assert!(err < 1e-12, "{name}: gradient of {p} differs by {err:e}");
    }
}

#[test]
fn causal_rope_gqa_matches_pytorch() {
    check_case("gqa_rope_causal");
}

#[test]
fn padded_mqa_matches_pytorch() {
    check_case("mqa_padded");
}
