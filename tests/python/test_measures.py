"""The measures of trials.parquet and neurons.parquet agree with their
reference implementations (Elephant, scipy, and an independent numpy
kappa) on the very spike trains a real run produced, to 1e-9."""

import subprocess
import warnings

import numpy as np
import polars as pl
import pytest
import quantities as pq
import neo
import scipy.signal
from elephant import statistics, spike_train_correlation
from elephant.conversion import BinnedSpikeTrain

from conftest import BIN

# Six neurons, two of them below threshold (firing only with noise), with
# a shared noise fraction so that correlations are not all near zero;
# silent, sparse and regular trains all occur across the sweep.
SPEC = """
name = "measures_check"
seed = 5
replicates = 3
[time]
dt_ms = 0.02
duration_ms = 1100.0
transient_ms = 100.0
[neuron]
i_inj = [10.0, 8.0, 6.5, 12.0, 3.0, -3.0]
[network]
n = 6
strength = 0.02
[noise]
shared = 0.5
[measures]
bin_ms = 10.0
sttc_dt_ms = 5.0
kappa_bin_ms = 2.0
psd_bin_ms = 1.0
psd_segment_ms = 250.0
[sweep]
"noise.sigma" = [0.0, 1.0, 3.0, 6.0]
"""
T0, T1, N = 100.0, 1100.0, 6
BIN_MS, STTC_DT_MS, KAPPA_BIN_MS, PSD_BIN_MS, PSD_SEGMENT_MS = 10.0, 5.0, 2.0, 1.0, 250.0
TOL = 1e-9  # same formulas, different summation order


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("measures")
    spec = root / "spec.toml"
    spec.write_text(SPEC)
    out = root / "out"
    subprocess.run([str(BIN), "run", str(spec), "--out", str(out), "--quiet"], check=True)
    trials = pl.read_parquet(out / "trials.parquet")
    neurons = pl.read_parquet(out / "neurons.parquet")
    spikes = pl.read_parquet(out / "spikes.parquet").filter((pl.col("t_ms") >= T0) & (pl.col("t_ms") < T1))
    windows = {
        t: [np.sort(spikes.filter((pl.col("trial") == t) & (pl.col("neuron") == i))["t_ms"].to_numpy())
            for i in range(N)]
        for t in trials["trial"]
    }
    return trials, neurons, windows


def neo_train(t):
    return neo.SpikeTrain(t, units="ms", t_start=T0, t_stop=T1)


def mean_or_none(values):
    values = [v for v in values if np.isfinite(v)]
    return float(np.mean(values)) if values else None


def close(ours, expected):
    if expected is None:
        return ours is None
    return ours is not None and abs(ours - expected) <= TOL * max(1.0, abs(expected))


def pairs():
    return [(i, j) for i in range(N) for j in range(i + 1, N)]


def test_the_run_covers_silent_sparse_and_busy_trains(run):
    trials, _, windows = run
    counts = {len(w) for ws in windows.values() for w in ws}
    # Silent neurons (the null cases) and busy ones (the numbers) both occur.
    assert 0 in counts and max(counts) > 50, counts
    assert trials.height == 12


def test_count_corr_matches_elephant_correlation_coefficient(run):
    trials, _, windows = run
    for row in trials.iter_rows(named=True):
        binned = BinnedSpikeTrain([neo_train(w) for w in windows[row["trial"]]], bin_size=BIN_MS * pq.ms,
                                  t_start=T0 * pq.ms, t_stop=T1 * pq.ms)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Elephant warns of silent neurons (NaN rows)
            c = spike_train_correlation.correlation_coefficient(binned)
        # Ours leaves out pairs with a constant count; Elephant gives NaN there.
        expected = mean_or_none([c[i, j] for i, j in pairs()])
        assert close(row["count_corr"], expected), (row["trial"], row["count_corr"], expected)


def test_sttc_matches_elephant_with_an_exact_window(run, monkeypatch):
    # Elephant compares spike distances with np.isclose(a, b, atol=dt), whose
    # default rtol=1e-5 widens the window by 1e-5 |t| (10 ns per second of
    # spike time); Cutts & Eglen's definition, and ours, is |a - b| <= dt.
    # Set rtol to 0 for the comparison; the next test shows the difference.
    isclose = np.isclose
    monkeypatch.setattr(np, "isclose", lambda a, b, rtol=0.0, atol=0.0: isclose(a, b, rtol=0.0, atol=atol))
    trials, _, windows = run
    for row in trials.iter_rows(named=True):
        ws = windows[row["trial"]]
        values = [spike_train_correlation.spike_time_tiling_coefficient(neo_train(ws[i]), neo_train(ws[j]),
                                                                       dt=STTC_DT_MS * pq.ms)
                  for i, j in pairs() if len(ws[i]) and len(ws[j])]
        expected = mean_or_none(values)
        assert close(row["sttc"], expected), (row["trial"], row["sttc"], expected)


