//! The Hodgkin-Huxley membrane: rate functions, steady states and the ionic
//! current. Pure math: no I/O, no RNG, no allocation.
//!
//! Source: A. L. Hodgkin & A. F. Huxley (1952), "A quantitative description of
//! membrane current and its application to conduction and excitation in
//! nerve", J. Physiol. 117:500-544, in the modern convention (depolarisation
//! positive, rest near -65 mV, E_L = -54.387 mV) of Dayan & Abbott,
//! *Theoretical Neuroscience* (2001), §5.6 (NEURON's `hh.mod` has the same
//! rates, with E_L = -54.3 mV), as in the original question (DESIGN.md §2). Units throughout: mV, ms, uA/cm^2, mS/cm^2, uF/cm^2.

/// Membrane parameters of one Hodgkin-Huxley neuron.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HhParams {
    /// Maximal sodium conductance (mS/cm^2).
    pub g_na: f64,
    /// Maximal potassium conductance (mS/cm^2).
    pub g_k: f64,
    /// Leak conductance (mS/cm^2).
    pub g_l: f64,
    /// Sodium reversal potential (mV).
    pub e_na_mv: f64,
    /// Potassium reversal potential (mV).
    pub e_k_mv: f64,
    /// Leak reversal potential (mV).
    pub e_l_mv: f64,
    /// Membrane capacitance (uF/cm^2).
    pub c_m: f64,
}

impl Default for HhParams {
    /// The standard squid-axon values (Hodgkin & Huxley 1952, shifted to a
    /// -65 mV rest), as listed in DESIGN.md §2.
    fn default() -> Self {
        HhParams {
            g_na: 120.0,
            g_k: 36.0,
            g_l: 0.3,
            e_na_mv: 50.0,
            e_k_mv: -77.0,
            e_l_mv: -54.387,
            c_m: 1.0,
        }
    }
}

/// Opening (`a_*`) and closing (`b_*`) rates of the m, h and n gates, in 1/ms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GateRates {
    pub a_m: f64,
    pub b_m: f64,
    pub a_h: f64,
    pub b_h: f64,
    pub a_n: f64,
    pub b_n: f64,
}

/// `x / (1 - exp(-x))`, the shape shared by alpha_m and alpha_n.
///
/// At x = 0 the formula is 0/0 with limit 1; near 0 the naive form loses all
/// digits to cancellation. `expm1` keeps full relative precision for every
/// x != 0, and below |x| = 1e-6 the two-term Taylor series 1 + x/2 is used:
/// its relative error, about x^2/12, stays below 1e-13 (a few hundred ulp,
/// far below every other error of the model).
#[inline]
pub fn vtrap(x: f64) -> f64 {
    trap_from(x, (-x).exp_m1())
}

/// [`vtrap`] given `em1 = expm1(-x)` (computed whether or not it is used,
/// so that a loop of these has no call and no branch).
#[inline(always)]
fn trap_from(x: f64, em1: f64) -> f64 {
    if x.abs() < 1e-6 {
        1.0 + 0.5 * x
    } else {
        x / -em1
    }
}

/// The six HH rate functions at membrane potential `v_mv` (DESIGN.md §2):
///
/// ```text
/// alpha_m = (0.1 V + 4) / (1 - exp(-0.1 V - 4))     beta_m = 4 exp(-(V + 65)/18)
/// alpha_h = 0.07 exp(-(V + 65)/20)                  beta_h = 1 / (1 + exp(-0.1 V - 3.5))
/// alpha_n = (0.01 V + 0.55) / (1 - exp(-0.1 V - 5.5)) beta_n = 0.125 exp(-(V + 65)/80)
/// ```
///
/// alpha_m (at V = -40) and alpha_n (at V = -55) are evaluated through
/// [`vtrap`], so they are finite and smooth at their removable singularities
/// (limits 1.0 and 0.1 per ms).
#[inline]
pub fn gate_rates(v_mv: f64) -> GateRates {
    let [x0, x1, x2, x3, x4, x5] = rate_exp_args(v_mv);
    rates_from_exps(v_mv, [x0.exp_m1(), x1.exp(), x2.exp(), x3.exp(), x4.exp_m1(), x5.exp()])
}

