//! The registry of per-trial measures (README "Measures"). The trials
//! table's measure columns, `summary.parquet`, `plot --y` and its axis
//! labels, `plan` and `--help` are all made from [`MEASURES`]: adding a
//! measure is one function and one entry here.

use super::pairs::{every_pair, CountCorr, Kappa, Sttc};
use super::spectrum::{population_psd, spectral_peak};
use super::sync::{all_coincidences, kuramoto_r, spike_sync_of};
use super::TrainStats;
use std::cell::OnceCell;

/// Parameters of the measures: the spec's `[measures]` table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeasureParams {
    /// Count bins of `count_corr` and `fano`.
    pub bin_ms: f64,
    /// Coincidence window of `sttc`.
    pub sttc_dt_ms: f64,
    /// Bins of `kappa`.
    pub kappa_bin_ms: f64,
    /// Bins of the population count whose spectrum `pop_peak_*` read.
    pub psd_bin_ms: f64,
    /// Welch segments of that spectrum.
    pub psd_segment_ms: f64,
    /// Whether a run writes `pairs.parquet` ([`pair_values`]).
    pub pairs: bool,
}

impl Default for MeasureParams {
    fn default() -> MeasureParams {
        MeasureParams {
            bin_ms: 10.0,
            sttc_dt_ms: 5.0,
            kappa_bin_ms: 2.0,
            psd_bin_ms: 1.0,
            psd_segment_ms: 500.0,
            pairs: false,
        }
    }
}

impl MeasureParams {
    /// The value of a `measures.<name>` key.
    pub fn get(&self, key: &str) -> Option<f64> {
        Some(match key.strip_prefix("measures.")? {
            "bin_ms" => self.bin_ms,
            "sttc_dt_ms" => self.sttc_dt_ms,
            "kappa_bin_ms" => self.kappa_bin_ms,
            "psd_bin_ms" => self.psd_bin_ms,
            "psd_segment_ms" => self.psd_segment_ms,
            _ => return None,
        })
    }
}

/// One trial that did not diverge, as the measures see it.
pub struct TrialView<'a> {
    /// Every spike of every neuron, sorted, the transient included.
    pub trains: &'a [&'a [f64]],
    /// The spikes in the analysis window `[t0_ms, t1_ms)`.
    pub windows: &'a [&'a [f64]],
    /// Per-neuron statistics over the window.
    pub neurons: &'a [TrainStats],
    pub t0_ms: f64,
    pub t1_ms: f64,
    pub dt_ms: f64,
    pub params: &'a MeasureParams,
    /// Golomb-Rinzel chi, streamed over the steps while the trial ran.
    pub chi: Option<f64>,
    /// Work that several measures share, done at most once per trial.
    pub prepared: Prepared,
}

/// What more than one reader needs, made on first use: the pairwise
/// measures' values per pair (the trial's mean and [`pair_values`] read
/// them) and the population spectrum's peak (both `pop_peak_*` read it).
#[derive(Default)]
pub struct Prepared {
    coincidences: OnceCell<Vec<(f64, f64)>>,
    count_corr: OnceCell<Vec<Option<f64>>>,
    sttc: OnceCell<Vec<Option<f64>>>,
    kappa: OnceCell<Vec<Option<f64>>>,
    peak: OnceCell<Option<(f64, Option<f64>)>>,
}

impl<'a> TrialView<'a> {
    /// `count_corr` of every pair i < j, in (i, j) order.
    fn count_corr(&self) -> &[Option<f64>] {
        (self.prepared.count_corr).get_or_init(|| {
            let cc = CountCorr::new(self.windows, self.t0_ms, self.t1_ms, self.params.bin_ms);
            every_pair(self.windows.len(), |i, j| cc.pair(i, j))
        })
    }

    /// `sttc` of every pair, in (i, j) order.
    fn sttc(&self) -> &[Option<f64>] {
        (self.prepared.sttc).get_or_init(|| {
            let sttc = Sttc::new(self.windows, self.t0_ms, self.t1_ms, self.params.sttc_dt_ms);
            every_pair(self.windows.len(), |i, j| sttc.pair(i, j))
        })
    }

