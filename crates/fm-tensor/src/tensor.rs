//! The tensor type: an n-dimensional ndarray array behind a cheap, shared handle.
//!
//! [`Tensor`] owns an [`ndarray::ArrayD`] behind an `Arc`, so cloning a tensor (as the autograd tape does
//! when it keeps an input for the backward pass) copies a pointer, not the data. Conversions from and to
//! ndarray cost nothing where ownership allows it:
//!
//! - `Tensor::from(array)` takes any owned `Array<T, D>` without copying;
//! - [`Tensor::view`] lends an `ArrayViewD` of the data;
//! - [`Tensor::into_array`] hands the array back without copying when this is the only handle.
//!
//! A borrowed `ArrayView` can be computed on directly with the kernels in [`crate::ops`] and
//! [`crate::gemm`]; making a `Tensor` from one ([`Tensor::from_view`]) copies once, because a tensor
//! owns its data.

use std::fmt;
use std::sync::Arc;

use ndarray::{Array, ArrayD, ArrayViewD, ArrayViewMutD, Dimension, IxDyn};

use crate::compute::{current_tracker, MemoryTracker};
use crate::element::Element;
use crate::error::{Result, TensorError};

/// An n-dimensional array of `f32` (default) or `f64`, cheap to clone.
pub struct Tensor<T: Element = f32> {
    data: Arc<TrackedArray<T>>,
}

/// An array whose bytes are charged to a [`MemoryTracker`] while it lives.
struct TrackedArray<T: Element> {
    array: ArrayD<T>,
    tracker: Arc<MemoryTracker>,
}

impl<T: Element> TrackedArray<T> {
    fn new(array: ArrayD<T>) -> Self {
        let tracker = current_tracker();
        let bytes = array.len() * std::mem::size_of::<T>();
        tracker.allocate(bytes);
        crate::buffers::tensor_allocated(bytes);
        TrackedArray { array, tracker }
    }

    fn into_array(mut self) -> ArrayD<T> {
        let array = std::mem::replace(
            &mut self.array,
            ArrayD::from_shape_vec(IxDyn(&[0]), Vec::new()).unwrap(),
        );
        let bytes = array.len() * std::mem::size_of::<T>();
        self.tracker.release(bytes);
        crate::buffers::tensor_released(bytes);
        // `self` now holds an empty array: its Drop releases zero bytes.
        array
    }
}

impl<T: Element> Clone for TrackedArray<T> {
    fn clone(&self) -> Self {
        TrackedArray::new(self.array.clone())
    }
}

impl<T: Element> Drop for TrackedArray<T> {
    fn drop(&mut self) {
        let bytes = self.array.len() * std::mem::size_of::<T>();
        self.tracker.release(bytes);
        crate::buffers::tensor_released(bytes);
        // The data goes to the buffer pool, for the next op output of its length.
        let array = std::mem::replace(&mut self.array, ArrayD::from_elem(IxDyn(&[0]), T::zero()));
        crate::buffers::recycle(array);
    }
}

impl<T: Element> Clone for Tensor<T> {
    fn clone(&self) -> Self {
        Tensor {
            data: Arc::clone(&self.data),
        }
    }
}

impl<T: Element, D: Dimension> From<Array<T, D>> for Tensor<T> {
    fn from(array: Array<T, D>) -> Self {
        Tensor {
            data: Arc::new(TrackedArray::new(array.into_dyn())),
        }
    }
}

impl<T: Element> Tensor<T> {
    /// Copies a borrowed view into a new tensor (standard layout).
    pub fn from_view<D: Dimension>(view: ndarray::ArrayView<'_, T, D>) -> Self {
        Tensor::from(view.to_owned())
    }

    /// A tensor of the given shape from row-major data; errors if the lengths differ.
    pub fn from_shape_vec(shape: &[usize], data: Vec<T>) -> Result<Self> {
        let expected: usize = shape.iter().product();
        if expected != data.len() {
            return Err(TensorError::invalid_shape(
                "Tensor::from_shape_vec",
                shape,
                format!(
                    "shape holds {expected} elements but {} were given",
                    data.len()
                ),
            ));
        }
        let array = ArrayD::from_shape_vec(IxDyn(shape), data).expect("length checked above");
        Ok(Tensor::from(array))
    }

    /// A zero-dimensional tensor holding one value.
    pub fn scalar(value: T) -> Self {
        Tensor::from(ndarray::arr0(value))
    }

    /// A tensor of zeros.
    pub fn zeros(shape: &[usize]) -> Self {
        Tensor::from(ArrayD::zeros(IxDyn(shape)))
    }

    /// A tensor of ones.
    pub fn ones(shape: &[usize]) -> Self {
        Tensor::from(ArrayD::ones(IxDyn(shape)))
    }

