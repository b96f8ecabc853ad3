# The two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

PIP := $(BIN)/pip --quiet --disable-pip-version-check
# The lock files (`make lock` writes them): every package, transitive ones too, pinned with its hashes.
LOCK := requirements/dev.txt
RUNTIME_LOCK := requirements/runtime.txt
# The image's build backend (pyproject's [build-system] requires), pinned with its hashes like the rest.
BUILD_LOCK := requirements/build.txt
UV_COMPILE := $(BIN)/uv pip compile pyproject.toml --quiet --generate-hashes --universal --python-version 3.11 \
	--custom-compile-command "make lock"

.PHONY: install lock preflight prepare run dev token test lint bench soak chaos secrets clean

$(INSTALLED): pyproject.toml $(LOCK)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is required (set PYTHON=...)")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --require-hashes -r $(LOCK)
	$(PIP) install --no-deps -e .
	touch $@

install: $(INSTALLED)

# After changing a dependency in pyproject.toml; `make lock LOCK_ARGS=--upgrade` moves every unpinned
# (transitive) package to its newest release. The dev lock keeps the runtime lock's versions.
lock: install
	$(UV_COMPILE) $(LOCK_ARGS) -o $(RUNTIME_LOCK)
	$(UV_COMPILE) $(LOCK_ARGS) --extra dev -c $(RUNTIME_LOCK) -o $(LOCK)
	$(BIN)/python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))' \
		| $(BIN)/uv pip compile - --quiet --generate-hashes --universal --python-version 3.11 \
			--custom-compile-command "make lock" $(LOCK_ARGS) -o $(BUILD_LOCK)
	$(MAKE) install

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

# A token from the development issuer that `AUTH_MODE=jwt make run` starts (docs/auth.md):
#   make token SCOPE="orders:write" [CUSTOMER_ID=7] [ISSUER_URL=http://127.0.0.1:3010]
token: install
	@$(BIN)/python -m shared.devissuer token --scope "$(or $(SCOPE),customers:read orders:read)" \
		--url "$(or $(ISSUER_URL),http://127.0.0.1:3010)" $(if $(CUSTOMER_ID),--customer-id $(CUSTOMER_ID))

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# One pytest worker per core (pytest-xdist); conftest.py's ONE_WORKER keeps some files on one worker.
TEST_WORKERS ?= 2
test: lint
	@infra/scripts/install-test-deps.sh
	$(BIN)/python -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

# Not part of `make test`: minutes of load against both services and a bare baseline (bench/README.md).
bench: install
	$(BIN)/pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# Minutes of steady load with a broker outage in the middle: nothing lost or doubled, memory flat.
soak: install
	$(BIN)/pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	$(BIN)/python bench/soak.py $(SOAK_ARGS)

# The compose deployment's passwords, made now rather than on the first `docker compose up` (the `secrets`
# service does the same); docs/operations.md says how to rotate them.
secrets:
	docker compose run --rm --build secrets

# Minutes of mixed load while random, overlapping faults hit the services, its own RabbitMQ node and
# PostgreSQL instance; then heal and check nothing was lost, doubled or left half-done (docs/testing.md).
CHAOS_MINUTES ?= 10
chaos: install
	$(BIN)/python -m chaos --minutes $(CHAOS_MINUTES) $(if $(CHAOS_SEED),--seed $(CHAOS_SEED))

clean:
	rm -rf $(VENV) .run .pytest_cache .ruff_cache .mypy_cache
