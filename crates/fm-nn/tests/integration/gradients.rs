//! f64 finite-difference gradient checks of every layer and of whole models, with respect to the
//! input and every parameter (fm-tensor's `check_gradients`: central differences against the tape's
//! backward pass, through a random projection of the output).

use fm_nn::{
    Activation, AttentionConfig, BlockConfig, EncoderClassifier, EncoderConfig, ForwardContext,
    Gpt, GptConfig, LayerNorm, Linear, Mlp, Module, NormKind, ParamBuilder, ParamRef, Pooling,
    PositionEncoding, RmsNorm, TransformerBlock,
};
use fm_tensor::autograd::{check_gradients, GradCheckConfig, ParamStore, Var};
use fm_tensor::init::{self, Initializer};
use ndarray::{array, Array2, ArrayD};

const INIT: Initializer = Initializer::Normal {
    mean: 0.0,
    std: 0.5,
};

/// Checks `forward(ctx, x)` with respect to `x` (if given) and every parameter in `params`.
fn check<F>(store: &ParamStore<f64>, params: &[ParamRef], x: Option<ArrayD<f64>>, forward: F)
where
    F: for<'t, 's> Fn(
        &ForwardContext<'t, 's, f64>,
        Option<Var<'t, f64>>,
    ) -> fm_nn::Result<Var<'t, f64>>,
{
    let offset = usize::from(x.is_some());
    let inputs: Vec<ArrayD<f64>> = x
        .into_iter()
        .chain(params.iter().map(|p| store.value(p.id).clone()))
        .collect();
    let report = check_gradients(
        |tape, vars| {
            let ctx = ForwardContext::new(tape, store);
            for (p, var) in params.iter().zip(&vars[offset..]) {
                ctx.bind(p.id, *var);
            }
            Ok(forward(&ctx, (offset == 1).then(|| vars[0]))?)
        },
        &inputs,
        &GradCheckConfig {
            tolerance: 1e-6,
            ..GradCheckConfig::default()
        },
    )
    .unwrap();
    assert!(report.passed(), "{report}");
}

fn input(shape: &[usize], seed: u64) -> ArrayD<f64> {
    init::normal(shape, 0.0, 1.0, seed).unwrap()
}

#[test]
fn linear_with_and_without_bias() {
    for bias in [true, false] {
        let mut store = ParamStore::new();
        let layer = Linear::new(
            &mut ParamBuilder::new(&mut store, 1).scope("fc"),
            5,
            3,
            bias,
            INIT,
        )
        .unwrap();
        if bias {
            let id = layer.parameters()[1].id;
            store.set_value(id, input(&[3], 9)).unwrap();
        }
        check(
            &store,
            &layer.parameters(),
            Some(input(&[2, 4, 5], 2)),
            |ctx, x| layer.forward(ctx, x.unwrap()),
        );
    }
}

#[test]
fn layer_norm_and_rms_norm() {
    let mut store = ParamStore::new();
    let mut builder = ParamBuilder::new(&mut store, 1);
    let ln = LayerNorm::new(&mut builder.scope("ln"), 6, 1e-5).unwrap();
    let rms = RmsNorm::new(&mut builder.scope("rms"), 6, 1e-5).unwrap();
    for p in ln.parameters().iter().chain(&rms.parameters()) {
        store
            .set_value(p.id, input(&[6], p.id.index() as u64))
            .unwrap();
    }
    check(
        &store,
        &ln.parameters(),
        Some(input(&[3, 6], 3)),
        |ctx, x| ln.forward(ctx, x.unwrap()),
    );
    check(
        &store,
        &rms.parameters(),
        Some(input(&[3, 6], 4)),
        |ctx, x| rms.forward(ctx, x.unwrap()),
    );
}

#[test]
fn mlp_gelu_erf_gelu_tanh_and_swiglu() {
    for activation in [Activation::Gelu, Activation::GeluTanh, Activation::SwiGlu] {
        let mut store = ParamStore::new();
        let mlp = Mlp::new(
            &mut ParamBuilder::new(&mut store, 5).scope("mlp"),
            activation,
            4,
            7,
            INIT,
            INIT,
        )
        .unwrap();
        check(
            &store,
            &mlp.parameters(),
            Some(input(&[2, 3, 4], 6)),
            |ctx, x| mlp.forward(ctx, x.unwrap()),
        );
    }
}

fn block_config(
    causal: bool,
    rope: bool,
    n_kv_heads: usize,
    activation: Activation,
    norm: NormKind,
) -> BlockConfig {
    BlockConfig {
        attention: AttentionConfig {
            d_model: 8,
            n_heads: 4,
            n_kv_heads,
            bias: true,
            causal,
            rope_theta: rope.then_some(10_000.0),
        },
        mlp_hidden: 12,
        activation,
        norm,
        dropout: 0.0,
        init_std: 0.5,
        out_init_std: 0.5,
    }
}

