//! Instruction-set dispatch, in one place: the trial loop (and the
//! building of rate tables) is compiled for AVX-512, AVX2 and baseline
//! x86-64 (or another architecture), and the widest this CPU runs is
//! chosen at run time, so one binary serves every machine. The code is
//! one generic algorithm; where the compiler cannot vectorise a step on
//! its own (the rate table's transposed rows, the ionic current's runtime
//! loops over currents and gates), the level chosen here is
//! handed down and picks a per-level implementation ([`avx2`], [`avx512`]). Every
//! build runs the same IEEE operations in the same order (`mul_add` is one
//! rounding everywhere), so they give the same bits (tested in run.rs): a
//! results file does not depend on the machine.

#[cfg(target_arch = "x86_64")]
pub mod avx2;
#[cfg(target_arch = "x86_64")]
pub mod avx512;
#[cfg(target_arch = "x86_64")]
mod current;

/// One ionic current of the cell as the kernel sees it: `g prod x^p (V - E)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Current {
    pub g: f64,
    pub e_mv: f64,
    /// (variable, power).
    pub gates: Vec<(usize, u32)>,
}

/// An instruction-set level, narrowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Simd {
    /// Baseline x86-64 (SSE2), or another architecture.
    Portable,
    /// AVX2 and FMA.
    Avx2,
    /// AVX-512F and FMA.
    Avx512,
}

impl Simd {
    pub const ALL: [Simd; 3] = [Simd::Portable, Simd::Avx2, Simd::Avx512];
}

/// The widest level this CPU runs, checked once per process.
pub fn simd() -> Simd {
    static LEVEL: std::sync::OnceLock<Simd> = std::sync::OnceLock::new();
    *LEVEL.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx512f") && has!("fma") {
                return Simd::Avx512;
            }
            if has!("avx2") && has!("fma") {
                return Simd::Avx2;
            }
        }
        Simd::Portable
    })
}

/// Runs `f(level)` compiled for `level`, or `None` if this CPU cannot run
/// it. Only what `f` inlines is compiled for the level: the hot code it
/// calls must be `#[inline(always)]`.
pub fn run_at<R>(level: Simd, f: impl FnOnce(Simd) -> R) -> Option<R> {
    if level > simd() {
        return None;
    }
    Some(match level {
        // SAFETY: simd() says the CPU supports AVX-512F and FMA.
        #[cfg(target_arch = "x86_64")]
        Simd::Avx512 => unsafe { avx512(f) },
        // SAFETY: simd() says the CPU supports AVX2 and FMA.
        #[cfg(target_arch = "x86_64")]
        Simd::Avx2 => unsafe { avx2(f) },
        _ => portable(f),
    })
}

/// Runs `f(level)` compiled for the widest level this CPU runs.
pub fn run_widest<R>(f: impl FnOnce(Simd) -> R) -> R {
    run_at(simd(), f).expect("the CPU runs its own level")
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
unsafe fn avx512<R>(f: impl FnOnce(Simd) -> R) -> R {
    f(Simd::Avx512)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2<R>(f: impl FnOnce(Simd) -> R) -> R {
    f(Simd::Avx2)
}

/// Out of line like the others, so that each build is one function of its
/// own (and debug builds keep the frames of the three apart).
#[inline(never)]
fn portable<R>(f: impl FnOnce(Simd) -> R) -> R {
    f(Simd::Portable)
}

/// Defines `fn $name(level: Simd, args..) -> R`, which runs
/// `$body(args..)` compiled for `level`, in a function of its own per
/// level. For hot code called from inside [`run_at`]'s `f`: the per-level
/// copies keep the compiler's view of the arguments (as function
/// parameters, they do not alias), and they keep `f` small enough to
/// optimise; inlining every stage into the trial loop made it one function
/// that took most of the release build. `$body` must be `#[inline(always)]`.
macro_rules! per_level {
    ($vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty = $body:path;) => {
        // Inline, so that a caller compiled for one level calls that
        // level's copy directly (its match folds away).
        #[inline]
        $vis fn $name(level: $crate::simd::Simd, $($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,fma")]
            #[inline(never)]
            unsafe fn avx512($($arg: $ty),*) -> $ret {
                $body($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            #[inline(never)]
            unsafe fn avx2($($arg: $ty),*) -> $ret {
                $body($($arg),*)
            }
            #[inline(never)]
            fn portable($($arg: $ty),*) -> $ret {
                $body($($arg),*)
            }
            assert!(level <= $crate::simd::simd(), "{level:?} is beyond this CPU");
            match level {
                // SAFETY (both): the assertion above.
                #[cfg(target_arch = "x86_64")]
                $crate::simd::Simd::Avx512 => unsafe { avx512($($arg),*) },
                #[cfg(target_arch = "x86_64")]
                $crate::simd::Simd::Avx2 => unsafe { avx2($($arg),*) },
                _ => portable($($arg),*),
            }
        }
    };
}
pub(crate) use per_level;