/// The arguments of the six exponentials in [`gate_rates`], in the order
/// a_m, b_m, a_h, b_h, a_n, b_n; those of a_m and a_n go to `expm1` (see
/// [`vtrap`]), the others to `exp`. Split from the rest so that a stepper
/// can compute every neuron's arguments, then every libm call, then every
/// rate: the arithmetic vectorises, and the bits are those of
/// [`gate_rates`] (the same operations on the same numbers).
#[inline(always)]
pub fn rate_exp_args(v_mv: f64) -> [f64; 6] {
    let u = v_mv + 65.0;
    [
        -(0.1 * v_mv + 4.0),
        -u / 18.0,
        -u / 20.0,
        -0.1 * v_mv - 3.5,
        -(0.1 * v_mv + 5.5),
        -u / 80.0,
    ]
}

/// The rates from the exponentials of [`rate_exp_args`] (`expm1` of the
/// first and fifth, `exp` of the others).
#[inline(always)]
pub fn rates_from_exps(v_mv: f64, e: [f64; 6]) -> GateRates {
    GateRates {
        a_m: trap_from(0.1 * v_mv + 4.0, e[0]),
        b_m: 4.0 * e[1],
        a_h: 0.07 * e[2],
        b_h: 1.0 / (1.0 + e[3]),
        a_n: 0.1 * trap_from(0.1 * v_mv + 5.5, e[4]),
        b_n: 0.125 * e[5],
    }
}

/// Steady-state open fraction `alpha / (alpha + beta)` of a two-state gate.
#[inline]
pub fn x_inf(alpha: f64, beta: f64) -> f64 {
    alpha / (alpha + beta)
}

/// Steady-state (m, h, n) at a clamped voltage.
pub fn gates_at_rest(v_mv: f64) -> (f64, f64, f64) {
    let r = gate_rates(v_mv);
    (x_inf(r.a_m, r.b_m), x_inf(r.a_h, r.b_h), x_inf(r.a_n, r.b_n))
}

/// Total ionic current, outward positive (uA/cm^2):
/// `gNa m^3 h (V - ENa) + gK n^4 (V - EK) + gL (V - EL)`.
#[inline]
pub fn ionic_current(p: &HhParams, v_mv: f64, m: f64, h: f64, n: f64) -> f64 {
    let m3 = m * m * m;
    let n2 = n * n;
    p.g_na * m3 * h * (v_mv - p.e_na_mv) + p.g_k * n2 * n2 * (v_mv - p.e_k_mv) + p.g_l * (v_mv - p.e_l_mv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpha_m_and_alpha_n_are_finite_at_their_singular_points() {
        // The limits are exact: d/dx of (1 - e^-x) at 0 is 1.
        let at_m = gate_rates(-40.0);
        assert_eq!(at_m.a_m, 1.0, "alpha_m(-40) must be its limit 1/ms");
        let at_n = gate_rates(-55.0);
        assert_eq!(at_n.a_n, 0.1, "alpha_n(-55) must be its limit 0.1/ms");
    }

    #[test]
    fn vtrap_is_smooth_across_zero() {
        // A cancellation spike near x = 0 would show as a jump between
        // neighbours; the true function has slope 1/2 there, so over a step
        // of 1e-7 neighbours differ by 5e-8. Allow 1e-12 of rounding.
        let mut prev = vtrap(-1e-5);
        let mut x = -1e-5;
        while x < 1e-5 {
            x += 1e-7;
            let y = vtrap(x);
            assert!(((y - prev) - 0.5e-7).abs() < 1e-12, "x = {x}: step {}", y - prev);
            prev = y;
        }
    }

    #[test]
    fn rates_are_finite_and_nonnegative_over_a_huge_voltage_range() {
        // Gates can only stay in [0, 1] if no rate is negative or NaN.
        let mut v = -10_000.0;
        while v <= 10_000.0 {
            let r = gate_rates(v);
            for (name, x) in [
                ("a_m", r.a_m),
                ("b_m", r.b_m),
                ("a_h", r.a_h),
                ("b_h", r.b_h),
                ("a_n", r.a_n),
                ("b_n", r.b_n),
            ] {
                assert!(x.is_finite() && x >= 0.0, "{name}({v}) = {x}");
            }
            v += 0.37;
        }
    }

    #[test]
    fn resting_potential_of_standard_hh_is_near_minus_65() {
        // With I = 0 the standard parameters rest at -65.0 mV (the point of
        // the +65 shift): the ionic current at the gates' steady state is
        // zero there to within 0.01 uA/cm^2 (e_l = -54.387 is chosen for it).
        let p = HhParams::default();
        let (m, h, n) = gates_at_rest(-65.0);
        let i = ionic_current(&p, -65.0, m, h, n);
        assert!(i.abs() < 0.01, "I_ion(-65) = {i}");
    }
}
