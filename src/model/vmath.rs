//! Elementary functions as plain arithmetic, so that a loop of them
//! vectorises and every instruction-set build returns the same bits.
//!
//! `f64::exp` is a call into libm, which no compiler vectorises, and
//! libm's bits differ between platforms anyway. [`exp`] is Cody-Waite
//! reduction `x = k ln2 + r` with |r| <= ln2/2 (Cody & Waite 1980,
//! *Software Manual for the Elementary Functions*, ch. 6), a degree-11
//! near-minimax polynomial for e^r by Estrin's scheme (Knuth, TAOCP vol. 2,
//! §4.6.4), and 2^k assembled in the exponent bits. [`expm1`] and
//! [`bern`] build on it. Only IEEE operations in a fixed order:
//! multiplications, additions and fused multiply-adds (`mul_add`, one
//! rounding: an instruction on FMA machines, a correctly rounded libm call
//! elsewhere), so the AVX-512, AVX2 and portable builds agree bit for bit.
//! Measured error against libm: at most 2 ulp (tested below).

/// ln 2 split in two: `LN2_HI` has its low 21 bits zero, so `k * LN2_HI`
/// is exact for |k| < 2^11, which covers every k here (fdlibm's constants).
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
/// 1.5 * 2^52: adding it rounds to an integer held in the low mantissa bits.
const SHIFTER: f64 = 6_755_399_441_055_744.0;

/// Degree-11 polynomial for e^r on |r| <= ln2/2: the interpolant at the
/// 12 Chebyshev nodes (near-minimax), computed in 50-digit arithmetic and
/// rounded; relative error 1.7e-17 (0.15 ulp).
const EXP_COEFFS: [f64; 12] = [
    1.0,
    1.0,
    0.500_000_000_000_001_9,
    0.166_666_666_666_666_8,
    0.041_666_666_666_488_1,
    0.008_333_333_333_319_601,
    0.001_388_888_895_231_477_5,
    0.000_198_412_698_900_471_13,
    2.480_148_548_232_849_4e-5,
    2.755_724_091_857_897e-6,
    2.763_263_963_904_103e-7,
    2.511_003_760_596_377_7e-8,
];

/// e^x, within 2 ulp of libm for x in [-708, 709]. Arguments outside are
/// clamped into it (e^-708 ~ 3e-308 stands in for smaller values, e^709 for
/// larger ones). NaN in gives NaN out, so a diverging trial stays visible.
#[inline(always)]
pub fn exp(x: f64) -> f64 {
    let x = x.clamp(-708.0, 709.0);
    // k = round(x / ln2), exactly, as the low bits of kf.
    let kf = x.mul_add(std::f64::consts::LOG2_E, SHIFTER);
    let k = kf - SHIFTER;
    let r = (-k).mul_add(LN2_LO, (-k).mul_add(LN2_HI, x));
    // Estrin's scheme: a dependency chain of 4 multiply-adds instead of
    // Horner's 11, so the CPU overlaps the many exponentials of a step.
    let c = &EXP_COEFFS;
    let (r2, r4) = (r * r, (r * r) * (r * r));
    let r8 = r4 * r4;
    let pair = |i: usize| c[i + 1].mul_add(r, c[i]);
    let q0 = pair(2).mul_add(r2, pair(0));
    let q1 = pair(6).mul_add(r2, pair(4));
    let q2 = pair(10).mul_add(r2, pair(8));
    let p = q2.mul_add(r8, q1.mul_add(r4, q0));
    // 2^k: k + 1023 in the exponent field (k in [-1022, 1023] after the clamp).
    let k_int = (kf.to_bits() as i64).wrapping_sub(SHIFTER.to_bits() as i64);
    let scale = f64::from_bits((k_int.wrapping_add(1023) as u64) << 52);
    p * scale
}

/// Below this |x|, [`expm1`] uses its series; above, `exp(x) - 1` loses at
/// most a factor e^x / |e^x - 1| <= 2.5 of exp's error to cancellation.
const EXPM1_SERIES_MAX: f64 = 0.35;

/// Taylor coefficients 1/k! for k = 2..=13: the series x + x^2 P(x) of
/// e^x - 1, whose truncation error at |x| = 0.35 is 0.35^14/14! = 5e-18
/// of x (0.05 ulp).
const EXPM1_COEFFS: [f64; 12] = [
    1.0 / 2.0,
    1.0 / 6.0,
    1.0 / 24.0,
    1.0 / 120.0,
    1.0 / 720.0,
    1.0 / 5040.0,
    1.0 / 40320.0,
    1.0 / 362880.0,
    1.0 / 3628800.0,
    1.0 / 39916800.0,
    1.0 / 479001600.0,
    1.0 / 6227020800.0,
];

/// e^x - 1 with full relative precision near 0 (where `exp(x) - 1` would
/// lose every digit to cancellation): the series below |x| = 0.35, `exp(x)
/// - 1` above. Both are computed and one selected, so a loop has no branch.
#[inline(always)]
pub fn expm1(x: f64) -> f64 {
    expm1_from_exp(x, exp(x))
}

