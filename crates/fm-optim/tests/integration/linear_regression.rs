//! The seed's regression (θ₀ + θ₁·x on x = [2, 4, 6], y = [3, 5, 7], MSE) fitted end to end — tape,
//! fm-loss's MSE op, fm-optim stepping the parameter store — with each optimizer. Least squares is
//! θ = [1, 1]; with an L2 penalty the fit must equal the closed-form ridge solution.

use fm_loss::{autograd::mse, Reduction};
use fm_optim::*;
use fm_tensor::autograd::{ParamStore, Tape};
use ndarray::{array, Array2};

const XS: [f64; 3] = [2.0, 4.0, 6.0];

fn design() -> Array2<f64> {
    Array2::from_shape_fn((3, 2), |(i, j)| if j == 0 { 1.0 } else { XS[i] })
}

/// Runs `steps` optimizer steps from θ = 0 and returns θ and the last MSE.
fn fit(opt: &mut dyn Optimizer<f64>, steps: usize) -> ([f64; 2], f64) {
    let x = design();
    let y = array![[3.0], [5.0], [7.0]];
    let mut params = ParamStore::<f64>::new();
    let theta = params.add("theta", array![[0.0], [0.0]]).unwrap();
    let mut last = f64::NAN;
    for _ in 0..steps {
        let tape = Tape::new();
        let pred = tape
            .constant(x.clone())
            .matmul(tape.param(&params, theta).unwrap())
            .unwrap();
        let loss = mse(pred, tape.constant(y.clone()), Reduction::Mean).unwrap();
        last = loss.item().unwrap();
        params.accumulate(&tape.backward(loss).unwrap()).unwrap();
        opt.step(&mut params).unwrap();
        opt.zero_grad(&mut params);
    }
    let t = params.value(theta);
    ([t[[0, 0]], t[[1, 0]]], last)
}

fn assert_fits(name: &str, theta: [f64; 2], expected: [f64; 2], tolerance: f64) {
    let err = (theta[0] - expected[0])
        .abs()
        .max((theta[1] - expected[1]).abs());
    assert!(
        err < tolerance,
        "{name}: θ = {theta:?}, expected {expected:?} (error {err:e})"
    );
}

#[test]
fn gradient_descent() {
    let mut gd = Sgd::new(SgdConfig::builder().lr(0.04).build().unwrap());
    let (theta, loss) = fit(&mut gd, 2000);
    assert_fits("GD", theta, [1.0, 1.0], 1e-4);
    assert!(loss < 1e-8, "loss {loss}");
}

#[test]
fn sgd_with_momentum() {
    let mut sgd = Sgd::new(SgdConfig::builder().lr(0.01).momentum(0.9).build().unwrap());
    let (theta, _) = fit(&mut sgd, 1500);
    assert_fits("SGD+momentum", theta, [1.0, 1.0], 1e-4);
}

#[test]
fn adam() {
    // Adam's step size does not shrink with the gradient; a decaying schedule lets it settle.
    let mut adam = Adam::new(AdamConfig::builder().lr(0.1).build().unwrap())
        .with_schedule(LrSchedule::cosine(3000, 0.0).unwrap())
        .unwrap();
    let (theta, _) = fit(&mut adam, 3000);
    assert_fits("Adam", theta, [1.0, 1.0], 1e-4);
}

#[test]
fn rmsprop() {
    let mut rms = RmsProp::new(RmsPropConfig::builder().lr(0.01).build().unwrap())
        .with_schedule(LrSchedule::cosine(3000, 0.0).unwrap())
        .unwrap();
    let (theta, _) = fit(&mut rms, 3000);
    assert_fits("RMSprop", theta, [1.0, 1.0], 1e-4);
}

/// With `l2 = λ` the optimizer minimises MSE + (λ/2)‖θ‖², whose minimiser solves
/// (2/n·XᵀX + λI) θ = 2/n·Xᵀy.
#[test]
fn l2_penalty_gives_the_ridge_solution() {
    for lambda in [0.05, 0.1, 1.0] {
        let x = design();
        let y = array![3.0, 5.0, 7.0];
        let a = x.t().dot(&x) * (2.0 / 3.0) + Array2::<f64>::eye(2) * lambda;
        let b = x.t().dot(&y) * (2.0 / 3.0);
        let det = a[[0, 0]] * a[[1, 1]] - a[[0, 1]] * a[[1, 0]];
        let ridge = [
            (a[[1, 1]] * b[0] - a[[0, 1]] * b[1]) / det,
            (a[[0, 0]] * b[1] - a[[1, 0]] * b[0]) / det,
        ];
        let mut gd = Sgd::new(SgdConfig::builder().lr(0.04).l2(lambda).build().unwrap());
        let (theta, _) = fit(&mut gd, 3000);
        assert_fits("ridge", theta, ridge, 1e-6);
        // And the penalty really moved the fit away from least squares.
        assert!((theta[1] - 1.0).abs() > 1e-3 || (theta[0] - 1.0).abs() > 1e-3);
    }
}
