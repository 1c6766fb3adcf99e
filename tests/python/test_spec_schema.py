"""spikesweep.schema.json checks the example specs and rejects mistakes,
as an editor using it would (jsonschema over the TOML parsed by tomllib)."""

import json
import tomllib
from pathlib import Path

import jsonschema
import pytest

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "spikesweep.schema.json").read_text())
SPECS = sorted((REPO / "experiments").glob("*.toml"))


def validator():
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    return jsonschema.Draft7Validator(SCHEMA)


@pytest.mark.parametrize("path", SPECS, ids=[p.name for p in SPECS])
def test_every_example_spec_validates(path):
    spec = tomllib.loads(path.read_text())
    errors = [e.message for e in validator().iter_errors(spec)]
    assert errors == []


def minimal():
    return {"name": "t", "time": {"duration_ms": 10.0}}


@pytest.mark.parametrize(
    "mistake",
    [
        {"time": {"duration_ms": 10.0, "dt_mss": 0.01}},  # misspelled key in a section
        {"replicate": 4},  # misspelled top-level key
        {"noise": {"sigma": "2"}},  # a string for a number
        {"integrator": {"method": "rk4"}},  # not a method
        {"sweep": {"noise.sigmaa": [1.0], "nosie.sigma": [1.0]}},  # no such section
        {"sweep": {"noise.sigma": {"linspace": [0.0, 1.0]}}},  # linspace takes three numbers
        {"network": {"topology": "grid"}},  # not a topology
        {"time": {"dt_ms": 0.01}},  # duration_ms is required
    ],
)
def test_the_schema_rejects_mistakes(mistake):
    spec = minimal()
    for key, value in mistake.items():
        spec[key] = value
    assert list(validator().iter_errors(spec)) != []


def test_the_minimal_spec_and_a_user_model_validate():
    spec = minimal()
    spec["neuron"] = {"model": "my_cell.toml", "g_kca": 2.0, "i_inj": {"uniform": [9.0, 11.0]}}
    assert list(validator().iter_errors(spec)) == []
