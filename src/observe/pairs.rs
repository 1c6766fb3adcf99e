//! Pairwise correlation measures of one trial's spike trains over its
//! analysis window (README "Measures"): spike-count correlation, the spike
//! time tiling coefficient and Wang-Buzsaki coherence. Each is prepared once
//! per trial in O(spikes + bins) and then gives one pair's value in
//! O(bins) or O(spikes), never O(steps); a trial's value is the mean over
//! the pairs where the pair's value is defined.

/// Bins of `bin_ms` from `t0_ms` that fit whole in `[t0_ms, t1_ms)`. The
/// tolerance keeps a window of exactly k bins at k despite rounding.
pub fn n_bins(t0_ms: f64, t1_ms: f64, bin_ms: f64) -> usize {
    ((t1_ms - t0_ms) / bin_ms + 1e-9).floor().max(0.0) as usize
}

/// Spike counts of a windowed train in consecutive bins of `bin_ms` from
/// `t0_ms` (bin k is `[t0 + k bin, t0 + (k+1) bin)`); spikes past the last
/// whole bin are not counted, as in Elephant's `BinnedSpikeTrain`.
pub fn bin_counts(window: &[f64], t0_ms: f64, bin_ms: f64, bins: usize) -> Vec<u32> {
    let mut counts = vec![0u32; bins];
    for &t in window {
        let k = ((t - t0_ms) / bin_ms).floor();
        if k >= 0.0 && (k as usize) < bins {
            counts[k as usize] += 1;
        }
    }
    counts
}

/// `value(i, j)` for every pair i < j of `n` neurons, in (i, j) order.
pub fn every_pair(n: usize, mut value: impl FnMut(usize, usize) -> Option<f64>) -> Vec<Option<f64>> {
    let mut values = Vec::with_capacity(n * n.saturating_sub(1) / 2);
    for i in 0..n {
        for j in i + 1..n {
            values.push(value(i, j));
        }
    }
    values
}

/// Pearson correlation of spike counts in bins (de la Rocha et al. 2007,
/// Nature 448:802): each neuron's counts centred and scaled to unit norm
/// once, so that a pair is one dot product. A neuron whose count does not
/// vary has no correlation with anything (Elephant gives NaN there).
pub struct CountCorr {
    unit: Vec<Option<Vec<f64>>>,
}

impl CountCorr {
    pub fn new(windows: &[&[f64]], t0_ms: f64, t1_ms: f64, bin_ms: f64) -> CountCorr {
        let bins = n_bins(t0_ms, t1_ms, bin_ms);
        let unit = windows
            .iter()
            .map(|w| {
                let counts = bin_counts(w, t0_ms, bin_ms, bins);
                let mean = counts.iter().map(|&c| c as f64).sum::<f64>() / bins.max(1) as f64;
                let centred: Vec<f64> = counts.iter().map(|&c| c as f64 - mean).collect();
                let norm = centred.iter().map(|x| x * x).sum::<f64>().sqrt();
                // Counts are integers: a varying count has norm >= a bin's
                // share of one spike, far above rounding.
                (bins >= 2 && norm > 1e-9).then(|| centred.iter().map(|x| x / norm).collect())
            })
            .collect();
        CountCorr { unit }
    }

    pub fn pair(&self, i: usize, j: usize) -> Option<f64> {
        let (a, b) = (self.unit[i].as_ref()?, self.unit[j].as_ref()?);
        Some(a.iter().zip(b).map(|(x, y)| x * y).sum())
    }
}

/// Spike time tiling coefficient (Cutts & Eglen 2014, J. Neurosci.
/// 34:14288): `(P_A - T_B) / (1 - P_A T_B) / 2 + (P_B - T_A) / (1 - P_B T_A) / 2`,
/// with `T_A` the fraction of the window within `dt` of a spike of A and
/// `P_A` the fraction of A's spikes within `dt` (inclusive) of a spike of B.
/// Undefined when either train is empty. A term whose `P T` is 1 is 1,
/// as in Elephant's `spike_time_tiling_coefficient`.
pub struct Sttc<'a> {
    windows: &'a [&'a [f64]],
    tiled: Vec<f64>,
    dt_ms: f64,
}

impl<'a> Sttc<'a> {
    pub fn new(windows: &'a [&'a [f64]], t0_ms: f64, t1_ms: f64, dt_ms: f64) -> Sttc<'a> {
        let tiled = windows.iter().map(|w| tiled_fraction(w, t0_ms, t1_ms, dt_ms)).collect();
        Sttc { windows, tiled, dt_ms }
    }

    pub fn pair(&self, i: usize, j: usize) -> Option<f64> {
        let (a, b) = (self.windows[i], self.windows[j]);
        if a.is_empty() || b.is_empty() {
            return None;
        }
        let (ta, tb) = (self.tiled[i], self.tiled[j]);
        let pa = fraction_near(a, b, self.dt_ms);
        let pb = fraction_near(b, a, self.dt_ms);
        let term = |p: f64, t: f64| if p * t == 1.0 { 1.0 } else { (p - t) / (1.0 - p * t) };
        Some(0.5 * term(pa, tb) + 0.5 * term(pb, ta))
    }
}