def test_elephant_sttc_window_is_wider_than_dt_by_its_isclose_rtol():
    # Spikes 5.005 ms apart at t ~ 1000 ms with dt = 5 ms: outside the window
    # by the definition (ours gives P = 0, tests in src/observe/pairs.rs),
    # inside by Elephant's isclose (5 + 1e-5 * 1005 = 5.01005).
    a, b = [1000.0], [1005.005]
    sttc = spike_train_correlation.spike_time_tiling_coefficient(
        neo.SpikeTrain(a, units="ms", t_start=0, t_stop=2000), neo.SpikeTrain(b, units="ms", t_start=0, t_stop=2000),
        dt=5 * pq.ms)
    assert sttc == 1.0  # Elephant: both P are 1; by the definition it would be negative


def kappa_numpy(ws):
    edges = np.arange(T0, T1 + KAPPA_BIN_MS / 2, KAPPA_BIN_MS)
    x = [(np.histogram(w, edges)[0] > 0).astype(float) for w in ws]
    return mean_or_none([x[i] @ x[j] / np.sqrt(x[i].sum() * x[j].sum())
                         for i, j in pairs() if x[i].sum() and x[j].sum()])


def test_kappa_matches_an_independent_numpy_implementation(run):
    trials, _, windows = run
    for row in trials.iter_rows(named=True):
        expected = kappa_numpy(windows[row["trial"]])
        assert close(row["kappa"], expected), (row["trial"], row["kappa"], expected)


def test_lv_and_cv2_match_elephant_per_neuron_and_per_trial(run):
    trials, neurons, windows = run
    checked = 0
    for row in trials.iter_rows(named=True):
        per = neurons.filter(pl.col("trial") == row["trial"]).sort("neuron")
        lvs, cv2s = [], []
        for i, w in enumerate(windows[row["trial"]]):
            lv = cv2 = None
            if len(w) >= 3:
                lv, cv2 = statistics.lv(np.diff(w)), statistics.cv2(np.diff(w))
                lvs.append(lv)
                cv2s.append(cv2)
                checked += 1
            assert close(per["lv"][i], lv) and close(per["cv2"][i], cv2), (row["trial"], i)
        assert close(row["lv"], mean_or_none(lvs)) and close(row["cv2"], mean_or_none(cv2s)), row["trial"]
    assert checked > 20


def test_fano_matches_elephant_fanofactor_over_the_windows_bins(run):
    trials, neurons, windows = run
    n_bins = int(round((T1 - T0) / BIN_MS))
    for row in trials.iter_rows(named=True):
        per = neurons.filter(pl.col("trial") == row["trial"]).sort("neuron")
        fanos = []
        for i, w in enumerate(windows[row["trial"]]):
            pieces = [w[(w >= T0 + k * BIN_MS) & (w < T0 + (k + 1) * BIN_MS)] for k in range(n_bins)]
            ff = statistics.fanofactor(pieces)
            ff = None if np.isnan(ff) else ff  # Elephant: NaN for a neuron that never fired; we: null
            assert close(per["fano"][i], ff), (row["trial"], i, per["fano"][i], ff)
            if ff is not None:
                fanos.append(ff)
        assert close(row["fano"], mean_or_none(fanos)), row["trial"]


def test_population_peak_matches_scipy_welch(run):
    trials, _, windows = run
    compared = 0
    for row in trials.iter_rows(named=True):
        edges = np.arange(T0, T1 + PSD_BIN_MS / 2, PSD_BIN_MS)
        count = sum(np.histogram(w, edges)[0] for w in windows[row["trial"]]).astype(float)
        nperseg = int(PSD_SEGMENT_MS / PSD_BIN_MS)
        f, p = scipy.signal.welch(count - count.mean(), fs=1000.0 / PSD_BIN_MS, window="hann", nperseg=nperseg,
                                  noverlap=nperseg // 2)
        if not p[1:].max() > 0:
            assert row["pop_peak_hz"] is None
            continue
        # The lowest local maximum with half the largest power or more
        # (the fundamental, not a harmonic of sharp volleys).
        largest = p[1:].max()
        k = next(k for k in range(1, len(p))
                 if p[k] >= largest / 2 and p[k] >= p[k - 1] and (k + 1 == len(p) or p[k] >= p[k + 1]))
        assert row["pop_peak_hz"] == pytest.approx(f[k], abs=1e-9), row["trial"]
        # Quality: f_peak over the full width at half maximum, crossings
        # interpolated linearly between bins on scipy's own spectrum.
        half = p[k] / 2
        left = next((j for j in range(k - 1, -1, -1) if p[j] <= half), None)
        right = next((j for j in range(k + 1, len(p)) if p[j] <= half), None)
        q = None
        if left is not None and right is not None:
            fl = f[left] + (half - p[left]) / (p[left + 1] - p[left]) * (f[left + 1] - f[left])
            fr = f[right - 1] + (half - p[right - 1]) / (p[right] - p[right - 1]) * (f[right] - f[right - 1])
            q = f[k] / (fr - fl)
        # 1e-6: the interpolated crossings amplify the spectra's rounding.
        assert (row["pop_peak_q"] is None) == (q is None) and (q is None or abs(row["pop_peak_q"] - q) < 1e-6 * q)
        compared += 1
    assert compared >= 9
