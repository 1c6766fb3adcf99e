"""Shared fixtures: run the spikesweep binary once on a small spec."""

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("SPIKESWEEP_BIN", REPO / "target" / "release" / "spikesweep")).resolve()

# A shortened seed pair: same network and sweep shape, 3 replicates, 300 ms.
SMALL_SPEC = """
name = "seed_pair"
seed = 1
replicates = 3
[time]
dt_ms = 0.02
duration_ms = 300.0
transient_ms = 100.0
[neuron]
i_inj = 10.0
v0_mv = [-65.0, -70.0]
[network]
n = 2
topology = "all-to-all"
[synapse]
v_rev_mv = 20.0
w = 1.0
[sweep]
"noise.sigma" = [0.0, 2.0]
"network.strength" = [0.0, 0.1]
"""

N_TRIALS = 2 * 2 * 3
N_NEURONS = 2
TRANSIENT_MS, DURATION_MS = 100.0, 300.0


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes minutes (deselect with -m 'not slow')")


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    """A folder holding results/seed_pair/ written by the real binary."""
    assert BIN.exists(), f"{BIN} missing: run `cargo build` first (make test does)"
    root = tmp_path_factory.mktemp("run")
    spec = root / "small.toml"
    spec.write_text(SMALL_SPEC)
    subprocess.run([str(BIN), "run", str(spec), "--quiet"], cwd=root, check=True, capture_output=True)
    # The same spec as two shards, beside it (results/seed_pair/shards/K-of-2/).
    for k in range(2):
        subprocess.run([str(BIN), "run", str(spec), "--quiet", "--shard", f"{k}/2"], cwd=root, check=True,
                       capture_output=True)
    return root


@pytest.fixture(scope="session")
def out(workdir):
    return workdir / "results" / "seed_pair"
