//! Tests of [`MultiHeadAttention`]: against a reference composed of plain fm-tensor ops, incremental
//! decoding against full recomputation, f64 gradient checks, and bad input.

use super::*;
use fm_tensor::autograd::{check_gradients, GradCheckConfig, Tape};
use fm_tensor::TensorError;
use ndarray::{s, Array2, Array3, Array4, ArrayD, Ix3};

fn hidden<T: Element>(batch: usize, seq: usize, d: usize, seed: f64) -> Array3<T> {
    Array3::from_shape_fn((batch, seq, d), |(b, t, i)| {
        T::from_f64_lossy(((b * 7919 + t * 131 + i * 17) as f64 * 0.013 + seed).sin())
    })
}

fn to_tensor(e: AttentionError) -> TensorError {
    TensorError::invalid_argument("mha test", e.to_string())
}

fn max_diff<T: Element>(a: &ArrayD<T>, b: &ArrayD<T>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x.to_f64_lossless() - y.to_f64_lossless()).abs())
        .fold(0.0, f64::max)
}

/// Multi-head attention written with plain fm-tensor ops (matmul, softmax, index_select): scores are
/// materialised, KV heads repeated explicitly, masks added as large negative numbers. Independent of
/// the fused kernel, the projection op and the head split of the module.
fn reference<'t>(
    config: &MhaConfig,
    w: &[Var<'t, f64>; 4],
    x: Var<'t, f64>,
    memory: Option<Var<'t, f64>>,
    padding: Option<&Array2<bool>>,
) -> fm_tensor::Result<Var<'t, f64>> {
    let tape = x.tape();
    let (h, kvh, hd) = (config.n_heads, config.n_kv_heads, config.head_dim());
    let project = |input: Var<'t, f64>, weight: Var<'t, f64>| input.matmul(weight.transpose(0, 1)?);
    let heads = |y: Var<'t, f64>, n: usize| {
        let shape = y.shape();
        y.reshape(&[
            shape[0] as isize,
            shape[1] as isize,
            n as isize,
            hd as isize,
        ])?
        .permute(&[0, 2, 1, 3])
    };
    let source = memory.unwrap_or(x);
    let mut q = heads(project(x, w[0])?, h)?;
    let mut k = heads(project(source, w[1])?, kvh)?;
    let v = heads(project(source, w[2])?, kvh)?;
    if let (None, Some(base)) = (memory, config.rope) {
        let rope = RotaryEmbedding::new(hd, base).map_err(to_tensor)?;
        q = rope.apply(q, 0).map_err(to_tensor)?;
        k = rope.apply(k, 0).map_err(to_tensor)?;
    }
    let group: Vec<usize> = (0..h).map(|i| i / (h / kvh)).collect();
    let (k, v) = (k.index_select(1, &group)?, v.index_select(1, &group)?);
    let (batch, sq, sk) = (x.shape()[0], x.shape()[1], source.shape()[1]);
    let slopes = alibi_slopes(h).unwrap();
    let bias = Array4::from_shape_fn((batch, h, sq, sk), |(b, head, i, j)| {
        let pos = i + sk - sq;
        let masked = (config.causal && j > pos) || padding.is_some_and(|p| !p[[b, j]]);
        let alibi = if config.alibi && memory.is_none() {
            -slopes[head] * (pos as f64 - j as f64).abs()
        } else {
            0.0
        };
        if masked {
            -1e9
        } else {
            alibi
        }
    });
    let scores = q
        .matmul(k.transpose(2, 3)?)?
        .mul_scalar(1.0 / (hd as f64).sqrt())?
        .add(tape.constant(bias))?;
    let out = scores.softmax(-1)?.matmul(v)?.permute(&[0, 2, 1, 3])?;
    let out = out.reshape(&[batch as isize, sq as isize, (h * hd) as isize])?;
    project(out, w[3])
}

fn weights_of(store: &ParamStore<f64>, mha: &MultiHeadAttention) -> [ArrayD<f64>; 4] {
    let ids = mha.params();
    [0, 1, 2, 3].map(|i| store.value(ids[i]).clone())
}

