//! The arithmetic of the opt-in `integrator.fast` stepper: the gate and
//! synapse updates of the default ([`super::relax`] with
//! [`crate::model::hh::gate_rates`] and the kinetic synapse, DESIGN.md §2)
//! rearranged so that a loop of them is cheap in SIMD.
//!
//! Two things cost in SIMD: calls (libm's `exp`, which never vectorises) and
//! divisions (one AVX2 or AVX-512 double division costs about as much as
//! ten multiplications). So here:
//!
//! - every exponential is [`exp`], plain arithmetic;
//! - one exponential serves all six rates: every rate's exponential is
//!   exp(-(V + 65)/c) for c = 80, 20, 18 or 10 (times a constant), and
//!   with `q = exp(-(V + 65)/720)` those are q^9, q^36, q^40 and q^72
//!   (eight multiplications by repeated squaring); `exp(-0.1 V) = e^6.5
//!   q^72`, times e^-4, e^-3.5 and e^-5.5, gives the exponentials of
//!   alpha_m, beta_h and alpha_n. The powers multiply q's rounding error by
//!   at most 72: 2e-14 relative, still far below anything physical;
//! - a gate whose rates are fractions with one denominator,
//!   `alpha = a/d`, `beta = b/d`, has `x_inf = a/(a + b)` and
//!   `k = (a + b)/d`; both come from the one reciprocal `1/(d (a + b))`, so
//!   each gate costs one division instead of three or four.
//!
//! The identities are exact; the rearranged rounding is not the default's,
//! so results agree with it to rounding level (1e-12 relative per update,
//! tested below; spike times on the reference pair in tests/golden.rs), not
//! bit for bit. That is why this is opt-in.

use super::vexp::exp;
use crate::model::hh::HhParams;
use crate::model::KineticSynapse;

/// e^6.5, e^-4, e^-3.5 and e^-5.5 (to the last bit of libm's values;
/// tested).
const E_6_5: f64 = 665.141_633_044_361_8;
const E_NEG_4: f64 = 0.018_315_638_888_734_18;
const E_NEG_3_5: f64 = 0.030_197_383_422_318_5;
const E_NEG_5_5: f64 = 0.004_086_771_438_464_067;

/// `x / (1 - exp(-x))` (the shape of alpha_m and alpha_n) as a numerator
/// and denominator, given `e_neg_x = exp(-x)`. Below |x| = 0.01 the series
/// `1 + x/2 + x^2/12 - x^4/720` (next term x^6/30240 < 4e-17) over 1
/// replaces the quotient, whose denominator would lose digits there, as
/// `hh::vtrap` does with expm1. Both sides are computed and one selected:
/// no branch to stop vectorisation.
#[inline(always)]
fn trap(x: f64, e_neg_x: f64) -> (f64, f64) {
    let series = 1.0 + x * (0.5 + x * (1.0 / 12.0 - x * x * (1.0 / 720.0)));
    if x.abs() < 1e-2 {
        (series, 1.0)
    } else {
        (x, 1.0 - e_neg_x)
    }
}

/// A gate relaxed exactly over `dt` (as [`super::relax`]) when
/// `alpha = a / d` and `beta = b / d`: `x_inf = a / (a + b)`,
/// `k = (a + b) / d`, one division for both. `a + b` and `d` have the same
/// sign for every rate here, and for |V| <= 1000 mV (beyond, a trial is
/// declared diverged) no product overflows (checked in the tests).
#[inline(always)]
fn relax_fraction(x: f64, a: f64, b: f64, d: f64, dt: f64) -> f64 {
    let total = a + b;
    let r = 1.0 / (d * total);
    let x_inf = a * d * r;
    let k = total * total * r;
    (x - x_inf).mul_add(exp(-k * dt), x_inf).clamp(0.0, 1.0)
}

/// m, h and n relaxed over `dt` at voltage `v_mv`: the default's
/// `relax(x, alpha_x(V), beta_x(V), dt)` for each, rearranged (module docs).
#[inline(always)]
pub fn gates(v_mv: f64, m: f64, h: f64, n: f64, dt: f64) -> (f64, f64, f64) {
    let u = v_mv + 65.0;
    let q = exp(u * (-1.0 / 720.0));
    let q4 = (q * q) * (q * q);
    let q8 = q4 * q4;
    let q32 = (q8 * q8) * (q8 * q8);
    let q36 = q32 * q4;
    // exp(-0.1 V) = e^6.5 exp(-(V + 65)/10).
    let e = E_6_5 * (q36 * q36);
    let b_m = 4.0 * (q32 * q8);
    // m: alpha = x/(1 - e^-x) with x = 0.1 V + 4, beta = b_m.
    let (a_m, d_m) = trap(0.1 * v_mv + 4.0, e * E_NEG_4);
    // h: alpha = 0.07 q^4, beta = 1/(1 + e^(-0.1 V - 3.5)).
    let d_h = 1.0 + e * E_NEG_3_5;
    // n: alpha = 0.1 x/(1 - e^-x) with x = 0.1 V + 5.5, beta = 0.125 q.
    let (a_n, d_n) = trap(0.1 * v_mv + 5.5, e * E_NEG_5_5);
    (
        relax_fraction(m, a_m, b_m * d_m, d_m, dt),
        relax_fraction(h, 0.07 * q36 * d_h, 1.0, d_h, dt),
        relax_fraction(n, 0.1 * a_n, 0.125 * (q8 * q) * d_n, d_n, dt),
    )
}