#[test]
fn causal_block_with_learned_style_attention() {
    let config = block_config(true, false, 4, Activation::Gelu, NormKind::LayerNorm);
    let mut store = ParamStore::new();
    let block = TransformerBlock::new(
        &mut ParamBuilder::new(&mut store, 7).scope("blocks.0"),
        &config,
    )
    .unwrap();
    check(
        &store,
        &block.parameters(),
        Some(input(&[2, 5, 8], 8)),
        |ctx, x| block.forward(ctx, x.unwrap(), None, None),
    );
}

#[test]
fn causal_block_with_rope_and_grouped_query_attention() {
    let config = block_config(true, true, 2, Activation::SwiGlu, NormKind::RmsNorm);
    let mut store = ParamStore::new();
    let block = TransformerBlock::new(
        &mut ParamBuilder::new(&mut store, 9).scope("blocks.0"),
        &config,
    )
    .unwrap();
    check(
        &store,
        &block.parameters(),
        Some(input(&[2, 5, 8], 10)),
        |ctx, x| block.forward(ctx, x.unwrap(), None, None),
    );
}

#[test]
fn bidirectional_block_with_key_padding() {
    let config = block_config(false, false, 4, Activation::Gelu, NormKind::LayerNorm);
    let mut store = ParamStore::new();
    let block = TransformerBlock::new(
        &mut ParamBuilder::new(&mut store, 11).scope("blocks.0"),
        &config,
    )
    .unwrap();
    let mask = array![[true, true, true, false], [true, true, false, false]];
    check(
        &store,
        &block.parameters(),
        Some(input(&[2, 4, 8], 12)),
        |ctx, x| block.forward(ctx, x.unwrap(), Some(mask.view()), None),
    );
}

fn tiny_gpt(
    positions: PositionEncoding,
    n_kv_heads: Option<usize>,
    activation: Activation,
    norm: NormKind,
    tie: bool,
) -> GptConfig {
    let mut config = GptConfig::new(11, 6, 8, 2, 2);
    config.positions = positions;
    config.n_kv_heads = n_kv_heads;
    config.activation = activation;
    config.norm = norm;
    config.tie_embeddings = tie;
    config.mlp_ratio = 1.5;
    config.init_std = 0.5;
    config
}

fn check_gpt(config: GptConfig) {
    let model = Gpt::<f64>::new(config, 3).unwrap();
    let ids = array![[1u32, 5, 10, 2, 0], [3, 3, 7, 9, 4]];
    let targets = array![[5u32, 10, 2, 0, 8], [3, 7, 9, 4, 1]];
    check(model.params(), &model.parameters(), None, |ctx, _| {
        model.loss(ctx, ids.view(), targets.view())
    });
}

#[test]
fn tiny_gpt_learned_positions_tied_gelu_layernorm_end_to_end() {
    check_gpt(tiny_gpt(
        PositionEncoding::Learned,
        None,
        Activation::Gelu,
        NormKind::LayerNorm,
        true,
    ));
}

#[test]
fn tiny_gpt_rope_gqa_swiglu_rmsnorm_untied_end_to_end() {
    let mut config = GptConfig::new(11, 6, 8, 2, 4);
    config.positions = PositionEncoding::Rotary;
    config.n_kv_heads = Some(2);
    config.activation = Activation::SwiGlu;
    config.norm = NormKind::RmsNorm;
    config.tie_embeddings = false;
    config.bias = false;
    config.mlp_ratio = 1.5;
    config.init_std = 0.5;
    check_gpt(config);
}

#[test]
fn encoder_classifier_mean_and_first_pooling_with_padding() {
    for pooling in [Pooling::Mean, Pooling::First] {
        let mut config = EncoderConfig::new(11, 6, 8, 1, 2, 3);
        config.pooling = pooling;
        config.init_std = 0.5;
        let model = EncoderClassifier::<f64>::new(config, 4).unwrap();
        let ids = array![[1u32, 5, 10, 0], [3, 7, 0, 0]];
        let mask = array![[true, true, true, false], [true, true, false, false]];
        check(model.params(), &model.parameters(), None, |ctx, _| {
            model.loss(ctx, ids.view(), Some(mask.view()), &[2, 0])
        });
    }
}

#[test]
fn gelu_tanh_variant_runs_in_a_gpt() {
    let config = tiny_gpt(
        PositionEncoding::Learned,
        None,
        Activation::GeluTanh,
        NormKind::LayerNorm,
        false,
    );
    let model = Gpt::<f64>::new(config, 1).unwrap();
    let logits = model
        .logits(Array2::from_elem((1, 3), 2u32).view())
        .unwrap();
    assert_eq!(logits.shape(), &[1, 3, 11]);
    assert!(logits.iter().all(|v| v.is_finite()));
}

#[test]
fn tiny_gpt_with_active_dropout_end_to_end() {
    // The masks depend only on the (fixed) dropout seed, so every evaluation sees the same ones.
    let mut config = tiny_gpt(
        PositionEncoding::Learned,
        None,
        Activation::Gelu,
        NormKind::LayerNorm,
        true,
    );
    config.dropout = 0.3;
    check_gpt(config);
}
