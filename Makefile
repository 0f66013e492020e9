# make help: list the targets. Every target sets up .venv first (idempotent).
PY      := .venv/bin/python
PIP     := .venv/bin/pip
STAMP   := .venv/.installed
SHARED  ?= $(or $(VECTORFORGE_SHARED),../shared)
DATA    ?= ./vf-data
PORT    ?= 6333

.PHONY: help setup run test lint typecheck bench clean

help:  ## this list
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml requirements.txt
	test -x $(PY) || python3 -m venv .venv
	$(PIP) install -q --upgrade pip
	# torch first and pinned: any other spec pulls a multi-GB CUDA build.
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -r requirements.txt
	$(PIP) install -q --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)  ## create .venv and install pinned dependencies

run: setup  ## import SciFact into $(DATA), evaluate it on its test gold set, search it, serve the dashboard
	HF_HUB_OFFLINE=1 .venv/bin/vectorforge import --data $(DATA) --collection scifact --beir $(SHARED)/data/scifact
	.venv/bin/vectorforge goldset import scifact --data $(DATA) --beir $(SHARED)/data/scifact --split test
	# exit 1 means a regression against the previous run: shown, and the server still starts
	-HF_HUB_OFFLINE=1 .venv/bin/vectorforge eval run --data $(DATA) --collection scifact --goldset scifact --markdown $(DATA)/scifact-report.md
	HF_HUB_OFFLINE=1 .venv/bin/vectorforge search --data $(DATA) --collection scifact -k 5 "vitamin D deficiency increases the risk of depression"
	HF_HUB_OFFLINE=1 .venv/bin/vectorforge serve --data $(DATA) --host 127.0.0.1 --port $(PORT)

lint: setup  ## ruff
	.venv/bin/ruff check vectorforge tests bench
	.venv/bin/ruff format --check vectorforge tests bench

typecheck: setup  ## mypy (strict) on the package
	.venv/bin/mypy

test: lint typecheck  ## lint, type-check, then the whole test suite
	HF_HUB_OFFLINE=1 .venv/bin/pytest -q --durations=30; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; rc=0; fi; exit $$rc

bench: setup  ## all benchmarks (long); results in bench/results/
	HF_HUB_OFFLINE=1 $(PY) bench/engine_overhead.py
	HF_HUB_OFFLINE=1 $(PY) bench/filtered.py
	HF_HUB_OFFLINE=1 $(PY) bench/quality.py
	HF_HUB_OFFLINE=1 $(PY) bench/sharding.py
	HF_HUB_OFFLINE=1 $(PY) bench/resharding.py
	HF_HUB_OFFLINE=1 $(PY) bench/replication.py
	HF_HUB_OFFLINE=1 $(PY) bench/ray_cluster.py
	HF_HUB_OFFLINE=1 $(PY) bench/write_path.py
	HF_HUB_OFFLINE=1 $(PY) bench/faults.py
	HF_HUB_OFFLINE=1 $(PY) bench/sparse.py
	HF_HUB_OFFLINE=1 $(PY) bench/eval_report.py
	HF_HUB_OFFLINE=1 $(PY) bench/metrics.py

clean:  ## remove the venv and caches
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache .hypothesis