/// [`expm1`] given `ex = e^x`, computed elsewhere (an exponential that
/// several rates share, see `model::expr`).
#[inline(always)]
pub fn expm1_from_exp(x: f64, ex: f64) -> f64 {
    let c = &EXPM1_COEFFS;
    let (x2, x4) = (x * x, (x * x) * (x * x));
    let x8 = x4 * x4;
    let pair = |i: usize| c[i + 1].mul_add(x, c[i]);
    let q0 = pair(2).mul_add(x2, pair(0));
    let q1 = pair(6).mul_add(x2, pair(4));
    let q2 = pair(10).mul_add(x2, pair(8));
    let p = q2.mul_add(x8, q1.mul_add(x4, q0));
    let series = x2.mul_add(p, x);
    let direct = ex - 1.0;
    if x.abs() < EXPM1_SERIES_MAX {
        series
    } else {
        direct
    }
}

/// Below this |x|, [`bern`] uses its series; above, `x / (e^x - 1)` loses
/// at most a factor e^x / |e^x - 1| <= 3.4 of exp's error to cancellation.
const BERN_SERIES_MAX: f64 = 0.35;

/// Taylor coefficients of `(x / (e^x - 1) - 1 + x/2) / x^2` in powers of
/// y = x^2: B_2k / (2k)! for k = 1..=7 (Bernoulli numbers; Abramowitz &
/// Stegun 23.1.1). The next term, B_16/16! x^16 at |x| = 0.35, is 1e-19.
const BERN_COEFFS: [f64; 7] = [
    1.0 / 12.0,
    -1.0 / 720.0,
    1.0 / 30_240.0,
    -1.0 / 1_209_600.0,
    1.0 / 47_900_160.0,
    -691.0 / 1_307_674_368_000.0,
    1.0 / 74_724_249_600.0,
];

/// `x / (e^x - 1)` (the Bernoulli function), finite and smooth at its
/// removable singularity x = 0, where it is 1. It is the shape of every
/// rate written `a (V - V0) / (1 - exp(-(V - V0)/k))`: the expression
/// compiler rewrites such rates into it (see `model::expr`). Below |x| =
/// 0.35 its Taylor series stands in for the quotient.
#[inline(always)]
pub fn bern(x: f64) -> f64 {
    bern_from_exp(x, exp(x))
}

/// [`bern`] given `ex = e^x`, computed elsewhere (an exponential that
/// several rates share, see `model::expr`).
#[inline(always)]
pub fn bern_from_exp(x: f64, ex: f64) -> f64 {
    let c = &BERN_COEFFS;
    let y = x * x;
    let p = c[6].mul_add(y, c[5]).mul_add(y, c[4]).mul_add(y, c[3]);
    let p = p.mul_add(y, c[2]).mul_add(y, c[1]).mul_add(y, c[0]);
    let series = y.mul_add(p, x.mul_add(-0.5, 1.0));
    let quotient = x / (ex - 1.0);
    if x.abs() < BERN_SERIES_MAX {
        series
    } else {
        quotient
    }
}

/// The seed's largest relative error for which [`recip`]'s one Newton
/// step is accurate (its error e^3 = 2^-60, far below f64's rounding).
const RECIP_SEED_MAX_ERR: f64 = 1.0 / 1_048_576.0;