/// Length of the union of `[t - dt, t + dt]` over the spikes, clipped to
/// the window, as a fraction of the window.
fn tiled_fraction(spikes: &[f64], t0_ms: f64, t1_ms: f64, dt_ms: f64) -> f64 {
    let mut covered = 0.0;
    let mut reach = f64::NEG_INFINITY;
    for &t in spikes {
        let (lo, hi) = ((t - dt_ms).max(t0_ms).max(reach), (t + dt_ms).min(t1_ms));
        covered += (hi - lo).max(0.0);
        reach = reach.max(hi);
    }
    covered / (t1_ms - t0_ms)
}

/// Fraction of the spikes of `a` with a spike of `b` at most `dt_ms` away
/// (both sorted): one merge-like pass.
fn fraction_near(a: &[f64], b: &[f64], dt_ms: f64) -> f64 {
    let mut k = 0;
    let mut near = 0usize;
    for &t in a {
        while k < b.len() && b[k] < t {
            k += 1;
        }
        let left = k > 0 && t - b[k - 1] <= dt_ms;
        let right = k < b.len() && b[k] - t <= dt_ms;
        near += usize::from(left || right);
    }
    near as f64 / a.len() as f64
}

/// Wang-Buzsaki coherence (Wang & Buzsaki 1996, J. Neurosci. 16:6402):
/// with X, Y a pair's binary spike indicators in bins of `bin_ms`,
/// `sum X Y / sqrt(sum X sum Y)`; undefined when either neuron has no spike.
/// Each neuron is kept as its sorted occupied bins, so a pair costs
/// O(spikes).
pub struct Kappa {
    occupied: Vec<Vec<u64>>,
}

impl Kappa {
    pub fn new(windows: &[&[f64]], t0_ms: f64, t1_ms: f64, bin_ms: f64) -> Kappa {
        let bins = n_bins(t0_ms, t1_ms, bin_ms) as u64;
        let occupied = windows
            .iter()
            .map(|w| {
                let mut ks: Vec<u64> = w
                    .iter()
                    .map(|&t| ((t - t0_ms) / bin_ms).floor().max(0.0) as u64)
                    .filter(|&k| k < bins)
                    .collect();
                ks.dedup(); // sorted already: the train is
                ks
            })
            .collect();
        Kappa { occupied }
    }

