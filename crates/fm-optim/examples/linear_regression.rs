//! The seed's worked example, done right: fit `y = θ₀ + θ₁·x` to x = [2, 4, 6], y = [3, 5, 7] with
//! mean squared error and gradient descent, optionally with an L2 penalty.
//!
//! ```text
//! cargo run --example linear_regression -p fm-optim            # plain least squares
//! cargo run --example linear_regression -p fm-optim -- 0.1     # with L2, λ = 0.1
//! ```
//!
//! The seed text printed θ = [0.5, 1.5] for this program. That line does not fit its own data
//! (predictions 3.5, 6.5, 9.5 against 3, 5, 7: MSE 2.92); the least-squares line is y = 1 + 1·x, with
//! MSE 0, and that is where gradient descent goes.
//!
//! The model runs on fm-tensor's tape (θ as a [2, 1] parameter, the design matrix [1, x] times θ),
//! the loss is fm-loss's MSE op, and the update is fm-optim's SGD without momentum — plain gradient
//! descent — stepping the parameter store.

use fm_loss::{autograd::mse, Reduction};
use fm_optim::{Optimizer, Sgd, SgdConfig};
use fm_tensor::autograd::{ParamStore, Tape};
use ndarray::{array, Array2};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let lambda: f64 = match std::env::args().nth(1) {
        Some(arg) => arg
            .parse()
            .map_err(|e| format!("λ must be a number, got {arg:?}: {e}"))?,
        None => 0.0,
    };
    let xs = [2.0, 4.0, 6.0];
    let ys = array![[3.0], [5.0], [7.0]];
    // The design matrix [1, x]: θ₀ multiplies the column of ones.
    let design = Array2::from_shape_fn((3, 2), |(i, j)| if j == 0 { 1.0 } else { xs[i] });

    let mut params = ParamStore::<f64>::new();
    let theta = params.add("theta", array![[0.0], [0.0]])?;
    // lr 0.04: below 2 / (largest Hessian eigenvalue ≈ 39.1), so gradient descent converges.
    let mut gd = Sgd::new(SgdConfig::builder().lr(0.04).l2(lambda).build()?);

    let iterations = 2000;
    for iteration in 0..=iterations {
        let tape = Tape::new();
        let prediction = tape
            .constant(design.clone())
            .matmul(tape.param(&params, theta)?)?;
        let loss = mse(prediction, tape.constant(ys.clone()), Reduction::Mean)?;
        if iteration % 100 == 0 {
            println!("iteration {iteration:4}: mse = {:.6e}", loss.item()?);
        }
        if iteration == iterations {
            break;
        }
        params.accumulate(&tape.backward(loss)?)?;
        gd.step(&mut params)?;
        params.zero_grad();
    }

    let t = params.value(theta);
    println!("θ = [{:.6}, {:.6}]", t[[0, 0]], t[[1, 0]]);
    if lambda == 0.0 {
        println!("least squares: θ = [1, 1] (y = 1 + x fits all three points exactly)");
        let seed_mse = xs
            .iter()
            .zip(ys.iter())
            .map(|(x, y)| (0.5 + 1.5 * x - y) * (0.5 + 1.5 * x - y))
            .sum::<f64>()
            / 3.0;
        println!(
            "the seed's θ = [0.5, 1.5] does not fit its own data: its MSE is {seed_mse:.4}, not 0"
        );
    } else {
        // Minimiser of MSE + (λ/2)‖θ‖²: (2/n XᵀX + λI) θ = 2/n Xᵀy.
        let n = 3.0;
        let a = design.t().dot(&design) * (2.0 / n) + Array2::<f64>::eye(2) * lambda;
        let b = design.t().dot(&ys) * (2.0 / n);
        let det = a[[0, 0]] * a[[1, 1]] - a[[0, 1]] * a[[1, 0]];
        let r0 = (a[[1, 1]] * b[[0, 0]] - a[[0, 1]] * b[[1, 0]]) / det;
        let r1 = (a[[0, 0]] * b[[1, 0]] - a[[1, 0]] * b[[0, 0]]) / det;
        println!(
            "closed-form ridge solution (penalty λ/2·‖θ‖², bias included): θ = [{r0:.6}, {r1:.6}]"
        );
    }
    Ok(())
}