/// 1/d within 1 ulp without a division in double precision, and whether
/// the result is valid: a vector divider takes about twice as long per
/// entry in double as in single precision (used for the gates' x_inf and
/// 1/tau, where it paid; see docs/performance.md). The seed `y0 = 1/d` in f32
/// (IEEE-rounded on every instruction set, relative error e <= 2^-23),
/// then one third-order Newton step `y0 (1 + e + e^2)` with
/// `e = 1 - d y0`: error e^3 <= 2^-69 (Markstein 2000, *IA-64 and
/// Elementary Functions*, ch. 8). Where d is beyond f32's normal range
/// (or 0, infinite, NaN) the seed is poor or not finite and e shows it:
/// valid means |e| <= 2^-20, and callers divide instead where it is not.
#[inline(always)]
pub fn recip(d: f64) -> (f64, bool) {
    let y0 = (1.0f32 / (d as f32)) as f64;
    let e = (-d).mul_add(y0, 1.0);
    (y0.mul_add(e.mul_add(e, e), y0), e.abs() <= RECIP_SEED_MAX_ERR)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place between two finite f64 of one sign.
    fn ulps(a: f64, b: f64) -> u64 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs()
    }

    fn worst_ulps(f: impl Fn(f64) -> f64, reference: impl Fn(f64) -> f64, xs: impl Iterator<Item = f64>) -> (u64, f64) {
        xs.map(|x| (ulps(f(x), reference(x)), x))
            .max_by_key(|(d, _)| *d)
            .unwrap_or((0, 0.0))
    }

    /// A dense sweep near 0 (where rates live), coarser out to the limits,
    /// and tiny arguments of every exponent.
    fn arguments() -> impl Iterator<Item = f64> {
        let near = (-50_000..=50_000).map(|k| k as f64 * 1e-3);
        let far = (-51_678..=51_751).map(|k| k as f64 * 0.0137);
        let tiny = (1..=60).flat_map(|e| [1.3f64.powi(-e * 2), -(1.7f64.powi(-e * 2))]);
        near.chain(far).chain(tiny)
    }

    #[test]
    fn exp_within_two_ulp_of_libm_over_the_whole_range() {
        let edges = (-20..20).flat_map(|k| {
            let e = (k as f64 + 0.5) * std::f64::consts::LN_2;
            [e - 1e-15, e, e + 1e-15]
        });
        let (d, x) = worst_ulps(exp, f64::exp, arguments().chain(edges).filter(|x| x.abs() <= 708.0));
        assert!(d <= 2, "{d} ulp at x = {x}");
    }

    #[test]
    fn expm1_within_eight_ulp_of_libm_and_one_near_zero() {
        // Just above the series' range `exp(x) - 1` amplifies exp's 2 ulp
        // by e^x / (e^x - 1) = 3.4 at x = 0.35, measured 5 ulp; 8 leaves
        // room for rounding (1e-15 relative: far below any model error).
        // The series itself is within 1 ulp.
        let (d, x) = worst_ulps(expm1, f64::exp_m1, arguments().filter(|x| x.abs() <= 708.0));
        assert!(d <= 8, "{d} ulp at x = {x}");
        let (d, x) = worst_ulps(expm1, f64::exp_m1, arguments().filter(|x| x.abs() < EXPM1_SERIES_MAX));
        assert!(d <= 1, "series: {d} ulp at x = {x}");
        assert_eq!(expm1(0.0), 0.0);
        assert_eq!(expm1(1e-300), 1e-300, "x + x^2/2 rounds to x");
    }

    #[test]
    fn bern_is_one_at_zero_and_smooth_through_it() {
        assert_eq!(bern(0.0), 1.0);
        // Slope -1/2 at 0: over steps of 1e-9 neighbours differ by 5e-10,
        // to rounding (1e-16 each); no cancellation spike anywhere.
        let mut prev = bern(-1e-6);
        for k in -999..=1000 {
            let x = k as f64 * 1e-9;
            let y = bern(x);
            assert!(((y - prev) + 0.5e-9).abs() < 1e-15, "x = {x}: step {}", y - prev);
            prev = y;
        }
        // Against libm's x / expm1(x) away from 0: above the series, exp's
        // 2 ulp amplified by e^x / (e^x - 1) <= 3.4, and one rounding.
        let (d, x) = worst_ulps(
            bern,
            |x| x / x.exp_m1(),
            arguments().filter(|x| x.abs() > 1e-2 && x.abs() < 700.0),
        );
        assert!(d <= 9, "{d} ulp at x = {x}");
        // The series alone: within 2 ulp.
        let (d, x) = worst_ulps(
            bern,
            |x| x / x.exp_m1(),
            arguments().filter(|x| x.abs() > 1e-8 && x.abs() < BERN_SERIES_MAX),
        );
        assert!(d <= 2, "series: {d} ulp at x = {x}");
    }

    #[test]
    fn recip_within_one_ulp_of_division_and_valid_over_f32_range() {
        // Mantissas across [1, 2) at every decade of f32's normal range,
        // both signs. 1 ulp: the Newton step's error 2^-69 plus its final
        // rounding.
        let mantissas = (0..4096).map(|k| 1.0 + k as f64 / 4096.0 + 1e-9 * (k % 7) as f64);
        let ds: Vec<f64> = mantissas
            .flat_map(|m| (-37..=37).map(move |e| m * 10f64.powi(e)))
            .flat_map(|d| [d, -d])
            .collect();
        assert!(ds.iter().all(|&d| recip(d).1), "valid over f32's normal range");
        let (d, x) = worst_ulps(|d| recip(d).0, |d| 1.0 / d, ds.into_iter());
        assert!(d <= 1, "{d} ulp at d = {x}");
        // Beyond f32's range, 0, infinities and NaN: flagged, never silently wrong.
        for bad in [0.0, -0.0, 1e-39, 1e-300, 1e39, -1e300, f64::INFINITY, f64::NAN] {
            assert!(!recip(bad).1, "1/{bad} is flagged");
        }
    }

    #[test]
    fn nan_propagates_and_huge_arguments_saturate() {
        assert!(exp(f64::NAN).is_nan() && expm1(f64::NAN).is_nan() && bern(f64::NAN).is_nan());
        assert!(exp(-1e6) > 0.0 && exp(-1e6) < 1e-300);
        assert!(exp(1e6).is_finite() && exp(1e6) > 1e307);
        assert_eq!(expm1(-1e6), -1.0);
        assert!(bern(-1e6) > 0.0, "x / (e^x - 1) is positive for every x");
    }
}
