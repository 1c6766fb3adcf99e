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

/// The ionic current `sum_c g_c prod x_q[l]^p (v[l] - E_c)` added into
/// `ion` (zeros: the caller's, once; zeroing here as well cost a store per
/// register), in the order of the generic loop in the stepper (the same bits): gate
/// q's chunk is `inf[q]` if it is instantaneous, else `vars[q][at..]`.
/// One pass over the chunk per gate (the compiler left the generic loop
/// scalar), looking the gate's row and power up once per pass: a
/// current's first pass starts from `g (V - E)` and its last adds into
/// `ion`, so the product goes through memory only between its gates.
/// C must be a multiple of `V::LANES`.
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
        for cur in currents {
            let a = Affine {
                g: V::splat(cur.g),
                e: V::splat(cur.e_mv),
                v,
            };
            if cur.gates.is_empty() {
                for i in (0..C).step_by(V::LANES) {
                    V::load(ion, i).add(a.at(i)).store(ion, i);
                }
            }
            let last = cur.gates.len().saturating_sub(1);
            for (k, &(q, p)) in cur.gates.iter().enumerate() {
                let x: &[f64; C] = if instantaneous[q] {
                    &inf[q]
                } else {
                    (&vars[q][at..at + C]).try_into().expect("a full chunk")
                };
                let o = (&mut t, &mut *ion);
                if k == 0 && k == last {
                    by_power::<V, C, true, true>(p, a, x, o);
                } else if k == 0 {
                    by_power::<V, C, true, false>(p, a, x, o);
                } else if k == last {
                    by_power::<V, C, false, true>(p, a, x, o);
                } else {
                    by_power::<V, C, false, false>(p, a, x, o);
                }
            }
        }
    }
}

/// A current's `g (V - E)`, register by register.
#[derive(Clone, Copy)]
struct Affine<'a, V, const C: usize> {
    g: V,
    e: V,
    v: &'a [f64; C],
}

impl<V: F64s, const C: usize> Affine<'_, V, C> {
    #[inline(always)]
    unsafe fn at(&self, i: usize) -> V {
        // SAFETY: as the caller.
        unsafe { self.g.mul(V::load(self.v, i).sub(self.e)) }
    }
}

/// [`pass`] with the power known at compile time where it is a common one
/// (three cases and a default: with four the compiler made a jump table,
/// mispredicted from gate to gate).
#[inline(always)]
unsafe fn by_power<V: F64s, const C: usize, const FIRST: bool, const LAST: bool>(
    p: u32,
    a: Affine<V, C>,
    x: &[f64; C],
    o: (&mut [f64; C], &mut [f64; C]),
) {
    // SAFETY: as the caller.
    unsafe {
        match p {
            1 => pass::<V, C, FIRST, LAST, 1>(p, a, x, o),
            3 => pass::<V, C, FIRST, LAST, 3>(p, a, x, o),
            4 => pass::<V, C, FIRST, LAST, 4>(p, a, x, o),
            _ => pass::<V, C, FIRST, LAST, 0>(p, a, x, o),
        }
    }
}

/// One gate's pass over the chunk: `y = from * x^p`, `from` being the
/// current's `g (V - E)` (its first gate) or the product so far in `t`;
/// `y` stored into `t`, or added into `ion` (its last gate). `P` is the
/// power, or 0 for `p` given at run time.
#[inline(always)]
unsafe fn pass<V: F64s, const C: usize, const FIRST: bool, const LAST: bool, const P: u32>(
    p: u32,
    a: Affine<V, C>,
    x: &[f64; C],
    (t, ion): (&mut [f64; C], &mut [f64; C]),
) {
    let p = if P == 0 { p } else { P };
    for i in (0..C).step_by(V::LANES) {
        // SAFETY: as the caller.
        unsafe {
            let from = if FIRST { a.at(i) } else { V::load(t, i) };
            let y = from.mul(power(V::load(x, i), p));
            if LAST {
                V::load(ion, i).add(y).store(ion, i);
            } else {
                y.store(t, i);
            }
        }
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
