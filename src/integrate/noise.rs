//! The noise a trial is driven by: additive current noise (white or
//! Ornstein-Uhlenbeck, with a shared fraction) and channel noise. Draws
//! come from an RNG handed in; nothing here seeds one.

use super::rates::Rates;
use super::state::State;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

/// Additive current noise with a shared fraction c, drawn per step.
///
/// **White** (`tau_ms = 0`): per step and neuron
/// `dV_i += sigma / C * sqrt(dt) * (sqrt(1 - c) xi_i + sqrt(c) xi_common)`,
/// the Euler-Maruyama increment of `C dV = ... + sigma dW` (sigma in
/// uA/cm^2 * ms^0.5; Kloeden & Platen 1992, §10.2).
///
/// **Coloured** (`tau_ms > 0`): an Ornstein-Uhlenbeck current
/// `I_i = sqrt(1 - c) eta_i + sqrt(c) eta_common` enters the drift, each eta
/// an independent OU process `tau deta = -eta dt + sigma sqrt(2 tau) dW` with
/// stationary standard deviation sigma (uA/cm^2), started from its
/// stationary distribution and advanced with the exact update
/// `eta' = eta e^(-dt/tau) + sigma sqrt(1 - e^(-2 dt/tau)) xi` (Gillespie
/// 1996, Phys. Rev. E 54:2084), so its statistics do not depend on dt. The
/// midpoint stage of exp-midpoint sees the mean of the step's two end values.
///
/// Either way any two neurons' noise correlates with coefficient c.
/// Draw order per step (part of the determinism contract): the n private
/// normals, then the common one if `shared` is `Some` (c > 0 at some point
/// of the spec: drawn at its c = 0 points too, so that every point draws
/// alike). Nothing is drawn when sigma = 0.
#[derive(Debug, Clone, PartialEq)]
pub enum Noise {
    White {
        private_dv: f64,
        /// None: no common normal is drawn.
        common_dv: Option<f64>,
    },
    Ou {
        decay: f64,
        kick: f64,
        private_w: f64,
        /// None: no common process is drawn.
        common_w: Option<f64>,
        eta: Vec<f64>,
        eta_common: f64,
        current: Vec<f64>,
    },
}

impl Noise {
    /// White noise (`tau_ms = 0`) or OU noise, for `n` neurons; draws the OU
    /// processes' initial values from `rng`. `shared`: the common fraction
    /// c, or None where no common normal is drawn (c = 0 at every point).
    pub fn new<R: Rng + ?Sized>(
        sigma: f64,
        shared: Option<f64>,
        tau_ms: f64,
        c_m: f64,
        dt_ms: f64,
        n: usize,
        rng: &mut R,
    ) -> Noise {
        // Nothing is drawn without noise.
        let shared = shared.filter(|_| sigma != 0.0);
        let c = shared.unwrap_or(0.0);
        if tau_ms == 0.0 || sigma == 0.0 {
            let scale = sigma / c_m * dt_ms.sqrt();
            return Noise::White {
                private_dv: scale * (1.0 - c).sqrt(),
                common_dv: shared.map(|c| scale * c.sqrt()),
            };
        }
        let decay = (-dt_ms / tau_ms).exp();
        let (private_w, common_w) = ((1.0 - c).sqrt(), shared.map(f64::sqrt));
        let mut draw = || -> f64 { StandardNormal.sample(rng) };
        let eta: Vec<f64> = (0..n).map(|_| sigma * draw()).collect();
        let eta_common = if shared.is_some() { sigma * draw() } else { 0.0 };
        let w = common_w.unwrap_or(0.0);
        let current = eta.iter().map(|e| private_w * e + w * eta_common).collect();
        Noise::Ou {
            decay,
            kick: sigma * (1.0 - decay * decay).sqrt(),
            private_w,
            common_w,
            eta,
            eta_common,
            current,
        }
    }

    /// True when the noise adds nothing (and draws nothing).
    pub fn is_silent(&self) -> bool {
        matches!(self, Noise::White { private_dv, common_dv: None } if *private_dv == 0.0)
    }