fn bound<'t>(v: &[Var<'t, f64>]) -> BoundMha<'t, f64> {
    let p = |i: usize| BoundProjection {
        weight: v[i],
        bias: None,
    };
    BoundMha {
        q: p(0),
        k: p(1),
        v: p(2),
        o: p(3),
    }
}

#[test]
fn forward_matches_the_composed_reference() {
    let configs = [
        MhaConfig::new(24, 4).bias(false),
        MhaConfig::new(24, 4)
            .kv_heads(2)
            .causal(true)
            .rope(10_000.0)
            .bias(false),
        MhaConfig::new(24, 4)
            .kv_heads(1)
            .causal(true)
            .alibi(true)
            .bias(false),
    ];
    for config in configs {
        let mut store = ParamStore::<f64>::new();
        let mha = MultiHeadAttention::new(&mut store, "attn", config.clone(), 3).unwrap();
        let tape = Tape::<f64>::new();
        let x = tape.constant(hidden::<f64>(2, 6, 24, 0.1));
        let got = mha
            .forward(&store, x, &MhaOptions::new())
            .unwrap()
            .value()
            .into_array();
        let w = weights_of(&store, &mha).map(|a| tape.constant(a));
        let want = reference(&config, &w, x, None, None)
            .unwrap()
            .value()
            .into_array();
        let err = max_diff(&got, &want);
        assert!(err < 1e-12, "{config:?}: {err:e}");
    }
}

#[test]
fn padding_and_cross_attention_match_the_reference() {
    let config = MhaConfig::new(16, 4).kv_heads(2).bias(false);
    let mut store = ParamStore::<f64>::new();
    let mha = MultiHeadAttention::new(&mut store, "", config.clone(), 5).unwrap();
    assert!(store.id("q_proj.weight").is_some());
    let tape = Tape::<f64>::new();
    let x = tape.constant(hidden::<f64>(2, 3, 16, 0.2));
    let memory = tape.constant(hidden::<f64>(2, 5, 16, 0.9));
    let padding = ndarray::array![
        [true, true, true, true, true],
        [true, true, true, false, false]
    ];
    let opts = MhaOptions::new().key_padding(padding.view());
    let got = mha
        .forward_cross(&store, x, memory, &opts)
        .unwrap()
        .value()
        .into_array();
    let w = weights_of(&store, &mha).map(|a| tape.constant(a));
    let want = reference(&config, &w, x, Some(memory), Some(&padding))
        .unwrap()
        .value()
        .into_array();
    assert!(max_diff(&got, &want) < 1e-12);
}

/// Decodes 64 tokens one at a time and compares each step with the last row of a full forward.
fn decode_matches_full_recomputation<T: Element>(config: MhaConfig, tolerance: f64) {
    let (batch, steps) = (2, 64);
    let mut store = ParamStore::<T>::new();
    let mha = MultiHeadAttention::new(&mut store, "attn", config.clone(), 11).unwrap();
    let x = hidden::<T>(batch, steps, config.d_model, 0.3);
    let mut cache = mha.new_cache::<T>(batch, steps).unwrap();
    let mut worst = 0.0f64;
    for t in 0..steps {
        let tape = Tape::<T>::no_grad();
        let step = tape.constant(x.slice(s![.., t..t + 1, ..]).to_owned());
        let got = mha
            .decode_step(&store, step, &mut cache, &MhaOptions::new())
            .unwrap();
        let prefix = tape.constant(x.slice(s![.., ..t + 1, ..]).to_owned());
        let full = mha
            .forward(&store, prefix, &MhaOptions::new())
            .unwrap()
            .value();
        let full = full.into_dimensionality::<Ix3>().unwrap();
        let want = full.slice(s![.., t..t + 1, ..]).to_owned().into_dyn();
        worst = worst.max(max_diff(&got.value().into_array(), &want));
    }
    assert_eq!(cache.len(), steps);
    assert!(
        worst < tolerance,
        "{config:?}: worst step differs by {worst:e}"
    );
}

