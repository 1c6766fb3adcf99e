//! Population synchrony measures of one trial (README "Synchrony measures").
//!
//! - [`ChiAccumulator`]: Golomb-Rinzel chi, streamed over every step.
//! - [`kuramoto_r`]: Kuramoto order parameter from spike phases.
//! - [`spike_sync`]: SPIKE-synchronization (Kreuz et al. 2015).
//!
//! The last two read the spike trains, which a trial keeps anyway
//! (O(spikes) memory); none keeps the voltage trace.

use super::in_window;
use std::f64::consts::TAU;

/// Streaming Golomb-Rinzel synchrony measure.
///
/// `chi^2 = Var_t(Vbar) / mean_i Var_t(V_i)`, with `Vbar(t)` the
/// population-mean voltage: 1 when all neurons have identical voltage
/// traces, about 1/sqrt(n) for n independent ones (Golomb & Rinzel 1993,
/// Phys. Rev. E 48:4810; 1994, Physica D 72:259; Golomb, Hansel & Mato
/// 2001, in *Handbook of Biological Physics* vol. 4, §4.1). Variances are accumulated with Welford's update
/// (Welford 1962, Technometrics 4:419), which does not lose digits to
/// cancellation however long the run; the reciprocal of the sample count is
/// computed once per step and shared by all accumulators.
///
/// One accumulator serves several independent populations of n neurons
/// stacked one after the other (the lanes of a batch of trials): each
/// population's chi is exactly what it would be alone, and the per-neuron
/// updates run as one loop over every neuron, which vectorises.
#[derive(Debug, Clone)]
pub struct ChiAccumulator {
    /// Neurons per population.
    n: usize,
    count: u64,
    mean: Vec<f64>,
    m2: Vec<f64>,
    /// Per population: Welford mean and M2 of the population-mean voltage.
    mean_bar: Vec<f64>,
    m2_bar: Vec<f64>,
    /// Scratch: per population, the sum of this sample's voltages.
    sum_bar: Vec<f64>,
}

impl ChiAccumulator {
    /// One population of `n` neurons.
    pub fn new(n: usize) -> ChiAccumulator {
        ChiAccumulator::stacked(n, 1)
    }

    /// `populations` independent populations of `n` neurons each.
    pub fn stacked(n: usize, populations: usize) -> ChiAccumulator {
        ChiAccumulator {
            n,
            count: 0,
            mean: vec![0.0; n * populations],
            m2: vec![0.0; n * populations],
            mean_bar: vec![0.0; populations],
            m2_bar: vec![0.0; populations],
            sum_bar: vec![0.0; populations],
        }
    }

    /// Adds one time sample of every neuron's voltage (population p's
    /// neurons at `p n .. (p + 1) n`).
    /// Inlined so that it is compiled with the SIMD level of the trial loop
    /// that calls it (see `run::integrate_lanes`).
    #[inline(always)]
    pub fn push(&mut self, v_mv: &[f64]) {
        debug_assert_eq!(v_mv.len(), self.mean.len());
        self.count += 1;
        let inv = 1.0 / self.count as f64;
        for ((&v, mean), m2) in v_mv.iter().zip(&mut self.mean).zip(&mut self.m2) {
            let d = v - *mean;
            *mean += d * inv;
            *m2 += d * (v - *mean);
        }
        // Each population's sum 0 + V_0 + V_1 + ... in that order; with
        // several populations taken neuron by neuron across them, so that
        // the updates below run as one loop over populations, which
        // vectorises (a pair ensemble is 8 populations of 2).
        let n = self.n.max(1);
        if let [sum] = &mut self.sum_bar[..] {
            *sum = v_mv.iter().fold(0.0, |sum, &v| sum + v);
        } else {
            self.sum_bar.fill(0.0);
            for i in 0..n {
                for (sum, vs) in self.sum_bar.iter_mut().zip(v_mv.chunks_exact(n)) {
                    *sum += vs[i];
                }
            }
        }
        for ((&sum, mean), m2) in self.sum_bar.iter().zip(&mut self.mean_bar).zip(&mut self.m2_bar) {
            let vbar = sum / self.n as f64;
            let d = vbar - *mean;
            *mean += d * inv;
            *m2 += d * (vbar - *mean);
        }
    }

    /// chi of the first (or only) population; see [`ChiAccumulator::chi_of`].
    pub fn chi(&self) -> Option<f64> {
        self.chi_of(0)
    }

