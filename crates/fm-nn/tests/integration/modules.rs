//! Module behaviour: stable names, parameter counts, seeded initialisation, dropout modes, padding
//! invariance, and that the models learn (a GPT memorises a sequence, the encoder classifies a
//! sentiment-style toy task).

use fm_nn::{EncoderClassifier, EncoderConfig, Gpt, GptConfig, Module, Pooling};
use fm_optim::{AdamConfig, AdamW, Optimizer};
use fm_tensor::autograd::Tape;
use ndarray::{array, Array2};

#[test]
fn gpt_parameter_names_are_hierarchical_and_stable() {
    let mut config = GptConfig::new(10, 4, 8, 2, 2);
    config.tie_embeddings = false;
    let model = Gpt::<f32>::new(config, 0).unwrap();
    let names: Vec<String> = model.parameters().into_iter().map(|p| p.name).collect();
    let mut expected = vec!["tok_emb.weight".to_string(), "pos_emb.weight".to_string()];
    for i in 0..2 {
        for suffix in [
            "norm1.weight",
            "norm1.bias",
            "attn.qkv_proj.weight",
            "attn.qkv_proj.bias",
            "attn.out_proj.weight",
            "attn.out_proj.bias",
            "norm2.weight",
            "norm2.bias",
            "mlp.fc_in.weight",
            "mlp.fc_in.bias",
            "mlp.fc_out.weight",
            "mlp.fc_out.bias",
        ] {
            expected.push(format!("blocks.{i}.{suffix}"));
        }
    }
    expected.extend([
        "norm_f.weight".into(),
        "norm_f.bias".into(),
        "lm_head.weight".into(),
    ]);
    assert_eq!(names, expected);
    // The store holds exactly these, under the same names.
    let stored: Vec<&str> = model.params().iter().map(|(_, p)| p.name()).collect();
    assert_eq!(stored.len(), names.len());
    // Count: embeddings + per layer (norms, qkv, out, mlp) + final norm + head.
    let per_layer = 2 * 16 + (8 * 24 + 24) + (8 * 8 + 8) + (8 * 32 + 32) + (32 * 8 + 8);
    assert_eq!(
        model.num_parameters(),
        10 * 8 + 4 * 8 + 2 * per_layer + 16 + 10 * 8
    );
}

#[test]
fn initialisation_depends_only_on_the_seed() {
    let config = GptConfig::new(10, 4, 8, 1, 2);
    let a = Gpt::<f32>::new(config.clone(), 7).unwrap();
    let b = Gpt::<f32>::new(config.clone(), 7).unwrap();
    let c = Gpt::<f32>::new(config, 8).unwrap();
    let w = |m: &Gpt<f32>| m.params().value(m.parameters()[0].id).clone();
    assert_eq!(w(&a), w(&b));
    assert_ne!(w(&a), w(&c));
}

#[test]
fn dropout_is_seeded_and_off_in_eval_mode() {
    let mut config = GptConfig::new(10, 8, 8, 1, 2);
    config.dropout = 0.5;
    let mut model = Gpt::<f32>::new(config, 1).unwrap();
    let ids = array![[1u32, 2, 3, 4]];
    let run = |model: &Gpt<f32>, seed| {
        let tape = Tape::new();
        let ctx = model.context(&tape).with_dropout_seed(seed);
        model
            .forward(&ctx, ids.view())
            .unwrap()
            .value()
            .into_array()
    };
    assert!(model.is_training());
    assert_eq!(run(&model, 1), run(&model, 1));
    assert_ne!(run(&model, 1), run(&model, 2));
    model.eval();
    assert!(!model.is_training());
    assert_eq!(run(&model, 1), run(&model, 2));
    assert_eq!(run(&model, 1), model.logits(ids.view()).unwrap());
}

#[test]
fn padding_does_not_change_an_encoder_example() {
    for pooling in [Pooling::Mean, Pooling::First] {
        let mut config = EncoderConfig::new(12, 8, 8, 2, 2, 2);
        config.pooling = pooling;
        config.init_std = 0.3;
        let model = EncoderClassifier::<f64>::new(config, 3).unwrap();
        let tape = Tape::no_grad();
        let ctx = model.context(&tape);
        let alone = model
            .forward(&ctx, array![[4u32, 5, 6]].view(), None)
            .unwrap()
            .value();
        let padded = model
            .forward(
                &ctx,
                array![[4u32, 5, 6, 0, 0], [1, 2, 3, 4, 5]].view(),
                Some(array![[true, true, true, false, false], [true; 5]].view()),
            )
            .unwrap()
            .value();
        for c in 0..2 {
            assert!((alone.view()[[0, c]] - padded.view()[[0, c]]).abs() < 1e-12);
        }
    }
}