    /// (coincidences, spikes) of every pair i < j of windowed trains, in
    /// (i, j) order.
    fn coincidences(&self) -> &[(f64, f64)] {
        (self.prepared.coincidences).get_or_init(|| all_coincidences(self.windows, self.t1_ms - self.t0_ms))
    }

    /// `kappa` of every pair, in (i, j) order.
    fn kappa(&self) -> &[Option<f64>] {
        (self.prepared.kappa).get_or_init(|| {
            let kappa = Kappa::new(self.windows, self.t0_ms, self.t1_ms, self.params.kappa_bin_ms);
            every_pair(self.windows.len(), |i, j| kappa.pair(i, j))
        })
    }

    /// The population spectrum's peak: frequency (Hz) and quality.
    fn peak(&self) -> Option<(f64, Option<f64>)> {
        *self.prepared.peak.get_or_init(|| {
            let p = self.params;
            let (freqs_hz, power) =
                population_psd(self.windows, self.t0_ms, self.t1_ms, p.psd_bin_ms, p.psd_segment_ms)?;
            spectral_peak(&freqs_hz, &power)
        })
    }
}

/// A per-trial measure: one column of `trials.parquet`.
pub struct Measure {
    /// Column name (units in the name where it has one).
    pub column: &'static str,
    /// Axis label of `plot --y`.
    pub label: &'static str,
    /// One line: what it is, and when it is null.
    pub definition: &'static str,
    pub citation: &'static str,
    /// The spec keys it depends on.
    pub params: &'static [&'static str],
    /// Needs two neurons or more (null for a single neuron).
    pub pairwise: bool,
    pub compute: fn(&TrialView) -> Option<f64>,
}

