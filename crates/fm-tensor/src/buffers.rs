//! Recycled memory for op outputs.
//!
//! A training step allocates the same large arrays every time (activations, their gradients, the
//! products of every linear layer) and frees them all when the step's tape is dropped. Handed straight
//! back to the system allocator, much of that memory is returned to the operating system and faulted
//! in (and zeroed) again page by page on the next step: on GPT configuration a of BENCHMARKS.md
//! (1 thread) 51,600 page faults per step without this module, 1,100 with it, and the step 1.09–1.34×
//! faster (`docs/fm-tensor.md`). This module keeps freed
//! buffers of 32 KiB and more in a process-wide pool, by element type and capacity, and hands them
//! out again to the kernels that make new arrays: the smallest free buffer of at least the requested
//! length and at most twice it.
//!
//! - **Who returns memory.** The data of a [`Tensor`](crate::Tensor) when its last handle is dropped
//!   (so everything a [`Tape`](crate::Tape) kept), the gradients a backward pass consumed, and
//!   [`Gradients`](crate::autograd::Gradients) and [`ParamStore`](crate::ParamStore) gradients when
//!   dropped or cleared. Code outside fm-tensor can return an array with [`recycle`].
//! - **Who takes it.** fm's kernels, through [`array_for_overwrite`] (contents unspecified, every
//!   element is written by the caller) and [`zeroed_array`].
//! - **How much is kept.** At most 1.5 times the largest total of live tensor data seen so far in
//!   the process ([`peak_tensor_bytes`]), so the pool is bounded by what the program has already
//!   needed (a backward pass needs gradients beside the activations it reads). When a returned buffer
//!   does not fit, the buffers returned longest ago are freed first. The price is memory held
//!   between steps: configuration a peaked at 397 MiB of resident memory with the pool and 282
//!   without it (one run each, `fm_train_report --recycling on|off`).
//!   [`release_pooled`] frees everything now; [`set_recycling`]`(false)` turns the pool off
//!   (buffers go straight back to the allocator).
//!
//! Recycling changes no result: an array taken for overwriting is written in full before it is read,
//! and a zeroed one is zeroed whether it is new or recycled.
//!
//! ```
//! use fm_tensor::buffers;
//! let a = buffers::zeroed_array::<f32, _>((256, 256));
//! assert!(a.iter().all(|&v| v == 0.0));
//! buffers::recycle(a); // kept if live tensors ever needed this much memory
//! let b = buffers::array_for_overwrite::<f32, _>((256, 256)); // contents unspecified
//! assert_eq!(b.shape(), &[256, 256]);
//! ```

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use ndarray::{Array, Dimension, ShapeBuilder};

use crate::element::Element;

/// Buffers smaller than this go straight back to the allocator, which serves them from its own free
/// lists without touching the operating system.
pub const MIN_POOLED_BYTES: usize = 32 * 1024;

/// A request may be served by a free buffer up to this many times its size: buffers of a freed
/// size then serve the next size down instead of sitting idle beside fresh allocations.
const MAX_SLACK: usize = 2;

static RECYCLING: AtomicBool = AtomicBool::new(true);
static POISON: AtomicBool = AtomicBool::new(false);
static LIVE_TENSOR_BYTES: AtomicUsize = AtomicUsize::new(0);
static PEAK_TENSOR_BYTES: AtomicUsize = AtomicUsize::new(0);
static POOL: Mutex<Pool> = Mutex::new(Pool::new());

/// Free buffers of both element types, with their total size and a clock that orders them by age.
struct Pool {
    f32: Shelves<f32>,
    f64: Shelves<f64>,
    bytes: usize,
    clock: u64,
}

/// Free buffers of one element type by capacity; each shelf is ordered oldest first.
struct Shelves<T> {
    by_capacity: BTreeMap<usize, Vec<(u64, Vec<T>)>>,
}

impl<T: Element> Shelves<T> {
    const fn new() -> Self {
        Shelves {
            by_capacity: BTreeMap::new(),
        }
    }

    /// The newest buffer of the smallest capacity from `len` to `MAX_SLACK · len`, as it was put
    /// back (any length up to its capacity).
    fn take(&mut self, len: usize) -> Option<Vec<T>> {
        let (&capacity, shelf) = self
            .by_capacity
            .range_mut(len..=len.saturating_mul(MAX_SLACK))
            .find(|(_, shelf)| !shelf.is_empty())?;
        // The newest buffer is the likeliest still to be in cache.
        let (_, buffer) = shelf.pop().expect("shelf is not empty");
        if shelf.is_empty() {
            self.by_capacity.remove(&capacity);
        }
        Some(buffer)
    }

