//! "No allocation per step", measured with a counting global allocator: after the first step (which
//! creates each parameter's state), steps of every optimizer allocate nothing on the sequential path,
//! and nothing of fm-optim's own on the parallel path (rayon's job queue may allocate a small block
//! now and then; the test bounds it far below any parameter-sized buffer).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use fm_optim::*;
use ndarray::{ArrayD, IxDyn};

struct Counting;

static COUNT: AtomicUsize = AtomicUsize::new(0);
static BYTES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator and only adds counters.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        COUNT.fetch_add(1, Ordering::SeqCst);
        BYTES.fetch_add(layout.size(), Ordering::SeqCst);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn optimizers() -> Vec<Box<dyn Optimizer<f32>>> {
    vec![
        Box::new(
            AdamW::new(AdamConfig::adamw().amsgrad(true).build().unwrap())
                .with_clip(GradClip::by_norm(1.0).unwrap())
                .unwrap()
                .with_schedule(LrSchedule::warmup_cosine(2, 100, 0.0).unwrap())
                .unwrap(),
        ),
        Box::new(Sgd::new(
            SgdConfig::builder().momentum(0.9).l1(0.1).build().unwrap(),
        )),
        Box::new(RmsProp::new(
            RmsPropConfig::builder()
                .centered(true)
                .momentum(0.9)
                .build()
                .unwrap(),
        )),
        Box::new(Adagrad::new(AdagradConfig::builder().build().unwrap())),
    ]
}

/// (allocations, bytes) during `steps` steps after one warm-up step.
fn measure(len: usize, steps: usize) -> Vec<(usize, usize)> {
    let mut w = ArrayD::<f32>::from_elem(IxDyn(&[len]), 0.5);
    let mut b = ArrayD::<f32>::from_elem(IxDyn(&[3]), 0.5);
    let mut gw = ArrayD::<f32>::from_elem(IxDyn(&[len]), 0.01);
    let mut gb = ArrayD::<f32>::from_elem(IxDyn(&[3]), 0.01);
    optimizers()
        .into_iter()
        .map(|mut opt| {
            let mut step = |opt: &mut Box<dyn Optimizer<f32>>| {
                let mut params = [
                    NamedParam::new("w", w.view_mut(), gw.view_mut()),
                    NamedParam::new("b", b.view_mut(), gb.view_mut()),
                ];
                opt.step(&mut params).unwrap();
            };
            step(&mut opt);
            let (c0, b0) = (COUNT.load(Ordering::SeqCst), BYTES.load(Ordering::SeqCst));
            for _ in 0..steps {
                step(&mut opt);
            }
            (
                COUNT.load(Ordering::SeqCst) - c0,
                BYTES.load(Ordering::SeqCst) - b0,
            )
        })
        .collect()
}

#[test]
fn steps_do_not_allocate() {
    // One test function, so no other test thread allocates while we count.
    for (i, (count, bytes)) in measure(1000, 20).into_iter().enumerate() {
        assert_eq!((count, bytes), (0, 0), "optimizer {i}, sequential path");
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let len = 300_000;
    let parallel = pool.install(|| measure(len, 20));
    for (i, (count, bytes)) in parallel.into_iter().enumerate() {
        // Far below one parameter-sized buffer (1.2 MB) over 20 steps.
        assert!(
            bytes < 20 * 1024,
            "optimizer {i}, parallel path: {count} allocations, {bytes} bytes"
        );
    }
}
