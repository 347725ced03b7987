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
	$(VENV)/bin/ruff check snn2hw tests benchmarks examples scripts

bench: setup
	$(PY) -m pip install -q --no-deps -r benchmarks/requirements.txt
	$(PY) benchmarks/bench_lif.py
	$(PY) benchmarks/bench_event.py
	$(PY) benchmarks/bench_backends.py
	$(PY) benchmarks/deploy_digits.py

clean:
	rm -rf build .pytest_cache