#[test]
fn gpt_learns_to_continue_a_sequence() {
    let mut model = Gpt::<f32>::new(GptConfig::new(16, 16, 32, 2, 4), 3).unwrap();
    let mut optimizer = AdamW::new(AdamConfig::adamw().lr(1e-2).build().unwrap());
    let sequence: Vec<u32> = (0..16).map(|i| (i * 5 % 16) as u32).collect();
    let ids = Array2::from_shape_vec((1, 15), sequence[..15].to_vec()).unwrap();
    let targets = Array2::from_shape_vec((1, 15), sequence[1..].to_vec()).unwrap();
    let mut losses = Vec::new();
    for step in 0..60 {
        let tape = Tape::new();
        let ctx = model.context(&tape).with_dropout_seed(step);
        let loss = model.loss(&ctx, ids.view(), targets.view()).unwrap();
        let grads = tape.backward(loss).unwrap();
        losses.push(loss.item().unwrap());
        drop(ctx);
        model.params_mut().accumulate(&grads).unwrap();
        optimizer.step(model.params_mut()).unwrap();
        model.params_mut().zero_grad();
    }
    assert!(losses[59] < 0.1 * losses[0], "{:?}", losses);
    let options = fm_nn::GenerateOptions {
        max_new_tokens: 10,
        ..fm_nn::GenerateOptions::greedy()
    };
    let out = fm_nn::generate(&model, &sequence[..3], &options).unwrap();
    assert_eq!(out.tokens, sequence[3..13]);
}

#[test]
fn encoder_classifies_a_sentiment_style_toy_task() {
    // Words 1..=5 are "positive", 6..=10 "negative", 11 neutral; 0 is padding. The label is the
    // majority of the polar words; lengths vary, so batches are padded.
    let make = |seed: u64, n: usize| {
        let mut state = seed;
        let mut next = move |m: u64| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) % m
        };
        let mut rows = Vec::new();
        for _ in 0..n {
            let len = 3 + next(5) as usize;
            let label = next(2) as u32;
            let words: Vec<u32> = (0..len)
                .map(|i| {
                    if i % 2 == 0 || next(4) == 0 {
                        if label == 0 {
                            1 + next(5) as u32
                        } else {
                            6 + next(5) as u32
                        }
                    } else {
                        11
                    }
                })
                .collect();
            rows.push((words, label));
        }
        let mut ids = Array2::<u32>::zeros((n, 8));
        let mut mask = Array2::from_elem((n, 8), false);
        let mut labels = Vec::new();
        for (r, (words, label)) in rows.into_iter().enumerate() {
            for (t, w) in words.into_iter().enumerate() {
                ids[[r, t]] = w;
                mask[[r, t]] = true;
            }
            labels.push(label);
        }
        (ids, mask, labels)
    };
    let (train_ids, train_mask, train_labels) = make(1, 64);
    let (test_ids, test_mask, test_labels) = make(2, 64);
    let mut model =
        EncoderClassifier::<f32>::new(EncoderConfig::new(12, 8, 16, 1, 2, 2), 5).unwrap();
    let mut optimizer = AdamW::new(AdamConfig::adamw().lr(1e-2).build().unwrap());
    for _ in 0..40 {
        let tape = Tape::new();
        let ctx = model.context(&tape);
        let loss = model
            .loss(
                &ctx,
                train_ids.view(),
                Some(train_mask.view()),
                &train_labels,
            )
            .unwrap();
        let grads = tape.backward(loss).unwrap();
        drop(ctx);
        model.params_mut().accumulate(&grads).unwrap();
        optimizer.step(model.params_mut()).unwrap();
        model.params_mut().zero_grad();
    }
    let predicted = model
        .predict(test_ids.view(), Some(test_mask.view()))
        .unwrap();
    let correct = predicted
        .iter()
        .zip(&test_labels)
        .filter(|(p, l)| **p == **l as usize)
        .count();
    assert!(correct >= 58, "{correct} of 64 held-out examples correct");
}
