# The project's memory: every routine command lives here.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: install demo test lint format bench fuzz docs compare clean

$(BIN)/hubmem: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

install: $(BIN)/hubmem  ## create .venv and install hubmem with its test dependencies

demo: install  ## run hubmem against a bundled fixture model served by the fake Hub on 127.0.0.1
	$(BIN)/python tests/demo.py

test: install  ## the whole offline test suite
	$(BIN)/python -m pytest

lint: install  ## ruff check + format check
	$(BIN)/pip install --quiet ruff
	$(BIN)/ruff check hubmem tests
	$(BIN)/ruff format --check hubmem tests

format: install
	$(BIN)/pip install --quiet ruff
	$(BIN)/ruff check --fix hubmem tests
	$(BIN)/ruff format hubmem tests

bench: install  ## round trips and wall time per model against the fake Hub with 50 ms latency
	$(BIN)/python tests/bench.py

fuzz: install  ## 20,000 mutated config.json files and safetensors headers in-process: uncaught exceptions, bad figures, slow cases
	$(BIN)/python -m scripts.fuzz --cases 20000

docs: install  ## regenerate the README's generated blocks (tests/test_docs.py checks they are current)
	$(BIN)/python tests/docs.py --write

compare: install  ## hubmem's training estimates against measured training memory (estimate, measured, error %)
	$(BIN)/python tests/compare_measured.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
