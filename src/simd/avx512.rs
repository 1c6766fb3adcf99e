//! AVX-512 versions of the steps the compiler does not vectorise by
//! itself, where the wider registers pay (see [`super::avx2`]). Each gives
//! the bits of its generic twin, which the tests check.

use std::arch::x86_64::*;

use super::current::F64s;
use super::Current;

/// [`super::current::ionic_current`] in AVX-512 registers (eight
/// entries). C must be a multiple of 8.
///
/// # Safety
/// The caller must be compiled for AVX-512F and FMA: this is inlined into it
/// (a function of its own with the level's target features, called once
/// per chunk, cost its call more than its loops saved).
#[inline(always)]
pub unsafe fn ionic_current<const C: usize>(
    ion: &mut [f64; C],
    v: &[f64; C],
    currents: &[Current],
    instantaneous: &[bool],
    inf: &[[f64; C]],
    vars: &[Vec<f64>],
    at: usize,
) {
    // SAFETY: the caller is compiled for the level (above).
    unsafe { super::current::ionic_current::<__m512d, C>(ion, v, currents, instantaneous, inf, vars, at) }
}

// SAFETY (every method): called only from functions compiled for AVX-512F.
impl F64s for __m512d {
    const LANES: usize = 8;
    #[inline(always)]
    unsafe fn splat(x: f64) -> Self {
        unsafe { _mm512_set1_pd(x) }
    }
    #[inline(always)]
    unsafe fn load(xs: &[f64], i: usize) -> Self {
        let eight = &xs[i..i + 8];
        unsafe { _mm512_loadu_pd(eight.as_ptr()) }
    }
    #[inline(always)]
    unsafe fn store(self, xs: &mut [f64], i: usize) {
        let eight = &mut xs[i..i + 8];
        unsafe { _mm512_storeu_pd(eight.as_mut_ptr(), self) }
    }
    #[inline(always)]
    unsafe fn add(self, y: Self) -> Self {
        unsafe { _mm512_add_pd(self, y) }
    }
    #[inline(always)]
    unsafe fn sub(self, y: Self) -> Self {
        unsafe { _mm512_sub_pd(self, y) }
    }
    #[inline(always)]
    unsafe fn mul(self, y: Self) -> Self {
        unsafe { _mm512_mul_pd(self, y) }
    }
}
