//! Resuming bit-exactly, determinism across thread counts, regularisation semantics, groups, and
//! every kind of bad input.

use fm_optim::*;
use ndarray::{array, ArrayD, IxDyn};

/// A deterministic pseudo-random array (no RNG dependency needed).
fn wave(len: usize, seed: u64) -> ArrayD<f32> {
    ArrayD::from_shape_fn(IxDyn(&[len]), |i| {
        let k = (i[0] as u64)
            .wrapping_mul(2_654_435_761)
            .wrapping_add(seed * 97);
        ((k % 2001) as f32 / 1000.0 - 1.0) * 0.5
    })
}

/// Two parameters, one large enough for the parallel path; gradient depends on the step.
struct Model {
    w: ArrayD<f32>,
    b: ArrayD<f32>,
    gw: ArrayD<f32>,
    gb: ArrayD<f32>,
}

impl Model {
    fn new() -> Self {
        Model {
            w: wave(200_003, 1),
            b: wave(7, 2),
            gw: ArrayD::zeros(IxDyn(&[200_003])),
            gb: ArrayD::zeros(IxDyn(&[7])),
        }
    }

    fn grads(&mut self, step: u64) {
        // Gradient = parameter + a step-dependent wave: like a quadratic loss with moving targets.
        let noise = wave(200_003, step + 10);
        self.gw = &self.w + &noise;
        self.gb = &self.b - &wave(7, step + 20);
    }

    fn step(&mut self, opt: &mut dyn Optimizer<f32>, t: u64) -> StepReport {
        self.grads(t);
        let mut params = [
            NamedParam::new("w", self.w.view_mut(), self.gw.view_mut()),
            NamedParam::new("b", self.b.view_mut(), self.gb.view_mut()),
        ];
        opt.step(&mut params).unwrap()
    }
}

fn optimizers() -> Vec<(&'static str, Box<dyn Optimizer<f32>>)> {
    let schedule = LrSchedule::warmup_cosine(3, 30, 1e-4).unwrap();
    let clip = GradClip::by_norm(50.0).unwrap().and_value(0.9).unwrap();
    let mut adamw = AdamW::new(AdamConfig::adamw().lr(1e-2).amsgrad(true).build().unwrap())
        .with_schedule(schedule.clone())
        .unwrap()
        .with_clip(clip)
        .unwrap();
    adamw
        .add_param_group(ParamGroup::new(["b"]).weight_decay(0.0).lr(3e-2))
        .unwrap();
    vec![
        ("adamw", Box::new(adamw)),
        (
            "sgd",
            Box::new(
                Sgd::new(
                    SgdConfig::builder()
                        .lr(0.05)
                        .momentum(0.9)
                        .nesterov(true)
                        .l1(1e-3)
                        .l2(1e-2)
                        .build()
                        .unwrap(),
                )
                .with_schedule(LrSchedule::step(4, 0.5).unwrap())
                .unwrap(),
            ),
        ),
        (
            "rmsprop",
            Box::new(RmsProp::new(
                RmsPropConfig::builder()
                    .centered(true)
                    .momentum(0.5)
                    .weight_decay(0.01)
                    .build()
                    .unwrap(),
            )),
        ),
        (
            "adagrad",
            Box::new(Adagrad::new(
                AdagradConfig::builder()
                    .lr_decay(0.01)
                    .initial_accumulator_value(0.1)
                    .build()
                    .unwrap(),
            )),
        ),
    ]
}

