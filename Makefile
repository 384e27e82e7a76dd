# orderflow: `make demo` to see it run, `make test` to check it. Both build .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ARGS ?=

.PHONY: install demo dev worker test lint typecheck unit lock clean

# Installs exactly what requirements-dev.lock pins (hash-checked), then orderflow itself.
$(BIN)/orderflow: pyproject.toml requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(BIN)/orderflow

install: $(BIN)/orderflow

demo: install  ## embedded Temporal + worker + seeded catalog + demo orders (Ctrl-C stops)
	$(BIN)/orderflow demo $(ARGS)

dev: install  ## the embedded Temporal server alone, UI on http://localhost:8233
	$(BIN)/orderflow dev

worker: install  ## one worker process against ORDERFLOW_TEMPORAL_ADDRESS (or the embedded server)
	$(BIN)/orderflow worker

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy domain workflows activities workers starter

# pytest-xdist: three worker processes, each its own test session (its own Temporal dev server
# and databases). Most tests wait (timers, subprocesses, a browser), so three keep two cores
# busy; worksteal starts each worker on a contiguous share and lets an idle one take pending
# tests from a busy one. `make test TEST_WORKERS=0` runs the suite in one process.
TEST_WORKERS ?= 3

test: lint typecheck  ## everything CI runs; PostgreSQL tests need ORDERFLOW_TEST_POSTGRES_URL
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist worksteal $(ARGS)

unit: install
	$(BIN)/python -m pytest -q tests/unit

lock:  ## after changing dependencies in pyproject.toml: pin them again (with hashes)
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet pip-tools
	.venv-lock/bin/pip-compile --quiet --generate-hashes --strip-extras \
		--allow-unsafe --no-emit-index-url --no-emit-find-links \
		-o requirements.lock pyproject.toml
	.venv-lock/bin/pip-compile --quiet --generate-hashes --extra dev --strip-extras \
		--allow-unsafe --no-emit-index-url --no-emit-find-links \
		-o requirements-dev.lock pyproject.toml

clean:
	rm -rf $(VENV) .orderflow
