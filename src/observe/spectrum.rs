//! Power spectrum of the population spike count (README "Measures":
//! `pop_peak_hz`, `pop_peak_q`), the measure of network rhythms and of
//! coherence resonance (Pikovsky & Kurths 1997, Phys. Rev. Lett. 78:775).

use super::pairs::{bin_counts, n_bins};
use rustfft::num_complex::Complex;
use rustfft::FftPlanner;

/// Welch's power spectral density estimate (Welch 1967, IEEE Trans. Audio
/// Electroacoust. 15:70) of the population spike count in bins of
/// `bin_ms` over `[t0_ms, t1_ms)`: segments of `segment_ms` (the whole
/// window if shorter) overlapping by half, each with its mean removed and a
/// periodic Hann window applied, one-sided, as `scipy.signal.welch` with
/// its defaults (`detrend="constant"`, `scaling="density"`).
/// Returns (frequencies in Hz, density in counts^2/Hz), or `None` for
/// fewer than 4 bins.
pub fn population_psd(
    windows: &[&[f64]],
    t0_ms: f64,
    t1_ms: f64,
    bin_ms: f64,
    segment_ms: f64,
) -> Option<(Vec<f64>, Vec<f64>)> {
    let bins = n_bins(t0_ms, t1_ms, bin_ms);
    if bins < 4 {
        return None;
    }
    let mut counts = vec![0.0f64; bins];
    for w in windows {
        for (total, c) in counts.iter_mut().zip(bin_counts(w, t0_ms, bin_ms, bins)) {
            *total += c as f64;
        }
    }
    let per_segment = ((segment_ms / bin_ms).round() as usize).clamp(4, bins);
    let step = per_segment - per_segment / 2;
    let fs_hz = 1000.0 / bin_ms;
    // Periodic Hann window (scipy's get_window("hann", n), fftbins=True).
    let hann: Vec<f64> = (0..per_segment)
        .map(|k| 0.5 - 0.5 * (std::f64::consts::TAU * k as f64 / per_segment as f64).cos())
        .collect();
    let fft = FftPlanner::<f64>::new().plan_fft_forward(per_segment);
    let n_freq = per_segment / 2 + 1;
    let mut power = vec![0.0; n_freq];
    let mut buffer = vec![Complex::new(0.0, 0.0); per_segment];
    let mut segments = 0;
    let mut start = 0;
    while start + per_segment <= bins {
        let segment = &counts[start..start + per_segment];
        let mean = segment.iter().sum::<f64>() / per_segment as f64;
        for ((b, &x), &w) in buffer.iter_mut().zip(segment).zip(&hann) {
            *b = Complex::new((x - mean) * w, 0.0);
        }
        fft.process(&mut buffer);
        for (p, b) in power.iter_mut().zip(&buffer) {
            *p += b.norm_sqr();
        }
        segments += 1;
        start += step;
    }
    let scale = 1.0 / (fs_hz * hann.iter().map(|w| w * w).sum::<f64>() * segments as f64);
    // One-sided: every frequency but 0 and (for even segments) Nyquist
    // stands for its negative twin too.
    let doubled = if per_segment.is_multiple_of(2) {
        n_freq - 1
    } else {
        n_freq
    };
    for (k, p) in power.iter_mut().enumerate() {
        *p *= if k >= 1 && k < doubled { 2.0 * scale } else { scale };
    }
    let freqs_hz = (0..n_freq).map(|k| k as f64 * fs_hz / per_segment as f64).collect();
    Some((freqs_hz, power))
}