/// Every measure, in the order of the trials table's columns.
pub static MEASURES: &[Measure] = &[
    Measure {
        column: "rate_hz",
        label: "firing rate (Hz)",
        definition: "mean firing rate over neurons in the window",
        citation: "",
        params: &[],
        pairwise: false,
        compute: |t| mean(t.neurons.iter().map(|s| Some(s.rate_hz))),
    },
    Measure {
        column: "cv_isi",
        label: "CV of interspike intervals",
        definition: "mean over neurons with 3+ spikes of the ISI coefficient of variation (sd/mean, ddof 0)",
        citation: "",
        params: &[],
        pairwise: false,
        compute: |t| mean(t.neurons.iter().map(|s| s.cv_isi)),
    },
    Measure {
        column: "chi",
        label: "chi (Golomb-Rinzel synchrony)",
        definition: "sqrt(Var_t(mean V) / mean_i Var_t(V_i)), from the voltage at every step",
        citation: "Golomb & Rinzel 1993, Phys. Rev. E 48:4810",
        params: &[],
        pairwise: true,
        compute: |t| t.chi,
    },
    Measure {
        column: "kuramoto_r",
        label: "Kuramoto order parameter R",
        definition: "time average of |mean_i exp(i phase_i)|, phases linear between spikes; null if a neuron has < 2 spikes",
        citation: "Kuramoto 1984; Mormann et al. 2000, Physica D 144:358",
        params: &[],
        pairwise: true,
        compute: |t| kuramoto_r(t.trains, t.t0_ms, t.t1_ms, t.dt_ms),
    },
    Measure {
        column: "spike_sync",
        label: "SPIKE-synchronization",
        definition: "fraction of spikes with a coincident spike in the other train, over pairs; null with no spike",
        citation: "Kreuz, Mulansky & Bozanic 2015, J. Neurophysiol. 113:3432",
        params: &[],
        pairwise: true,
        compute: |t| spike_sync_of(t.coincidences()),
    },
    Measure {
        column: "count_corr",
        label: "spike-count correlation",
        definition: "mean over pairs of the Pearson correlation of counts in bins; pairs with a constant count left out",
        citation: "de la Rocha et al. 2007, Nature 448:802",
        params: &["measures.bin_ms"],
        pairwise: true,
        compute: |t| mean(t.count_corr().iter().copied()),
    },
    Measure {
        column: "sttc",
        label: "spike time tiling coefficient",
        definition: "mean over pairs of the STTC with window +-dt; pairs with an empty train left out",
        citation: "Cutts & Eglen 2014, J. Neurosci. 34:14288",
        params: &["measures.sttc_dt_ms"],
        pairwise: true,
        compute: |t| mean(t.sttc().iter().copied()),
    },
    Measure {
        column: "kappa",
        label: "coherence kappa (Wang-Buzsaki)",
        definition: "mean over pairs of sum XY / sqrt(sum X sum Y), X, Y binary spike indicators in bins; silent neurons left out",
        citation: "Wang & Buzsaki 1996, J. Neurosci. 16:6402",
        params: &["measures.kappa_bin_ms"],
        pairwise: true,
        compute: |t| mean(t.kappa().iter().copied()),
    },
    Measure {
        column: "fano",
        label: "Fano factor of spike counts",
        definition: "mean over neurons that fired of the count variance / mean in bins (population variance)",
        citation: "Fano 1947, Phys. Rev. 72:26",
        params: &["measures.bin_ms"],
        pairwise: false,
        compute: |t| mean(t.neurons.iter().map(|s| s.fano)),
    },
    Measure {
        column: "lv",
        label: "local variation LV",
        definition: "mean over neurons with 3+ spikes of 3/(m-1) sum ((I_k - I_k+1) / (I_k + I_k+1))^2",
        citation: "Shinomoto et al. 2003, Neural Comput. 15:2823",
        params: &[],
        pairwise: false,
        compute: |t| mean(t.neurons.iter().map(|s| s.lv)),
    },
    Measure {
        column: "cv2",
        label: "CV2",
        definition: "mean over neurons with 3+ spikes of mean 2 |I_k+1 - I_k| / (I_k+1 + I_k)",
        citation: "Holt et al. 1996, J. Neurophysiol. 75:1806",
        params: &[],
        pairwise: false,
        compute: |t| mean(t.neurons.iter().map(|s| s.cv2)),
    },
    Measure {
        column: "pop_peak_hz",
        label: "population rhythm, peak frequency (Hz)",
        definition: "lowest peak above 0 Hz with half the largest power or more of the population count's Welch spectrum (the fundamental); null with no spike",
        citation: "Welch 1967; Pikovsky & Kurths 1997, Phys. Rev. Lett. 78:775",
        params: &["measures.psd_bin_ms", "measures.psd_segment_ms"],
        pairwise: false,
        compute: |t| t.peak().map(|(f, _)| f),
    },
    Measure {
        column: "pop_peak_q",
        label: "population rhythm, quality f_peak / FWHM",
        definition: "that peak's frequency over its full width at half maximum; null if it never falls to half",
        citation: "Pikovsky & Kurths 1997, Phys. Rev. Lett. 78:775",
        params: &["measures.psd_bin_ms", "measures.psd_segment_ms"],
        pairwise: false,
        compute: |t| t.peak().and_then(|(_, q)| q),
    },
];