    pub fn pair(&self, i: usize, j: usize) -> Option<f64> {
        let (a, b) = (&self.occupied[i], &self.occupied[j]);
        if a.is_empty() || b.is_empty() {
            return None;
        }
        let (mut x, mut y, mut common) = (0, 0, 0usize);
        while x < a.len() && y < b.len() {
            match a[x].cmp(&b[y]) {
                std::cmp::Ordering::Less => x += 1,
                std::cmp::Ordering::Greater => y += 1,
                std::cmp::Ordering::Equal => {
                    common += 1;
                    x += 1;
                    y += 1;
                }
            }
        }
        Some(common as f64 / ((a.len() * b.len()) as f64).sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::periodic;

    #[test]
    fn identical_trains_score_one_everywhere() {
        // Irregular train so that counts vary from bin to bin.
        let a: Vec<f64> = (0..200).map(|k| 3.0 + 7.3 * k as f64 + (k % 5) as f64).collect();
        let w = [a.as_slice(), a.as_slice()];
        let t1 = 1500.0;
        assert!((CountCorr::new(&w, 0.0, t1, 10.0).pair(0, 1).unwrap() - 1.0).abs() < 1e-12);
        assert_eq!(Sttc::new(&w, 0.0, t1, 5.0).pair(0, 1), Some(1.0));
        assert!((Kappa::new(&w, 0.0, t1, 2.0).pair(0, 1).unwrap() - 1.0).abs() < 1e-15);
    }

    #[test]
    fn trains_further_apart_than_the_window_do_not_tile_or_coincide() {
        // Every 50 ms from 10 and from 30: 20 ms apart, beyond dt = 5 ms and
        // in other 2 ms bins. T = 10/50 = 0.2 each (no edge clipping: first
        // spike 10 ms after t0, last 20 ms and 10 ms before t1 = 1000),
        // P = 0, so STTC = 2 * (0 - 0.2) / (1 - 0) / 2 = -0.2.
        let (a, b) = (periodic(10.0, 50.0, 1000.0), periodic(30.0, 50.0, 1000.0));
        let w = [a.as_slice(), b.as_slice()];
        assert!((tiled_fraction(&a, 0.0, 1000.0, 5.0) - 0.2).abs() < 1e-12);
        let s = Sttc::new(&w, 0.0, 1000.0, 5.0).pair(0, 1).unwrap();
        assert!((s + 0.2).abs() < 1e-12, "{s}");
        assert_eq!(Kappa::new(&w, 0.0, 1000.0, 2.0).pair(0, 1), Some(0.0));
    }

    #[test]
    fn sttc_window_is_inclusive_and_tiling_is_clipped_at_the_edges() {
        // One spike each, exactly dt apart: P = 1 both ways. A at 2 ms with
        // dt 5 in [0, 100): tiles [0, 7] = 0.07; B at 7 tiles [2, 12] = 0.10.
        let (a, b) = ([2.0], [7.0]);
        assert!((tiled_fraction(&a, 0.0, 100.0, 5.0) - 0.07).abs() < 1e-15);
        let s = Sttc::new(&[&a, &b], 0.0, 100.0, 5.0).pair(0, 1).unwrap();
        // (1 - 0.10)/(1 - 0.10)/2 + (1 - 0.07)/(1 - 0.07)/2 = 1.
        assert!((s - 1.0).abs() < 1e-15);
        // A hair beyond dt: P = 0, STTC = (-0.1 - 0.07) / 2.
        let s = Sttc::new(&[&a, &[7.0 + 1e-9]], 0.0, 100.0, 5.0).pair(0, 1).unwrap();
        assert!((s + 0.085).abs() < 1e-9, "{s}");
        // Overlapping tiles count once: 10 and 12 with dt 5 tile [5, 17].
        assert!((tiled_fraction(&[10.0, 12.0], 0.0, 100.0, 5.0) - 0.12).abs() < 1e-15);
    }

    #[test]
    fn an_empty_train_or_a_constant_count_is_left_out() {
        let a = periodic(5.0, 10.0, 1000.0); // one spike in every 10 ms bin
        let b = [100.0, 200.0];
        let w = [a.as_slice(), &b[..], &[][..]];
        let cc = CountCorr::new(&w, 0.0, 1000.0, 10.0);
        assert_eq!(cc.pair(0, 1), None, "a's count never varies");
        assert!(cc.pair(1, 1).is_some());
        assert_eq!(Sttc::new(&w, 0.0, 1000.0, 5.0).pair(1, 2), None);
        assert_eq!(Kappa::new(&w, 0.0, 1000.0, 2.0).pair(0, 2), None);
        assert!(every_pair(3, |i, j| cc.pair(i, j)).iter().all(Option::is_none));
    }

    #[test]
    fn kappa_of_a_hand_count() {
        // Bins of 2 ms: a occupies {0, 5, 10, 20}, b occupies {5, 20, 30};
        // 2 in common: 2 / sqrt(4 * 3).
        let a = [0.5, 1.5, 10.2, 20.0, 41.9];
        let b = [11.0, 40.1, 60.0];
        let k = Kappa::new(&[&a, &b], 0.0, 100.0, 2.0).pair(0, 1).unwrap();
        assert!((k - 2.0 / 12f64.sqrt()).abs() < 1e-15, "{k}");
    }

    #[test]
    fn independent_poisson_trains_are_uncorrelated() {
        // Two independent 20 Hz Poisson trains over 200 s: count correlation
        // has sd about 1/sqrt(20000 bins) = 0.007, allow 0.03; STTC of
        // independent trains has mean 0 (P_A is T_B on average), sd ~0.01
        // here with ~4000 spikes each, allow 0.04; kappa is sum XY /
        // sqrt(sum X sum Y) ~ p for bin probability p = 0.04 (20 Hz x 2 ms),
        // allow 0.01.
        use rand::SeedableRng;
        use rand_distr::{Distribution, Exp};
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(11);
        let exp = Exp::new(0.02).unwrap();
        let mut train = || {
            let mut t = 0.0;
            let mut s = vec![];
            loop {
                t += exp.sample(&mut rng);
                if t >= 200_000.0 {
                    return s;
                }
                s.push(t);
            }
        };
        let (a, b) = (train(), train());
        let w = [a.as_slice(), b.as_slice()];
        let cc = CountCorr::new(&w, 0.0, 200_000.0, 10.0).pair(0, 1).unwrap();
        assert!(cc.abs() < 0.03, "{cc}");
        let s = Sttc::new(&w, 0.0, 200_000.0, 5.0).pair(0, 1).unwrap();
        assert!(s.abs() < 0.04, "{s}");
        let p = 1.0 - (-0.02f64 * 2.0).exp();
        let k = Kappa::new(&w, 0.0, 200_000.0, 2.0).pair(0, 1).unwrap();
        assert!((k - p).abs() < 0.01, "{k} vs {p}");
    }

    #[test]
    fn spikes_past_the_last_whole_bin_are_not_counted() {
        // [0, 25) in 10 ms bins: 2 whole bins; 24 ms is in the partial one.
        assert_eq!(n_bins(0.0, 25.0, 10.0), 2);
        assert_eq!(bin_counts(&[1.0, 12.0, 19.9, 24.0], 0.0, 10.0, 2), vec![1, 2]);
        // Rounding: 0.3 / 0.1 is 2.9999999999999996 in floating point.
        assert_eq!(n_bins(0.0, 0.3, 0.1), 3);
    }
}