/// The kinetic synapse's s relaxed over `dt` at presynaptic `v_mv`:
/// alpha = alpha_max / d with d = 1 + exp(-(V - v_half)/k), beta = beta d / d.
#[inline(always)]
pub fn kinetic_s(syn: &KineticSynapse, v_mv: f64, s: f64, dt: f64) -> f64 {
    let d = 1.0 + exp((syn.v_half_mv - v_mv) * (1.0 / syn.k_mv));
    relax_fraction(s, syn.alpha_per_ms, syn.beta_per_ms * d, d, dt)
}

/// dV/dt (mV/ms) as the default's, with its two divisions (by C and by the
/// synapse's w) turned into multiplications by reciprocals, which the
/// compiler computes once per loop.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn dv_dt(
    hh: &HhParams,
    syn: &KineticSynapse,
    i_inj: f64,
    v: f64,
    m: f64,
    h: f64,
    n: f64,
    drive: f64,
    extra: f64,
) -> f64 {
    let m3 = m * m * m;
    let n2 = n * n;
    let i_ion = hh.g_na * m3 * h * (v - hh.e_na_mv) + hh.g_k * n2 * n2 * (v - hh.e_k_mv) + hh.g_l * (v - hh.e_l_mv);
    let i_syn = (syn.v_rev_mv - v) * (1.0 / syn.w) * drive;
    (i_inj + extra - i_ion + i_syn) * (1.0 / hh.c_m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrate::relax;
    use crate::model::hh::gate_rates;

    #[test]
    fn constants_are_libms_values() {
        assert_eq!(E_6_5, 6.5f64.exp());
        assert_eq!(E_NEG_4, (-4.0f64).exp());
        assert_eq!(E_NEG_3_5, (-3.5f64).exp());
        assert_eq!(E_NEG_5_5, (-5.5f64).exp());
    }

    #[test]
    fn gate_and_synapse_updates_agree_with_the_default_to_rounding_level() {
        // Every voltage a trial can reach (|V| <= 1000 mV, beyond which it
        // is diverged), both removable singularities (-40 and -55 mV) and
        // their neighbourhoods, dt from a half step of 0.001 to 1 ms, gates
        // from both ends: finite, in [0, 1], and within 1e-12 of the
        // default (a few ulp of each factor, compounded over the ~20
        // operations of an update).
        let syn = KineticSynapse::default();
        let mut vs: Vec<f64> = (0..=200_000).map(|k| -1000.0 + 0.01 * k as f64).collect();
        vs.extend([-40.0, -55.0, -40.0 + 1e-9, -55.0 - 1e-9, -40.0 - 0.1, -55.0 + 0.1]);
        let mut worst = 0.0f64;
        for &v in &vs {
            let r = gate_rates(v);
            for dt in [0.0005, 0.005, 0.01, 1.0] {
                for x in [0.0, 0.37, 1.0] {
                    let (m, h, n) = gates(v, x, x, x, dt);
                    let s = kinetic_s(&syn, v, x, dt);
                    for (got, want) in [
                        (m, relax(x, r.a_m, r.b_m, dt)),
                        (h, relax(x, r.a_h, r.b_h, dt)),
                        (n, relax(x, r.a_n, r.b_n, dt)),
                        (s, relax(x, syn.opening_rate(v), syn.beta_per_ms, dt)),
                    ] {
                        assert!((0.0..=1.0).contains(&got), "V = {v}, dt = {dt}, x = {x}: {got}");
                        worst = worst.max((got - want).abs());
                    }
                }
            }
        }
        assert!(worst < 1e-12, "worst difference {worst:e}");
    }

    #[test]
    fn voltage_derivative_agrees_with_the_default() {
        let (hh, syn) = (
            HhParams::default(),
            KineticSynapse {
                w: 3.0,
                ..Default::default()
            },
        );
        for v in [-90.0, -65.0, -40.0, 0.0, 40.0] {
            let (m, h, n) = crate::model::hh::gates_at_rest(v);
            let want = (10.0 + 0.5 - crate::model::hh::ionic_current(&hh, v, m, h, n) + syn.current(v, 0.2)) / hh.c_m;
            let got = dv_dt(&hh, &syn, 10.0, v, m, h, n, 0.2, 0.5);
            assert!(
                (got - want).abs() <= 1e-12 * want.abs().max(1.0),
                "{v}: {got} vs {want}"
            );
        }
    }
}
