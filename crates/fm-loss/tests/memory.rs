//! The fused cross-entropy's memory contract, measured with a counting allocator: besides the
//! gradient the caller provides, it allocates O(rows) bytes (one f64 per row), never a second
//! `[N, V]` array; the in-place variant allocates no logits-sized buffer at all.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use fm_loss::{
    cross_entropy, fused_cross_entropy, fused_cross_entropy_in_place, CrossEntropyOptions,
};
use ndarray::Array2;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator and only adds bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
        PEAK.fetch_max(live, Ordering::SeqCst);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::SeqCst);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Peak bytes allocated (above what was live before) while `f` runs.
fn peak_extra(f: impl FnOnce()) -> usize {
    let before = LIVE.load(Ordering::SeqCst);
    PEAK.store(before, Ordering::SeqCst);
    f();
    PEAK.load(Ordering::SeqCst) - before
}

#[test]
fn fused_kernel_allocates_no_second_logits_buffer() {
    let (n, v) = (256, 4096);
    let logits_bytes = n * v * 4;
    let logits = Array2::from_shape_fn((n, v), |(i, j)| ((i + 3 * j) % 101) as f32 * 0.05);
    let targets: Vec<u32> = (0..n as u32).map(|i| (i * 13) % v as u32).collect();
    let o = CrossEntropyOptions::default().label_smoothing(0.1);
    let mut grad = Array2::<f32>::zeros((n, v));
    // Run a single-threaded pool so rayon's own start-up is not counted, and warm it.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    pool.install(|| {
        let _ = cross_entropy(logits.view().into_dyn(), &targets, &o).unwrap();
    });
    let fused = peak_extra(|| {
        pool.install(|| {
            fused_cross_entropy(
                logits.view().into_dyn(),
                &targets,
                &o,
                grad.view_mut().into_dyn(),
            )
            .unwrap();
        })
    });
    let mut buf = logits.clone();
    let in_place = peak_extra(|| {
        pool.install(|| {
            fused_cross_entropy_in_place(buf.view_mut().into_dyn(), &targets, &o).unwrap();
        })
    });
    assert_eq!(buf, grad, "in-place gradient equals the separate one");
    // One f64 per row plus small bookkeeping; far below a logits-sized buffer.
    assert!(fused < logits_bytes / 16, "fused kernel peak {fused} bytes");
    assert!(
        in_place < logits_bytes / 16,
        "in-place kernel peak {in_place} bytes"
    );
    assert!(
        fused >= n * 8,
        "the per-row losses were counted ({fused} bytes)"
    );
}
