//! Autograd overhead: a chain of 1,000 elementwise ops on 64-element tensors, forward + backward,
//! through the tape versus the same kernels called directly on ndarray, in one run.
//!
//! Two chains are measured: `tanh` (a unary op with some arithmetic) and `mul` by a constant tensor
//! (a binary op that is nearly free, so the tape's own cost shows most). Timings are interleaved;
//! the report prints the median and best of each and their ratio.
//!
//! Run: `cargo run --release -p fm-benches --bin autograd_overhead` (1 thread: the chain is tiny,
//! no kernel goes parallel at 64 elements).

use fm_benches::{interleaved, pool};
use fm_tensor::autograd::Tape;
use fm_tensor::ops::activation::{tanh, tanh_backward};
use fm_tensor::ops::elementwise::{mul, mul_backward};
use ndarray::{ArrayD, IxDyn};

const CHAIN: usize = 1000;
const LEN: usize = 64;
const REPS: usize = 201;

fn input() -> ArrayD<f32> {
    ArrayD::from_shape_fn(IxDyn(&[LEN]), |i| (i[0] as f32 / LEN as f32) - 0.5)
}

fn direct_tanh(x0: &ArrayD<f32>) -> ArrayD<f32> {
    let mut values = Vec::with_capacity(CHAIN + 1);
    values.push(x0.clone());
    for i in 0..CHAIN {
        let y = tanh(values[i].view());
        values.push(y);
    }
    let mut grad = ArrayD::ones(IxDyn(&[LEN]));
    for i in (0..CHAIN).rev() {
        grad = tanh_backward(values[i].view(), values[i + 1].view(), grad.view())
            .expect("shapes agree");
    }
    grad
}

fn tape_tanh(x0: &ArrayD<f32>) -> ArrayD<f32> {
    let tape = Tape::<f32>::new();
    let x = tape.variable(x0.clone());
    let mut y = x;
    for _ in 0..CHAIN {
        y = y.tanh().expect("tanh");
    }
    let grads = tape
        .backward_with(y, ArrayD::ones(IxDyn(&[LEN])))
        .expect("backward");
    grads.of(x).expect("x has a gradient").clone()
}

fn direct_mul(x0: &ArrayD<f32>, c: &ArrayD<f32>) -> ArrayD<f32> {
    let mut values = Vec::with_capacity(CHAIN + 1);
    values.push(x0.clone());
    for i in 0..CHAIN {
        let y = mul(values[i].view(), c.view()).expect("shapes agree");
        values.push(y);
    }
    let mut grad = ArrayD::ones(IxDyn(&[LEN]));
    for i in (0..CHAIN).rev() {
        grad = mul_backward(values[i].view(), c.view(), grad.view())
            .expect("shapes agree")
            .0;
    }
    grad
}

fn tape_mul(x0: &ArrayD<f32>, c: &ArrayD<f32>) -> ArrayD<f32> {
    let tape = Tape::<f32>::new();
    let x = tape.variable(x0.clone());
    let c = tape.constant(c.clone());
    let mut y = x;
    for _ in 0..CHAIN {
        y = y.mul(c).expect("mul");
    }
    let grads = tape
        .backward_with(y, ArrayD::ones(IxDyn(&[LEN])))
        .expect("backward");
    grads.of(x).expect("x has a gradient").clone()
}

/// A named pair of contenders: the direct kernel calls and the same chain through the tape.
type Case<'a> = (
    &'static str,
    Box<dyn Fn() -> ArrayD<f32> + 'a>,
    Box<dyn Fn() -> ArrayD<f32> + 'a>,
);

fn main() {
    pool(1).install(|| {
        let x0 = input();
        let c = ArrayD::from_elem(IxDyn(&[LEN]), 0.999f32);
        // Same results both ways: the tape runs exactly these kernels.
        assert_eq!(direct_tanh(&x0), tape_tanh(&x0));
        assert_eq!(direct_mul(&x0, &c), tape_mul(&x0, &c));

        println!("autograd overhead: chain of {CHAIN} elementwise ops on {LEN}-element f32 tensors, forward + backward");
        println!("threads: {}; {REPS} interleaved repetitions; times per whole chain", rayon::current_num_threads());
        println!();
        println!("| chain | direct kernels µs, median (best) | tape µs, median (best) | tape / direct (median) |");
        println!("|---|---|---|---|");
        let cases: [Case<'_>; 2] = [
            ("tanh", Box::new(|| direct_tanh(&x0)), Box::new(|| tape_tanh(&x0))),
            ("mul by constant", Box::new(|| direct_mul(&x0, &c)), Box::new(|| tape_mul(&x0, &c))),
        ];
        for (name, direct, taped) in &cases {
            let mut run_direct = || {
                std::hint::black_box(direct());
            };
            let mut run_taped = || {
                std::hint::black_box(taped());
            };
            let t = interleaved(20, REPS, &mut [&mut run_direct, &mut run_taped]);
            let (dm, db, tm, tb) = (t[0].median, t[0].best, t[1].median, t[1].best);
            println!("| {name} | {:.1} ({:.1}) | {:.1} ({:.1}) | {:.2}× |", dm * 1e6, db * 1e6, tm * 1e6, tb * 1e6, tm / dm);
        }
    });
}
