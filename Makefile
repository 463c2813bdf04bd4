# needling-outcomes — run `make help` for the list of targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help report test lint format clean validate-stats

help:  ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*?## "}{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

report: $(STAMP)  ## Run the whole pipeline on the demo data and write reports/outcomes.html
	$(BIN)/outcomes run --config analysis.toml

test: $(STAMP)  ## Run the whole test suite
	$(BIN)/python -m pytest

lint: $(STAMP)  ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)  ## Apply ruff formatting and safe fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:  ## Remove generated outputs (keeps the virtual environment and data/raw)
	rm -rf data/processed/* reports/tables reports/outcomes.html

validate-stats: $(STAMP)  ## Coverage and type-I error by simulation (1,000 data sets per scenario) -> reports/validation/
	$(BIN)/outcomes validate-stats --sims 1000 --out reports/validation
