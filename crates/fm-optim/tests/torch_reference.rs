//! 20-step trajectories of every optimizer and option against PyTorch's `torch.optim` (float64), and
//! learning-rate schedules against `torch.optim.lr_scheduler`, from the committed fixture
//! `fixtures/optim_torch.json` (made by `fixtures/make_optim_fixtures.py`).

use fm_optim::*;
use ndarray::{ArrayD, IxDyn};
use serde_json::Value;

fn fixture() -> Value {
    serde_json::from_str(include_str!("fixtures/optim_torch.json")).expect("valid fixture JSON")
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn f(o: &Value, key: &str) -> Option<f64> {
    o.get(key).and_then(Value::as_f64)
}

fn b(o: &Value, key: &str) -> bool {
    o.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// Builds the case's optimizer, as a trait object so every algorithm runs through the same loop.
fn build<T: Scalar>(case: &Value) -> Box<dyn Optimizer<T>> {
    let o = &case["options"];
    fn finish<T: Scalar, C: Rule>(case: &Value, config: C) -> Box<dyn Optimizer<T>> {
        let mut opt = Optim::<T, C>::new(config);
        if !case["schedule"].is_null() {
            let schedule: LrSchedule = serde_json::from_value(case["schedule"].clone()).unwrap();
            opt = opt.with_schedule(schedule).unwrap();
        }
        if !case["clip"].is_null() {
            let clip = GradClip {
                max_norm: f(&case["clip"], "max_norm"),
                max_value: f(&case["clip"], "max_value"),
            };
            opt = opt.with_clip(clip).unwrap();
        }
        for g in case["groups"].as_array().unwrap() {
            let names: Vec<String> = g["params"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_str().unwrap().to_string())
                .collect();
            let mut group = ParamGroup::new(names);
            group.lr = f(g, "lr");
            group.weight_decay = f(g, "weight_decay");
            opt.add_param_group(group).unwrap();
        }
        Box::new(opt)
    }
    match case["algo"].as_str().unwrap() {
        "sgd" => {
            let mut c = SgdConfig::builder();
            c = c.lr(f(o, "lr").unwrap());
            if let Some(m) = f(o, "momentum") {
                c = c.momentum(m);
            }
            if let Some(d) = f(o, "dampening") {
                c = c.dampening(d);
            }
            if let Some(l2) = f(o, "l2") {
                c = c.l2(l2);
            }
            finish(case, c.nesterov(b(o, "nesterov")).build().unwrap())
        }
        "adam" => {
            let mut c = AdamConfig::builder().lr(f(o, "lr").unwrap());
            if let Some(betas) = o.get("betas") {
                let betas = floats(betas);
                c = c.betas(betas[0], betas[1]);
            }
            if let Some(eps) = f(o, "eps") {
                c = c.eps(eps);
            }
            if let Some(wd) = f(o, "weight_decay") {
                c = c.weight_decay(wd);
            }
            if let Some(l2) = f(o, "l2") {
                c = c.l2(l2);
            }
            finish(case, c.amsgrad(b(o, "amsgrad")).build().unwrap())
        }
        "rmsprop" => {
            let mut c = RmsPropConfig::builder().lr(f(o, "lr").unwrap());
            if let Some(a) = f(o, "alpha") {
                c = c.alpha(a);
            }
            if let Some(eps) = f(o, "eps") {
                c = c.eps(eps);
            }
            if let Some(m) = f(o, "momentum") {
                c = c.momentum(m);
            }
            if let Some(l2) = f(o, "l2") {
                c = c.l2(l2);
            }
            finish(case, c.centered(b(o, "centered")).build().unwrap())
        }
        "adagrad" => {
            let mut c = AdagradConfig::builder().lr(f(o, "lr").unwrap());
            if let Some(d) = f(o, "lr_decay") {
                c = c.lr_decay(d);
            }
            if let Some(v) = f(o, "initial_accumulator_value") {
                c = c.initial_accumulator_value(v);
            }
            if let Some(eps) = f(o, "eps") {
                c = c.eps(eps);
            }
            if let Some(l2) = f(o, "l2") {
                c = c.l2(l2);
            }
            finish(case, c.build().unwrap())
        }
        other => panic!("unknown algorithm {other}"),
    }
}

/// Replays a case in `T` and returns the largest deviation from PyTorch's trajectory over all steps.
fn replay<T: Scalar>(case: &Value) -> f64 {
    let mut opt = build::<T>(case);
    let specs = case["params"].as_array().unwrap();
    let names: Vec<String> = specs
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    let shape = |p: &Value| -> Vec<usize> {
        p["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect()
    };
    let mut values: Vec<ArrayD<T>> = specs
        .iter()
        .map(|p| {
            let data = floats(&p["init"])
                .into_iter()
                .map(T::from_f64_lossy)
                .collect();
            ArrayD::from_shape_vec(IxDyn(&shape(p)), data).unwrap()
        })
        .collect();
    let mut worst = 0.0f64;
    let steps = case["grads"].as_array().unwrap();
    let trajectory = case["trajectory"].as_array().unwrap();
    assert_eq!(steps.len(), 20);
    for (step, (grads, expected)) in steps.iter().zip(trajectory).enumerate() {
        let mut grads: Vec<ArrayD<T>> = grads
            .as_array()
            .unwrap()
            .iter()
            .zip(specs)
            .map(|(g, p)| {
                let data = floats(g).into_iter().map(T::from_f64_lossy).collect();
                ArrayD::from_shape_vec(IxDyn(&shape(p)), data).unwrap()
            })
            .collect();
        let mut params: Vec<NamedParam<'_, T>> = names
            .iter()
            .zip(values.iter_mut())
            .zip(grads.iter_mut())
            .map(|((n, v), g)| NamedParam::new(n, v.view_mut(), g.view_mut()))
            .collect();
        let report = opt.step(&mut params).unwrap();
        assert!(!report.skipped);
        for (value, expected) in values.iter().zip(expected.as_array().unwrap()) {
            for (got, want) in value.iter().zip(floats(expected)) {
                let err = (got.to_f64_lossless() - want).abs();
                assert!(err.is_finite(), "{} step {step}: {got:?}", case["name"]);
                worst = worst.max(err);
            }
        }
    }
    worst
}

#[test]
fn trajectories_match_pytorch_in_f64() {
    let fixture = fixture();
    let cases = fixture["trajectories"].as_array().unwrap();
    assert!(cases.len() >= 18);
    for case in cases {
        let worst = replay::<f64>(case);
        assert!(
            worst < 1e-6,
            "{}: deviates from PyTorch by {worst:e}",
            case["name"]
        );
    }
}

/// The f32 path (vectorised kernels) follows the same trajectories up to f32 rounding.
#[test]
fn trajectories_match_pytorch_in_f32() {
    let fixture = fixture();
    for case in fixture["trajectories"].as_array().unwrap() {
        let worst = replay::<f32>(case);
        assert!(
            worst < 2e-6,
            "{}: f32 deviates from PyTorch by {worst:e}",
            case["name"]
        );
    }
}

#[test]
fn schedules_match_pytorch() {
    let fixture = fixture();
    for case in fixture["schedules"].as_array().unwrap() {
        let schedule: LrSchedule = serde_json::from_value(case["schedule"].clone()).unwrap();
        schedule.validate().unwrap();
        let base = case["base"].as_f64().unwrap();
        for (t, want) in floats(&case["lrs"]).into_iter().enumerate() {
            let got = schedule.lr(t as u64, base);
            assert!(
                (got - want).abs() <= 1e-12 * want.abs().max(1e-3),
                "{} step {t}: {got} vs PyTorch {want}",
                case["name"]
            );
        }
    }
}