/// The rhythm's peak of a spectrum above 0 Hz: the lowest-frequency local
/// maximum holding at least half the largest value's power, and its quality
/// factor `f_peak / FWHM`, the full width at half maximum found by linear
/// interpolation between frequency bins. Not simply the largest value: a
/// population firing in sharp volleys has harmonics as strong as its
/// fundamental, and leakage between bins can leave any one of them on top
/// (the octave error of pitch detection; de Cheveigne & Kawahara 2002,
/// J. Acoust. Soc. Am. 111:1917). `None` for a flat zero spectrum (no
/// spike, or a constant count); the quality is `None` when the power does
/// not fall to half the peak on both sides.
pub fn spectral_peak(freqs_hz: &[f64], power: &[f64]) -> Option<(f64, Option<f64>)> {
    let largest = power.iter().skip(1).copied().fold(0.0, f64::max);
    let k = (1..power.len()).find(|&k| {
        let local_max = power[k] >= power[k - 1] && power.get(k + 1).is_none_or(|&next| power[k] >= next);
        local_max && power[k] >= largest / 2.0
    })?;
    let peak = power[k];
    if peak <= 0.0 {
        return None;
    }
    let half = peak / 2.0;
    let cross =
        |a: usize, b: usize| freqs_hz[a] + (half - power[a]) / (power[b] - power[a]) * (freqs_hz[b] - freqs_hz[a]);
    let left = (0..k).rev().find(|&j| power[j] <= half).map(|j| cross(j, j + 1));
    let right = (k + 1..power.len())
        .find(|&j| power[j] <= half)
        .map(|j| cross(j - 1, j));
    let q = match (left, right) {
        (Some(l), Some(r)) if r > l => Some(freqs_hz[k] / (r - l)),
        _ => None,
    };
    Some((freqs_hz[k], q))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_periodic_population_peaks_at_its_frequency() {
        // 10 neurons firing every 25 ms (40 Hz) for 4 s, neuron i at phase
        // 10 + i ms, so the volley is 10 ms wide and the harmonics are
        // weaker than the fundamental (a sharp volley would make all
        // harmonics tie). 1 ms bins, 500 ms segments: 2 Hz resolution.
        let trains: Vec<Vec<f64>> = (0..10)
            .map(|i| (0..160).map(|k| 10.5 + i as f64 + 25.0 * k as f64).collect())
            .collect();
        let windows: Vec<&[f64]> = trains.iter().map(Vec::as_slice).collect();
        let (f, p) = population_psd(&windows, 0.0, 4000.0, 1.0, 500.0).unwrap();
        assert_eq!(f.len(), 251);
        assert!((f[1] - 2.0).abs() < 1e-12);
        let (peak_hz, q) = spectral_peak(&f, &p).unwrap();
        assert_eq!(peak_hz, 40.0);
        // A pure rhythm, 20 periods per segment: Hann leakage puts a quarter
        // of the peak power in the bins at 38 and 42 Hz, so half height is
        // crossed 4/3 Hz either side, FWHM 8/3 Hz and Q = 15.
        assert!((q.unwrap() - 15.0).abs() < 1e-9, "{q:?}");
    }

    #[test]
    fn sharp_volleys_peak_at_the_fundamental_not_a_harmonic() {
        // 10 neurons firing together every 26 ms (38.5 Hz) for 400 ms: the
        // volley is one bin wide, so every harmonic is as strong as the
        // fundamental, and on the 2.5 Hz grid the largest values fall at
        // 192.5 and 307.5 Hz, tied to rounding (scipy.signal.welch gives the
        // same spectrum). The rhythm is at the grid point nearest 38.5 Hz.
        let train: Vec<f64> = (0..16).map(|k| 3.3 + 26.0 * k as f64).collect();
        let windows = vec![train.as_slice(); 10];
        let (f, p) = population_psd(&windows, 0.0, 400.0, 1.0, 500.0).unwrap();
        let largest = (1..p.len()).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap();
        assert!(
            [192.5, 307.5].contains(&f[largest]),
            "the case this test is for: {}",
            f[largest]
        );
        assert_eq!(spectral_peak(&f, &p).unwrap().0, 37.5);
    }

    #[test]
    fn the_density_integrates_to_the_variance() {
        // Parseval: with one segment holding the whole window and no Hann
        // taper the sum would equal the variance exactly; with the taper and
        // a white (Poisson) count the integral is still the count variance,
        // within the estimator's noise (~1/sqrt(segments)): allow 10 %.
        use rand::SeedableRng;
        use rand_distr::{Distribution, Exp};
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(3);
        let exp = Exp::new(0.1).unwrap();
        let mut t = 0.0;
        let train: Vec<f64> = std::iter::from_fn(|| {
            t += exp.sample(&mut rng);
            (t < 100_000.0).then_some(t)
        })
        .collect();
        let (f, p) = population_psd(&[&train], 0.0, 100_000.0, 1.0, 500.0).unwrap();
        let integral: f64 = p.iter().sum::<f64>() * (f[1] - f[0]);
        // Counts in 1 ms bins of a 100 Hz Poisson train: variance ~0.1.
        assert!((integral - 0.1).abs() < 0.01, "{integral}");
    }

    #[test]
    fn no_spikes_no_peak() {
        let (f, p) = population_psd(&[&[], &[]], 0.0, 1000.0, 1.0, 500.0).unwrap();
        assert_eq!(spectral_peak(&f, &p), None);
        assert_eq!(population_psd(&[&[1.0]], 0.0, 3.0, 1.0, 500.0), None);
    }

    #[test]
    fn fwhm_is_interpolated_between_bins() {
        // A triangle peak of 4 at 3 Hz falling by 1 per 1 Hz bin: half
        // height 2 is crossed at 1 and 5 Hz, FWHM 4, Q = 3 / 4.
        let f = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let p = [0.0, 2.0, 3.0, 4.0, 3.0, 2.0, 1.0];
        let (peak, q) = spectral_peak(&f, &p).unwrap();
        assert_eq!(peak, 3.0);
        assert!((q.unwrap() - 0.75).abs() < 1e-12, "{q:?}");
        // Never falling to half on the right: no quality.
        assert_eq!(spectral_peak(&f, &[0.0, 1.0, 3.0, 4.0, 3.5, 3.0, 2.5]).unwrap().1, None);
    }
}
