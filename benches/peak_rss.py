#!/usr/bin/env python3
"""Peak resident memory of spikesweep runs of 1e4 and 1e5 short trials.

Trials are written to disk as they finish and merged in bounded windows, so
peak RSS must not grow with the number of trials (target: < 300 MB at 1e5).
Each run's own peak comes from os.wait4 (the child's rusage), not from a
timed test. Usage: benches/peak_rss.py [path/to/spikesweep]
"""
import os
import subprocess
import sys
import tempfile
import time

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/spikesweep"

SPEC = """
name = "rss"
seed = 1
replicates = {reps}
[time]
dt_ms = 0.01
duration_ms = 10.0
[network]
n = 2
strength = 0.1
[noise]
sigma = 3.0
[sweep]
"neuron.i_inj" = {{ linspace = [5.0, 50.0, 100] }}
"""


def peak_rss_mb(trials):
    with tempfile.TemporaryDirectory() as tmp:
        spec = os.path.join(tmp, "spec.toml")
        with open(spec, "w") as f:
            f.write(SPEC.format(reps=trials // 100))
        t0 = time.perf_counter()
        proc = subprocess.Popen([BIN, "run", spec, "--out", os.path.join(tmp, "out"), "--quiet"],
                                stdout=subprocess.PIPE, text=True)
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        if status != 0:
            sys.exit(f"run of {trials} trials failed:\n{out}")
        return usage.ru_maxrss / 1024.0, wall  # ru_maxrss is in KiB on Linux


def main():
    rows = [(n, *peak_rss_mb(n)) for n in (10_000, 100_000)]
    print("trials    peak RSS    wall")
    for n, rss, wall in rows:
        print(f"{n:>7}  {rss:8.1f} MB  {wall:6.1f} s")
    ratio = rows[1][1] / rows[0][1]
    print(f"peak RSS ratio 1e5/1e4 = {ratio:.2f} (1.0 = flat; target: < 300 MB at 1e5)")


if __name__ == "__main__":
    main()
