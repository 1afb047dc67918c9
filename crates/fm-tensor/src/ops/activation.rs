//! Activation functions, forward and backward: relu, gelu (exact), gelu_tanh, silu, tanh, sigmoid.
//!
//! They are declared in the same op table as the arithmetic in
//! [`elementwise`](super::elementwise) and follow its conventions: `act(x) -> ArrayD` and
//! `act_backward(x, y, grad) -> Result<ArrayD>` with `y = act(x)`; the doc of each op type says which
//! of `x` and `y` its derivative reads. They run on the same contiguous, chunked, thread-invariant
//! loops.
//!
//! - [`gelu`] is the exact GELU, x·Φ(x) with Φ the standard normal CDF, computed as
//!   Φ(x) = erfc(−x/√2)/2 with this crate's [`erfc`] (so it keeps full relative precision where Φ is
//!   tiny, unlike 1 + erf). It is what PyTorch's `nn.GELU()` computes. In f32 the relative error is
//!   a few ulps, growing to about x²·6e-8 in the left tail (where the rounding of x/√2 is magnified;
//!   the absolute error there stays below 1e-8).
//! - [`gelu_tanh`] is the tanh approximation (`nn.GELU(approximate="tanh")`, GPT-2's "gelu_new").
//! - [`sigmoid`] and [`silu`] never form e^|x| for large |x|, so they return 0 or 1 (times x), never
//!   NaN, at ±∞ and beyond the overflow point.
//!
//! ```
//! use fm_tensor::ops::activation::{gelu, gelu_backward};
//! use ndarray::{array, ArrayD};
//!
//! let x = array![-1.0f64, 0.0, 1.0].into_dyn();
//! let y = gelu(x.view());
//! assert!((y[2] - 0.8413447460685429).abs() < 1e-15);
//! let dx = gelu_backward(x.view(), y.view(), ArrayD::ones(x.shape()).view())?;
//! assert_eq!(dx[1], 0.5); // Φ(0)
//! # Ok::<(), fm_tensor::TensorError>(())
//! ```

use super::elementwise::unary_op;
use super::special::{erfc, exp};
use crate::element::Element;

/// Φ(x), the standard normal CDF.
#[inline(always)]
fn normal_cdf<T: Element>(x: T) -> T {
    T::from_f64_lossy(0.5) * erfc(-x * T::from_f64_lossy(std::f64::consts::FRAC_1_SQRT_2))
}

/// φ(x), the standard normal density.
#[inline(always)]
fn normal_pdf<T: Element>(x: T) -> T {
    let frac_1_sqrt_2pi = T::from_f64_lossy(0.398_942_280_401_432_7);
    frac_1_sqrt_2pi * exp(-(x * x) * T::from_f64_lossy(0.5))
}

/// √(2/π), the scale inside the tanh approximation of GELU.
const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;

/// The cubic coefficient of the tanh approximation of GELU.
const GELU_TANH_CUBIC: f64 = 0.044_715;

/// The argument u of tanh in the tanh approximation of GELU, and its derivative u′.
#[inline(always)]
fn gelu_tanh_inner<T: Element>(x: T) -> (T, T) {
    let (k, c) = (
        T::from_f64_lossy(SQRT_2_OVER_PI),
        T::from_f64_lossy(GELU_TANH_CUBIC),
    );
    let x2 = x * x;
    (
        k * (x + c * x2 * x),
        k * (T::one() + T::from_f64_lossy(3.0) * c * x2),
    )
}

/// The logistic function, without overflow: e^(−|x|) is the only exponential formed, and both
/// signs are computed and selected (no branch, so loops vectorise).
#[inline(always)]
fn logistic<T: Element>(x: T) -> T {
    let e = exp(-x.abs());
    let positive = (T::one() + e).recip();
    if x >= T::zero() {
        positive
    } else {
        e * positive
    }
}

unary_op! {
    /// max(x, 0) (NaN stays NaN). The derivative reads `x`: 1 where x > 0, else 0 (0 at 0, as in
    /// PyTorch).
    Relu => relu, relu_backward;
    f(x) = if x < T::zero() { T::zero() } else { x };
    df(x, _y) = if x > T::zero() { T::one() } else { T::zero() };
}

unary_op! {
    /// GELU, exact (erf form): x·Φ(x). The derivative, Φ(x) + x·φ(x), reads `x`.
    Gelu => gelu, gelu_backward;
    f(x) = x * normal_cdf(x);
    df(x, _y) = normal_cdf(x) + x * normal_pdf(x);
}

unary_op! {
    /// GELU, tanh approximation: x/2·(1 + tanh(u)) with u = √(2/π)·(x + 0.044715·x³), computed as
    /// x·σ(2u) (the same function; no cancellation in 1 + tanh(u) for negative x). The derivative,
    /// σ(2u) + 2x·σ(2u)·(1 − σ(2u))·u′, reads `x`.
    GeluTanh => gelu_tanh, gelu_tanh_backward;
    f(x) = {
        let (u, _) = gelu_tanh_inner(x);
        x * logistic(u + u)
    };
    df(x, _y) = {
        let (u, du) = gelu_tanh_inner(x);
        let s = logistic(u + u);
        s + (x + x) * s * (T::one() - s) * du
    };
}

