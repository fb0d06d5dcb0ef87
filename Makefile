# One entry point for people and CI. Only python3 (>= 3.11) and make are needed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed

.PHONY: install demo test check lint format bench clean lock

# Installs the exact versions of requirements.lock (reproducible), then the project itself.
# pyproject.toml keeps version ranges for library users; `make lock` re-resolves them.
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP) ## create .venv and install amzigo-lab with its dev tools

demo: $(STAMP) ## run the main job on the embedded default (local sandbox, no credentials)
	$(BIN)/amzigo demo $(DEMO_ARGS)

test: $(STAMP) ## run the whole test suite
	$(BIN)/pytest -n 2 --dist loadfile -q $(PYTEST_ARGS)

lint: $(STAMP) ## format check, lint, types
	$(BIN)/ruff format --check amzigo_lab tests bench
	$(BIN)/ruff check amzigo_lab tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

check: lint test ## every gate, exactly as CI runs them

format: $(STAMP) ## apply formatting and safe lint fixes
	$(BIN)/ruff format amzigo_lab tests bench
	$(BIN)/ruff check --fix amzigo_lab tests bench

bench: $(STAMP) ## run the benchmarks (prints medians and ratios); BENCH_ARGS=all, or a suite: lake, gateway, ...
	$(PY) -m bench $(BENCH_ARGS)

lock: ## re-resolve requirements.lock from pyproject.toml's ranges (needs network or a local index)
	$(PY) -m pip install --quiet pip-tools
	$(BIN)/pip-compile -q --extra dev --extra pdf --extra spark --extra dask --strip-extras --no-emit-index-url \
		--no-emit-find-links --annotation-style line -o requirements.lock pyproject.toml

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
