//! Interoperability with the Python `safetensors` package, in both directions.
//!
//! - `tests/fixtures/python_written.safetensors` was written by `make_safetensors_fixture.py` with numpy
//!   and `safetensors.numpy`; `python_written.json` holds the exact values (as f64 bits) we must read.
//! - `tests/fixtures/fm_written*.safetensors` were written by fm (this file, with
//!   `FM_WRITE_FIXTURES=1`) and are checked by the script's `--verify` mode with numpy. Here we check
//!   that the committed files are exactly what the current writer produces, so the Python check keeps
//!   covering today's code.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use fm_tensor::safetensors::{
    load_safetensors, load_safetensors_from_bytes, save_safetensors, save_safetensors_to_bytes,
};
use fm_tensor::{Element, SafeTensorsFile, TensorError};
use ndarray::{ArrayD, ArrayViewD, IxDyn};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
}

// ---- Python -> fm

#[test]
fn python_written_file_reads_back_exactly() {
    let path = fixtures().join("python_written.safetensors");
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("python_written.json")).unwrap(),
    )
    .unwrap();
    let file = SafeTensorsFile::open(&path).unwrap();

    let metadata: HashMap<String, String> =
        serde_json::from_value(expected["metadata"].clone()).unwrap();
    assert_eq!(file.metadata(), Some(&metadata));

    let tensors = expected["tensors"].as_object().unwrap();
    assert_eq!(file.len(), tensors.len());
    for (name, entry) in tensors {
        let dtype = entry["dtype"].as_str().unwrap();
        let shape: Vec<usize> = serde_json::from_value(entry["shape"].clone()).unwrap();
        assert_eq!(file.dtype(name).unwrap(), dtype, "{name}");
        assert_eq!(file.shape(name).unwrap(), &shape[..], "{name}");
        if dtype == "I64" {
            let err = file.tensor::<f32>(name).unwrap_err();
            assert!(
                matches!(&err, TensorError::UnsupportedDtype { name: n, dtype: d, .. } if n == name && d == "I64")
            );
            assert!(err.to_string().contains("python_written.safetensors"));
            continue;
        }
        let bits: Vec<u64> = serde_json::from_value(entry["f64_bits"].clone()).unwrap();
        let want: Vec<f64> = bits.iter().map(|&b| f64::from_bits(b)).collect();

        let got64 = file.tensor::<f64>(name).unwrap();
        assert_eq!(got64.shape(), &shape[..], "{name}");
        assert_eq!(got64.len(), want.len(), "{name}");
        for (i, (g, w)) in got64.iter().zip(&want).enumerate() {
            if w.is_nan() {
                assert!(g.is_nan(), "{name}[{i}]: {g} should be NaN");
            } else {
                assert_eq!(g.to_bits(), w.to_bits(), "{name}[{i}]: {g} vs {w}");
            }
        }
        // As f32: every stored value rounded to nearest (exact for F32, F16, BF16).
        let got32 = file.tensor::<f32>(name).unwrap();
        for (g, w) in got32.iter().zip(&want) {
            assert!(
                g.is_nan() && w.is_nan() || *g == *w as f32,
                "{name}: {g} vs {w}"
            );
        }
    }
}

