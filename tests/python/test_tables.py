"""The tables load as they are in pyarrow, polars, pandas and DuckDB, and
agree with each other (row counts, columns, units in names)."""

import re
import subprocess
import sys

import duckdb
import pandas as pd
import polars as pl
import pyarrow.parquet as pq

from conftest import DURATION_MS, N_NEURONS, N_TRIALS, REPO, SMALL_SPEC, TRANSIENT_MS

TRIAL_COLUMNS = [
    "trial", "point", "replicate", "seed", "noise_sigma", "network_strength",
    "status", "n_spikes", "rate_hz", "cv_isi", "chi", "kuramoto_r", "spike_sync",
    "count_corr", "sttc", "kappa", "fano", "lv", "cv2", "pop_peak_hz", "pop_peak_q",
    "diverged_at_ms", "n_clamped", "wall_ms",
]


def test_pyarrow_reads_schema_rows_and_metadata(out):
    trials = pq.read_table(out / "trials.parquet")
    assert trials.column_names == TRIAL_COLUMNS
    assert str(trials.schema.field("trial").type) == "uint32"
    assert str(trials.schema.field("seed").type) == "uint64"
    assert str(trials.schema.field("rate_hz").type) == "double"
    assert trials.num_rows == N_TRIALS
    neurons = pq.read_table(out / "neurons.parquet")
    assert neurons.column_names == ["trial", "neuron", "n_spikes", "rate_hz", "cv_isi", "mean_isi_ms", "fano", "lv", "cv2"]
    assert neurons.num_rows == N_TRIALS * N_NEURONS
    spikes = pq.read_table(out / "spikes.parquet")
    assert spikes.column_names == ["trial", "neuron", "t_ms"]
    meta = pq.read_metadata(out / "spikes.parquet").metadata  # file key-value metadata
    assert meta[b"spikesweep.spec"].decode() == SMALL_SPEC
    assert meta[b"spikesweep.schema_version"] == b"2"
    assert meta[b"spikesweep.table"] == b"spikes"


def test_polars_counts_agree_across_tables(out):
    trials = pl.read_parquet(out / "trials.parquet")
    neurons = pl.read_parquet(out / "neurons.parquet")
    spikes = pl.read_parquet(out / "spikes.parquet")
    assert trials["status"].to_list() == ["ok"] * N_TRIALS
    # n_spikes counts the analysis window; spikes.parquet holds every spike.
    in_window = spikes.filter((pl.col("t_ms") >= TRANSIENT_MS) & (pl.col("t_ms") < DURATION_MS))
    assert in_window.height == neurons["n_spikes"].sum() == trials["n_spikes"].sum()
    assert in_window.height > 0
    # trial-level rate is the mean over its neurons
    per_trial = neurons.group_by("trial").agg(pl.col("rate_hz").mean()).sort("trial")
    # (summation order may differ: 1e-9 Hz is far below any real difference)
    assert all(abs(a - b) < 1e-9 for a, b in zip(per_trial["rate_hz"], trials["rate_hz"]))
    # sorted by trial, neuron, time
    assert spikes.equals(spikes.sort(["trial", "neuron", "t_ms"]))


def test_pandas_reads_the_swept_parameters(out):
    trials = pd.read_parquet(out / "trials.parquet")
    assert sorted(trials["noise_sigma"].unique()) == [0.0, 2.0]
    assert sorted(trials["network_strength"].unique()) == [0.0, 0.1]
    assert trials.groupby(["noise_sigma", "network_strength"]).size().tolist() == [3, 3, 3, 3]


def test_duckdb_queries_the_files_directly(out):
    con = duckdb.connect()
    n, = con.execute(f"select count(*) from read_parquet('{out}/neurons.parquet')").fetchone()
    assert n == N_TRIALS * N_NEURONS
    rows = con.execute(
        f"select noise_sigma, avg(rate_hz) from read_parquet('{out}/trials.parquet') "
        "group by noise_sigma order by noise_sigma"
    ).fetchall()
    assert [r[0] for r in rows] == [0.0, 2.0]
    assert all(40 < r[1] < 120 for r in rows), rows  # HH at I = 10 fires ~68 Hz


def readme_snippets():
    text = (REPO / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_snippets_run_against_a_real_run(workdir):
    snippets = readme_snippets()
    assert len(snippets) >= 3, "README shows polars, pandas and DuckDB"
    for code in snippets:
        proc = subprocess.run([sys.executable, "-c", code], cwd=workdir, capture_output=True, text=True)
        assert proc.returncode == 0, f"README snippet failed:\n{code}\n{proc.stderr}"


def test_shards_read_as_one_table_with_a_glob_before_merging(out):
    glob = str(out / "shards" / "*" / "trials.parquet")
    lazy = pl.scan_parquet(glob).collect().sort("trial")
    whole = pl.read_parquet(out / "trials.parquet")
    assert lazy.drop("wall_ms").equals(whole.drop("wall_ms"))
    n, = duckdb.connect().execute(f"select count(distinct trial) from read_parquet('{glob}')").fetchone()
    assert n == N_TRIALS
    spikes = pl.scan_parquet(str(out / "shards" / "*" / "spikes.parquet")).collect()
    assert spikes.height == pl.read_parquet(out / "spikes.parquet").height
