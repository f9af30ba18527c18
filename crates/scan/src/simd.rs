//! Runtime CPU dispatch for the hot loops.
//!
//! Portable builds target baseline x86-64 (SSE2), which has no 8-wide float or 32-bit integer
//! multiply, so the compiler's vectorisation of the warp, normalisation and DCT loops stays
//! narrow. [`multiversion!`] compiles one loop body twice: once for the baseline and once with
//! AVX2 + FMA enabled, and picks the second at run time when the CPU has them (checked once and
//! cached by the standard library). Float results are identical in both versions: Rust never
//! contracts `a * b + c` into an FMA on its own.

/// Defines `fn name(args) -> ret { body }` so the body runs AVX2-compiled where available.
/// The body must keep its work inside loops it owns (closures or non-inlined helpers it calls are
/// compiled for the baseline).
macro_rules! multiversion {
    ($(#[$m:meta])* $vis:vis fn $name:ident $(<$($lt:lifetime),*>)? ($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$m])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name $(<$($lt),*>)? ($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn imp $(<$($lt),*>)? ($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                fn avx2 $(<$($lt),*>)? ($($arg: $ty),*) $(-> $ret)? {
                    imp($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU supports the features `avx2` was compiled for.
                    return unsafe { avx2($($arg),*) };
                }
            }
            imp($($arg),*)
        }
    };
}
pub(crate) use multiversion;
