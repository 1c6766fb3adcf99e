//! The ionic current over registers of any width: one algorithm, which
//! [`super::avx2`] and [`super::avx512`] instantiate for their register
//! inside a function compiled for their level (the way memchr shares its
//! searches between instruction sets).

use super::Current;

/// A register of f64 and the few operations the per-level loops use.
///
/// # Safety
/// Every method needs the CPU features of the register's level; call them
/// only from a function compiled for that level.
pub trait F64s: Copy {
    const LANES: usize;
    unsafe fn splat(x: f64) -> Self;
    /// `xs[i..i + LANES]`.
    unsafe fn load(xs: &[f64], i: usize) -> Self;
    /// `xs[i..i + LANES] = self`.
    unsafe fn store(self, xs: &mut [f64], i: usize);
    unsafe fn add(self, y: Self) -> Self;
    unsafe fn sub(self, y: Self) -> Self;
    unsafe fn mul(self, y: Self) -> Self;
}

/// The ionic current `ion[l] = sum_c g_c prod x_q[l]^p (v[l] - E_c)`,
/// in the order of the generic loop in the stepper (the same bits): gate
/// q's chunk is `inf[q]` if it is instantaneous, else `vars[q][at..]`.
/// Row by row as the generic loop, which the compiler left scalar for a
/// whole chunk; the gate's row and power are looked up once per row, not
/// per register. C must be a multiple of `V::LANES`.
///
/// # Safety
/// As [`F64s`]: the caller is compiled for `V`'s level.
#[inline(always)]
pub unsafe fn ionic_current<V: F64s, const C: usize>(
    ion: &mut [f64; C],
    v: &[f64; C],
    currents: &[Current],
    instantaneous: &[bool],
    inf: &[[f64; C]],
    vars: &[Vec<f64>],
    at: usize,
) {
    assert!(C.is_multiple_of(V::LANES));
    let mut t = [0.0; C];
    // SAFETY (all blocks): the caller is compiled for V's level.
    unsafe {
        for i in (0..C).step_by(V::LANES) {
            V::splat(0.0).store(ion, i);
        }
        for cur in currents {
            let (g, e) = (V::splat(cur.g), V::splat(cur.e_mv));
            for i in (0..C).step_by(V::LANES) {
                g.mul(V::load(v, i).sub(e)).store(&mut t, i);
            }
            for &(q, p) in &cur.gates {
                let x: &[f64] = if instantaneous[q] {
                    &inf[q]
                } else {
                    &vars[q][at..at + C]
                };
                match p {
                    1 => times_power::<V, C, 1>(&mut t, x),
                    3 => times_power::<V, C, 3>(&mut t, x),
                    4 => times_power::<V, C, 4>(&mut t, x),
                    _ => {
                        for i in (0..C).step_by(V::LANES) {
                            V::load(&t, i).mul(power(V::load(x, i), p)).store(&mut t, i);
                        }
                    }
                }
            }
            for i in (0..C).step_by(V::LANES) {
                V::load(ion, i).add(V::load(&t, i)).store(ion, i);
            }
        }
    }
}

/// `t *= x^P` for a power known at compile time.
#[inline(always)]
unsafe fn times_power<V: F64s, const C: usize, const P: u32>(t: &mut [f64; C], x: &[f64]) {
    for i in (0..C).step_by(V::LANES) {
        // SAFETY: as the caller.
        unsafe { V::load(t, i).mul(power(V::load(x, i), P)).store(t, i) };
    }
}

/// `x^p` with the multiplications of `crate::model::expr::powi` (the
/// generic loop writes the common powers out in the same order).
#[inline(always)]
unsafe fn power<V: F64s>(x: V, p: u32) -> V {
    // SAFETY: as the caller.
    unsafe {
        match p {
            1 => x,
            3 => x.mul(x.mul(x)),
            4 => {
                let x2 = x.mul(x);
                x2.mul(x2)
            }
            _ => {
                let (mut base, mut e, mut acc) = (x, p, V::splat(1.0));
                while e > 0 {
                    if e & 1 == 1 {
                        acc = acc.mul(base);
                    }
                    base = base.mul(base);
                    e >>= 1;
                }
                acc
            }
        }
    }
}
