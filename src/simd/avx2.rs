//! AVX2 versions of the steps the compiler does not vectorise by itself.
//! Each gives the bits of its generic twin (the same multiply-adds, only
//! moved between registers), which the tests check.

use std::arch::x86_64::*;

use super::current::F64s;
use super::Current;

/// Interpolates rows of a rate table, four entries at a time: for entry l
/// and variable q, `inf[q][l] = x + w dx` and `second[q][l] = s + w ds`
/// from grid row `rows[row[l]]` (JP x_inf, JP second values, then their
/// differences to the next row; JP is a multiple of 4) and weight
/// `weight[l]`. Loads a row's four variables as one register per entry,
/// then transposes four entries' registers into one register per
/// variable; the generic code moves every number alone. `inf` and
/// `second` need `JP` rows; C must be a multiple of 4.
///
/// # Safety
/// The caller must be compiled for AVX2 and FMA: this is inlined into it
/// (out of line, a chunk of 16 pair entries paid a call per stage, 1 % of
/// the kernel's instructions). Every `row[l]` must be below `rows.len()`
/// (grid positions are, by construction).
#[inline(always)]
pub unsafe fn interpolate<const C: usize, const JP: usize>(
    rows: &[[[f64; JP]; 4]],
    row: &[usize; C],
    weight: &[f64; C],
    inf: &mut [[f64; C]],
    second: &mut [[f64; C]],
) {
    assert!(C.is_multiple_of(4) && JP.is_multiple_of(4) && inf.len() >= JP && second.len() >= JP);
    debug_assert!(row.iter().all(|&k| k < rows.len()));
    // No closures in the loop: they would not inherit the caller's target
    // features, and out of line each load would be a call.
    for at in (0..C).step_by(4) {
        // SAFETY: the caller's bound on the rows. Unchecked: the checks
        // were a compare and a branch per entry and stage.
        let r = unsafe {
            [
                rows.get_unchecked(row[at]),
                rows.get_unchecked(row[at + 1]),
                rows.get_unchecked(row[at + 2]),
                rows.get_unchecked(row[at + 3]),
            ]
        };
        for g in (0..JP).step_by(4) {
            let mut x = [_mm256_setzero_pd(); 4];
            let mut s = [_mm256_setzero_pd(); 4];
            for e in 0..4 {
                let w = _mm256_set1_pd(weight[at + e]);
                let [x0, s0, dx, ds] = r[e];
                let (x0, s0, dx, ds) = (&x0[g..g + 4], &s0[g..g + 4], &dx[g..g + 4], &ds[g..g + 4]);
                // SAFETY: each slice holds the 4 numbers loaded.
                unsafe {
                    x[e] = _mm256_fmadd_pd(w, _mm256_loadu_pd(dx.as_ptr()), _mm256_loadu_pd(x0.as_ptr()));
                    s[e] = _mm256_fmadd_pd(w, _mm256_loadu_pd(ds.as_ptr()), _mm256_loadu_pd(s0.as_ptr()));
                }
            }
            let (x, s) = (transpose(x), transpose(s));
            for q in 0..4 {
                // SAFETY: each slice holds the 4 numbers stored.
                unsafe {
                    _mm256_storeu_pd(inf[g + q][at..at + 4].as_mut_ptr(), x[q]);
                    _mm256_storeu_pd(second[g + q][at..at + 4].as_mut_ptr(), s[q]);
                }
            }
        }
    }
}

/// Rows of four registers to columns: `out[q][e] = v[e][q]`.
#[inline(always)]
fn transpose(v: [__m256d; 4]) -> [__m256d; 4] {
    // SAFETY: register shuffles only (AVX, implied by the caller's AVX2).
    unsafe {
        let t0 = _mm256_unpacklo_pd(v[0], v[1]);
        let t1 = _mm256_unpackhi_pd(v[0], v[1]);
        let t2 = _mm256_unpacklo_pd(v[2], v[3]);
        let t3 = _mm256_unpackhi_pd(v[2], v[3]);
        [
            _mm256_permute2f128_pd(t0, t2, 0x20),
            _mm256_permute2f128_pd(t1, t3, 0x20),
            _mm256_permute2f128_pd(t0, t2, 0x31),
            _mm256_permute2f128_pd(t1, t3, 0x31),
        ]
    }
}

/// [`super::current::ionic_current`] in AVX2 registers (four entries).
/// C must be a multiple of 4.
///
/// # Safety
/// The caller must be compiled for AVX2 and FMA: this is inlined into it
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
    unsafe { super::current::ionic_current::<__m256d, C>(ion, v, currents, instantaneous, inf, vars, at) }
}

// SAFETY (every method): called only from functions compiled for AVX2.
impl F64s for __m256d {
    const LANES: usize = 4;
    #[inline(always)]
    unsafe fn splat(x: f64) -> Self {
        unsafe { _mm256_set1_pd(x) }
    }
    #[inline(always)]
    unsafe fn load(xs: &[f64], i: usize) -> Self {
        let four = &xs[i..i + 4];
        unsafe { _mm256_loadu_pd(four.as_ptr()) }
    }
    #[inline(always)]
    unsafe fn store(self, xs: &mut [f64], i: usize) {
        let four = &mut xs[i..i + 4];
        unsafe { _mm256_storeu_pd(four.as_mut_ptr(), self) }
    }
    #[inline(always)]
    unsafe fn add(self, y: Self) -> Self {
        unsafe { _mm256_add_pd(self, y) }
    }
    #[inline(always)]
    unsafe fn sub(self, y: Self) -> Self {
        unsafe { _mm256_sub_pd(self, y) }
    }
    #[inline(always)]
    unsafe fn mul(self, y: Self) -> Self {
        unsafe { _mm256_mul_pd(self, y) }
    }
}
