"""The golden reference data in tests/data/ is reproducible from the repo alone:
tests/data/generate.py recomputes every file, and its --check finds each spike
time within 1e-5 ms (the data's own accuracy) and each rate within 1e-4 Hz of the committed numbers."""

import re
import subprocess
import sys

import pytest

from conftest import REPO

GENERATOR = REPO / "tests" / "data" / "generate.py"
FILES = ("reference_pair.json", "reference_fi.json", "reference_models.json")


def check(*only):
    """Runs generate.py --check (on the given files only); its deviations."""
    run = subprocess.run([sys.executable, str(GENERATOR), "--check", *only], capture_output=True, text=True)
    report = run.stdout + run.stderr
    print(report)  # the largest deviation per file, shown by pytest -rP
    assert run.returncode == 0, f"generate.py --check found differences:\n{report}"
    found = dict((m[0], (float(m[1]), float(m[2]))) for m in
                 re.findall(r"(\S+\.json): max deviation spike/ms (\S+), rate/Hz (\S+),", report))
    return found, report


def test_generator_reproduces_the_reference_pair():
    # The pair alone takes seconds, so every `make test` checks the
    # generator against committed data; the full check is `make test-reference`.
    found, report = check("--only", "pair")
    assert sorted(found) == ["reference_pair.json"], report
    spike_ms, rate_hz = found["reference_pair.json"]
    assert spike_ms <= 1e-5 and rate_hz <= 1e-4, report


@pytest.mark.slow  # about 12 minutes on a shared 2-core machine (solve_ivp in 2 processes)
def test_generator_reproduces_the_committed_reference_data():
    found, report = check()
    assert sorted(found) == sorted(FILES), report
    for name, (spike_ms, rate_hz) in found.items():
        assert spike_ms <= 1e-5 and rate_hz <= 1e-4, f"{name}:\n{report}"