    fn put(&mut self, stamp: u64, buffer: Vec<T>) {
        self.by_capacity
            .entry(buffer.capacity())
            .or_default()
            .push((stamp, buffer));
    }

    /// The stamp and capacity of the oldest buffer here.
    fn oldest(&self) -> Option<(u64, usize)> {
        self.by_capacity
            .iter()
            .filter_map(|(&capacity, shelf)| shelf.first().map(|&(stamp, _)| (stamp, capacity)))
            .min()
    }

    /// Frees the oldest buffer of `capacity` elements; returns its bytes.
    fn evict(&mut self, capacity: usize) -> usize {
        let shelf = self
            .by_capacity
            .get_mut(&capacity)
            .expect("evict follows oldest");
        shelf.remove(0);
        if shelf.is_empty() {
            self.by_capacity.remove(&capacity);
        }
        capacity * std::mem::size_of::<T>()
    }

    fn clear(&mut self) {
        self.by_capacity.clear();
    }
}

impl Pool {
    const fn new() -> Self {
        Pool {
            f32: Shelves::new(),
            f64: Shelves::new(),
            bytes: 0,
            clock: 0,
        }
    }

    /// The shelves of `T` (one of the two element types).
    fn shelves<T: Element>(&mut self) -> &mut Shelves<T> {
        let any: &mut dyn Any = if T::DTYPE == crate::element::DType::F32 {
            &mut self.f32
        } else {
            &mut self.f64
        };
        any.downcast_mut::<Shelves<T>>()
            .expect("Element is implemented for f32 and f64 only")
    }

    /// A free buffer for `len` elements of `T`, if one is here.
    fn take<T: Element>(&mut self, len: usize) -> Option<Vec<T>> {
        let buffer = self.shelves::<T>().take(len)?;
        self.bytes -= buffer.capacity() * std::mem::size_of::<T>();
        Some(buffer)
    }

    /// Keeps `buffer`, freeing the oldest buffers as needed to stay within `limit` bytes; a buffer
    /// larger than the limit is freed instead.
    fn put<T: Element>(&mut self, buffer: Vec<T>, limit: usize) {
        let bytes = buffer.capacity() * std::mem::size_of::<T>();
        if bytes > limit {
            return;
        }
        while self.bytes + bytes > limit && self.evict_oldest() {}
        self.clock += 1;
        let stamp = self.clock;
        self.shelves::<T>().put(stamp, buffer);
        self.bytes += bytes;
    }

    /// Frees the oldest buffer of either type; false if the pool is empty.
    fn evict_oldest(&mut self) -> bool {
        let freed = match (self.f32.oldest(), self.f64.oldest()) {
            (Some(a), Some(b)) if b < a => self.f64.evict(b.1),
            (Some(a), _) => self.f32.evict(a.1),
            (None, Some(b)) => self.f64.evict(b.1),
            (None, None) => return false,
        };
        self.bytes -= freed;
        true
    }
}

fn pool() -> MutexGuard<'static, Pool> {
    // A panic while the lock was held cannot leave the pool inconsistent in a way that matters:
    // at worst a buffer is lost to the allocator.
    POOL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A vector of `len` elements whose values are unspecified: a recycled buffer's old contents, or
/// zeros when no buffer of that length is free. For outputs the caller writes in full.
pub fn vec_for_overwrite<T: Element>(len: usize) -> Vec<T> {
    let mut buffer = recycled_or_new(len).0;
    if cfg!(test) || POISON.load(Ordering::Relaxed) {
        buffer.fill(T::nan());
    }
    buffer
}

/// A pooled buffer resized to `len` (old contents kept where it had them, zeros past its old
/// length) and `true`, or a new one of zeros and `false`. Zeroed memory straight from the
/// allocator costs no more than uninitialised memory for large sizes (fresh pages are zero), and it
/// keeps this module free of `unsafe`.
fn recycled_or_new<T: Element>(len: usize) -> (Vec<T>, bool) {
    match take_pooled(len) {
        Some(buffer) => (fit(buffer, len), true),
        None => (vec![T::zero(); len], false),
    }
}

/// `buffer` (capacity at least `len`) resized to `len` without reallocating.
fn fit<T: Element>(mut buffer: Vec<T>, len: usize) -> Vec<T> {
    buffer.resize(len, T::zero());
    buffer
}

