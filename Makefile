# Everything runs inside .venv, created on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install kenlm demo an4 test test-fast lint clean-exp

$(STAMP): pyproject.toml tools/install_kenlm.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,slurm]"
	bash tools/install_kenlm.sh $(BIN)
	touch $(STAMP)

install: $(STAMP)  ## create .venv, install the package with its dev tools, build KenLM's lmplz into .venv/bin

kenlm:  ## only (re)build KenLM's lmplz and build_binary into .venv/bin (cached in ~/.cache/asr)
	bash tools/install_kenlm.sh $(BIN)

demo: $(STAMP)  ## the embedded recipe end to end (offline): synthesize, train, print test WER
	PATH="$(abspath $(BIN)):$$PATH" recipes/synthetic/run.sh

an4: $(STAMP)  ## AN4 from the shared copy (set AN4=path to use another)
	PATH="$(abspath $(BIN)):$$PATH" recipes/an4/run.sh --data-dir $(or $(AN4),../shared/data/an4)

test: $(STAMP)  ## the full suite, slow end-to-end runs included
	$(BIN)/python -m pytest -q --durations=25

test-fast: $(STAMP)  ## skip the slow end-to-end runs
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check .
