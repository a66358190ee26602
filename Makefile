PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup test test-sqlite test-postgres demo clean

setup: $(STAMP)

# Reinstall whenever the dependency list changes; torch/torchvision come from pip's local wheel cache.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -U pip setuptools wheel
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

# The whole suite: engine tests, then the service suite on PostgreSQL + Redis + S3 and again on SQLite + files.
test: setup
	$(BIN)/python -m pytest -q

demo: setup
	$(BIN)/python -m cli.demo

clean:
	rm -rf $(VENV) .nas-data .pytest_cache
