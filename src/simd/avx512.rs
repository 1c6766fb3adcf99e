//! AVX-512 versions of the steps the compiler does not vectorise by
//! itself, where the wider registers pay (see [`super::avx2`]). Each gives
//! the bits of its generic twin, which the tests check.

use std::arch::x86_64::*;

use super::Current;

/// The ionic current `ion[l] = sum_c g_c prod x_q[l]^p (v[l] - E_c)`,
/// in the order of the generic loop in the stepper (the same bits): gate
/// q's chunk is `inf[q]` if it is instantaneous, else `vars[q][at..]`.
/// As [`super::avx2::ionic_current`], eight entries per register. C must be a multiple of 8.
///
/// # Safety
/// The CPU must support AVX-512F and FMA.
#[inline]
#[target_feature(enable = "avx512f,fma")]
pub fn ionic_current<const C: usize>(
    ion: &mut [f64; C],
    v: &[f64; C],
    currents: &[Current],
    instantaneous: &[bool],
    inf: &[[f64; C]],
    vars: &[Vec<f64>],
    at: usize,
) {
    assert!(C.is_multiple_of(8));
    let mut t = [0.0; C];
    for i in (0..C).step_by(8) {
        store(ion, i, _mm512_setzero_pd());
    }
    for cur in currents {
        let (g, e) = (_mm512_set1_pd(cur.g), _mm512_set1_pd(cur.e_mv));
        for i in (0..C).step_by(8) {
            store(&mut t, i, _mm512_mul_pd(g, _mm512_sub_pd(load(v, i), e)));
        }
        for &(q, p) in &cur.gates {
            let x: &[f64] = if instantaneous[q] {
                &inf[q]
            } else {
                &vars[q][at..at + C]
            };
            match p {
                1 => times_power::<C, 1>(&mut t, x),
                3 => times_power::<C, 3>(&mut t, x),
                4 => times_power::<C, 4>(&mut t, x),
                _ => {
                    for i in (0..C).step_by(8) {
                        let y = _mm512_mul_pd(load(&t, i), power(load(x, i), p));
                        store(&mut t, i, y);
                    }
                }
            }
        }
        for i in (0..C).step_by(8) {
            let y = _mm512_add_pd(load(ion, i), load(&t, i));
            store(ion, i, y);
        }
    }
}

/// `t *= x^P` for a power known at compile time.
#[inline]
#[target_feature(enable = "avx512f,fma")]
fn times_power<const C: usize, const P: u32>(t: &mut [f64; C], x: &[f64]) {
    for i in (0..C).step_by(8) {
        let y = _mm512_mul_pd(load(t, i), power(load(x, i), P));
        store(t, i, y);
    }
}

/// `xs[i..i + 8] = y`.
#[inline]
#[target_feature(enable = "avx512f,fma")]
fn store(xs: &mut [f64], i: usize, y: __m512d) {
    let eight = &mut xs[i..i + 8];
    // SAFETY: the slice holds the 8 numbers stored.
    unsafe { _mm512_storeu_pd(eight.as_mut_ptr(), y) }
}

/// `xs[i..i + 8]` into a register.
#[inline]
#[target_feature(enable = "avx512f,fma")]
fn load(xs: &[f64], i: usize) -> __m512d {
    let eight = &xs[i..i + 8];
    // SAFETY: the slice holds the 8 numbers loaded.
    unsafe { _mm512_loadu_pd(eight.as_ptr()) }
}

/// `x^p` with the multiplications of `crate::model::expr::powi` (the
/// generic loop writes the common powers out in the same order).
#[inline]
#[target_feature(enable = "avx512f,fma")]
fn power(x: __m512d, p: u32) -> __m512d {
    match p {
        1 => x,
        3 => _mm512_mul_pd(x, _mm512_mul_pd(x, x)),
        4 => {
            let x2 = _mm512_mul_pd(x, x);
            _mm512_mul_pd(x2, x2)
        }
        _ => {
            let (mut base, mut e, mut acc) = (x, p, _mm512_set1_pd(1.0));
            while e > 0 {
                if e & 1 == 1 {
                    acc = _mm512_mul_pd(acc, base);
                }
                base = _mm512_mul_pd(base, base);
                e >>= 1;
            }
            acc
        }
    }
}
