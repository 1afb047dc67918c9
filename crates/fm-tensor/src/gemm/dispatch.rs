//! Picking the micro-kernel: detect the CPU once, cache the choice, let tests and benches override it.
//!
//! [`selected_kernel`] asks the CPU (with `is_x86_feature_detected!`) on the first call and remembers
//! the answer in a `OnceLock`, so the hot path pays one atomic load. [`GemmKernel`] names every kernel
//! family; [`GemmKernel::is_available`] says whether this CPU can run it, which is what
//! [`gemm_with_kernel`](super::gemm_with_kernel) checks before forcing one.

use std::fmt;
use std::sync::OnceLock;

/// A family of GEMM micro-kernels (one per instruction set), for both `f32` and `f64`.
///
/// ```
/// use fm_tensor::gemm::{selected_kernel, GemmKernel};
/// let k = selected_kernel();
/// assert!(k.is_available());
/// assert!(GemmKernel::Scalar.is_available() && GemmKernel::Portable.is_available());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GemmKernel {
    /// Simple loops over a small tile: the reference the tests compare every other kernel with.
    Scalar,
    /// Plain Rust over fixed-size arrays that the compiler vectorises; the fast path off x86.
    Portable,
    /// x86-64 AVX2 + FMA (256-bit vectors).
    Avx2,
    /// x86-64 AVX-512F (512-bit vectors); the fast path on recent Intel and AMD Zen 4/5.
    Avx512,
}

impl GemmKernel {
    /// Every kernel family, slowest first.
    pub const ALL: [GemmKernel; 4] = [
        GemmKernel::Scalar,
        GemmKernel::Portable,
        GemmKernel::Avx2,
        GemmKernel::Avx512,
    ];

    /// Whether this CPU (and this build's target) can run the kernel.
    pub fn is_available(self) -> bool {
        match self {
            GemmKernel::Scalar | GemmKernel::Portable => true,
            GemmKernel::Avx2 => cpu_has_avx2_fma(),
            GemmKernel::Avx512 => cpu_has_avx512f(),
        }
    }

    /// A short lowercase name (`"avx512"`, ...), as printed by the benchmarks.
    pub fn name(self) -> &'static str {
        match self {
            GemmKernel::Scalar => "scalar",
            GemmKernel::Portable => "portable",
            GemmKernel::Avx2 => "avx2",
            GemmKernel::Avx512 => "avx512",
        }
    }

    /// The kernels this CPU can run, slowest first.
    pub fn available() -> Vec<GemmKernel> {
        GemmKernel::ALL
            .into_iter()
            .filter(|k| k.is_available())
            .collect()
    }
}

impl fmt::Display for GemmKernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The fastest kernel this CPU supports, detected on first use and cached.
pub fn selected_kernel() -> GemmKernel {
    static SELECTED: OnceLock<GemmKernel> = OnceLock::new();
    *SELECTED.get_or_init(|| {
        if cpu_has_avx512f() {
            GemmKernel::Avx512
        } else if cpu_has_avx2_fma() {
            GemmKernel::Avx2
        } else {
            GemmKernel::Portable
        }
    })
}

#[cfg(target_arch = "x86_64")]
fn cpu_has_avx512f() -> bool {
    // The AVX-512 kernels also use FMA-capable AVX2 code for their vector tails.
    std::arch::is_x86_feature_detected!("avx512f") && cpu_has_avx2_fma()
}

#[cfg(not(target_arch = "x86_64"))]
fn cpu_has_avx512f() -> bool {
    false
}

#[cfg(target_arch = "x86_64")]
fn cpu_has_avx2_fma() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

#[cfg(not(target_arch = "x86_64"))]
fn cpu_has_avx2_fma() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_is_stable_and_available() {
        let first = selected_kernel();
        assert_eq!(first, selected_kernel());
        assert!(first.is_available());
        assert_ne!(
            first,
            GemmKernel::Scalar,
            "the reference kernel is never picked for speed"
        );
    }

    #[test]
    fn available_list_starts_with_the_portable_ones() {
        let list = GemmKernel::available();
        assert_eq!(&list[..2], &[GemmKernel::Scalar, GemmKernel::Portable]);
        assert!(list.contains(&selected_kernel()));
    }
}