#[test]
fn decode_with_cache_equals_full_recomputation_rope_gqa() {
    let config = MhaConfig::new(32, 4)
        .kv_heads(2)
        .causal(true)
        .rope(10_000.0);
    decode_matches_full_recomputation::<f32>(config.clone(), 1e-5);
    decode_matches_full_recomputation::<f64>(config, 1e-12);
}

#[test]
fn decode_with_cache_equals_full_recomputation_rope_mqa() {
    let config = MhaConfig::new(32, 4)
        .kv_heads(1)
        .causal(true)
        .rope(500_000.0);
    decode_matches_full_recomputation::<f32>(config.clone(), 1e-5);
    decode_matches_full_recomputation::<f64>(config, 1e-12);
}

#[test]
fn decode_with_cache_equals_full_recomputation_alibi_mha() {
    let config = MhaConfig::new(32, 4).causal(true).alibi(true);
    decode_matches_full_recomputation::<f32>(config.clone(), 1e-5);
    decode_matches_full_recomputation::<f64>(config, 1e-12);
}

#[test]
fn prefill_then_steps_on_a_recording_tape() {
    // A 10-token prompt in one call, then single tokens; on a recording tape (the copying path).
    let config = MhaConfig::new(16, 4)
        .kv_heads(2)
        .causal(true)
        .rope(10_000.0);
    let mut store = ParamStore::<f64>::new();
    let mha = MultiHeadAttention::new(&mut store, "attn", config, 2).unwrap();
    let x = hidden::<f64>(1, 14, 16, 0.7);
    let mut cache = mha.new_cache::<f64>(1, 14).unwrap();
    let tape = Tape::<f64>::new();
    let prompt = mha
        .decode_step(
            &store,
            tape.variable(x.slice(s![.., ..10, ..]).to_owned()),
            &mut cache,
            &MhaOptions::new(),
        )
        .unwrap();
    let mut rows = vec![prompt.value().into_array()];
    for t in 10..14 {
        let step = tape.variable(x.slice(s![.., t..t + 1, ..]).to_owned());
        rows.push(
            mha.decode_step(&store, step, &mut cache, &MhaOptions::new())
                .unwrap()
                .value()
                .into_array(),
        );
    }
    let views: Vec<_> = rows.iter().map(|r| r.view()).collect();
    let decoded = ndarray::concatenate(ndarray::Axis(1), &views).unwrap();
    let full = mha
        .forward(&store, tape.constant(x), &MhaOptions::new())
        .unwrap()
        .value()
        .into_array();
    assert!(max_diff(&decoded, &full) < 1e-12);
}

/// f64 gradient check of output w.r.t. x and the four projection weights.
fn gradient_check(config: MhaConfig, padding: Option<Array2<bool>>, seq: usize) {
    let mut store = ParamStore::<f64>::new();
    let mha = MultiHeadAttention::new(&mut store, "attn", config.bias(false), 13).unwrap();
    let mut inputs = vec![hidden::<f64>(2, seq, mha.config().d_model, 0.4).into_dyn()];
    inputs.extend(weights_of(&store, &mha));
    let report = check_gradients(
        |_tape, v| {
            let opts = match &padding {
                Some(p) => MhaOptions::new().key_padding(p.view()),
                None => MhaOptions::new(),
            };
            mha.forward_bound(&bound(&v[1..]), v[0], None, &opts)
                .map_err(to_tensor)
        },
        &inputs,
        &GradCheckConfig::default(),
    )
    .unwrap();
    assert!(report.passed(), "{:?}: {report}", mha.config());
}

#[test]
fn gradient_check_causal_rope_gqa() {
    gradient_check(
        MhaConfig::new(8, 4).kv_heads(2).causal(true).rope(10_000.0),
        None,
        4,
    );
}

#[test]
fn gradient_check_padded_mqa() {
    let padding = ndarray::array![[true, true, true, true], [true, true, false, false]];
    gradient_check(MhaConfig::new(8, 2).kv_heads(1), Some(padding), 4);
}

