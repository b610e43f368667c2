# The project's memory: every routine command lives here.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# the lint tools, as in the dev extra of pyproject.toml
LINT_TOOLS := 'ruff>=0.6' 'mypy>=1.10'
# the peers `make bench` times hubmem against (bench only, never a runtime dependency)
BENCH_TOOLS := 'hf-mem==0.5.6'

.PHONY: install demo test lint format bench fuzz docs compare config-table clean

$(BIN)/hubmem: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

install: $(BIN)/hubmem  ## create .venv and install hubmem with its test dependencies

$(BIN)/mypy: $(BIN)/hubmem  # the lint tools, installed once per .venv
	$(BIN)/pip install --quiet $(LINT_TOOLS)
	@touch $@

demo: install  ## run hubmem against a bundled fixture model served by the fake Hub on 127.0.0.1
	$(BIN)/python -m scripts.demo

# pytest-xdist: a worker per CPU, at most two, each with its own fake Hub; a file's tests stay on one
# worker, in collection order (tests/conftest.py puts the longest, test_docs.py, first).
# `make test PYTEST_WORKERS=` runs in one process, as plain `python -m pytest` does.
PYTEST_WORKERS ?= -n auto --maxprocesses 2 --dist loadfile --no-loadscope-reorder
test: install  ## the whole offline test suite
	$(BIN)/python -m pytest $(PYTEST_WORKERS)

lint: $(BIN)/mypy  ## ruff check + format check; mypy over hubmem (config in pyproject.toml)
	$(BIN)/ruff check hubmem tests scripts
	$(BIN)/ruff format --check hubmem tests scripts
	$(BIN)/mypy

format: $(BIN)/mypy
	$(BIN)/ruff check --fix hubmem tests scripts
	$(BIN)/ruff format hubmem tests scripts

bench: install  ## round trips and wall time per model against the fake Hub with 50 ms latency; hubmem vs hf-mem side by side; audits at Hub scale (--db re-runs, listings, peak RSS)
	$(BIN)/pip install --quiet $(BENCH_TOOLS)
	$(BIN)/python -m scripts.bench
	$(BIN)/python -m scripts.bench_peers
	$(BIN)/python -m scripts.bench_scale

fuzz: install  ## 20,000 mutated config.json files, safetensors and GGUF headers, serve and llama.cpp options in-process (~2 min), then issue 11's hostile catalogue as real processes (scripts/hostile.py, ~1 min)
	$(BIN)/python -m scripts.fuzz --cases 20000
	$(BIN)/python -m scripts.hostile

docs: install  ## regenerate the README's generated blocks (tests/test_docs.py checks they are current) and the audit report's screenshot
	$(BIN)/python -m scripts.docs --write
	$(BIN)/python -m scripts.report_shot

config-table: install  ## regenerate hubmem/model/config_classes.json from the installed transformers (~1-2 min)
	$(BIN)/python -c "from hubmem.model import config_table; config_table.write()"

compare: install  ## hubmem's inference and training estimates against measured memory (estimate, measured, error %, hit rate)
	$(BIN)/python -m scripts.compare_measured
	$(BIN)/python -m scripts.compare_serve

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache
