#!/usr/bin/env python3
"""Exit 0 when two run directories hold equal tables (all columns but
wall_ms, the only one that varies between identical runs)."""
import sys

import polars as pl

a, b = sys.argv[1], sys.argv[2]
for table in ["trials", "neurons", "spikes", "summary"]:
    x = pl.read_parquet(f"{a}/{table}.parquet")
    y = pl.read_parquet(f"{b}/{table}.parquet")
    if "wall_ms" in x.columns:
        x, y = x.drop("wall_ms"), y.drop("wall_ms")
    if not x.equals(y):
        sys.exit(f"{table}.parquet differs between {a} and {b}")
    print(f"  {table}.parquet: {x.height} rows, equal")