#[test]
fn gradient_check_causal_padded_alibi() {
    let padding = ndarray::array![[true, true, true], [true, true, false]];
    gradient_check(
        MhaConfig::new(8, 2).causal(true).alibi(true),
        Some(padding),
        3,
    );
}

#[test]
fn gradient_check_biases_and_cross_attention() {
    let config = MhaConfig::new(6, 2);
    let mut store = ParamStore::<f64>::new();
    let mha = MultiHeadAttention::new(&mut store, "x", config, 17).unwrap();
    let ids = mha.params();
    assert_eq!(ids.len(), 8);
    let mut inputs = vec![
        hidden::<f64>(1, 2, 6, 0.1).into_dyn(),
        hidden::<f64>(1, 3, 6, 0.8).into_dyn(),
    ];
    inputs.extend(ids.iter().map(|&id| store.value(id).clone()));
    let report = check_gradients(
        |_tape, v| {
            let p = |i: usize| BoundProjection {
                weight: v[2 + i],
                bias: Some(v[6 + i]),
            };
            let w = BoundMha {
                q: p(0),
                k: p(1),
                v: p(2),
                o: p(3),
            };
            mha.forward_bound(&w, v[0], Some(v[1]), &MhaOptions::new())
                .map_err(to_tensor)
        },
        &inputs,
        &GradCheckConfig::default(),
    )
    .unwrap();
    assert!(report.passed(), "{report}");
}

#[test]
fn parameter_names_and_shapes_are_stable() {
    let mut store = ParamStore::<f32>::new();
    let config = MhaConfig::new(32, 8).kv_heads(2);
    let mha = MultiHeadAttention::new(&mut store, "blocks.0.attn", config.clone(), 1).unwrap();
    let shape = |name: &str| store.value(store.id(name).unwrap()).shape().to_vec();
    assert_eq!(shape("blocks.0.attn.q_proj.weight"), vec![32, 32]);
    assert_eq!(shape("blocks.0.attn.k_proj.weight"), vec![8, 32]);
    assert_eq!(shape("blocks.0.attn.v_proj.weight"), vec![8, 32]);
    assert_eq!(shape("blocks.0.attn.o_proj.weight"), vec![32, 32]);
    assert_eq!(shape("blocks.0.attn.k_proj.bias"), vec![8]);
    let again = MultiHeadAttention::from_store(&store, "blocks.0.attn", config).unwrap();
    assert_eq!(again, mha);
    let err =
        MultiHeadAttention::from_store(&store, "blocks.0.attn", MhaConfig::new(32, 8)).unwrap_err();
    assert!(
        err.to_string().contains("[8, 32]") && err.to_string().contains("[32, 32]"),
        "{err}"
    );
    assert!(
        MultiHeadAttention::from_store(&store, "blocks.1.attn", MhaConfig::new(32, 8)).is_err()
    );
}