/// Mean of the values that are there, summed in order (over neurons, or
/// over pairs: up to 5e9 of them, hence the u64); `None` if none is.
fn mean(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let (sum, n) = values.flatten().fold((0.0, 0u64), |(s, n), x| (s + x, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// Every measure of a trial, in [`MEASURES`] order. Pairwise measures are
/// null for a single neuron (its synchrony is meaningless); a non-finite
/// value is stored as null, never as NaN.
pub fn compute_all(t: &TrialView) -> Vec<Option<f64>> {
    MEASURES
        .iter()
        .map(|m| {
            if m.pairwise && t.windows.len() < 2 {
                None
            } else {
                (m.compute)(t).filter(|x| x.is_finite())
            }
        })
        .collect()
}

/// The per-pair measures of `pairs.parquet`, in column order.
pub const PAIR_COLUMNS: [&str; 4] = ["count_corr", "sttc", "kappa", "spike_sync"];

/// One pair's values of [`PAIR_COLUMNS`].
pub type PairValues = [Option<f64>; PAIR_COLUMNS.len()];

/// [`PAIR_COLUMNS`] for every pair i < j, in (i, j) order. The trial's
/// `count_corr`, `sttc` and `kappa` are the means of these over the pairs
/// where they are defined; its `spike_sync` is their spike-weighted mean
/// (all coincidences over all spikes).
pub fn pair_values(t: &TrialView) -> Vec<PairValues> {
    let (cc, sttc, kappa, coincidences) = (t.count_corr(), t.sttc(), t.kappa(), t.coincidences());
    (0..cc.len())
        .map(|k| {
            let sync = spike_sync_of(std::slice::from_ref(&coincidences[k]));
            [cc[k], sttc[k], kappa[k], sync].map(|v| v.filter(|x| x.is_finite()))
        })
        .collect()
}

/// The measure with this column name.
pub fn find(column: &str) -> Option<&'static Measure> {
    MEASURES.iter().find(|m| m.column == column)
}

/// The column names, comma-separated (for help and errors).
pub fn column_list() -> String {
    MEASURES.iter().map(|m| m.column).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::{in_window, train_stats};

    #[test]
    fn columns_are_unique_and_parameters_are_known_keys() {
        let p = MeasureParams::default();
        for (k, m) in MEASURES.iter().enumerate() {
            assert!(MEASURES[..k].iter().all(|o| o.column != m.column), "{}", m.column);
            for key in m.params {
                assert!(p.get(key).is_some(), "{}: {key}", m.column);
            }
            assert!(!m.definition.is_empty() && !m.label.is_empty());
        }
    }

    #[test]
    fn the_readme_trials_table_lists_exactly_the_registry() {
        // The rows of README "Output schema" between n_spikes and
        // diverged_at_ms are the measure columns, in order.
        let readme = include_str!("../../README.md");
        let start = readme.find("`trials.parquet`: one row per trial").unwrap();
        let table = &readme[start..readme[start..].find("`neurons.parquet`").unwrap() + start];
        let columns: Vec<&str> = table
            .lines()
            .filter_map(|l| l.strip_prefix("| `")?.split('`').next())
            .skip_while(|&c| c != "n_spikes")
            .skip(1)
            .take_while(|&c| c != "diverged_at_ms")
            .collect();
        let registry: Vec<&str> = MEASURES.iter().map(|m| m.column).collect();
        assert_eq!(columns, registry);
        // And each but the firing statistics has a paragraph under "### Measures".
        let section = &readme[readme.find("### Measures").unwrap()..];
        let headings: String = section.lines().filter(|l| l.starts_with("- **")).collect();
        for c in &registry[2..] {
            assert!(headings.contains(&format!("`{c}`")), "README: no paragraph for {c}");
        }
    }

    #[test]
    fn a_single_neuron_has_rates_but_no_pairwise_measure() {
        let train: Vec<f64> = (0..50).map(|k| 5.0 + 20.0 * k as f64 + (k % 3) as f64).collect();
        let (t0, t1) = (0.0, 1000.0);
        let neurons = [train_stats(&train, t0, t1, 10.0)];
        let trains = [train.as_slice()];
        let windows = [in_window(&train, t0, t1)];
        let view = TrialView {
            trains: &trains,
            windows: &windows,
            neurons: &neurons,
            t0_ms: t0,
            t1_ms: t1,
            dt_ms: 0.01,
            params: &MeasureParams::default(),
            chi: Some(1.0),
            prepared: Prepared::default(),
        };
        let values = compute_all(&view);
        for (m, v) in MEASURES.iter().zip(&values) {
            assert!(!m.pairwise || v.is_none(), "{}: {v:?}", m.column);
        }
        let value = |c: &str| values[MEASURES.iter().position(|m| m.column == c).unwrap()];
        assert_eq!(value("rate_hz"), Some(50.0));
        for c in ["cv_isi", "fano", "lv", "cv2", "pop_peak_hz"] {
            assert!(value(c).is_some(), "{c}");
        }
    }
}
