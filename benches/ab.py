#!/usr/bin/env python3
"""A/B of two spikesweep binaries on one spec: their speed, and their bits.

Runs `A run SPEC` and `B run SPEC` by turns, the order swapped every round
(A B, B A, A B, ...), so that the drift of a shared machine (10-20 % within
minutes on the development VMs) falls on both alike. Prints each binary's
median and best neuron-steps/s as the run reports it (simulation only:
start-up and writing excluded) and the ratio of B's median to A's; then
compares the tables of the two last runs, every column but wall-clock
time, and says whether they are identical. Exits 1 if they differ, unless
--allow-diff (an opt-in mode whose bits are meant to change).

A speed claim smaller than the spread of the rounds is no claim: run more
rounds, or a longer spec. Needs pyarrow (`make test` installs it in .venv).

A binary whose spec keys differ (an older version: 0.2's tables were
`integrator.tables = true`, 0.3 tabulates by default) runs its own spec,
`--spec-a`; its tables then differ by design (--allow-diff).

Usage:
    benches/ab.py A B SPEC [--spec-a SPEC_A] [--rounds 8] [--threads 1] [--allow-diff]
    make ab A=/tmp/old-spikesweep B=target/release/spikesweep SPEC=experiments/seed_pair.toml
"""
import argparse
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

RATE = re.compile(r"simulating on \d+ threads?: ([0-9.e+-]+) neuron-steps/s")


def run(binary, spec, out, threads):
    """One run's neuron-steps/s; exits with the run's message if it fails."""
    proc = subprocess.run(
        [binary, "run", spec, "--out", out, "--force", "--quiet", "--threads", str(threads)],
        capture_output=True,
        text=True,
    )
    match = RATE.search(proc.stdout + proc.stderr)
    if proc.returncode != 0 or match is None:
        sys.exit(f"ab: {binary} run {spec} failed (exit {proc.returncode}):\n{proc.stderr.strip()}")
    return float(match.group(1))


def differing_tables(dir_a, dir_b):
    """Names of the Parquet tables whose columns (but wall-clock ones) differ."""
    import pyarrow.parquet as pq

    differ = []
    for path in sorted(Path(dir_a).glob("*.parquet")):
        a, b = pq.read_table(path), pq.read_table(Path(dir_b) / path.name)
        keep = [c for c in a.column_names if "wall" not in c]
        if a.column_names != b.column_names or not a.select(keep).equals(b.select(keep)):
            differ.append(path.name)
    return differ


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", help="baseline binary")
    parser.add_argument("b", help="candidate binary")
    parser.add_argument("spec", help="experiment spec (TOML)")
    parser.add_argument("--spec-a", help="the spec A runs, if not SPEC")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--allow-diff", action="store_true", help="differing tables are not an error")
    args = parser.parse_args()

    bins = {"A": args.a, "B": args.b}
    specs = {"A": args.spec_a or args.spec, "B": args.spec}
    rates = {"A": [], "B": []}
    with tempfile.TemporaryDirectory(prefix="spikesweep-ab-") as tmp:
        outs = {"A": f"{tmp}/a", "B": f"{tmp}/b"}
        for r in range(args.rounds):
            for who in ("A", "B") if r % 2 == 0 else ("B", "A"):
                rates[who].append(run(bins[who], specs[who], outs[who], args.threads))
        differ = differing_tables(outs["A"], outs["B"])

    for who in ("A", "B"):
        xs = rates[who]
        print(
            f"{who}: median {statistics.median(xs):.4e}  best {max(xs):.4e}  worst {min(xs):.4e}"
            f" neuron-steps/s over {len(xs)} runs  ({bins[who]})"
        )
    print(f"B / A (medians): {statistics.median(rates['B']) / statistics.median(rates['A']):.3f}")
    if differ:
        print(f"tables DIFFER: {', '.join(differ)}")
        return 0 if args.allow_diff else 1
    print("tables identical (every column but wall-clock time)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
