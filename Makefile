# spikesweep: `make help` lists the targets.
SPEC   ?= experiments/seed_pair.toml
ARGS   ?=
CARGO  ?= cargo
PYTHON ?= python3
VENV   := .venv
VPY    := $(VENV)/bin/python
# One profile for running and testing: after `make run`, `make test` builds
# only the test targets (the dependencies are shared). PROFILE=dev for a
# debug binary.
PROFILE ?= release
BIN     = target/$(if $(filter dev,$(PROFILE)),debug,$(PROFILE))/spikesweep
BUILD   = $(CARGO) build --profile $(PROFILE) --quiet
# Cluster and shard runs
SHARDS    ?= 4
NAME       = $(shell sed -n 's/^name *= *"\([^"]*\)".*/\1/p' $(SPEC) | head -n 1)
OUT       ?= results/$(NAME)
JOBS      ?= $(shell nproc)
MAX_ARRAY ?= 1000
CPUS      ?= 1
PARTITION ?=
TIME      ?=
MEM       ?=
SBATCH_ARGS ?=
WAIT      ?=
SLURM_ENV = SPEC=$(SPEC) OUT=$(OUT) SHARDS=$(SHARDS) MAX_ARRAY=$(MAX_ARRAY) CPUS=$(CPUS) PARTITION=$(PARTITION) \
	TIME=$(TIME) MEM=$(MEM) SBATCH_ARGS="$(SBATCH_ARGS)" WAIT=$(WAIT) BIN=$(BIN)

.DEFAULT_GOAL := help
.PHONY: help run plan build shards merge slurm slurm-resume test test-rust test-python test-reference test-slurm bench bench-rss ab work-precision lint fmt clean

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'
	@echo "  variables: SPEC=$(SPEC)  ARGS='extra flags for spikesweep run, e.g. --force --threads 4'"
	@echo "             SHARDS=$(SHARDS) OUT=results/<name> JOBS=$(JOBS) (local shards)"
	@echo "             MAX_ARRAY=$(MAX_ARRAY) CPUS=$(CPUS) PARTITION= TIME= MEM= SBATCH_ARGS= WAIT=1 (SLURM)"

run: ## Run SPEC on all cores (release build); prints where the tables are
	$(BUILD)
	$(BIN) run $(SPEC) $(ARGS)

plan: ## Validate SPEC and show its sweep and cost
	$(BUILD)
	$(BIN) plan $(SPEC)

build: ## Release build
	$(CARGO) build --release

shards: ## Run SPEC as SHARDS local processes (JOBS at a time), then merge into OUT
	$(BUILD)
	$(MAKE) --no-print-directory -j$(JOBS) $(foreach k,$(shell seq 0 $$(($(SHARDS) - 1))),shard-$(k))
	$(BIN) merge $(OUT)

# One shard; --resume makes it restartable (a finished shard is a no-op).
shard-%:
	$(BIN) run $(SPEC) --out $(OUT) --shard $*/$(SHARDS) --resume --quiet --threads 1

merge: ## Merge OUT/shards/K-of-N into the tables of the whole run in OUT
	$(BIN) merge $(OUT)

slurm: ## Submit SPEC as a SLURM array of SHARDS shards plus a merge job (afterok)
	$(BUILD)
	$(SLURM_ENV) scripts/slurm.sh submit

slurm-resume: ## Resubmit only the shards of OUT without a finished manifest, then merge
	$(BUILD)
	$(SLURM_ENV) scripts/slurm.sh resume

test: test-rust test-python ## The whole test suite (what .ci/run calls)

test-rust: ## Rust unit, golden and CLI tests (the release profile that make run builds)
	$(CARGO) test --profile $(PROFILE)

test-python: $(VENV)/.installed ## Read the tables back with pyarrow, polars, pandas, DuckDB
	$(BUILD)
	SPIKESWEEP_BIN=$(BIN) $(VPY) -m pytest -q -m "not slow" tests/python

test-reference: $(VENV)/.installed ## Regenerate the golden data in tests/data with scipy and compare (about 12 min)
	$(VPY) -m pytest -q -m slow tests/python/test_reference_data.py

$(VENV)/.installed: tests/python/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
	touch $@

bench: $(VENV)/.installed ## Benchmarks (release): spikesweep vs numpy side by side, reductions overhead
	$(CARGO) build --release --quiet
	PYTHON=$(VPY) $(CARGO) bench --bench ensemble
	$(CARGO) bench --bench reductions
	$(CARGO) bench --bench step -- --warm-up-time 1 --measurement-time 3

ab: $(VENV)/.installed ## A/B binaries A= and B= on SPEC: speed by turns, and whether their tables are identical
	@test -n "$(A)" -a -n "$(B)" || { echo "usage: make ab A=path/to/old-spikesweep B=path/to/new-spikesweep [SPEC=...] [AB_ARGS='--rounds 12']"; exit 2; }
	$(VPY) benches/ab.py $(A) $(B) $(SPEC) $(AB_ARGS)

work-precision: ## Spike-time error against the reference and speed, per method and dt
	$(CARGO) bench --bench work_precision

bench-rss: ## Peak RSS of runs of 1e4 and 1e5 short trials (memory must not grow with trials)
	$(BUILD)
	$(PYTHON) benches/peak_rss.py $(BIN)

test-slurm: $(VENV)/.installed ## Bring up a one-node SLURM cluster (root, Debian) and run the make slurm path end to end
	$(BUILD)
	BIN=$(BIN) tests/slurm/run.sh

lint: ## rustfmt and clippy, warnings are errors
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

fmt: ## Format the code
	$(CARGO) fmt

clean: ## Remove build outputs and the test virtualenv (not results/)
	$(CARGO) clean
	rm -rf $(VENV)