#[test]
fn python_written_file_loads_the_same_from_bytes_and_fails_whole_on_unsupported() {
    let path = fixtures().join("python_written.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let from_bytes = SafeTensorsFile::from_bytes(bytes.clone()).unwrap();
    let from_file = SafeTensorsFile::open(&path).unwrap();
    assert_eq!(
        from_bytes.names().collect::<Vec<_>>(),
        from_file.names().collect::<Vec<_>>()
    );
    for name in from_file.names().filter(|&n| n != "ids") {
        let a = from_file.tensor::<f64>(name).unwrap();
        let b = from_bytes.tensor::<f64>(name).unwrap();
        assert!(
            a.iter()
                .zip(b.iter())
                .all(|(x, y)| x.to_bits() == y.to_bits()),
            "{name}"
        );
    }
    // Loading everything stops at the I64 tensor and names it.
    let err = load_safetensors_from_bytes::<f32>(&bytes).unwrap_err();
    assert!(matches!(err, TensorError::UnsupportedDtype { ref name, .. } if name == "ids"));
}

// ---- fm -> Python

/// Element `i` (row-major) of every tensor in the fm fixtures; mirrored in the Python script.
fn fm_value(i: usize) -> f64 {
    ((i * 7) % 13) as f64 * 0.25 - 1.5
}

fn logical<T: Element>(shape: &[usize]) -> ArrayD<T> {
    let values = (0..shape.iter().product())
        .map(|i| T::from_f64_lossy(fm_value(i)))
        .collect();
    ArrayD::from_shape_vec(IxDyn(shape), values).unwrap()
}

/// The fm fixture's tensors. `weight` and `conv` are stored transposed in memory and handed to the
/// writer as non-contiguous views, so the files also prove views are written in logical order.
struct FmFixture<T> {
    /// `weight.t()` is the logical [3, 4] weight.
    weight_t: ArrayD<T>,
    /// `conv_p.permuted_axes([1, 2, 0])` is the logical [2, 3, 2] tensor.
    conv_p: ArrayD<T>,
    bias: ArrayD<T>,
    scalar: ArrayD<T>,
    empty: ArrayD<T>,
}

impl<T: Element> FmFixture<T> {
    fn new() -> Self {
        FmFixture {
            weight_t: logical::<T>(&[3, 4])
                .reversed_axes()
                .as_standard_layout()
                .into_owned(),
            conv_p: logical::<T>(&[2, 3, 2])
                .permuted_axes(vec![2, 0, 1])
                .as_standard_layout()
                .into_owned(),
            bias: logical::<T>(&[4]),
            scalar: logical::<T>(&[]),
            empty: logical::<T>(&[0, 2]),
        }
    }

    fn views(&self) -> Vec<(&'static str, ArrayViewD<'_, T>)> {
        let weight = self.weight_t.t();
        let conv = self.conv_p.view().permuted_axes(vec![1, 2, 0]);
        assert!(!weight.is_standard_layout() && !conv.is_standard_layout());
        vec![
            ("weight", weight),
            ("bias", self.bias.view()),
            ("scalar", self.scalar.view()),
            ("conv", conv),
            ("empty", self.empty.view()),
        ]
    }
}

fn fm_metadata() -> HashMap<String, String> {
    HashMap::from([
        ("writer".to_string(), "fm-tensor".to_string()),
        ("purpose".to_string(), "interop fixture".to_string()),
    ])
}

fn check_fm_fixture<T: Element>(file_name: &str) {
    let fixture = FmFixture::<T>::new();
    let views = fixture.views();
    let meta = fm_metadata();
    let path = fixtures().join(file_name);

    if std::env::var_os("FM_WRITE_FIXTURES").is_some() {
        save_safetensors(&path, views.iter().cloned(), Some(&meta)).unwrap();
    }
    let fresh = save_safetensors_to_bytes(views.iter().cloned(), Some(&meta)).unwrap();
    let committed = std::fs::read(&path).unwrap();
    assert!(
        fresh == committed,
        "{file_name} differs from what the writer produces now; if intended, regenerate with \
         FM_WRITE_FIXTURES=1 cargo test -p fm-tensor --test integration safetensors_interop, then run \
         make_safetensors_fixture.py --verify"
    );

    // And it reads back as the logical arrays.
    let loaded = load_safetensors::<T>(&path).unwrap();
    let names: Vec<&str> = loaded.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["weight", "bias", "scalar", "conv", "empty"]);
    for (name, array) in &loaded {
        assert_eq!(array, &logical::<T>(array.shape()), "{name}");
    }
}

#[test]
fn fm_written_f32_fixture_is_current() {
    check_fm_fixture::<f32>("fm_written.safetensors");
}

#[test]
fn fm_written_f64_fixture_is_current() {
    check_fm_fixture::<f64>("fm_written_f64.safetensors");
}
