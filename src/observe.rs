//! Push-based reducers of a trial: they see each step once and keep
//! O(neurons + spikes) memory, never the voltage trace.

pub mod measures;
pub mod pairs;
pub mod spectrum;
pub mod sync;

/// Upward threshold crossings with hysteresis (README "Spec reference":
/// `spikes.threshold_mv`, `spikes.rearm_mv`).
///
/// A spike is the first step where V goes from below `threshold_mv` to at or
/// above it while the neuron is armed; its time is linearly interpolated
/// between the two steps. The neuron is then disarmed until V falls below
/// `rearm_mv`, so noise jittering around the threshold cannot count one
/// action potential twice.
#[derive(Debug, Clone)]
pub struct SpikeDetector {
    threshold_mv: f64,
    rearm_mv: f64,
    armed: Vec<bool>,
}

impl SpikeDetector {
    /// A neuron starts armed when it starts below threshold.
    pub fn new(threshold_mv: f64, rearm_mv: f64, v0_mv: &[f64]) -> SpikeDetector {
        SpikeDetector {
            threshold_mv,
            rearm_mv,
            armed: v0_mv.iter().map(|&v| v < threshold_mv).collect(),
        }
    }

    /// Sees neuron `i` move from `v_prev` at `t_prev_ms` to `v_new` one step
    /// of `dt_ms` later; returns the spike time if it crossed.
    #[inline]
    pub fn push(&mut self, i: usize, t_prev_ms: f64, dt_ms: f64, v_prev: f64, v_new: f64) -> Option<f64> {
        if self.armed[i] {
            if v_new >= self.threshold_mv && v_prev < self.threshold_mv {
                self.armed[i] = false;
                let frac = (self.threshold_mv - v_prev) / (v_new - v_prev);
                return Some(t_prev_ms + frac * dt_ms);
            }
        } else if v_new < self.rearm_mv {
            self.armed[i] = true;
        }
        None
    }

    /// Whether [`SpikeDetector::push`] would neither report a spike nor
    /// re-arm any neuron on this step (neuron i moving from `v_prev[i]` to
    /// `v_new[i]`). One branch-free pass over every neuron: most steps have
    /// no event, and on those the per-neuron pushes can be skipped.
    #[inline]
    pub fn is_quiet(&self, v_prev: &[f64], v_new: &[f64]) -> bool {
        let mut event = false;
        for ((&armed, &p), &v) in self.armed.iter().zip(v_prev).zip(v_new) {
            let crosses = (v >= self.threshold_mv) & (p < self.threshold_mv);
            event |= if armed { crosses } else { v < self.rearm_mv };
        }
        !event
    }

    /// Neuron `i` as at the start, at voltage `v0_mv`.
    pub fn restart(&mut self, i: usize, v0_mv: f64) {
        self.armed[i] = v0_mv < self.threshold_mv;
    }
}

/// Firing statistics of one spike train over an analysis window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainStats {
    /// Spikes with `t0 <= t < t1`.
    pub n_spikes: u32,
    /// `n_spikes / (t1 - t0)`, in Hz.
    pub rate_hz: f64,
    /// Coefficient of variation of the interspike intervals inside the
    /// window: population sd / mean (ddof = 0, as `scipy.stats.variation` and
    /// Elephant's `cv`). `None` below 3 spikes (fewer than 2 intervals).
    pub cv_isi: Option<f64>,
    /// Mean interspike interval inside the window (ms); `None` below 2 spikes.
    pub mean_isi_ms: Option<f64>,
    /// Fano factor of the spike counts in the window's bins of `bin_ms`:
    /// population variance over mean (as Elephant's `fanofactor`); `None`
    /// without a spike in a whole bin, or with fewer than 2 bins.
    pub fano: Option<f64>,
    /// Local variation of the intervals (Shinomoto et al. 2003, Neural
    /// Comput. 15:2823): `3/(m-1) sum ((I_k - I_k+1)/(I_k + I_k+1))^2` over
    /// the m intervals; 1 for a Poisson train, 0 for a periodic one. `None`
    /// below 3 spikes.
    pub lv: Option<f64>,
    /// CV2 (Holt et al. 1996, J. Neurophysiol. 75:1806): the mean of
    /// `2 |I_k+1 - I_k| / (I_k+1 + I_k)`; `None` below 3 spikes.
    pub cv2: Option<f64>,
}

/// The spikes of a sorted train that fall in `[t0_ms, t1_ms)`.
pub fn in_window(spikes_ms: &[f64], t0_ms: f64, t1_ms: f64) -> &[f64] {
    let lo = spikes_ms.partition_point(|&t| t < t0_ms);
    let hi = spikes_ms.partition_point(|&t| t < t1_ms).max(lo);
    &spikes_ms[lo..hi]
}