    /// A tensor filled with `value`.
    pub fn full(shape: &[usize], value: T) -> Self {
        Tensor::from(ArrayD::from_elem(IxDyn(shape), value))
    }

    /// The shape, outermost axis first.
    pub fn shape(&self) -> &[usize] {
        self.data.array.shape()
    }

    /// Number of axes.
    pub fn ndim(&self) -> usize {
        self.data.array.ndim()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.array.len()
    }

    /// Whether the tensor holds no elements.
    pub fn is_empty(&self) -> bool {
        self.data.array.is_empty()
    }

    /// Borrows the data as an ndarray view (no copy).
    pub fn view(&self) -> ArrayViewD<'_, T> {
        self.data.array.view()
    }

    /// Borrows the underlying array (no copy).
    pub fn array(&self) -> &ArrayD<T> {
        &self.data.array
    }

    /// Mutable access to the data; copies first only if another handle shares it (copy-on-write).
    pub fn view_mut(&mut self) -> ArrayViewMutD<'_, T> {
        Arc::make_mut(&mut self.data).array.view_mut()
    }

    /// Mutable access to the underlying array; copies first only if another handle shares it.
    pub fn array_mut(&mut self) -> &mut ArrayD<T> {
        &mut Arc::make_mut(&mut self.data).array
    }

    /// Takes the array out: no copy if this is the only handle, one copy otherwise.
    pub fn into_array(self) -> ArrayD<T> {
        match Arc::try_unwrap(self.data) {
            Ok(tracked) => tracked.into_array(),
            Err(shared) => shared.array.clone(),
        }
    }

    /// Takes the array out with a fixed dimensionality, e.g. `Ix2`; errors if the rank differs.
    pub fn into_dimensionality<D: Dimension>(self) -> Result<Array<T, D>> {
        let shape = self.shape().to_vec();
        self.into_array().into_dimensionality::<D>().map_err(|_| {
            TensorError::invalid_shape(
                "Tensor::into_dimensionality",
                &shape,
                format!(
                    "expected {} axes",
                    D::NDIM.map_or("any".to_string(), |n| n.to_string())
                ),
            )
        })
    }

    /// The single value of a tensor with exactly one element.
    pub fn to_scalar(&self) -> Result<T> {
        if self.len() != 1 {
            return Err(TensorError::invalid_shape(
                "Tensor::to_scalar",
                self.shape(),
                "expected exactly one element",
            ));
        }
        Ok(*self.data.array.iter().next().expect("one element"))
    }

    /// Whether two tensors share the same storage (a clone of one another).
    pub fn shares_storage_with(&self, other: &Tensor<T>) -> bool {
        Arc::ptr_eq(&self.data, &other.data)
    }
}

impl<T: Element> fmt::Debug for Tensor<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tensor")
            .field("shape", &self.shape())
            .field("data", &self.data.array)
            .finish()
    }
}

impl<T: Element> PartialEq for Tensor<T> {
    fn eq(&self, other: &Self) -> bool {
        self.data.array == other.data.array
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn from_array_and_back_is_zero_copy() {
        let a = array![[1.0f32, 2.0], [3.0, 4.0]];
        let ptr = a.as_ptr();
        let t = Tensor::from(a);
        assert_eq!(t.view().as_ptr(), ptr);
        let back = t.into_array();
        assert_eq!(back.as_ptr(), ptr);
    }

    #[test]
    fn shared_into_array_copies_and_keeps_other_handle() {
        let t = Tensor::from(array![1.0f64, 2.0]);
        let u = t.clone();
        assert!(t.shares_storage_with(&u));
        let a = t.into_array();
        assert_eq!(a.as_slice().unwrap(), &[1.0, 2.0]);
        assert_eq!(u.shape(), &[2]);
    }

    #[test]
    fn copy_on_write() {
        let mut t = Tensor::from(array![1.0f32, 2.0]);
        let u = t.clone();
        t.view_mut()[0] = 5.0;
        assert_eq!(u.view()[0], 1.0);
        assert_eq!(t.view()[0], 5.0);
    }

    #[test]
    fn from_shape_vec_rejects_wrong_length() {
        let err = Tensor::<f32>::from_shape_vec(&[2, 3], vec![0.0; 5]).unwrap_err();
        assert!(err.to_string().contains("[2, 3]"), "{err}");
    }

    #[test]
    fn into_dimensionality_checks_rank() {
        let t = Tensor::<f32>::zeros(&[2, 3]);
        assert!(t.clone().into_dimensionality::<ndarray::Ix2>().is_ok());
        assert!(t.into_dimensionality::<ndarray::Ix3>().is_err());
    }

    #[test]
    fn to_scalar_needs_one_element() {
        assert_eq!(Tensor::scalar(3.5f32).to_scalar().unwrap(), 3.5);
        assert!(Tensor::<f32>::zeros(&[2]).to_scalar().is_err());
    }
}
