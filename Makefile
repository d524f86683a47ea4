# embedpipe — `make demo` and `make test` work on a fresh machine: they build .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EP := $(BIN)/embedpipe
DEMO_CORPUS := .embedpipe/demo/stdlib.jsonl
export HF_HUB_OFFLINE := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false

.PHONY: install demo test lint bench serve clean

install: $(STAMP)

# torch first and exactly 2.13.0: pip takes the local CPU wheel; letting sentence-transformers
# pull torch would download a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(EP) demo-corpus $(DEMO_CORPUS)
	$(EP) ingest $(DEMO_CORPUS)
	$(EP) search "parse command line arguments" -k 5
	$(EP) search "compress data with gzip" -k 5
	$(EP) search "send an email through an SMTP server" -k 5

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	bash .ci/system-deps
	$(BIN)/pytest -q

serve: $(STAMP)
	$(EP) serve

bench: $(STAMP)
	@for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) .embedpipe .pytest_cache .mypy_cache .ruff_cache
