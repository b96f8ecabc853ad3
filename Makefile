# The two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: install preflight prepare run dev test lint bench soak clean

$(INSTALLED): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is required (set PYTHON=...)")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

install: $(INSTALLED)

preflight: install
	@$(BIN)/python infra/scripts/preflight.py

# Create the databases if missing, migrate, seed (idempotent).
prepare: preflight
	$(BIN)/python -m customer.manage prepare
	$(BIN)/python -m order.manage prepare

run: prepare
	@PY=$(BIN) infra/scripts/run.sh

dev: prepare
	@PY=$(BIN) infra/scripts/dev.sh

lint: install
	$(BIN)/ruff check .

test: lint
	@infra/scripts/install-test-deps.sh
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Not part of `make test`: minutes of load against both services and a bare baseline (bench/README.md).
bench: install
	$(BIN)/pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# Minutes of steady load with a broker outage in the middle: nothing lost or doubled, memory flat.
soak: install
	$(BIN)/pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	$(BIN)/python bench/soak.py $(SOAK_ARGS)

clean:
	rm -rf $(VENV) .run .pytest_cache .ruff_cache
