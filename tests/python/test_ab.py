"""benches/ab.py, the A/B of two binaries: it must see identical bits as
identical and changed bits as changed, or a speed change that alters
results would pass as a pure speed-up."""

import importlib.util
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq

from conftest import BIN, REPO

AB = REPO / "benches" / "ab.py"

TINY = """
name = "ab"
replicates = 2
[time]
duration_ms = 20.0
[network]
n = 2
strength = 0.1
[noise]
sigma = 2.0
"""


def load_ab():
    spec = importlib.util.spec_from_file_location("ab", AB)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_binary_against_itself_is_identical_at_a_ratio_near_one(tmp_path):
    spec = tmp_path / "ab.toml"
    spec.write_text(TINY)
    done = subprocess.run([sys.executable, str(AB), str(BIN), str(BIN), str(spec), "--rounds", "2"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "tables identical" in done.stdout
    ratio = float(done.stdout.split("B / A (medians): ")[1].split()[0])
    # The same binary twice: only the machine's noise separates them (a
    # 40 ms run of a debug build; shared VMs drift 10-20 %, so only a
    # grossly wrong ratio, like a swapped or unparsed figure, fails).
    assert 0.2 < ratio < 5.0, done.stdout


def test_a_changed_value_is_a_difference_and_wall_time_is_not(tmp_path):
    ab = load_ab()
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    table = pa.table({"trial": [0, 1], "rate_hz": [50.0, 51.0], "wall_ms": [1.0, 2.0]})
    pq.write_table(table, a / "trials.parquet")
    pq.write_table(table.set_column(2, "wall_ms", pa.array([9.0, 9.0])), b / "trials.parquet")
    assert ab.differing_tables(a, b) == []
    pq.write_table(table.set_column(1, "rate_hz", pa.array([50.0, 51.000000000000007])), b / "trials.parquet")
    assert ab.differing_tables(a, b) == ["trials.parquet"]
