//! Every differentiable op, through the tape, against central finite differences in f64.
//!
//! Shapes are random-ish but fixed, and include size-1 and broadcast dimensions. Each check asserts the
//! maximum error is below 1e-6 (see `fm_tensor::autograd::check_gradients` for the measure).

use fm_tensor::autograd::{check_gradients, concat, GradCheckConfig, Tape, Var};
use fm_tensor::init;
use fm_tensor::Result;
use ndarray::{ArrayD, IxDyn};

fn rand(shape: &[usize], seed: u64) -> ArrayD<f64> {
    init::uniform::<f64>(shape, -1.0, 1.0, seed).unwrap()
}

/// Values bounded away from zero (for log, sqrt, division).
fn positive(shape: &[usize], seed: u64) -> ArrayD<f64> {
    init::uniform::<f64>(shape, 0.5, 2.0, seed).unwrap()
}

fn check<F>(name: &str, f: F, inputs: &[ArrayD<f64>])
where
    F: for<'t> Fn(&'t Tape<f64>, &[Var<'t, f64>]) -> Result<Var<'t, f64>>,
{
    let report = check_gradients(f, inputs, &GradCheckConfig::default())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(report.checked > 0, "{name}: nothing checked");
    assert!(report.passed(), "{name}: {report}");
}

#[test]
fn checker_catches_a_wrong_gradient() {
    use fm_tensor::autograd::{BackwardContext, CustomOp};
    use ndarray::ArrayViewD;
    struct WrongSquare;
    impl CustomOp<f64> for WrongSquare {
        fn name(&self) -> &str {
            "wrong_square"
        }
        fn forward(&mut self, inputs: &[ArrayViewD<'_, f64>]) -> Result<ArrayD<f64>> {
            Ok(inputs[0].mapv(|x| x * x))
        }
        fn backward(&self, ctx: &BackwardContext<'_, f64>) -> Result<Vec<Option<ArrayD<f64>>>> {
            // Should be 2x·g; x·g is wrong.
            Ok(vec![Some(&ctx.inputs[0] * &ctx.grad_output)])
        }
    }
    let report = check_gradients(
        |t, x| t.apply(WrongSquare, &[x[0]]),
        &[positive(&[3], 1)],
        &GradCheckConfig::default(),
    )
    .unwrap();
    assert!(!report.passed(), "{report}");
}

#[test]
fn matmul() {
    check(
        "matmul",
        |_, x| x[0].matmul(x[1]),
        &[rand(&[3, 4], 1), rand(&[4, 5], 2)],
    );
    check(
        "matmul 1xk",
        |_, x| x[0].matmul(x[1]),
        &[rand(&[1, 4], 3), rand(&[4, 1], 4)],
    );
}

#[test]
fn shape_ops() {
    let x = rand(&[2, 3, 4], 10);
    check(
        "reshape",
        |_, v| v[0].reshape(&[4, -1]),
        std::slice::from_ref(&x),
    );
    check(
        "transpose",
        |_, v| v[0].transpose(0, -1),
        std::slice::from_ref(&x),
    );
    check(
        "permute",
        |_, v| v[0].permute(&[1, 2, 0]),
        std::slice::from_ref(&x),
    );
    check(
        "slice",
        |_, v| v[0].slice(2, 1, 4, 2),
        std::slice::from_ref(&x),
    );
    check(
        "index_select",
        |_, v| v[0].index_select(1, &[2, 0, 2]),
        std::slice::from_ref(&x),
    );
    check("squeeze", |_, v| v[0].squeeze(1), &[rand(&[3, 1, 2], 11)]);
    check("unsqueeze", |_, v| v[0].unsqueeze(0), &[rand(&[3, 2], 12)]);
    check(
        "broadcast_to",
        |_, v| v[0].broadcast_to(&[4, 3, 2]),
        &[rand(&[3, 1], 13)],
    );
    check(
        "split then concat (reordered)",
        |_, v| {
            let parts = v[0].split(1, &[1, 2])?;
            concat(&[parts[1], parts[0], v[1]], 1)
        },
        &[x.clone(), rand(&[2, 1, 4], 14)],
    );
}

#[test]
fn embedding_and_dropout() {
    let ids = ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![4u32, 0, 4, 1, 1, 2]).unwrap();
    check(
        "embedding",
        |_, v| v[0].embedding(ids.view()),
        &[rand(&[5, 3], 20)],
    );
    check(
        "dropout",
        |_, v| v[0].dropout(0.4, 99),
        &[rand(&[4, 7], 21)],
    );
}

#[test]
fn binary_ops_with_broadcasting() {
    // [3, 1, 4] against [5, 1]: both sides broadcast.
    let a = rand(&[3, 1, 4], 30);
    let b = rand(&[5, 1], 31);
    check("add", |_, v| v[0].add(v[1]), &[a.clone(), b.clone()]);
    check("sub", |_, v| v[0].sub(v[1]), &[a.clone(), b.clone()]);
    check("mul", |_, v| v[0].mul(v[1]), &[a.clone(), b.clone()]);
    check(
        "div",
        |_, v| v[0].div(v[1]),
        &[a.clone(), positive(&[5, 1], 32)],
    );
    check(
        "pow",
        |_, v| v[0].pow(v[1]),
        &[positive(&[3, 1, 4], 33), b.clone()],
    );
    check(
        "maximum",
        |_, v| v[0].maximum(v[1]),
        &[a.clone(), b.clone()],
    );
    check("minimum", |_, v| v[0].minimum(v[1]), &[a, b]);
    check(
        "same shape",
        |_, v| v[0].mul(v[1]),
        &[rand(&[2, 3], 34), rand(&[2, 3], 35)],
    );
    check(
        "scalar operand",
        |_, v| v[0].add(v[1]),
        &[rand(&[2, 3], 36), rand(&[], 37)],
    );
}

#[test]
fn unary_ops() {
    let x = rand(&[2, 1, 5], 40);
    let p = positive(&[2, 1, 5], 41);
    check("neg", |_, v| v[0].neg(), std::slice::from_ref(&x));
    check("exp", |_, v| v[0].exp(), std::slice::from_ref(&x));
    check("log", |_, v| v[0].log(), std::slice::from_ref(&p));
    check("sqrt", |_, v| v[0].sqrt(), std::slice::from_ref(&p));
    check("rsqrt", |_, v| v[0].rsqrt(), std::slice::from_ref(&p));
    check("abs", |_, v| v[0].abs(), std::slice::from_ref(&p));
    check("square", |_, v| v[0].square(), std::slice::from_ref(&x));
    check(
        "reciprocal",
        |_, v| v[0].reciprocal(),
        std::slice::from_ref(&p),
    );
    check(
        "add_scalar",
        |_, v| v[0].add_scalar(2.5),
        std::slice::from_ref(&x),
    );
    check(
        "mul_scalar",
        |_, v| v[0].mul_scalar(-1.5),
        std::slice::from_ref(&x),
    );
    check("powf", |_, v| v[0].powf(1.7), std::slice::from_ref(&p));
}

#[test]
fn activations() {
    // Away from relu's kink at 0 so central differences are meaningful there.
    let x = init::uniform::<f64>(&[3, 4], 0.1, 3.0, 50).unwrap()
        * &init::uniform::<f64>(&[3, 4], -1.0, 1.0, 51)
            .unwrap()
            .mapv(f64::signum);
    check("relu", |_, v| v[0].relu(), std::slice::from_ref(&x));
    let wide = init::uniform::<f64>(&[3, 5], -4.0, 4.0, 52).unwrap();
    check("gelu", |_, v| v[0].gelu(), std::slice::from_ref(&wide));
    check(
        "gelu_tanh",
        |_, v| v[0].gelu_tanh(),
        std::slice::from_ref(&wide),
    );
    check("silu", |_, v| v[0].silu(), std::slice::from_ref(&wide));
    check("tanh", |_, v| v[0].tanh(), std::slice::from_ref(&wide));
    check(
        "sigmoid",
        |_, v| v[0].sigmoid(),
        std::slice::from_ref(&wide),
    );
}

#[test]
fn reductions_and_softmax() {
    let x = rand(&[3, 1, 4], 60);
    check("sum", |_, v| v[0].sum(), std::slice::from_ref(&x));
    check("mean", |_, v| v[0].mean(), std::slice::from_ref(&x));
    check(
        "sum_axes keepdim",
        |_, v| v[0].sum_axes(&[0, -1], true),
        std::slice::from_ref(&x),
    );
    check(
        "mean_axes",
        |_, v| v[0].mean_axes(&[2], false),
        std::slice::from_ref(&x),
    );
    check(
        "max_axes",
        |_, v| v[0].max_axes(&[-1], false),
        std::slice::from_ref(&x),
    );
    check(
        "min_axes",
        |_, v| v[0].min_axes(&[0], true),
        std::slice::from_ref(&x),
    );
    check(
        "softmax last",
        |_, v| v[0].softmax(-1),
        std::slice::from_ref(&x),
    );
    check(
        "softmax first",
        |_, v| v[0].softmax(0),
        std::slice::from_ref(&x),
    );
    check(
        "log_softmax",
        |_, v| v[0].log_softmax(-1),
        std::slice::from_ref(&x),
    );
    check("log_softmax size-1 axis", |_, v| v[0].log_softmax(1), &[x]);
}

#[test]
fn a_small_network_end_to_end() {
    // x·W1 + b1 → GELU → ·W2 → log_softmax → mean: every piece composed on one tape.
    check(
        "mlp",
        |_, v| {
            v[0].matmul(v[1])?
                .add(v[2])?
                .gelu()?
                .matmul(v[3])?
                .log_softmax(-1)?
                .mean()
        },
        &[
            rand(&[4, 3], 70),
            rand(&[3, 5], 71),
            rand(&[5], 72),
            rand(&[5, 2], 73),
        ],
    );
}

#[test]
fn norms() {
    let x = rand(&[2, 3, 5], 80);
    let gamma = rand(&[5], 81);
    let beta = rand(&[5], 82);
    check(
        "layer_norm affine",
        |_, v| v[0].layer_norm(Some(v[1]), Some(v[2]), 1e-5),
        &[x.clone(), gamma.clone(), beta],
    );
    check(
        "layer_norm plain",
        |_, v| v[0].layer_norm(None, None, 1e-5),
        std::slice::from_ref(&x),
    );
    check(
        "rms_norm",
        |_, v| v[0].rms_norm(Some(v[1]), 1e-6),
        &[x.clone(), gamma],
    );
    check("rms_norm plain", |_, v| v[0].rms_norm(None, 1e-6), &[x]);
    check(
        "layer_norm one row of one",
        |_, v| v[0].layer_norm(None, None, 1e-5),
        &[rand(&[1, 1], 83)],
    );
}

#[test]
fn batched_matmul_with_broadcast_batches() {
    check(
        "batched",
        |_, v| v[0].matmul(v[1]),
        &[rand(&[2, 3, 4], 90), rand(&[2, 4, 5], 91)],
    );
    check(
        "broadcast batch",
        |_, v| v[0].matmul(v[1]),
        &[rand(&[2, 1, 3, 4], 92), rand(&[3, 4, 2], 93)],
    );
    check(
        "matrix times batch",
        |_, v| v[0].matmul(v[1]),
        &[rand(&[3, 4], 94), rand(&[2, 4, 5], 95)],
    );
}