/// Statistics of the sorted spike times `spikes_ms` over `[t0_ms, t1_ms)`,
/// the Fano factor over bins of `bin_ms`.
pub fn train_stats(spikes_ms: &[f64], t0_ms: f64, t1_ms: f64, bin_ms: f64) -> TrainStats {
    let window = in_window(spikes_ms, t0_ms, t1_ms);
    let n_spikes = window.len() as u32;
    let rate_hz = n_spikes as f64 / ((t1_ms - t0_ms) / 1000.0);
    let intervals = window.len().saturating_sub(1);
    let mean_isi_ms = (intervals >= 1).then(|| (window[intervals] - window[0]) / intervals as f64);
    let cv_isi = mean_isi_ms.filter(|_| intervals >= 2).map(|mean| {
        let var = window.windows(2).map(|w| (w[1] - w[0] - mean).powi(2)).sum::<f64>() / intervals as f64;
        var.sqrt() / mean
    });
    let ratios: Vec<f64> = window
        .windows(3)
        .map(|w| (w[2] - 2.0 * w[1] + w[0]) / (w[2] - w[0]))
        .collect();
    let mean_of = |f: fn(f64) -> f64| {
        (!ratios.is_empty()).then(|| ratios.iter().map(|&r| f(r)).sum::<f64>() / ratios.len() as f64)
    };
    TrainStats {
        n_spikes,
        rate_hz,
        cv_isi,
        mean_isi_ms,
        fano: fano(window, t0_ms, t1_ms, bin_ms),
        lv: mean_of(|r| 3.0 * r * r),
        cv2: mean_of(|r| 2.0 * r.abs()),
    }
}

/// Population variance over mean of a windowed train's counts in whole bins.
fn fano(window: &[f64], t0_ms: f64, t1_ms: f64, bin_ms: f64) -> Option<f64> {
    let bins = pairs::n_bins(t0_ms, t1_ms, bin_ms);
    let counts = pairs::bin_counts(window, t0_ms, bin_ms, bins);
    let mean = counts.iter().map(|&c| c as f64).sum::<f64>() / bins as f64;
    let var = counts.iter().map(|&c| (c as f64 - mean).powi(2)).sum::<f64>() / bins as f64;
    (bins >= 2 && mean > 0.0).then(|| var / mean)
}

