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
