PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# pytest-xdist processes: the service tests mostly wait on subprocesses, HTTP and the broker, so three workers finish
# the suite about 3x sooner than one on a 2-core machine. Each worker starts its own stacks (own databases, Redis key
# prefixes, S3 server, ports); TEST_WORKERS=0 runs everything in one process.
TEST_WORKERS ?= 3
# The fast layer waits on nothing but computes (training, exports, fuzzing): one process per core. Each module's tests
# stay on one process (loadscope), so a module-scoped fixture (a trained network, its first ONNX export) runs once.
TEST_FAST_WORKERS ?= 2
TEST_FAST_BACKENDS ?= sqlite

.PHONY: setup test test-fast test-sqlite test-postgres test-deploy demo openapi client clean

setup: $(STAMP)

# Reinstall whenever the dependency list changes; torch/torchvision come from pip's local wheel cache.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -U pip setuptools wheel
	@# tf: the converter of the TensorFlow artifacts, so the tests that convert (and `make demo`) run here too.
	$(BIN)/pip install -q -e '.[dev,tf]'
	@# The dashboard tests drive Debian's Chromium through its chromedriver; never a downloaded browser.
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver)
	touch $(STAMP)

# The whole suite: engine tests, then the service suite in process and on the real stack, each on PostgreSQL and on
# SQLite (the stack: PostgreSQL + Redis + S3, SQLite + files). pytest's exit code 5 (nothing collected) fails the
# target like any other.
test: setup
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n $(TEST_WORKERS)

# The fast layer: the service in process (the app built in the test process, queued tasks run by the tests
# themselves: no uvicorn, worker or broker processes) on SQLite, and the engine tests; nothing marked slow or stack.
# `make test` runs the same tests on PostgreSQL too; TEST_FAST_BACKENDS=postgres,sqlite does here.
test-fast: setup
	OMP_NUM_THREADS=1 TEST_BACKENDS=$(TEST_FAST_BACKENDS) $(BIN)/python -m pytest -q -n $(TEST_FAST_WORKERS) --dist loadscope -m "not stack and not slow" \
		tests/service tests/core

# The service suite on one backend only (quicker while working on the control plane).
test-sqlite: setup
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q tests/service -k "sqlite or not postgres"

test-postgres: setup
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q tests/service -k "postgres or not sqlite"

# docker-compose.yml without Docker: its services as processes on loopback (the machine's PostgreSQL and Redis, moto
# for MinIO), driven from upload to a model downloaded through the public S3 endpoint, every health check run; plus
# the checks that keep the compose file and that topology in step. `make test` runs them too.
test-deploy: setup
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q tests/deploy tests/test_compose.py

demo: setup
	$(BIN)/python -m cli.demo

# The committed API contract: openapi.json as the app serves it (tests/test_openapi.py fails when they differ).
openapi: setup
	$(BIN)/python -m cli.openapi

# The committed Python client, generated from the committed openapi.json (the generator formats with ruff).
# Generated outside the tree, so the repository's own lint settings never reshape the generated code (the test
# that compares the committed client with a fresh generation does the same).
client: setup
	tmp=$$(mktemp -d) && PATH="$(abspath $(BIN)):$$PATH" $(BIN)/openapi-python-client generate \
		--path openapi.json --output-path $$tmp/nas_client --overwrite --meta none && \
		rm -rf $$tmp/nas_client/.ruff_cache nas_client && mv $$tmp/nas_client nas_client && rm -rf $$tmp

clean:
	rm -rf $(VENV) .nas-data .pytest_cache