/// A periodic train: `first_ms`, then every `period_ms` while below
/// `until_ms` (for the measures' tests).
#[cfg(test)]
fn periodic(first_ms: f64, period_ms: f64, until_ms: f64) -> Vec<f64> {
    (0..)
        .map(|k| first_ms + period_ms * k as f64)
        .take_while(|&t| t < until_ms)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crossing_time_is_linearly_interpolated() {
        let mut d = SpikeDetector::new(0.0, -20.0, &[-65.0]);
        assert_eq!(d.push(0, 1.0, 0.1, -30.0, -10.0), None);
        // From -10 to +30 over 0.1 ms crosses 0 a quarter of the way.
        let t = d.push(0, 1.1, 0.1, -10.0, 30.0).unwrap();
        assert!((t - 1.125).abs() < 1e-12, "{t}");
    }

    #[test]
    fn hysteresis_ignores_jitter_until_rearmed() {
        let mut d = SpikeDetector::new(0.0, -20.0, &[-65.0]);
        let trace = [-65.0, 5.0, -1.0, 2.0, -10.0, 3.0, -25.0, 4.0];
        let mut spikes = vec![];
        for (k, w) in trace.windows(2).enumerate() {
            if let Some(t) = d.push(0, k as f64, 1.0, w[0], w[1]) {
                spikes.push(t);
            }
        }
        // Only the first crossing and the one after falling below -20 count.
        assert_eq!(spikes.len(), 2, "{spikes:?}");
        assert!(spikes[1] > 6.0);
    }

    #[test]
    fn a_neuron_starting_above_threshold_is_not_counted_until_it_resets() {
        let mut d = SpikeDetector::new(0.0, -20.0, &[10.0]);
        assert_eq!(d.push(0, 0.0, 1.0, 10.0, 20.0), None);
        assert_eq!(d.push(0, 1.0, 1.0, 20.0, -30.0), None);
        assert!(d.push(0, 2.0, 1.0, -30.0, 10.0).is_some());
    }

    #[test]
    fn quiet_means_no_push_would_spike_or_rearm() {
        // A noisy oscillation through both levels: on every step is_quiet
        // must say exactly whether the pushes change anything.
        let (mut d, mut probe) = (SpikeDetector::new(0.0, -20.0, &[-65.0, 5.0]), 0);
        let mut v = [-65.0, 5.0];
        let (mut quiet, mut loud) = (0, 0);
        for k in 0..10_000 {
            let x = k as f64 * 0.013;
            let new = [
                -30.0 + 40.0 * x.sin() + 3.0 * (7.1 * x).sin(),
                -30.0 + 40.0 * (x + 1.0).cos(),
            ];
            let before = d.armed.clone();
            let expect_quiet = d.is_quiet(&v, &new);
            let spikes = (0..2).filter(|&i| d.push(i, 0.0, 0.01, v[i], new[i]).is_some()).count();
            assert_eq!(expect_quiet, spikes == 0 && d.armed == before, "step {k}");
            if expect_quiet {
                quiet += 1;
            } else {
                loud += 1;
            }
            v = new;
            probe += spikes;
        }
        // Both kinds of step occur, so the test can fail either way.
        assert!(quiet > 9000 && loud > 20 && probe > 10, "{quiet} {loud} {probe}");
    }

    #[test]
    fn periodic_train_has_zero_cv_and_exact_rate() {
        // Spikes every 10 ms from 5 ms: in [100, 600) there are 50 of them
        // (105 ... 595), i.e. 100 Hz, and every interval is equal.
        let spikes: Vec<f64> = (0..100).map(|k| 5.0 + 10.0 * k as f64).collect();
        let s = train_stats(&spikes, 100.0, 600.0, 10.0);
        assert_eq!(s.n_spikes, 50);
        assert!((s.rate_hz - 100.0).abs() < 1e-12);
        assert!(s.cv_isi.unwrap().abs() < 1e-12);
        assert!((s.mean_isi_ms.unwrap() - 10.0).abs() < 1e-12);
        // Regular: LV and CV2 are 0; one spike in every 10 ms bin, Fano 0.
        assert!(s.lv.unwrap().abs() < 1e-12 && s.cv2.unwrap().abs() < 1e-12);
        assert_eq!(s.fano, Some(0.0));
    }

    #[test]
    fn lv_cv2_and_fano_of_hand_computed_trains() {
        // Intervals 1 and 3: r = (1 - 3)/(1 + 3) = -1/2, so LV = 3/4 and
        // CV2 = 1; with 1 ms bins over [0, 5): counts 1 1 0 0 1, mean 3/5,
        // variance 6/25, Fano 2/5.
        let s = train_stats(&[0.0, 1.0, 4.0], 0.0, 5.0, 1.0);
        assert!((s.lv.unwrap() - 0.75).abs() < 1e-15);
        assert!((s.cv2.unwrap() - 1.0).abs() < 1e-15);
        assert!((s.fano.unwrap() - 0.4).abs() < 1e-15, "{:?}", s.fano);
        // Two spikes: one interval, no LV or CV2; no spike: no Fano factor.
        let s = train_stats(&[0.0, 1.0], 0.0, 5.0, 1.0);
        assert_eq!((s.lv, s.cv2), (None, None));
        assert_eq!(train_stats(&[], 0.0, 5.0, 1.0).fano, None);
    }

    #[test]
    fn cv_of_a_hand_computed_train() {
        // Intervals 1 and 3: mean 2, population sd 1, CV 0.5.
        let s = train_stats(&[0.0, 1.0, 4.0], 0.0, 10.0, 1.0);
        assert!((s.cv_isi.unwrap() - 0.5).abs() < 1e-15);
        // Two spikes give one interval: no CV.
        assert_eq!(train_stats(&[0.0, 1.0], 0.0, 10.0, 1.0).cv_isi, None);
        assert_eq!(train_stats(&[0.0, 1.0], 0.0, 10.0, 1.0).mean_isi_ms, Some(1.0));
        assert_eq!(train_stats(&[5.0], 0.0, 10.0, 1.0).mean_isi_ms, None);
        assert_eq!(train_stats(&[], 0.0, 10.0, 1.0).n_spikes, 0);
    }

    #[test]
    fn poisson_train_has_cv_near_one() {
        // Exponential intervals have CV 1; with 20 000 intervals the standard
        // error of the CV is about 1/sqrt(20000) = 0.007: allow 0.03.
        use rand::SeedableRng;
        use rand_distr::{Distribution, Exp};
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(5);
        let exp = Exp::new(0.05).unwrap();
        let mut t = 0.0;
        let spikes: Vec<f64> = (0..20_001)
            .map(|_| {
                t += exp.sample(&mut rng);
                t
            })
            .collect();
        let s = train_stats(&spikes, 0.0, spikes[20_000] + 1.0, 10.0);
        assert!((s.cv_isi.unwrap() - 1.0).abs() < 0.03, "{:?}", s.cv_isi);
        // LV and CV2 of a Poisson train are 1 (Shinomoto et al. 2003; Holt et
        // al. 1996); sd ~ 1/sqrt(20000) x O(1): allow 0.03. Counts of a
        // Poisson process in bins are Poisson: Fano factor 1, sd about
        // sqrt(2 / 40000 bins) = 0.007: allow 0.03.
        assert!((s.lv.unwrap() - 1.0).abs() < 0.03, "{:?}", s.lv);
        assert!((s.cv2.unwrap() - 1.0).abs() < 0.03, "{:?}", s.cv2);
        assert!((s.fano.unwrap() - 1.0).abs() < 0.03, "{:?}", s.fano);
    }
}