    /// Fills this step's inputs: white voltage increments into `dv`, or the
    /// OU current at the step's start and midpoint into `i_start`, `i_mid`.
    #[inline(always)]
    pub fn draw<R: Rng + Clone>(&mut self, rng: &mut R, dv: &mut [f64], i_start: &mut [f64], i_mid: &mut [f64]) {
        match self {
            Noise::White { private_dv, common_dv } => {
                if *private_dv == 0.0 && common_dv.is_none() {
                    return;
                }
                scaled_normals(rng, *private_dv, dv);
                if let Some(common_dv) = *common_dv {
                    let z: f64 = StandardNormal.sample(rng);
                    // At c = 0 the draw only keeps the stream in step.
                    if common_dv != 0.0 {
                        let common = common_dv * z;
                        for o in dv.iter_mut() {
                            *o += common;
                        }
                    }
                }
            }
            Noise::Ou {
                decay,
                kick,
                private_w,
                common_w,
                eta,
                eta_common,
                current,
            } => {
                i_start.copy_from_slice(current);
                for e in eta.iter_mut() {
                    let z: f64 = StandardNormal.sample(rng);
                    *e = *e * *decay + *kick * z;
                }
                if common_w.is_some() {
                    let z: f64 = StandardNormal.sample(rng);
                    *eta_common = *eta_common * *decay + *kick * z;
                }
                let w = common_w.unwrap_or(0.0);
                for (i, c) in current.iter_mut().enumerate() {
                    *c = *private_w * eta[i] + w * *eta_common;
                    i_mid[i] = 0.5 * (i_start[i] + *c);
                }
            }
        }
    }
}

/// `out[i] = scale * z_i` for fresh standard normals z_i, drawn on a local
/// copy of the generator, which the compiler keeps in registers (drawing
/// through `rng` stored its state back after every draw: 68 -> 52
/// instructions per draw).
#[inline(always)]
fn scaled_normals<R: Rng + Clone>(rng: &mut R, scale: f64, out: &mut [f64]) {
    let mut local = rng.clone();
    for o in out.iter_mut() {
        let z: f64 = StandardNormal.sample(&mut local);
        *o = scale * z;
    }
    *rng = local;
}

/// The noises of a batch's lanes, sorted once per batch for
/// [`draw_lanes`]: telling the common case apart there every step cost 20
/// instructions per lane and step, a sixth of a noisy pair's draws.
#[derive(Debug, Clone, PartialEq)]
pub enum LaneNoises {
    /// Every lane's only noise is private white noise (the common case):
    /// each lane's scale, `private_dv` (0: the lane draws nothing).
    PrivateWhite(Vec<f64>),
    /// Any noises, lane by lane.
    Any(Vec<Noise>),
}

impl LaneNoises {
    /// The lanes' `noises`, in lane order.
    pub fn new(noises: Vec<Noise>) -> LaneNoises {
        let scales: Option<Vec<f64>> = noises
            .iter()
            .map(|noise| match noise {
                Noise::White {
                    private_dv,
                    common_dv: None,
                } => Some(*private_dv),
                _ => None,
            })
            .collect();
        scales.map_or(LaneNoises::Any(noises), LaneNoises::PrivateWhite)
    }
}

/// [`Noise::draw`] for every lane: lane b's noise from its own generator
/// into entries `b n .. (b + 1) n`. One call per step, not per lane: for
/// pairs the per-call cost was as large as the draws (measured). Lanes may
/// carry different noises (a batch can mix the points of a sweep).
#[inline(never)]
pub fn draw_lanes<R: Rng + Clone>(
    noises: &mut LaneNoises,
    rngs: &mut [R],
    n: usize,
    (dv, i_start, i_mid): (&mut [f64], &mut [f64], &mut [f64]),
) {
    match noises {
        // The common case in a loop of its own: the same draws, in the
        // same order, as Noise::draw, without the general loop's bookkeeping.
        LaneNoises::PrivateWhite(scales) => {
            for ((&scale, rng), dv) in scales.iter().zip(rngs).zip(dv.chunks_exact_mut(n)) {
                if scale != 0.0 {
                    scaled_normals(rng, scale, dv);
                }
            }
        }
        LaneNoises::Any(noises) => {
            let lanes = noises.iter_mut().zip(rngs).zip(dv.chunks_exact_mut(n));
            for (((noise, rng), dv), b) in lanes.zip(0..) {
                let r = b * n..(b + 1) * n;
                noise.draw(rng, dv, &mut i_start[r.clone()], &mut i_mid[r]);
            }
        }
    }
}

/// Channel noise: the Fox & Lu (1994, Phys. Rev. E 49:3421) "subunit"
/// Langevin model in the form compared by Goldwyn & Shea-Brown (2011, PLoS
/// Comput. Biol. 7:e1002247): every gate of a membrane patch with N channels
/// of its kind gets
///
/// ```text
/// dx = (alpha (1 - x) - beta x) dt + sqrt((alpha (1 - x) + beta x) / N) dW
/// ```
///
/// with N = density * area, the density of the current the gate belongs to
/// (the model file's `channels_per_um2`; HH's 60 sodium and 18 potassium
/// channels per um^2 are the squid-axon densities those papers use). The drift is integrated by the chosen
/// method; the diffusion is added after the step as an Euler-Maruyama
/// increment with the rates at the step's starting voltage and the gate
/// value after the drift (not at the step's start: the same Ito SDE in the
/// limit, an O(dt^1.5) difference per step), and a gate that
/// leaves [0, 1] is truncated back (the bounded form Goldwyn & Shea-Brown
/// discuss; each truncation counts in `n_clamped`, so its frequency is
/// visible). The noise vanishes as 1/sqrt(area): large membranes recover
/// the deterministic model (tested).
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelNoise {
    /// Per gate of the model: its channel count N, or `None` (no channel
    /// noise: a gate of a current without a channel density, or an
    /// instantaneous one).
    pub counts: Vec<Option<f64>>,
}

