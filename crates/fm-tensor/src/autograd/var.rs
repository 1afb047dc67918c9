//! [`Var`]: a value on a tape, with the ops as methods.
//!
//! A `Var` is a small copyable handle (the tape and an index). Every op method records onto the var's
//! tape and returns a new `Var`, or an error naming the op and the shapes that did not fit:
//!
//! ```
//! use fm_tensor::autograd::Tape;
//! use ndarray::array;
//!
//! let tape = Tape::<f64>::new();
//! let x = tape.variable(array![[1.0, 2.0]]);        // [1, 2]
//! let w = tape.variable(array![[3.0], [4.0]]);      // [2, 1]
//! let y = x.matmul(w)?;                             // [1, 1] = 11
//! let grads = tape.backward(y)?;
//! assert_eq!(grads.of(w).unwrap(), &array![[1.0], [2.0]].into_dyn());
//! assert!(x.matmul(x).is_err());                    // [1, 2] x [1, 2]: inner dims differ
//! # Ok::<(), fm_tensor::TensorError>(())
//! ```

use crate::autograd::tape::Tape;
use crate::element::Element;
use crate::error::Result;
use crate::tensor::Tensor;

/// A value recorded on a [`Tape`].
pub struct Var<'t, T: Element = f32> {
    tape: &'t Tape<T>,
    index: usize,
}

impl<T: Element> Clone for Var<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T: Element> Copy for Var<'_, T> {}

impl<T: Element> std::fmt::Debug for Var<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Var")
            .field("index", &self.index)
            .field("shape", &self.shape())
            .finish()
    }
}

impl<'t, T: Element> Var<'t, T> {
    pub(crate) fn new(tape: &'t Tape<T>, index: usize) -> Self {
        Var { tape, index }
    }

    /// The tape this variable lives on.
    pub fn tape(&self) -> &'t Tape<T> {
        self.tape
    }

    /// Position on the tape (recording order).
    pub fn index(&self) -> usize {
        self.index
    }

    /// The value (a shared handle, no copy).
    pub fn value(&self) -> Tensor<T> {
        self.tape
            .value(*self)
            .expect("a Var always belongs to its own tape")
    }

    /// The shape of the value.
    pub fn shape(&self) -> Vec<usize> {
        self.tape
            .shape(*self)
            .expect("a Var always belongs to its own tape")
    }

    /// The single value of a one-element variable (a loss).
    pub fn item(&self) -> Result<T> {
        self.value().to_scalar()
    }
}