/// A pooled buffer with room for `len` elements, as it was put back.
fn take_pooled<T: Element>(len: usize) -> Option<Vec<T>> {
    if len * std::mem::size_of::<T>() >= MIN_POOLED_BYTES && RECYCLING.load(Ordering::Relaxed) {
        pool().take::<T>(len)
    } else {
        None
    }
}

/// For tests: while on, every buffer handed out for overwriting is filled with NaN first, so that
/// a kernel that leaves an element unwritten shows it in its results. Always on in fm-tensor's own
/// unit tests.
#[doc(hidden)]
pub fn poison_buffers_for_overwrite(enabled: bool) {
    POISON.store(enabled, Ordering::Relaxed);
}

/// An empty vector with room for exactly `capacity` elements (recycled where possible), for outputs
/// built with `extend_from_slice`.
pub fn vec_with_capacity<T: Element>(capacity: usize) -> Vec<T> {
    match take_pooled(capacity) {
        Some(mut buffer) => {
            buffer.clear();
            buffer
        }
        None => Vec::with_capacity(capacity),
    }
}

/// A vector of `len` zeros (recycled and cleared, or new).
pub fn zeroed_vec<T: Element>(len: usize) -> Vec<T> {
    let (mut buffer, recycled) = recycled_or_new(len);
    // A new buffer is zero already: clearing it again would touch every page twice.
    if recycled {
        buffer.fill(T::zero());
    }
    buffer
}

/// An array of the given shape (standard layout) whose values are unspecified; see
/// [`vec_for_overwrite`].
pub fn array_for_overwrite<T: Element, Sh: ShapeBuilder>(shape: Sh) -> Array<T, Sh::Dim> {
    let shape = shape.into_shape_with_order();
    let len = shape.size();
    Array::from_shape_vec(shape, vec_for_overwrite(len)).expect("length matches shape")
}

/// An array of zeros of the given shape (standard layout), recycled where possible.
pub fn zeroed_array<T: Element, Sh: ShapeBuilder>(shape: Sh) -> Array<T, Sh::Dim> {
    let shape = shape.into_shape_with_order();
    let len = shape.size();
    Array::from_shape_vec(shape, zeroed_vec(len)).expect("length matches shape")
}

/// Hands an array's memory to the pool, for the next array of the same length.
pub fn recycle<T: Element, D: Dimension>(array: Array<T, D>) {
    let (buffer, _offset) = array.into_raw_vec_and_offset();
    recycle_vec(buffer);
}

/// Hands a vector's memory (its whole allocation) to the pool.
pub fn recycle_vec<T: Element>(buffer: Vec<T>) {
    if buffer.capacity() * std::mem::size_of::<T>() >= MIN_POOLED_BYTES
        && RECYCLING.load(Ordering::Relaxed)
    {
        pool().put(buffer, pool_limit());
    }
}

/// The most bytes the pool holds: 1.5 times the peak of live tensor data, room for the gradients
/// of a backward pass beside the activations (at 1× a small GPT still faulted in 13,000 pages a
/// step, 12 times as many as at 1.5×).
fn pool_limit() -> usize {
    PEAK_TENSOR_BYTES.load(Ordering::Relaxed) / 2 * 3
}

/// Bytes held in the pool now.
pub fn pooled_bytes() -> usize {
    pool().bytes
}

/// Frees every pooled buffer.
pub fn release_pooled() {
    let mut pool = pool();
    pool.f32.clear();
    pool.f64.clear();
    pool.bytes = 0;
}

/// Turns recycling on (the default) or off. Off, returned buffers are freed at once and the pool is
/// emptied.
pub fn set_recycling(enabled: bool) {
    RECYCLING.store(enabled, Ordering::Relaxed);
    if !enabled {
        release_pooled();
    }
}

/// The most bytes of tensor data alive at once in this process so far.
pub fn peak_tensor_bytes() -> usize {
    PEAK_TENSOR_BYTES.load(Ordering::Relaxed)
}

/// Counts a tensor's data as alive (called when a tensor takes ownership of an array).
pub(crate) fn tensor_allocated(bytes: usize) {
    let now = LIVE_TENSOR_BYTES.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK_TENSOR_BYTES.fetch_max(now, Ordering::Relaxed);
}

