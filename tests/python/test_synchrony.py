"""spike_sync in trials.parquet agrees with PySpike, the reference
implementation of SPIKE-synchronization (Kreuz et al. 2015), on the very
spike trains the run produced."""

import subprocess

import numpy as np
import polars as pl
import pyspike as spk

from conftest import BIN

# Three neurons with different drive (two below threshold, firing only with
# noise),
# so that trains with 0, 1, few and many spikes in the window all occur.
SPEC = """
name = "sync_check"
seed = 11
replicates = 4
[time]
dt_ms = 0.02
duration_ms = 500.0
transient_ms = 100.0
[neuron]
i_inj = [10.0, 3.0, -2.0]
[network]
n = 3
strength = 0.02
[sweep]
"noise.sigma" = [0.0, 1.0, 2.0, 3.0, 5.0]
"""
T0, T1 = 100.0, 500.0


def test_spike_sync_matches_pyspike_to_1e_9(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    out = tmp_path / "out"
    subprocess.run([str(BIN), "run", str(spec), "--out", str(out), "--quiet"], check=True)
    trials = pl.read_parquet(out / "trials.parquet")
    spikes = pl.read_parquet(out / "spikes.parquet")
    compared = 0
    sizes = set()
    for row in trials.iter_rows(named=True):
        trains = []
        for neuron in range(3):
            t = spikes.filter(
                (pl.col("trial") == row["trial"]) & (pl.col("neuron") == neuron)
                & (pl.col("t_ms") >= T0) & (pl.col("t_ms") < T1)
            )["t_ms"].to_numpy()
            sizes.add(min(len(t), 3))
            trains.append(spk.SpikeTrain(t, [T0, T1]))
        expected = spk.spike_sync(trains)
        if sum(len(s.spikes) for s in trains) == 0:
            # Documented difference: PySpike says 1.0 for silence, we say null.
            assert row["spike_sync"] is None
            continue
        assert abs(row["spike_sync"] - expected) < 1e-9, (row["trial"], row["spike_sync"], expected)
        compared += 1
    assert compared == trials.height, "every trial here has spikes"
    assert sizes == {0, 1, 2, 3}, f"edge cases covered: trains of 0, 1, 2 and 3+ spikes ({sizes})"


def test_pyspike_agrees_on_hand_made_edge_cases():
    # The conventions our Rust unit tests pin by hand, checked against the
    # reference: identical trains, half-period shift, single spikes.
    a = np.arange(5.0, 1000.0, 10.0)
    assert spk.spike_sync([spk.SpikeTrain(a, [0, 1000]), spk.SpikeTrain(a, [0, 1000])]) == 1.0
    b = a + 5.0
    b = b[b < 1000]
    assert spk.spike_sync([spk.SpikeTrain(a, [0, 1000]), spk.SpikeTrain(b, [0, 1000])]) == 0.0
    assert spk.spike_sync([spk.SpikeTrain([10.0], [0, 100]), spk.SpikeTrain([11.0], [0, 100])]) == 1.0
    assert spk.spike_sync([spk.SpikeTrain([10.0], [0, 100]), spk.SpikeTrain([], [0, 100])]) == 0.0