    /// chi of population `p`, or `None` for fewer than two neurons, fewer
    /// than two samples, or neurons that never move (0 / 0).
    pub fn chi_of(&self, p: usize) -> Option<f64> {
        let n = self.n;
        if n < 2 || self.count < 2 {
            return None;
        }
        let mean_var = self.m2[p * n..(p + 1) * n].iter().sum::<f64>() / n as f64;
        (mean_var > 0.0).then(|| (self.m2_bar[p] / mean_var).sqrt())
    }
}

/// Time-averaged Kuramoto order parameter from spike phases.
///
/// The phase of neuron i grows linearly by 2 pi between consecutive spikes
/// (`phi_i(t) = 2 pi (k + (t - t_k)/(t_{k+1} - t_k))`, Pikovsky, Rosenblum &
/// Kurths 2001, *Synchronization*, §6.1; as used for spiking networks by
/// e.g. Mormann et al. 2000, Physica D 144:358), and
/// `R(t) = |mean_i exp(i phi_i(t))|` (Kuramoto 1984). R is averaged over the
/// part of `[t0_ms, t1_ms)` where every phase is defined, i.e. between the
/// latest first spike and the earliest last spike of all trains (spikes
/// before t0 count for defining phases). Returns `None` where that part is
/// empty (some neuron has fewer than two spikes, or they do not overlap the
/// window).
///
/// Computed by the midpoint rule on a grid of spacing at most `h_ms`
/// (pass the trial's dt): on each sample every phasor advances by a fixed
/// rotation, so there is no trigonometry per sample except where a neuron
/// starts a new interval.
pub fn kuramoto_r(trains: &[&[f64]], t0_ms: f64, t1_ms: f64, h_ms: f64) -> Option<f64> {
    if trains.is_empty() || trains.iter().any(|s| s.len() < 2) {
        return None;
    }
    let a = trains.iter().map(|s| s[0]).fold(t0_ms, f64::max);
    let b = trains.iter().map(|s| s[s.len() - 1]).fold(t1_ms, f64::min);
    if b <= a {
        return None;
    }
    let samples = ((b - a) / h_ms).ceil().max(1.0) as usize;
    let h = (b - a) / samples as f64;
    let n = trains.len();
    let grid = Grid { a, h };
    let mut phasors: Vec<Phasor> = trains.iter().map(|s| Phasor::new(s)).collect();
    // Samples in blocks, and within a block groups of up to 4 neurons
    // stepped together: each phasor's recurrence is a chain of dependent
    // multiplications, and a group runs several chains side by side. The
    // sums over neurons still add neuron 0, 1, ... in order for every
    // sample (the same bits as a loop over neurons per sample).
    const BLOCK: usize = 512;
    let (mut re, mut im) = ([0.0f64; BLOCK], [0.0f64; BLOCK]);
    let mut total = 0.0;
    for j0 in (0..samples).step_by(BLOCK) {
        let len = BLOCK.min(samples - j0);
        re[..len].fill(0.0);
        im[..len].fill(0.0);
        let (re, im) = (&mut re[..len], &mut im[..len]);
        // The last group (1 to 4 neurons) completes each sample's sums and
        // adds its R to the total in the same loop, so that the square
        // roots and divisions overlap the phasor chains.
        let (head, last) = phasors.split_at_mut((n - 1) / 4 * 4);
        for group in head.chunks_exact_mut(4) {
            let [p, q, r, u] = group else {
                unreachable!("chunks of 4")
            };
            phasor_sums::<4, false>([p, q, r, u], grid, j0, (re, im), (&mut total, n as f64));
        }
        match last {
            [p] => phasor_sums::<1, true>([p], grid, j0, (re, im), (&mut total, n as f64)),
            [p, q] => phasor_sums::<2, true>([p, q], grid, j0, (re, im), (&mut total, n as f64)),
            [p, q, r] => phasor_sums::<3, true>([p, q, r], grid, j0, (re, im), (&mut total, n as f64)),
            [p, q, r, u] => phasor_sums::<4, true>([p, q, r, u], grid, j0, (re, im), (&mut total, n as f64)),
            _ => unreachable!("1 to 4 neurons in the last group"),
        }
    }
    Some(total / samples as f64)
}

/// The sample grid of [`kuramoto_r`]: sample j is at `a + (j + 1/2) h`.
#[derive(Clone, Copy)]
struct Grid {
    a: f64,
    h: f64,
}