#[test]
fn bad_input_is_an_error_naming_shapes() {
    let mut store = ParamStore::<f32>::new();
    let err =
        MultiHeadAttention::new(&mut store, "a", MhaConfig::new(32, 8).kv_heads(3), 0).unwrap_err();
    assert!(
        err.to_string()
            .contains("n_heads 8 is not divisible by n_kv_heads 3"),
        "{err}"
    );
    let mha = MultiHeadAttention::new(
        &mut store,
        "b",
        MhaConfig::new(16, 4).kv_heads(2).causal(true),
        0,
    )
    .unwrap();
    let tape = Tape::<f32>::no_grad();

    let wrong_width = tape.constant(Array3::<f32>::zeros((2, 3, 12)));
    let err = mha
        .forward(&store, wrong_width, &MhaOptions::new())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("[2, 3, 12]") && err.contains("d_model 16"),
        "{err}"
    );
    let empty = tape.constant(Array3::<f32>::zeros((2, 0, 16)));
    assert!(mha.forward(&store, empty, &MhaOptions::new()).is_err());

    let x = tape.constant(Array3::<f32>::zeros((2, 3, 16)));
    let memory = tape.constant(Array3::<f32>::zeros((1, 4, 16)));
    let err = mha
        .forward_cross(&store, x, memory, &MhaOptions::new())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("[2, 3, 16]") && err.contains("[1, 4, 16]"),
        "{err}"
    );

    let padding = Array2::from_elem((2, 5), true);
    let err = mha
        .forward(&store, x, &MhaOptions::new().key_padding(padding.view()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("[2, 5]"), "{err}");

    // Cache full: an error, and the cache unchanged.
    let mut cache = mha.new_cache::<f32>(2, 4).unwrap();
    mha.decode_step(&store, x, &mut cache, &MhaOptions::new())
        .unwrap();
    let keys_before = cache.keys().to_owned();
    let two = tape.constant(Array3::<f32>::zeros((2, 2, 16)));
    let err = mha
        .decode_step(&store, two, &mut cache, &MhaOptions::new())
        .unwrap_err();
    assert!(
        matches!(
            err,
            AttentionError::CacheFull {
                len: 3,
                capacity: 4,
                requested: 2
            }
        ),
        "{err}"
    );
    assert_eq!(cache.len(), 3);
    assert_eq!(cache.keys(), keys_before);

    // A cache for another layout; a padding mask of the wrong length.
    let mut other = KvCache::<f32>::new(2, 4, 4, 8).unwrap();
    let one = tape.constant(Array3::<f32>::zeros((2, 1, 16)));
    let err = mha
        .decode_step(&store, one, &mut other, &MhaOptions::new())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("kv_heads 4") && err.contains("[2, 1, 16]"),
        "{err}"
    );
    let short = Array2::from_elem((2, 3), true);
    let err = mha
        .decode_step(
            &store,
            one,
            &mut cache,
            &MhaOptions::new().key_padding(short.view()),
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("[2, 3]") && err.contains("4"), "{err}");
    assert_eq!(cache.len(), 3);
}

#[test]
fn dropout_only_in_training_calls_and_seeded() {
    let mut store = ParamStore::<f32>::new();
    let mha =
        MultiHeadAttention::new(&mut store, "d", MhaConfig::new(16, 4).dropout(0.5), 0).unwrap();
    let tape = Tape::<f32>::no_grad();
    let x = tape.constant(hidden::<f32>(1, 8, 16, 0.5));
    let run = |opts: &MhaOptions<'_>| mha.forward(&store, x, opts).unwrap().value().into_array();
    let eval = run(&MhaOptions::new());
    assert_eq!(eval, run(&MhaOptions::new()));
    let train_a = run(&MhaOptions::new().training(1));
    assert_ne!(train_a, eval);
    assert_eq!(train_a, run(&MhaOptions::new().training(1)));
    assert_ne!(train_a, run(&MhaOptions::new().training(2)));
}

#[test]
fn results_are_bitwise_identical_for_one_and_two_threads() {
    let config = MhaConfig::new(64, 4)
        .kv_heads(2)
        .causal(true)
        .rope(10_000.0);
    let mut store = ParamStore::<f32>::new();
    let mha = MultiHeadAttention::new(&mut store, "attn", config, 21).unwrap();
    // Large enough that RoPE and the GEMMs take their parallel paths.
    let x = hidden::<f32>(4, 96, 64, 0.6);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let tape = Tape::<f32>::new();
            let input = tape.variable(x.clone());
            let y = mha.forward(&store, input, &MhaOptions::new()).unwrap();
            let grads = tape.backward(y.square().unwrap().sum().unwrap()).unwrap();
            let weight_grads: Vec<ArrayD<f32>> = mha
                .params()
                .iter()
                .map(|&id| grads.param(id).unwrap().clone())
                .collect();
            (
                y.value().into_array(),
                grads.of(input).unwrap().clone(),
                weight_grads,
            )
        })
    };
    let (one, two) = (run(1), run(2));
    assert!(one.0 == two.0 && one.1 == two.1 && one.2 == two.2);
}
