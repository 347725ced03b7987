# Quick start: `make demo` and `make test`. Both set up .venv first (idempotent).
VENV ?= .venv
PY := $(VENV)/bin/python
SNN2HW := $(VENV)/bin/snn2hw

.PHONY: setup demo test lint bench clean

setup:
	@bash scripts/setup_env.sh

demo: setup
	$(SNN2HW) demo --out build/demo

test: setup
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check snn2hw tests benchmarks examples

bench: setup
	$(PY) benchmarks/run_all.py

clean:
	rm -rf build .pytest_cache
