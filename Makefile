# Two commands work on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

# processes for the paper's independent rows / models: make paper-full PAPER_JOBS=2
PAPER_JOBS ?= 1

.PHONY: demo lint test slow bench discovery paper paper-full venv clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet torch==2.13.0 -c constraints.txt
	$(PIP) install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# the C++ kernels are built (once per machine, ~2 min) before the demo's timed part; without a
# compiler kanlab runs on its PyTorch paths, so a failed build does not stop the demo
demo: $(STAMP)
	-$(VENV)/bin/kanlab build-kernels
	$(VENV)/bin/kanlab demo

# ruff (lint, no reformatting) and mypy, configured in pyproject.toml; `make test` runs it first
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

test: lint
	OMP_NUM_THREADS=2 $(PY) -m pytest -q

slow: $(STAMP)
	$(PY) -m pytest -q -m slow

bench: $(STAMP)
	$(PY) benchmarks/layer_speed.py

# discover on every Feynman equation, without noise and with 1% noise, gplearn beside (~40 min)
discovery: $(STAMP)
	$(PIP) install --quiet -c constraints.txt -e '.[bench]'
	$(PY) -m benchmarks.discovery --gplearn --threads 1 --budget 45

paper: $(STAMP)
	$(PY) -m benchmarks.paper --jobs $(PAPER_JOBS)

paper-full: $(STAMP)
	$(PY) -m benchmarks.paper --full --jobs $(PAPER_JOBS)

clean:
	rm -rf $(VENV) build dist src/*.egg-info