unary_op! {
    /// SiLU (swish): x·σ(x). The derivative, σ(x)·(1 + x·(1 − σ(x))), reads `x`.
    Silu => silu, silu_backward;
    f(x) = x * logistic(x);
    df(x, _y) = {
        let s = logistic(x);
        s * (T::one() + x * (T::one() - s))
    };
}

unary_op! {
    /// Hyperbolic tangent. The derivative, 1 − y², reads `y`.
    Tanh => tanh, tanh_backward;
    f(x) = x.tanh();
    df(_x, y) = T::one() - y * y;
}

unary_op! {
    /// The logistic sigmoid σ(x) = 1/(1 + e^(−x)), stable for large |x|. The derivative, y·(1 − y),
    /// reads `y`.
    Sigmoid => sigmoid, sigmoid_backward;
    f(x) = logistic(x);
    df(_x, y) = y * (T::one() - y);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Result;
    use crate::ops::testing::{
        assert_bitwise_eq_across_threads, check_gradient, random_array, random_in, weighted_sum,
    };
    use ndarray::{ArrayD, ArrayViewD};

    type Forward = fn(ArrayViewD<'_, f64>) -> ArrayD<f64>;
    type Backward =
        fn(ArrayViewD<'_, f64>, ArrayViewD<'_, f64>, ArrayViewD<'_, f64>) -> Result<ArrayD<f64>>;
    const ACTIVATIONS: [(&str, Forward, Backward); 6] = [
        ("relu", relu, relu_backward),
        ("gelu", gelu, gelu_backward),
        ("gelu_tanh", gelu_tanh, gelu_tanh_backward),
        ("silu", silu, silu_backward),
        ("tanh", tanh, tanh_backward),
        ("sigmoid", sigmoid, sigmoid_backward),
    ];

    /// x, then gelu, gelu_tanh, silu, sigmoid and tanh at x, from 40-digit arithmetic (mpmath).
    const REFERENCE: [[f64; 6]; 6] = [
        [
            -3.0,
            -0.0040496940948902835,
            -0.003637392081773019,
            -0.14227761953270035,
            0.04742587317756678,
            -0.9950547536867305,
        ],
        [
            -1.0,
            -0.15865525393145705,
            -0.1588080093917233,
            -0.2689414213699951,
            0.2689414213699951,
            -0.7615941559557649,
        ],
        [
            -0.5,
            -0.15426876936299344,
            -0.15428599017485609,
            -0.18877033439907273,
            0.37754066879814546,
            -0.46211715726000974,
        ],
        [
            0.5,
            0.34573123063700656,
            0.34571400982514394,
            0.3112296656009273,
            0.6224593312018546,
            0.46211715726000974,
        ],
        [
            1.0,
            0.8413447460685429,
            0.8411919906082767,
            0.7310585786300049,
            0.7310585786300049,
            0.7615941559557649,
        ],
        [
            2.0,
            1.9544997361036416,
            1.954597694087775,
            1.7615941559557649,
            0.8807970779778824,
            0.9640275800758169,
        ],
    ];

    #[test]
    fn values_match_reference() {
        let x = ArrayD::from_shape_vec(vec![6], REFERENCE.iter().map(|r| r[0]).collect()).unwrap();
        let x32 = x.mapv(|v| v as f32);
        let results = [
            gelu(x.view()),
            gelu_tanh(x.view()),
            silu(x.view()),
            sigmoid(x.view()),
            tanh(x.view()),
        ];
        let results32 = [
            gelu(x32.view()),
            gelu_tanh(x32.view()),
            silu(x32.view()),
            sigmoid(x32.view()),
            tanh(x32.view()),
        ];
        for (i, row) in REFERENCE.iter().enumerate() {
            for k in 0..5 {
                let want = row[k + 1];
                let got = results[k][i];
                // f64 Φ is 1 − erf for −3.6 < x < −0.7: rounding-level absolute error there.
                assert!(
                    (got - want).abs() <= 4e-16 * want.abs() + 1e-16,
                    "op {k} at {}: {got} vs {want}",
                    row[0]
                );
                // In f32, rounding x/√2 moves erfc(−x/√2) by a relative x²·6e-8 in gelu's left tail.
                let got32 = results32[k][i] as f64;
                let tolerance = (2.5e-7 + 6e-8 * row[0] * row[0]) * want.abs();
                assert!(
                    (got32 - want).abs() <= tolerance,
                    "f32 op {k} at {}: {got32} vs {want}",
                    row[0]
                );
            }
        }
        let relu_x = relu(x.view());
        assert_eq!(relu_x.as_slice().unwrap(), &[0.0, 0.0, 0.0, 0.5, 1.0, 2.0]);
    }

    #[test]
    fn large_inputs_give_limits_not_nan() {
        let x = ArrayD::from_shape_vec(vec![6], vec![-1e4f32, -100.0, -40.0, 40.0, 100.0, 1e4])
            .unwrap();
        let s = sigmoid(x.view());
        assert_eq!((s[0], s[3], s[4], s[5]), (0.0, 1.0, 1.0, 1.0));
        assert!(
            s[1] > 0.0 && s[1] < 1e-40,
            "e^-100 is an f32 subnormal: {}",
            s[1]
        );
        assert!((s[2] / 4.248_354e-18 - 1.0).abs() < 1e-6);
        let y = silu(x.view());
        assert!(y.iter().all(|v| v.is_finite()));
        assert_eq!((y[0], y[5]), (-0.0, 1e4));
        let y = gelu(x.view());
        assert!(y.iter().all(|v| v.is_finite()));
        assert_eq!((y[1], y[4]), (-0.0, 100.0));
        let g = ArrayD::ones(vec![6]);
        for dx in [
            gelu_backward(x.view(), gelu(x.view()).view(), g.view()).unwrap(),
            silu_backward(x.view(), silu(x.view()).view(), g.view()).unwrap(),
            sigmoid_backward(x.view(), s.view(), g.view()).unwrap(),
            gelu_tanh_backward(x.view(), gelu_tanh(x.view()).view(), g.view()).unwrap(),
        ] {
            assert!(dx.iter().all(|v| v.is_finite()), "{dx}");
            assert_eq!((dx[0], dx[5]), (0.0, if dx[3] == 0.0 { 0.0 } else { 1.0 }));
        }
        assert!(relu(ArrayD::from_elem(vec![1], f32::NAN).view())[0].is_nan());
    }

    #[test]
    fn f32_gelu_follows_f64_closely() {
        let x = ArrayD::from_shape_vec(
            vec![16001],
            (0..16001).map(|i| -8.0 + i as f64 * 1e-3).collect(),
        )
        .unwrap();
        let x32 = x.mapv(|v| v as f32);
        let (y, y32) = (gelu(x.view()), gelu(x32.view()));
        let g = ArrayD::ones(x.shape());
        let d = gelu_backward(x.view(), y.view(), g.view()).unwrap();
        let d32 = gelu_backward(x32.view(), y32.view(), g.mapv(|v| v as f32).view()).unwrap();
        for i in 0..x.len() {
            // x32 is x rounded to f32, which moves gelu by up to |gelu'(x)·x|·2^-24; in the left tail
            // the f32 rounding of x/√2 moves erfc by a relative x²·2^-24.
            let slack = 1.2 * (d[i] * x[i]).abs() * 6e-8 + y[i].abs() * x[i] * x[i] * 1.2e-7;
            let error = (y32[i] as f64 - y[i]).abs();
            assert!(
                error <= 5e-7 * y[i].abs() + slack + 1e-30,
                "gelu at {}: error {error:e}",
                x[i]
            );
            assert!(
                (d32[i] as f64 - d[i]).abs() <= 5e-7 * d[i].abs() + 3e-7,
                "gelu' at {}",
                x[i]
            );
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        for (seed, shape) in [&[3, 1, 4][..], &[7], &[1, 1], &[2, 5]]
            .into_iter()
            .enumerate()
        {
            let x = random_in::<f64>(shape, seed as u64, -4.0, 4.0);
            let w = random_array::<f64>(shape, 90 + seed as u64);
            for (name, forward, backward) in ACTIVATIONS {
                let dx = backward(x.view(), forward(x.view()).view(), w.view()).unwrap();
                check_gradient(name, &x, &dx, |x| weighted_sum(&forward(x.view()), &w));
            }
        }
        // Far tails too, where erfc and the stable sigmoid branch take over.
        let x = ArrayD::from_shape_vec(vec![6], vec![-9.0, -6.5, -3.7, 3.7, 6.5, 9.0]).unwrap();
        let w = ArrayD::ones(vec![6]);
        for (name, forward, backward) in ACTIVATIONS {
            let dx = backward(x.view(), forward(x.view()).view(), w.view()).unwrap();
            check_gradient(name, &x, &dx, |x| weighted_sum(&forward(x.view()), &w));
        }
    }

    #[test]
    fn backward_checks_shapes_and_handles_empty_arrays() {
        let x = ArrayD::<f32>::zeros(vec![2, 3]);
        let err = gelu_backward(x.view(), x.view(), ArrayD::zeros(vec![3, 2]).view())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("gelu_backward: shape mismatch between [2, 3] and [3, 2]"),
            "{err}"
        );
        let empty = ArrayD::<f32>::zeros(vec![4, 0]);
        assert_eq!(silu(empty.view()).shape(), &[4, 0]);
        assert_eq!(
            silu_backward(empty.view(), empty.view(), empty.view())
                .unwrap()
                .shape(),
            &[4, 0]
        );
    }

    #[test]
    fn results_are_identical_for_any_thread_count() {
        let x = random_in::<f32>(&[96, 1024], 3, -6.0, 6.0);
        let g = random_array::<f32>(&[96, 1024], 4);
        assert_bitwise_eq_across_threads(|| gelu(x.view()));
        assert_bitwise_eq_across_threads(|| gelu_backward(x.view(), x.view(), g.view()).unwrap());
        assert_bitwise_eq_across_threads(|| silu(x.view()));
    }
}
