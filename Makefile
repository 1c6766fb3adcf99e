# spikesweep: `make help` lists the targets.
SPEC   ?= experiments/seed_pair.toml
ARGS   ?=
CARGO  ?= cargo
PYTHON ?= python3
VENV   := .venv
VPY    := $(VENV)/bin/python

.DEFAULT_GOAL := help
.PHONY: help run plan build test test-rust test-python bench lint fmt clean

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'
	@echo "  variables: SPEC=$(SPEC)  ARGS='extra flags for spikesweep run, e.g. --force --threads 4'"

run: ## Run SPEC on all cores (release build); prints where the tables are
	$(CARGO) build --release --quiet
	./target/release/spikesweep run $(SPEC) $(ARGS)

plan: ## Validate SPEC and show its sweep and cost
	$(CARGO) build --release --quiet
	./target/release/spikesweep plan $(SPEC)

build: ## Release build
	$(CARGO) build --release

test: test-rust test-python ## The whole test suite (what .ci/run calls)

test-rust: ## Rust unit, golden and CLI tests
	$(CARGO) test

test-python: $(VENV)/.installed ## Read the tables back with pyarrow, polars, pandas, DuckDB
	$(CARGO) build --quiet
	SPIKESWEEP_BIN=target/debug/spikesweep $(VPY) -m pytest -q tests/python

$(VENV)/.installed: tests/python/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
	touch $@

bench: ## Benchmarks (release); each prints its ratio against a baseline measured in the same run
	$(CARGO) bench --bench reductions

lint: ## rustfmt and clippy, warnings are errors
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

fmt: ## Format the code
	$(CARGO) fmt

clean: ## Remove build outputs and the test virtualenv (not results/)
	$(CARGO) clean
	rm -rf $(VENV)
