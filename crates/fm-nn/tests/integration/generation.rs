//! Generation: the KV-cache path equals recomputing the whole sequence, token for token and logit
//! for logit; stop tokens, budgets and the context limit end it as documented.

use fm_nn::{
    generate, Activation, GenerateOptions, Gpt, GptConfig, NormKind, PositionEncoding, StopReason,
};
use fm_tensor::autograd::Tape;
use ndarray::{s, Array2};

fn learned() -> GptConfig {
    let mut c = GptConfig::new(29, 40, 16, 2, 4);
    c.init_std = 0.3; // far from uniform, so greedy paths are decided by the weights
    c
}

fn rotary_gqa() -> GptConfig {
    let mut c = learned();
    c.positions = PositionEncoding::Rotary;
    c.n_kv_heads = Some(2);
    c.activation = Activation::SwiGlu;
    c.norm = NormKind::RmsNorm;
    c.tie_embeddings = false;
    c
}

#[test]
fn cached_greedy_generation_equals_uncached_recomputation() {
    for config in [learned(), rotary_gqa()] {
        let model = Gpt::<f32>::new(config, 21).unwrap();
        let cached = GenerateOptions {
            max_new_tokens: 30,
            ..GenerateOptions::greedy()
        };
        let uncached = GenerateOptions {
            use_cache: false,
            ..cached.clone()
        };
        let a = generate(&model, &[3, 1, 4], &cached).unwrap();
        let b = generate(&model, &[3, 1, 4], &uncached).unwrap();
        assert_eq!(a.tokens.len(), 30);
        assert_eq!(a, b);
        // Not a degenerate repetition of one token.
        assert!(a.tokens.iter().any(|&t| t != a.tokens[0]), "{:?}", a.tokens);
    }
}

#[test]
fn cached_logits_match_full_forward_in_any_chunking() {
    for config in [learned(), rotary_gqa()] {
        let model = Gpt::<f64>::new(config, 5).unwrap();
        let ids = Array2::from_shape_fn((2, 12), |(b, t)| ((7 * t + 3 * b) % 29) as u32);
        let full = model.logits(ids.view()).unwrap();
        let mut cache = model.new_cache();
        let mut start = 0;
        for chunk in [5usize, 1, 4, 2] {
            let tape = Tape::no_grad();
            let ctx = model.context(&tape);
            let part = model
                .forward_cached(&ctx, ids.slice(s![.., start..start + chunk]), &mut cache)
                .unwrap()
                .value();
            let expected = full.slice(s![.., start..start + chunk, ..]);
            let err = part
                .view()
                .iter()
                .zip(expected.iter())
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(err < 1e-12, "chunk at {start}: max error {err}");
            start += chunk;
        }
        assert_eq!(cache.len(), 12);
    }
}

#[test]
fn cached_forward_on_a_recording_tape_matches_the_no_grad_path_and_has_gradients() {
    // The no-grad path attends to the cache in place; a recording tape puts the cached prefix on
    // the tape as a constant. Both must give the same logits, and the second must reach the weights.
    for config in [learned(), rotary_gqa()] {
        let model = Gpt::<f64>::new(config, 9).unwrap();
        let ids = Array2::from_shape_fn((2, 9), |(b, t)| ((5 * t + 7 * b) % 29) as u32);
        let (mut plain, mut recorded) = (model.new_cache(), model.new_cache());
        let mut start = 0;
        for chunk in [4usize, 1, 3, 1] {
            let part = ids.slice(s![.., start..start + chunk]);
            let no_grad = Tape::no_grad();
            let expected = model
                .forward_cached(&model.context(&no_grad), part, &mut plain)
                .unwrap()
                .value();
            let tape = Tape::new();
            let logits = model
                .forward_cached(&model.context(&tape), part, &mut recorded)
                .unwrap();
            let err = logits
                .value()
                .view()
                .iter()
                .zip(expected.view().iter())
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(err < 1e-12, "chunk at {start}: max error {err}");
            let grads = tape.backward(logits.sum().unwrap()).unwrap();
            let with_gradient = grads.params().filter(|(_, g)| g.iter().any(|&v| v != 0.0));
            assert!(
                with_gradient.count() > 0,
                "no parameter got a gradient at {start}"
            );
            start += chunk;
        }
        assert_eq!((plain.len(), recorded.len()), (9, 9));
    }
}

#[test]
fn stop_tokens_budget_and_context_end_generation() {
    let model = Gpt::<f32>::new(learned(), 21).unwrap();
    let free = generate(
        &model,
        &[3],
        &GenerateOptions {
            max_new_tokens: 10,
            ..GenerateOptions::greedy()
        },
    )
    .unwrap();
    assert_eq!(free.stop_reason, StopReason::MaxTokens);
    let stop = free.tokens[4];
    let first = free.tokens.iter().position(|&t| t == stop).unwrap();
    let stopped = generate(
        &model,
        &[3],
        &GenerateOptions {
            max_new_tokens: 10,
            stop_tokens: vec![stop],
            ..GenerateOptions::greedy()
        },
    )
    .unwrap();
    assert_eq!(stopped.stop_reason, StopReason::StopToken);
    assert_eq!(stopped.tokens, free.tokens[..=first]);

    let full = generate(
        &model,
        &[3; 35],
        &GenerateOptions {
            max_new_tokens: 100,
            ..GenerateOptions::greedy()
        },
    )
    .unwrap();
    assert_eq!(full.stop_reason, StopReason::ContextFull);
    assert_eq!(full.tokens.len(), 5); // 35 + 5 = context of 40
}

#[test]
fn sampling_is_reproducible_per_seed_and_respects_top_k() {
    let model = Gpt::<f32>::new(learned(), 2).unwrap();
    let sample = |seed, top_k| {
        let options = GenerateOptions {
            max_new_tokens: 20,
            temperature: 1.5,
            top_k,
            top_p: Some(0.95),
            seed,
            ..GenerateOptions::greedy()
        };
        generate(&model, &[1, 2], &options).unwrap().tokens
    };
    assert_eq!(sample(11, None), sample(11, None));
    assert_ne!(sample(11, None), sample(12, None));
    let greedy = generate(
        &model,
        &[1, 2],
        &GenerateOptions {
            max_new_tokens: 20,
            ..GenerateOptions::greedy()
        },
    )
    .unwrap();
    assert_eq!(sample(13, Some(1)), greedy.tokens);
}

#[test]
fn bad_prompts_are_errors() {
    let model = Gpt::<f32>::new(learned(), 2).unwrap();
    let options = GenerateOptions::greedy();
    assert!(generate(&model, &[], &options).is_err());
    let err = generate(&model, &[29], &options).unwrap_err().to_string();
    assert!(
        err.contains("token id 29") && err.contains("vocabulary of 29"),
        "{err}"
    );
    let err = generate(&model, &[0; 41], &options)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("41 tokens") && err.contains("context of 40"),
        "{err}"
    );
}