fn bits(a: &ArrayD<f32>) -> Vec<u32> {
    a.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn resumed_runs_continue_bit_exactly() {
    let dir = std::env::temp_dir().join(format!("fm-optim-resume-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (index, ((name, mut opt), (_, mut fresh))) in
        optimizers().into_iter().zip(optimizers()).enumerate()
    {
        let mut model = Model::new();
        for t in 0..10 {
            model.step(opt.as_mut(), t);
        }
        // Through a file for one optimizer, through bytes for the others.
        let state = opt.state();
        let restored = if index == 0 {
            let path = dir.join("adamw.safetensors");
            state.save(&path).unwrap();
            OptimizerState::<f32>::load(&path).unwrap()
        } else {
            OptimizerState::<f32>::from_bytes(state.to_bytes().unwrap()).unwrap()
        };
        assert_eq!(restored, state, "{name}: state round trip");
        fresh.load_state(&restored).unwrap();
        assert_eq!(fresh.steps_taken(), 10);
        assert_eq!(fresh.current_lr(0), opt.current_lr(0));

        let mut resumed = Model {
            w: model.w.clone(),
            b: model.b.clone(),
            gw: model.gw.clone(),
            gb: model.gb.clone(),
        };
        for t in 10..20 {
            model.step(opt.as_mut(), t);
            resumed.step(fresh.as_mut(), t);
        }
        assert_eq!(bits(&model.w), bits(&resumed.w), "{name}: w after resume");
        assert_eq!(bits(&model.b), bits(&resumed.b), "{name}: b after resume");
        assert_eq!(opt.state(), fresh.state(), "{name}: state after resume");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn same_bits_for_one_and_two_threads() {
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            optimizers()
                .into_iter()
                .map(|(_, mut opt)| {
                    let mut model = Model::new();
                    let mut norms = Vec::new();
                    for t in 0..5 {
                        norms.push(model.step(opt.as_mut(), t).grad_norm);
                    }
                    (bits(&model.w), bits(&model.b), norms)
                })
                .collect::<Vec<_>>()
        })
    };
    assert_eq!(run(1), run(2));
}

#[test]
fn l1_l2_and_decoupled_decay_are_different_things() {
    // One parameter θ = 2 with a zero loss gradient: only the regulariser moves it.
    let step = |opt: &mut dyn Optimizer<f64>| {
        let mut theta = array![2.0].into_dyn();
        let mut grad = array![0.0].into_dyn();
        opt.step(&mut [NamedParam::new("t", theta.view_mut(), grad.view_mut())])
            .unwrap();
        theta[[0]]
    };
    let sgd = |b: SgdBuilder| Sgd::<f64>::new(b.lr(0.1).build().unwrap());
    assert_eq!(
        step(&mut sgd(SgdConfig::builder().l2(0.5))),
        2.0 - 0.1 * 0.5 * 2.0
    );
    assert_eq!(
        step(&mut sgd(SgdConfig::builder().l1(0.5))),
        2.0 - 0.1 * 0.5
    );
    assert_eq!(
        step(&mut sgd(SgdConfig::builder().weight_decay(0.5))),
        2.0 * (1.0 - 0.1 * 0.5)
    );
    // For Adam the L2 gradient is normalised (a first step moves by ≈ lr whatever its size), the
    // decoupled decay is not.
    let adam = |b: AdamBuilder| Adam::<f64>::new(b.lr(0.1).build().unwrap());
    let with_l2 = step(&mut adam(AdamConfig::builder().l2(0.1)));
    let decoupled = step(&mut adam(AdamConfig::builder().weight_decay(0.1)));
    assert!((with_l2 - 1.9).abs() < 1e-6, "{with_l2}");
    assert_eq!(decoupled, 2.0 * (1.0 - 0.1 * 0.1));
}

#[test]
fn groups_have_their_own_lr_and_decay() {
    let mut opt = Sgd::<f64>::new(
        SgdConfig::builder()
            .lr(0.1)
            .weight_decay(0.5)
            .build()
            .unwrap(),
    );
    let frozen = opt
        .add_param_group(ParamGroup::new(["frozen"]).lr(0.0))
        .unwrap();
    let plain = opt
        .add_param_group(ParamGroup::new(["plain"]).weight_decay(0.0))
        .unwrap();
    assert_eq!((frozen, plain), (1, 2));
    assert_eq!(opt.current_lr(1), Some(0.0));
    assert_eq!(opt.current_lr(3), None);
    let mut a = array![1.0].into_dyn();
    let mut b = array![1.0].into_dyn();
    let mut c = array![1.0].into_dyn();
    let mut g = [
        array![1.0].into_dyn(),
        array![1.0].into_dyn(),
        array![1.0].into_dyn(),
    ];
    let [ga, gb, gc] = &mut g;
    opt.step(&mut [
        NamedParam::new("frozen", a.view_mut(), ga.view_mut()),
        NamedParam::new("plain", b.view_mut(), gb.view_mut()),
        NamedParam::new("default", c.view_mut(), gc.view_mut()),
    ])
    .unwrap();
    assert_eq!(a[[0]], 1.0);
    assert_eq!(b[[0]], 1.0 - 0.1);
    assert_eq!(c[[0]], 1.0 * (1.0 - 0.05) - 0.1);
    let e = opt.add_param_group(ParamGroup::new(["plain"])).unwrap_err();
    assert!(matches!(e, OptimError::DuplicateParam { .. }), "{e}");
}

#[test]
fn non_contiguous_parameters_update_like_contiguous_ones() {
    let base = ndarray::Array2::from_shape_fn((5, 3), |(i, j)| (i * 3 + j) as f64 * 0.1);
    let grad = ndarray::Array2::from_shape_fn((5, 3), |(i, j)| (i as f64 - j as f64) * 0.3);
    let mut contiguous = base.clone().into_dyn();
    let mut g1 = grad.clone().into_dyn();
    // The same logical values stored column-major.
    let mut fortran = ndarray::Array2::<f64>::zeros((5, 3).f());
    fortran.assign(&base);
    let mut fortran = fortran.into_dyn();
    let mut g2 = grad.into_dyn();
    let mut a = Adam::<f64>::new(AdamConfig::builder().lr(0.1).build().unwrap());
    let mut b = Adam::<f64>::new(AdamConfig::builder().lr(0.1).build().unwrap());
    for _ in 0..3 {
        a.step(&mut [NamedParam::new("p", contiguous.view_mut(), g1.view_mut())])
            .unwrap();
        b.step(&mut [NamedParam::new("p", fortran.view_mut(), g2.view_mut())])
            .unwrap();
    }
    assert_eq!(contiguous, fortran);
    use ndarray::ShapeBuilder;
}

#[test]
fn bad_configurations_are_refused_when_built() {
    let e = SgdConfig::builder().lr(-0.1).build().unwrap_err();
    assert!(e.to_string().contains("lr = -0.1"), "{e}");
    assert!(SgdConfig::builder().nesterov(true).build().is_err());
    assert!(SgdConfig::builder()
        .momentum(0.9)
        .dampening(0.1)
        .nesterov(true)
        .build()
        .is_err());
    assert!(AdamConfig::builder().betas(1.0, 0.999).build().is_err());
    assert!(AdamConfig::builder().betas(0.9, -0.1).build().is_err());
    assert!(AdamConfig::builder().eps(0.0).build().is_err());
    assert!(AdamConfig::builder().lr(f64::NAN).build().is_err());
    assert!(RmsPropConfig::builder().alpha(1.5).build().is_err());
    assert!(AdagradConfig::builder().lr_decay(-1.0).build().is_err());
    assert!(GradClip::by_norm(0.0).is_err());
    assert!(ParamGroup::new(["x"]).lr(-1.0).validate().is_err());
    let adam = Adam::<f32>::new(AdamConfig::builder().build().unwrap());
    assert!(adam
        .with_schedule(LrSchedule::Step {
            step_size: 0,
            gamma: 0.5
        })
        .is_err());
}

#[test]
fn bad_steps_leave_everything_untouched() {
    let mut opt = Adam::<f32>::new(AdamConfig::builder().lr(0.1).build().unwrap());
    let mut a = array![1.0f32, 2.0].into_dyn();
    let mut b = array![3.0f32].into_dyn();
    let mut ga = array![0.5f32, 0.5].into_dyn();
    let mut gb = array![0.5f32].into_dyn();
    opt.step(&mut [
        NamedParam::new("a", a.view_mut(), ga.view_mut()),
        NamedParam::new("b", b.view_mut(), gb.view_mut()),
    ])
    .unwrap();
    let (a0, b0, state0) = (a.clone(), b.clone(), opt.state());

    // A NaN in the second parameter's gradient: the first parameter is not updated either.
    gb[[0]] = f32::NAN;
    let e = opt
        .step(&mut [
            NamedParam::new("a", a.view_mut(), ga.view_mut()),
            NamedParam::new("b", b.view_mut(), gb.view_mut()),
        ])
        .unwrap_err();
    assert!(
        matches!(&e, OptimError::NonFiniteGradient { param } if param == "b"),
        "{e}"
    );
    assert_eq!((&a, &b), (&a0, &b0));
    assert_eq!(opt.state(), state0);

    // A gradient of the wrong shape.
    let mut wrong = array![0.5f32, 0.5, 0.5].into_dyn();
    let e = opt
        .step(&mut [NamedParam::new("a", a.view_mut(), wrong.view_mut())])
        .unwrap_err();
    assert!(matches!(e, OptimError::ShapeMismatch { .. }), "{e}");
    // A parameter whose shape changed since its state was made.
    let mut resized = array![1.0f32, 2.0, 3.0].into_dyn();
    let e = opt
        .step(&mut [NamedParam::new("a", resized.view_mut(), wrong.view_mut())])
        .unwrap_err();
    assert!(matches!(e, OptimError::ShapeMismatch { .. }), "{e}");
    assert!(e.to_string().contains("state"), "{e}");
    // The same name twice.
    let mut a2 = a.clone();
    let mut ga2 = ga.clone();
    let e = opt
        .step(&mut [
            NamedParam::new("a", a.view_mut(), ga.view_mut()),
            NamedParam::new("a", a2.view_mut(), ga2.view_mut()),
        ])
        .unwrap_err();
    assert!(matches!(e, OptimError::DuplicateParam { .. }), "{e}");
    assert_eq!((&a, &b), (&a0, &b0));
    assert_eq!(opt.state(), state0);
    assert_eq!(opt.steps_taken(), 1);
}

#[test]
fn non_finite_policies() {
    let mut skip = Sgd::<f64>::new(SgdConfig::builder().lr(0.1).build().unwrap())
        .with_non_finite(NonFinitePolicy::Skip);
    let mut p = array![1.0].into_dyn();
    let mut g = array![f64::INFINITY].into_dyn();
    let report = skip
        .step(&mut [NamedParam::new("p", p.view_mut(), g.view_mut())])
        .unwrap();
    assert!(report.skipped);
    assert_eq!(p[[0]], 1.0);
    assert_eq!(skip.steps_taken(), 0);

    let mut unchecked = Sgd::<f64>::new(SgdConfig::builder().lr(0.1).build().unwrap())
        .with_non_finite(NonFinitePolicy::Unchecked);
    g[[0]] = f64::NAN;
    unchecked
        .step(&mut [NamedParam::new("p", p.view_mut(), g.view_mut())])
        .unwrap();
    assert!(p[[0]].is_nan(), "unchecked lets NaN through, as documented");
}

#[test]
fn refused_states() {
    let mut adam = Adam::<f32>::new(AdamConfig::builder().build().unwrap());
    let mut w = array![1.0f32].into_dyn();
    let mut g = array![1.0f32].into_dyn();
    adam.step(&mut [NamedParam::new("w", w.view_mut(), g.view_mut())])
        .unwrap();
    let state = adam.state();
    // Another algorithm.
    let mut sgd = Sgd::<f32>::new(SgdConfig::builder().build().unwrap());
    let e = sgd.load_state(&state).unwrap_err();
    assert!(e.to_string().contains("\"adam\""), "{e}");
    // Another element type.
    let mut adam64 = Adam::<f64>::new(AdamConfig::builder().build().unwrap());
    let state64 = OptimizerState::<f64> {
        meta: state.meta.clone(),
        tensors: state
            .tensors
            .iter()
            .map(|(n, t)| (n.clone(), t.mapv(f64::from)))
            .collect(),
    };
    assert!(adam64.load_state(&state64).is_err());
    // A missing tensor; the optimizer keeps its own state.
    let mut broken = state.clone();
    broken.tensors.pop();
    let mut other = Adam::<f32>::new(AdamConfig::builder().lr(0.5).build().unwrap());
    let e = other.load_state(&broken).unwrap_err();
    assert!(e.to_string().contains("missing tensor"), "{e}");
    assert_eq!(other.config().lr(), 0.5);
    // A file that is not an optimizer state.
    let bytes = fm_tensor::safetensors::save_safetensors_to_bytes([("x", w.view())], None).unwrap();
    assert!(OptimizerState::<f32>::from_bytes(bytes).is_err());
    // Invalid hyper-parameters in the JSON are caught.
    let mut bad = state.clone();
    bad.meta.config["beta1"] = serde_json::json!(1.5);
    assert!(adam.load_state(&bad).is_err());
}

#[test]
fn param_store_steps_trainable_parameters_with_gradients() {
    use fm_tensor::autograd::{ParamStore, Tape};
    let mut store = ParamStore::<f32>::new();
    let w = store.add("w", array![[1.0f32, 2.0]]).unwrap();
    let frozen = store.add("frozen", array![5.0f32]).unwrap();
    store.set_trainable(frozen, false);
    let tape = Tape::new();
    let loss = tape
        .param(&store, w)
        .unwrap()
        .matmul(tape.constant(array![[1.0f32], [1.0]]))
        .unwrap();
    let loss = loss.reshape(&[]).unwrap();
    store.accumulate(&tape.backward(loss).unwrap()).unwrap();
    drop(tape);
    let mut sgd = Sgd::<f32>::new(SgdConfig::builder().lr(0.5).build().unwrap());
    sgd.step(&mut store).unwrap();
    sgd.zero_grad(&mut store);
    assert_eq!(store.value(w), &array![[0.5f32, 1.5]].into_dyn());
    assert_eq!(store.value(frozen), &array![5.0f32].into_dyn());
    assert!(store.grad(w).is_none());
    assert_eq!(sgd.state().meta.params.len(), 1);
}
