# needling-outcomes — run `make help` for the list of targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help report check-report test lint format clean validate-stats bench

help:  ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*?## "} \
	  {name[NR]=$$1; text[NR]=$$2; if (length($$1) > w) w = length($$1)} \
	  END{for (i = 1; i <= NR; i++) printf "  make %-" w "s  %s\n", name[i], text[i]}'

# requirements.lock: what the pipeline needs; requirements-dev.lock: tests, lint and notebooks
$(STAMP): requirements.lock requirements-dev.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

report: $(STAMP)  ## Run the pipeline on the demo data: reports/outcomes.html, .pdf and tables/
	$(BIN)/outcomes run --config analysis.toml

check-report: $(STAMP)  ## Regenerate the demo report; compare its tables with the committed ones
	@expected=$$(mktemp -d) && trap 'rm -rf "$$expected"' EXIT && \
	git archive HEAD reports/tables | tar -x -C "$$expected" && \
	$(BIN)/outcomes run --config analysis.toml && \
	$(BIN)/outcomes check-tables --config analysis.toml --expected "$$expected/reports/tables"

test: $(STAMP)  ## Run the whole test suite
	$(BIN)/python -m pytest

.PHONY: notebooks
notebooks: $(STAMP)  ## Open Jupyter on the exploration notebooks (notebooks/README.md)
	$(BIN)/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root)

bench: $(STAMP)  ## Time the pipeline: validation throughput, model fits vs lme4, whole runs (reports/benchmarks/)
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/models.py
	$(BIN)/python benchmarks/end_to_end.py

lint: $(STAMP)  ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)  ## Apply ruff formatting and safe fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:  ## Remove generated outputs (keeps the virtual environment and data/raw)
	rm -rf data/processed/* reports/outcomes.html reports/outcomes.pdf

validate-stats: $(STAMP)  ## Coverage and type-I error by simulation (1,000 data sets per scenario) -> reports/validation/
	$(BIN)/outcomes validate-stats --sims 1000 --out reports/validation
