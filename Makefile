# needling-outcomes — run `make help` for the list of targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help report check-report test lint format clean validate-stats bench federation-demo

help:  ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*?## "} \
	  {name[NR]=$$1; text[NR]=$$2; if (length($$1) > w) w = length($$1)} \
	  END{for (i = 1; i <= NR; i++) printf "  make %-" w "s  %s\n", name[i], text[i]}'

# requirements-build.lock: pip and setuptools; requirements.lock: what the pipeline needs;
# requirements-dev.lock: tests, lint and notebooks (all hash-pinned)
$(STAMP): requirements-build.lock requirements.lock requirements-dev.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --only-binary=:all: -r requirements-build.lock
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

report: $(STAMP)  ## Run the pipeline on the demo data: reports/demo/outcomes.html, .pdf and tables/
	$(BIN)/outcomes run --config analysis.toml

check-report: $(STAMP)  ## Regenerate the demo report; compare its tables with tests/expected/tables
	$(BIN)/outcomes run --config analysis.toml
	$(BIN)/outcomes check reports/demo
	$(BIN)/outcomes check-tables --config analysis.toml --expected tests/expected/tables

test: $(STAMP)  ## Run the whole test suite
	$(BIN)/python -m pytest

.PHONY: notebooks
notebooks: $(STAMP)  ## Open Jupyter on the exploration notebooks (notebooks/README.md)
	$(BIN)/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root)

bench: $(STAMP)  ## Time the pipeline: validation throughput, model fits vs lme4, whole runs and their stages, the MMRM vs nlme/glmmTMB, the estimand block, planning simulations, registry scale (reports/benchmarks/)
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/models.py
	$(BIN)/python benchmarks/end_to_end.py
	$(BIN)/python benchmarks/profile_run.py --patients 100000 --timers --repeat 3
	$(BIN)/python benchmarks/federation.py
	$(BIN)/python benchmarks/mmrm.py
	$(BIN)/python benchmarks/missing_data.py
	$(BIN)/python benchmarks/planning.py
	$(BIN)/python benchmarks/scale.py

federation-demo: $(STAMP)  ## Split the demo into its 3 clinics, share each, pool -> reports/federation/
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(BIN)/python -m pipeline.demo.network "$$tmp" && \
	mkdir -p reports/federation/shares && \
	for c in hillview northside riverside; do \
	  $(BIN)/outcomes share --config "$$tmp/$$c/analysis.toml" \
	    --out reports/federation/shares/$$c.share || exit 1; \
	done && \
	$(BIN)/outcomes pool reports/federation/shares/*.share --out reports/federation --two-stage

lint: $(STAMP)  ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)  ## Apply ruff formatting and safe fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:  ## Remove generated outputs (keeps the virtual environment and data/raw)
	rm -rf data/processed/* reports/demo

validate-stats: $(STAMP)  ## Coverage and type-I error by simulation (1,000 data sets per scenario), planning formulas vs simulation -> reports/validation/
	$(BIN)/outcomes validate-stats --sims 1000 --out reports/validation
	$(BIN)/outcomes validate-mmrm --sims 1000 --out reports/validation
	$(BIN)/python -m pipeline.planning.agreement --sims 1000 --out reports/validation
	$(BIN)/python -m pipeline.analyses.missing_validation --sims 1000 --out reports/validation