impl Grid {
    fn t(self, j: usize) -> f64 {
        self.a + (j as f64 + 0.5) * self.h
    }

    /// The first sample in `[from, to)` at or after `end_ms`, else `to`.
    /// Guessed by division, then settled on `t` itself, so that it agrees
    /// with a comparison sample by sample.
    fn first_at_or_after(self, end_ms: f64, from: usize, to: usize) -> usize {
        let guess = ((end_ms - self.a) / self.h - 0.5).ceil();
        let mut j = if guess >= to as f64 {
            to
        } else {
            (guess.max(0.0) as usize).clamp(from, to)
        };
        while j > from && self.t(j - 1) >= end_ms {
            j -= 1;
        }
        while j < to && self.t(j) < end_ms {
            j += 1;
        }
        j
    }
}

/// One neuron's phase in [`kuramoto_r`]: its spike train, the index k of
/// the interval [s_k, s_k+1) holding the current sample, that interval's
/// end (-inf before the first sample, so that it starts the interval),
/// the phasor at the sample and its rotation per sample.
struct Phasor<'a> {
    s: &'a [f64],
    k: usize,
    end: f64,
    z: (f64, f64),
    rot: (f64, f64),
}

impl<'a> Phasor<'a> {
    /// Before the first sample: its interval ends at -inf, so the first
    /// sample starts one.
    fn new(s: &'a [f64]) -> Phasor<'a> {
        Phasor {
            s,
            k: 0,
            end: f64::NEG_INFINITY,
            z: (0.0, 0.0),
            rot: (0.0, 0.0),
        }
    }

    /// Advances to sample time `t`: into the interval holding it, with
    /// fresh trigonometry, if the current one has ended; else by one
    /// rotation.
    fn advance(&mut self, t: f64, h: f64) {
        if t >= self.end {
            while t >= self.s[self.k + 1] {
                self.k += 1;
            }
            let isi = self.s[self.k + 1] - self.s[self.k];
            let (sp, cp) = (TAU * (t - self.s[self.k]) / isi).sin_cos();
            let (sr, cr) = (TAU * h / isi).sin_cos();
            (self.z, self.rot, self.end) = ((cp, sp), (cr, sr), self.s[self.k + 1]);
        } else {
            self.z = rotate(self.z, self.rot);
        }
    }
}

#[inline(always)]
fn rotate(z: (f64, f64), rot: (f64, f64)) -> (f64, f64) {
    (z.0 * rot.0 - z.1 * rot.1, z.0 * rot.1 + z.1 * rot.0)
}

/// Adds G neurons' phasors at samples j0, j0 + 1, ... into `re` and `im`,
/// neuron by neuron for each sample; the group that holds the `LAST`
/// neurons adds each sample's R = |sum| / n to `total` instead, sample by
/// sample. Between two samples where some neuron starts an interval, the
/// phasors only rotate: that run is a loop without branches, the group's
/// state in registers (G is a constant).
#[inline(always)]
fn phasor_sums<const G: usize, const LAST: bool>(
    mut group: [&mut Phasor; G],
    grid: Grid,
    j0: usize,
    (re, im): (&mut [f64], &mut [f64]),
    (total, n): (&mut f64, f64),
) {
    // Sample i's sums over the group's neurons start from those of the
    // earlier groups; the last group turns them into R, summed in `acc`.
    let mut acc = *total;
    let j1 = j0 + re.len();
    let mut j = j0;
    while j < j1 {
        let (t, i) = (grid.t(j), j - j0);
        let (mut x, mut y) = (re[i], im[i]);
        for p in group.iter_mut() {
            p.advance(t, grid.h);
            (x, y) = (x + p.z.0, y + p.z.1);
        }
        if LAST {
            acc += (x * x + y * y).sqrt() / n;
        } else {
            (re[i], im[i]) = (x, y);
        }
        let run_end = group
            .iter()
            .fold(j1, |e, p| e.min(grid.first_at_or_after(p.end, j + 1, j1)));
        let (mut z, rot) = (group.each_ref().map(|p| p.z), group.each_ref().map(|p| p.rot));
        let run = i + 1..run_end - j0;
        acc = rotations::<G, LAST>(&mut z, &rot, (&mut re[run.clone()], &mut im[run]), (acc, n));
        for (p, z) in group.iter_mut().zip(z) {
            p.z = z;
        }
        j = run_end;
    }
    *total = acc;
}

/// A run of [`phasor_sums`] in which the G phasors only rotate.
#[inline(always)]
fn rotations<const G: usize, const LAST: bool>(
    z: &mut [(f64, f64); G],
    rot: &[(f64, f64); G],
    (re, im): (&mut [f64], &mut [f64]),
    (mut acc, n): (f64, f64),
) -> f64 {
    // Sample i's sums: those of the earlier groups plus this group's.
    let mut sums = |x: f64, y: f64| {
        z.iter_mut().zip(rot).fold((x, y), |(x, y), (z, rot)| {
            *z = rotate(*z, *rot);
            (x + z.0, y + z.1)
        })
    };
    if !LAST {
        for (re, im) in re.iter_mut().zip(im.iter_mut()) {
            (*re, *im) = sums(*re, *im);
        }
        return acc;
    }
    // R of four samples at once, so that their square roots and divisions
    // (the divider is the slowest unit) share vector instructions.
    let (re4, im4) = (re.chunks_exact(4), im.chunks_exact(4));
    let (re_tail, im_tail) = (re4.remainder(), im4.remainder());
    for (x4, y4) in re4.zip(im4) {
        let mut q = [0.0; 4];
        for ((q, x), y) in q.iter_mut().zip(x4).zip(y4) {
            let (x, y) = sums(*x, *y);
            *q = x * x + y * y;
        }
        let r = q.map(|q| q.sqrt() / n);
        acc = acc + r[0] + r[1] + r[2] + r[3];
    }
    for (x, y) in re_tail.iter().zip(im_tail) {
        let (x, y) = sums(*x, *y);
        acc += (x * x + y * y).sqrt() / n;
    }
    acc
}

/// Multivariate SPIKE-synchronization of spike trains restricted to
/// `[t0_ms, t1_ms)` (Kreuz, Mulansky & Bozanic 2015, J. Neurophysiol.
/// 113:3432, "SPIKE-synchronization: a parameter-free and time-resolved
/// coincidence detector with an intuitive multivariate extension").
///
/// For every pair of trains, a spike is coincident when the nearest spike
/// of the other train lies strictly closer than
/// `tau = min(neighbouring ISIs of both spikes) / 2` (an ISI with no
/// neighbour counts as the window length); the value is all coincidences
/// over all spikes, summed over pairs. This follows PySpike 0.9's
/// `spike_sync` (its `coincidence_value_cython`, MRTS = 0, no max_tau)
/// step for step, and the test suite checks it against PySpike itself.
///
/// One deliberate difference: with no spike in the window (or fewer than
/// two trains) PySpike returns 1.0 by convention; we return `None`, because
/// a silent network is not evidence of synchrony and a 1.0 there would
/// corrupt noise-vs-synchrony averages.
pub fn spike_sync(trains: &[&[f64]], t0_ms: f64, t1_ms: f64) -> Option<f64> {
    let windowed: Vec<&[f64]> = trains.iter().map(|s| in_window(s, t0_ms, t1_ms)).collect();
    spike_sync_of(&all_coincidences(&windowed, t1_ms - t0_ms))
}

/// SPIKE-synchronization from (coincidences, spikes) of pairs: all
/// coincidences over all spikes, summed in order; `None` with no spike.
pub fn spike_sync_of(coincidences: &[(f64, f64)]) -> Option<f64> {
    let (c, m) = coincidences.iter().fold((0.0, 0.0), |(c, m), (a, b)| (c + a, m + b));
    (m > 0.0).then(|| c / m)
}

/// [`pair_coincidences`] of every pair i < j of windowed trains, in (i, j)
/// order.
pub fn all_coincidences(windows: &[&[f64]], window_ms: f64) -> Vec<(f64, f64)> {
    (0..windows.len())
        .flat_map(|i| (i + 1..windows.len()).map(move |j| (i, j)))
        .map(|(i, j)| pair_coincidences(windows[i], windows[j], window_ms))
        .collect()
}

/// Coincidence count and spike count of one pair of windowed trains,
/// merging the two sorted trains (PySpike's `coincidence_value_cython`).
fn pair_coincidences(s1: &[f64], s2: &[f64], window_ms: f64) -> (f64, f64) {
    let (n1, n2) = (s1.len() as isize, s2.len() as isize);
    let (mut i, mut j): (isize, isize) = (-1, -1);
    let (mut coinc, mut mp) = (0.0, 0.0);
    let at = |s: &[f64], k: isize| s[k as usize];
    while i + j < n1 + n2 - 2 {
        if i < n1 - 1 && (j == n2 - 1 || at(s1, i + 1) < at(s2, j + 1)) {
            i += 1;
            mp += 1.0;
            if j > -1 && at(s1, i) - at(s2, j) < tau(s1, s2, i, j, window_ms) {
                coinc += 2.0;
            }
        } else if j < n2 - 1 && (i == n1 - 1 || at(s1, i + 1) > at(s2, j + 1)) {
            j += 1;
            mp += 1.0;
            if i > -1 && at(s2, j) - at(s1, i) < tau(s1, s2, i, j, window_ms) {
                coinc += 2.0;
            }
        } else {
            // Two exactly simultaneous spikes: one coincident pair.
            i += 1;
            j += 1;
            mp += 2.0;
            coinc += 2.0;
        }
    }
    (coinc, mp)
}

/// Coincidence window of spikes i of s1 and j of s2: half the smallest of
/// their neighbouring ISIs, a missing neighbour counting as `window_ms`.
fn tau(s1: &[f64], s2: &[f64], i: isize, j: isize, window_ms: f64) -> f64 {
    let gaps = |s: &[f64], k: isize| {
        let k = k as usize;
        let next = if k + 1 < s.len() { s[k + 1] - s[k] } else { window_ms };
        let prev = if k > 0 { s[k] - s[k - 1] } else { window_ms };
        next.min(prev)
    };
    let g1 = if i > -1 { gaps(s1, i) } else { window_ms };
    let g2 = if j > -1 { gaps(s2, j) } else { window_ms };
    0.5 * g1.min(g2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::periodic;
    use rand::SeedableRng;
    use rand_distr::{Distribution, Exp};
    use rand_xoshiro::Xoshiro256PlusPlus;

    fn poisson(rate_per_ms: f64, until: f64, seed: u64) -> Vec<f64> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let exp = Exp::new(rate_per_ms).unwrap();
        let mut t = 0.0;
        std::iter::from_fn(|| {
            t += exp.sample(&mut rng);
            Some(t)
        })
        .take_while(|&t| t < until)
        .collect()
    }

    #[test]
    fn chi_is_one_for_identical_voltages_and_zero_for_a_cancelling_pair() {
        let mut same = ChiAccumulator::new(3);
        let mut opposite = ChiAccumulator::new(2);
        for k in 0..1000 {
            let v = -65.0 + 30.0 * (k as f64 * 0.1).sin();
            same.push(&[v, v, v]);
            // Mirror images around -65: Vbar is constant, so chi = 0.
            opposite.push(&[v, -130.0 - v]);
        }
        assert!((same.chi().unwrap() - 1.0).abs() < 1e-12);
        assert!(opposite.chi().unwrap() < 1e-6);
    }

    #[test]
    fn chi_of_independent_noise_is_one_over_sqrt_n() {
        // Var(mean of n iid) = Var/n, so chi = 1/sqrt(n) = 0.5 for n = 4.
        // 100 000 samples: the ratio of variances has relative sd about
        // sqrt(2/1e5) * sqrt(2) = 0.6 %, chi half of it; allow 2 %.
        use rand_distr::StandardNormal;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        let mut acc = ChiAccumulator::new(4);
        for _ in 0..100_000 {
            let v: Vec<f64> = (0..4)
                .map(|_| {
                    let z: f64 = StandardNormal.sample(&mut rng);
                    -60.0 + 5.0 * z
                })
                .collect();
            acc.push(&v);
        }
        let chi = acc.chi().unwrap();
        assert!((chi - 0.5).abs() < 0.01, "{chi}");
    }

    #[test]
    fn chi_is_null_for_one_neuron_or_flat_voltages() {
        let mut one = ChiAccumulator::new(1);
        one.push(&[1.0]);
        one.push(&[2.0]);
        assert_eq!(one.chi(), None);
        let mut flat = ChiAccumulator::new(2);
        flat.push(&[-65.0, -65.0]);
        flat.push(&[-65.0, -65.0]);
        assert_eq!(flat.chi(), None);
    }

    #[test]
    fn stacked_populations_each_get_their_own_chi_bit_for_bit() {
        // Three populations of 3 driven differently: each stacked chi must be
        // exactly (==) the chi of the same voltages in an accumulator alone.
        let mut stacked = ChiAccumulator::stacked(3, 3);
        let mut alone: Vec<ChiAccumulator> = (0..3).map(|_| ChiAccumulator::new(3)).collect();
        for k in 0..5000 {
            let x = k as f64 * 0.01;
            let v: Vec<f64> = (0..9)
                .map(|j| -60.0 + 20.0 * (x * (1.0 + j as f64 / 7.0)).sin())
                .collect();
            stacked.push(&v);
            for (p, a) in alone.iter_mut().enumerate() {
                a.push(&v[3 * p..3 * p + 3]);
            }
        }
        for (p, a) in alone.iter().enumerate() {
            assert_eq!(stacked.chi_of(p), a.chi());
            assert!(a.chi().is_some());
        }
        // The populations differ, so a mix-up of them would be caught.
        assert_ne!(alone[0].chi(), alone[2].chi());
    }

    #[test]
    fn chi_keeps_its_digits_on_a_large_offset() {
        // A 1e-3 mV oscillation on a 1e6 mV offset: naive sum-of-squares
        // loses everything (1e12 vs 1e-6); Welford keeps chi = 1 to 1e-6.
        let mut acc = ChiAccumulator::new(2);
        for k in 0..100_000 {
            let v = 1e6 + 1e-3 * (k as f64 * 0.01).sin();
            acc.push(&[v, v]);
        }
        assert!((acc.chi().unwrap() - 1.0).abs() < 1e-6, "{:?}", acc.chi());
    }

    #[test]
    fn kuramoto_is_one_for_identical_trains_and_zero_half_a_period_apart() {
        let a = periodic(5.0, 10.0, 1000.0);
        let b = periodic(10.0, 10.0, 1000.0);
        let r_same = kuramoto_r(&[&a, &a, &a], 100.0, 900.0, 0.01).unwrap();
        assert!((r_same - 1.0).abs() < 1e-9, "{r_same}");
        let r_anti = kuramoto_r(&[&a, &b], 100.0, 900.0, 0.01).unwrap();
        assert!(r_anti < 1e-9, "{r_anti}");
        // A quarter period apart: |1 + i| / 2 = 1/sqrt(2) at every t.
        let c = periodic(7.5, 10.0, 1000.0);
        let r_q = kuramoto_r(&[&a, &c], 100.0, 900.0, 0.01).unwrap();
        assert!((r_q - std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-9, "{r_q}");
    }

    #[test]
    fn kuramoto_of_independent_poisson_pair_is_two_over_pi() {
        // Two independent phases differ by a uniform angle D, so
        // R = |cos(D/2)| with mean 2/pi = 0.637. 20 000 spikes per train
        // give about 20 000 independent phase relations: sd of the mean is
        // about 0.3/sqrt(2e4) = 0.002; allow 0.02.
        let a = poisson(0.05, 400_000.0, 1);
        let b = poisson(0.05, 400_000.0, 2);
        let r = kuramoto_r(&[&a, &b], 0.0, 400_000.0, 0.5).unwrap();
        assert!((r - 2.0 / std::f64::consts::PI).abs() < 0.02, "{r}");
    }

    /// [`kuramoto_r`] as its definition reads: one sample at a time, the
    /// neurons in order, no blocks, groups or runs.
    fn kuramoto_by_samples(trains: &[&[f64]], t0_ms: f64, t1_ms: f64, h_ms: f64) -> f64 {
        let a = trains.iter().map(|s| s[0]).fold(t0_ms, f64::max);
        let b = trains.iter().map(|s| s[s.len() - 1]).fold(t1_ms, f64::min);
        let samples = ((b - a) / h_ms).ceil().max(1.0) as usize;
        let h = (b - a) / samples as f64;
        let mut phasors: Vec<Phasor> = trains.iter().map(|s| Phasor::new(s)).collect();
        let mut total = 0.0;
        for j in 0..samples {
            let t = a + (j as f64 + 0.5) * h;
            let (mut re, mut im) = (0.0, 0.0);
            for p in &mut phasors {
                p.advance(t, h);
                re += p.z.0;
                im += p.z.1;
            }
            total += (re * re + im * im).sqrt() / trains.len() as f64;
        }
        total / samples as f64
    }

    #[test]
    fn kuramoto_equals_its_sample_by_sample_definition_bit_for_bit() {
        // 1 to 9 neurons (every group size, lone and mixed), Poisson
        // trains dense enough to put several spikes within one sample
        // (rate 2/ms against h = 0.5), windows that cut intervals, and
        // enough samples for several blocks.
        for n in 1..=9u64 {
            for (rate, h) in [(0.07, 0.01), (2.0, 0.5), (0.3, 0.07)] {
                let trains: Vec<Vec<f64>> = (0..n).map(|i| poisson(rate, 3000.0, 10 * n + i)).collect();
                let refs: Vec<&[f64]> = trains.iter().map(|s| s.as_slice()).collect();
                let got = kuramoto_r(&refs, 37.3, 2950.0, h).unwrap();
                let want = kuramoto_by_samples(&refs, 37.3, 2950.0, h);
                assert_eq!(
                    got.to_bits(),
                    want.to_bits(),
                    "n {n}, rate {rate}, h {h}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn kuramoto_needs_two_spikes_in_every_train() {
        assert_eq!(kuramoto_r(&[&[1.0, 2.0], &[5.0]], 0.0, 10.0, 0.01), None);
        assert_eq!(kuramoto_r(&[&[1.0, 2.0], &[]], 0.0, 10.0, 0.01), None);
        // Phases defined only on [1, 2] but the window starts at 5: none.
        assert_eq!(kuramoto_r(&[&[1.0, 2.0], &[1.0, 2.0]], 5.0, 10.0, 0.01), None);
        // A single train is trivially in phase with itself.
        assert_eq!(kuramoto_r(&[&[1.0, 2.0, 3.0]], 0.0, 10.0, 0.01), Some(1.0));
    }

    #[test]
    fn spike_sync_by_hand() {
        let a = periodic(5.0, 10.0, 1000.0);
        // Identical trains: every spike coincident.
        assert_eq!(spike_sync(&[&a, &a], 0.0, 1000.0), Some(1.0));
        // Shifted by 1 ms with 10 ms ISIs: tau = 5 > 1, all coincident.
        let b = periodic(6.0, 10.0, 1000.0);
        assert_eq!(spike_sync(&[&a, &b], 0.0, 1000.0), Some(1.0));
        // Half a period apart: distance 5 is not < tau = 5: none coincident.
        let c = periodic(10.0, 10.0, 1000.0);
        assert_eq!(spike_sync(&[&a, &c], 0.0, 1000.0), Some(0.0));
        // One spike each, 1 ms apart in a 100 ms window: tau = 50, coincident.
        assert_eq!(spike_sync(&[&[10.0], &[11.0]], 0.0, 100.0), Some(1.0));
        // A single spike against an empty train: 0 of 1 coincident.
        assert_eq!(spike_sync(&[&[10.0], &[]], 0.0, 100.0), Some(0.0));
        // No spikes at all: undefined (PySpike would say 1.0).
        assert_eq!(spike_sync(&[&[], &[]], 0.0, 100.0), None);
        // Three trains, one silent: pairs (a,a') 2/2 coincident... counted
        // per pair: (a,a) 200 of 200, (a,[]) 0 of 100 twice -> 200/400.
        let short = periodic(5.0, 10.0, 100.0);
        assert_eq!(spike_sync(&[&short, &short, &[]], 0.0, 100.0), Some(0.5));
    }

    #[test]
    fn spike_sync_of_independent_poisson_trains_is_near_its_expectation() {
        // Two independent Poisson trains of equal rate r: exactly 1/4. A
        // spike's distance d to the nearest spike of the other train is
        // Exp(2r), so 2d is Exp(r); it is coincident when 2d is below the
        // shortest of the ISIs that set its window: its own two and the far
        // one of the other spike (the near one spans 2d at least), three
        // independent Exp(r), their minimum Exp(3r). P(Exp(r) < Exp(3r)) =
        // r / (r + 3r) = 1/4. PySpike 0.9 gives 0.2495 (sd 0.0036 over 20
        // pairs of 10 000-spike trains; the python test suite checks our
        // value against PySpike on the same trains). Allow 0.02, over 5 sd.
        let a = poisson(0.05, 200_000.0, 3);
        let b = poisson(0.05, 200_000.0, 4);
        let s = spike_sync(&[&a, &b], 0.0, 200_000.0).unwrap();
        assert!((s - 0.25).abs() < 0.02, "{s}");
    }
}
