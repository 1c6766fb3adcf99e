"""What Arrow readers see in the tables' schema (README "Output schema"):
plain utf8 strings and the units of the swept columns as field metadata."""

import json

import pyarrow as pa
import pyarrow.parquet as pq

UNITS = {"noise_sigma": "uA/cm^2 ms^0.5", "network_strength": "dimensionless"}


def test_status_is_plain_utf8_not_string_view(out):
    # polars' own Arrow schema would say string_view; spikesweep stores plain utf8.
    for f in [out / "trials.parquet", *sorted(out.glob("shards/*/trials.parquet"))]:
        assert pq.read_schema(f).field("status").type == pa.string(), f
    assert pq.read_table(out / "trials.parquet").column("status").type == pa.string()


def test_swept_columns_carry_their_units(out):
    for table in ["trials", "summary"]:
        schema = pq.read_schema(out / f"{table}.parquet")
        for column, unit in UNITS.items():
            assert schema.field(column).metadata == {b"unit": unit.encode()}, (table, column)
        assert schema.field("point").metadata is None
    for table in ["trials", "neurons", "spikes", "summary"]:
        meta = pq.read_metadata(out / f"{table}.parquet").metadata
        assert json.loads(meta[b"spikesweep.units"]) == UNITS