impl ChannelNoise {
    /// Adds this step's channel noise to every gate with a count; `v_prev`
    /// is each neuron's voltage at the start of the step. Draws one normal
    /// per neuron and counted gate (neurons in order, gates in the model's
    /// order), after the current noise's draws. Returns the number of
    /// truncations.
    pub fn apply<R: Rng + ?Sized>(
        &self,
        rng: &mut R,
        rates: &Rates,
        st: &mut State,
        v_prev: &[f64],
        dt_ms: f64,
    ) -> u32 {
        let mut clamped = 0;
        let mut scratch = vec![[0.0; 1]; rates.program().n_registers()];
        let (mut x_inf, mut k) = (vec![[0.0; 1]; rates.n_vars()], vec![[0.0; 1]; rates.n_vars()]);
        for (i, &v) in v_prev.iter().enumerate() {
            rates.exact_rate(&[v], &mut scratch, &mut x_inf, &mut k);
            for (q, count) in self.counts.iter().enumerate() {
                let Some(count) = count else { continue };
                let x = &mut st.vars[q][i];
                // alpha (1 - x) + beta x with alpha = x_inf / tau, beta = (1 - x_inf) / tau.
                let (a, b) = (x_inf[q][0] * k[q][0], (1.0 - x_inf[q][0]) * k[q][0]);
                let z: f64 = StandardNormal.sample(rng);
                let variance = (a * (1.0 - *x) + b * *x) / count * dt_ms;
                let y = *x + variance.max(0.0).sqrt() * z;
                *x = y.clamp(0.0, 1.0);
                clamped += u32::from(y != *x);
            }
        }
        clamped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    /// Draws `steps` white-noise increments (or OU currents) for `n` neurons.
    fn draws(noise: &mut Noise, rng: &mut Xoshiro256PlusPlus, n: usize, steps: usize) -> Vec<Vec<f64>> {
        let (mut dv, mut a, mut b) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
        (0..steps)
            .map(|_| {
                noise.draw(rng, &mut dv, &mut a, &mut b);
                if matches!(noise, Noise::White { .. }) {
                    dv.clone()
                } else {
                    a.clone()
                }
            })
            .collect()
    }

    #[test]
    fn fully_shared_noise_is_identical_across_neurons() {
        for tau in [0.0, 5.0] {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
            let mut noise = Noise::new(3.0, Some(1.0), tau, 1.0, 0.01, 5, &mut rng);
            for out in draws(&mut noise, &mut rng, 5, 100) {
                assert!(out.iter().all(|&x| x == out[0]), "tau {tau}: {out:?}");
                assert!(out[0] != 0.0);
            }
        }
    }

    /// Sample sd of each series and their correlation.
    fn sd_and_corr(samples: &[Vec<f64>]) -> (f64, f64) {
        let k = samples.len() as f64;
        let mean = |i: usize| samples.iter().map(|s| s[i]).sum::<f64>() / k;
        let (m0, m1) = (mean(0), mean(1));
        let (mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0);
        for s in samples {
            sxx += (s[0] - m0).powi(2);
            syy += (s[1] - m1).powi(2);
            sxy += (s[0] - m0) * (s[1] - m1);
        }
        ((sxx / k).sqrt(), sxy / (sxx * syy).sqrt())
    }

    #[test]
    fn white_noise_increments_have_the_stated_variance_and_correlation() {
        // sigma = 2, C = 1, dt = 0.04: each increment has sd 2 * 0.2 = 0.4;
        // with c = 0.3 two neurons correlate at 0.3. With 200 000 draws the
        // standard error of the sd estimate is 0.4/sqrt(2*2e5) = 6e-4 and of
        // the correlation (1-c^2)/sqrt(2e5) = 2e-3: allow 5 standard errors.
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
        let mut noise = Noise::new(2.0, Some(0.3), 0.0, 1.0, 0.04, 2, &mut rng);
        let (sd, corr) = sd_and_corr(&draws(&mut noise, &mut rng, 2, 200_000));
        assert!((sd - 0.4).abs() < 3e-3, "sd {sd}");
        assert!((corr - 0.3).abs() < 1e-2, "corr {corr}");
    }

    #[test]
    fn ou_current_has_stationary_sd_sigma_correlation_c_and_time_constant_tau() {
        // tau = 2 ms, dt = 0.1 ms, 400 000 steps = 20 000 correlation times:
        // the sd estimate has relative error about 1/sqrt(20 000) = 0.7 %
        // and the correlation about 0.01; allow about 4 of those.
        let (sigma, tau, dt, c) = (1.5, 2.0, 0.1, 0.4);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(21);
        let mut noise = Noise::new(sigma, Some(c), tau, 1.0, dt, 2, &mut rng);
        let samples = draws(&mut noise, &mut rng, 2, 400_000);
        let (sd, corr) = sd_and_corr(&samples);
        assert!((sd / sigma - 1.0).abs() < 0.03, "sd {sd}");
        assert!((corr - c).abs() < 0.04, "corr {corr}");
        // Autocorrelation at lag tau is e^-1 = 0.368 for an OU process.
        let lag = (tau / dt) as usize;
        let k = (samples.len() - lag) as f64;
        let ac = samples.windows(lag + 1).map(|w| w[0][0] * w[lag][0]).sum::<f64>() / k / (sd * sd);
        assert!((ac - (-1.0f64).exp()).abs() < 0.03, "autocorrelation at tau: {ac}");
    }

    #[test]
    fn ou_statistics_do_not_depend_on_dt() {
        // The exact update: the same sd at dt = 0.01 and dt = 1 (an Euler
        // OU step would be off by a factor sqrt(1 - dt/2tau) at dt = 1).
        for dt in [0.01, 1.0] {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
            let mut noise = Noise::new(2.0, None, 1.0, 1.0, dt, 2, &mut rng);
            let steps = (2000.0 / dt.min(0.1)) as usize;
            let (sd, _) = sd_and_corr(&draws(&mut noise, &mut rng, 2, steps.min(400_000)));
            assert!((sd / 2.0 - 1.0).abs() < 0.05, "dt {dt}: sd {sd}");
        }
    }

    #[test]
    fn silent_noise_draws_nothing() {
        // A deterministic run must cost no random numbers (the normals are
        // a large part of a noisy step's cost).
        let mut a = Xoshiro256PlusPlus::seed_from_u64(3);
        let b = a.clone();
        let mut noise = Noise::new(0.0, Some(0.5), 0.0, 1.0, 0.01, 3, &mut a);
        let mut out = [0.0; 3];
        noise.draw(&mut a, &mut out, &mut [0.0; 3], &mut [0.0; 3]);
        assert_eq!(out, [0.0; 3]);
        assert_eq!(a, b);
    }

    #[test]
    fn unshared_noise_that_draws_the_common_normal_keeps_in_step_with_shared_noise() {
        // c = 0 with the common normal drawn (a point of a sweep over c)
        // draws what c = 0.5 draws, so the two see the same private
        // normals xi_i: c = 0.5's differences between neurons are sqrt(0.5)
        // times c = 0's (the common part cancels; to rounding, 1e-12).
        // Without the draw, c = 0 falls out of step after the first draw.
        for tau in [0.0, 3.0] {
            let seeded = || Xoshiro256PlusPlus::seed_from_u64(9);
            let (mut a, mut b, mut c) = (seeded(), seeded(), seeded());
            let mut drawn = Noise::new(2.0, Some(0.0), tau, 1.0, 0.01, 3, &mut a);
            let mut plain = Noise::new(2.0, None, tau, 1.0, 0.01, 3, &mut b);
            let mut shared = Noise::new(2.0, Some(0.5), tau, 1.0, 0.01, 3, &mut c);
            for step in 0..3 {
                // This step's input: the increments, or the OU current.
                let input = |noise: &mut Noise, rng: &mut Xoshiro256PlusPlus| {
                    let (mut dv, mut i_start, mut i_mid) = ([0.0; 3], [0.0; 3], [0.0; 3]);
                    noise.draw(rng, &mut dv, &mut i_start, &mut i_mid);
                    if tau == 0.0 {
                        dv
                    } else {
                        i_mid
                    }
                };
                let (x, y) = (input(&mut drawn, &mut a), input(&mut shared, &mut c));
                assert_eq!(a, c, "tau {tau}, step {step}");
                for (i, j) in [(0, 1), (1, 2)] {
                    let (want, got) = (0.5f64.sqrt() * (x[i] - x[j]), y[i] - y[j]);
                    assert!(
                        (want - got).abs() < 1e-12 * want.abs(),
                        "tau {tau}, step {step}: {want} vs {got}"
                    );
                }
                input(&mut plain, &mut b);
                assert_ne!(b, c, "tau {tau}, step {step}");
            }
        }
    }
}