/// Counts a tensor's data as gone.
pub(crate) fn tensor_released(bytes: usize) {
    LIVE_TENSOR_BYTES.fetch_sub(bytes, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_put_back_is_taken_again_for_its_length_and_type_only() {
        let mut pool = Pool::new();
        let mut a = vec![0.0f32; 10_000];
        a[5] = 42.0;
        let address = a.as_ptr();
        pool.put(a, 1 << 20);
        assert_eq!(pool.bytes, 40_000);
        assert!(pool.take::<f32>(10_001).is_none(), "too small");
        assert!(
            pool.take::<f32>(4_999).is_none(),
            "more than twice too large"
        );
        assert!(pool.take::<f64>(10_000).is_none(), "another type");
        let b = pool.take::<f32>(10_000).expect("kept");
        assert_eq!((b.as_ptr(), b[5], pool.bytes), (address, 42.0, 0));
        assert!(pool.take::<f32>(10_000).is_none(), "handed out once");
    }

    #[test]
    fn the_oldest_buffers_make_room_and_oversized_ones_are_not_kept() {
        let mut pool = Pool::new();
        let limit = 100_000;
        pool.put(vec![1.0f32; 10_000], limit); // 40 kB, oldest
        pool.put(vec![2.0f64; 5_000], limit); // 40 kB
        pool.put(vec![3.0f32; 5_000], limit); // 20 kB: exactly at the limit
        assert_eq!(pool.bytes, 100_000);
        pool.put(vec![4.0f32; 6_000], limit); // 24 kB: the oldest (40 kB) goes
        assert_eq!(pool.bytes, 84_000);
        assert!(pool.take::<f32>(10_000).is_none());
        assert_eq!(pool.take::<f64>(5_000).map(|b| b[0]), Some(2.0));
        assert_eq!(pool.take::<f32>(5_000).map(|b| b[0]), Some(3.0));
        assert_eq!(pool.take::<f32>(6_000).map(|b| b[0]), Some(4.0));
        assert_eq!(pool.bytes, 0);
        pool.put(vec![0.0f32; 25_001], limit);
        assert_eq!(pool.bytes, 0, "larger than the limit: freed");
    }

    #[test]
    fn a_larger_buffer_serves_a_smaller_request_and_returns_under_its_capacity() {
        let mut pool = Pool::new();
        pool.put(vec![5.0f32; 8_000], 1 << 20);
        pool.put(vec![6.0f32; 12_000], 1 << 20);
        // The smallest buffer that fits is chosen; fitted to the request, old values are kept.
        let b = fit(pool.take::<f32>(7_000).expect("fits in 8 000"), 7_000);
        assert_eq!((b.len(), b.capacity(), b[6_999]), (7_000, 8_000, 5.0));
        assert_eq!(pool.bytes, 48_000);
        pool.put(b, 1 << 20);
        assert_eq!(pool.bytes, 80_000, "counted by capacity");
        // Back as it was put (7 000 long); grown within its capacity, the new tail is zero.
        let c = pool.take::<f32>(7_500).expect("fits in 8 000");
        assert_eq!(c.len(), 7_000);
        let c = fit(c, 7_500);
        assert_eq!(
            (c.len(), c.capacity(), c[6_999], c[7_000], c[7_499]),
            (7_500, 8_000, 5.0, 0.0, 0.0)
        );
        let d = pool.take::<f32>(9_000).expect("fits in 12 000");
        assert_eq!((d.capacity(), pool.bytes), (12_000, 0));
    }

    #[test]
    fn the_newest_buffer_of_a_length_is_handed_out_first() {
        let mut pool = Pool::new();
        pool.put(vec![1.0f32; 9_000], 1 << 20);
        pool.put(vec![2.0f32; 9_000], 1 << 20);
        assert_eq!(pool.take::<f32>(9_000).map(|b| b[0]), Some(2.0));
        assert_eq!(pool.take::<f32>(9_000).map(|b| b[0]), Some(1.0));
    }

    #[test]
    fn zeroed_and_shaped_arrays_from_the_process_pool() {
        // The process-wide pool is shared with the crate's other tests, running in parallel: assert
        // only what holds whichever buffer comes back.
        tensor_allocated(1 << 22);
        tensor_released(1 << 22);
        let mut a = array_for_overwrite::<f64, _>((33, 129));
        a.fill(7.0);
        recycle(a);
        let z = zeroed_array::<f64, _>((129, 33));
        assert_eq!(z.shape(), &[129, 33]);
        assert!(z.iter().all(|&v| v == 0.0));
        let mut v = vec_for_overwrite::<f32>(20_011);
        assert!(v.iter().all(|v| v.is_nan()), "poisoned in unit tests");
        v.fill(7.0);
        recycle_vec(v);
        assert!(zeroed_vec::<f32>(20_011).iter().all(|&v| v == 0.0));
    }
}
