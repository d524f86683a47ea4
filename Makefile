# embedpipe — `make demo` and `make test` work on a fresh machine: they build .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK ?= requirements.lock
# Wheel folders the lock may take packages from (the CPU torch); `FIND_LINKS=` for none.
FIND_LINKS ?= $(or $(PIP_FIND_LINKS),$(wildcard /opt/wheels))
EP := $(BIN)/embedpipe
DEMO_CORPUS := .embedpipe/demo/stdlib.jsonl
export HF_HUB_OFFLINE := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false

.PHONY: install lock check-lock demo test lint bench soak serve clean

install: $(STAMP)

# Exactly the lock: uv (itself pinned and hash-checked by the lock, installed by pip) syncs .venv
# to it, every file checked against its hashes, nothing resolved, anything else removed; then
# the project itself, built with the lock's setuptools (no isolated build fetching another).
# Bytecode is compiled at install: with PYTHONDONTWRITEBYTECODE set (as on these machines)
# every process would otherwise compile Prefect, torch... from source again (CI 21 vs 18 min).
# The lock's torch is 2.13.0+cpu (the local CPU wheel); see README "Install" for a GPU build.
$(STAMP): pyproject.toml $(LOCK)
	@$(PYTHON) .ci/lockfile.py check --lock $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PYTHON) .ci/lockfile.py pick uv --lock $(LOCK) > $(VENV)/uv.lock.txt
	$(BIN)/pip install --quiet --no-deps --require-hashes -r $(VENV)/uv.lock.txt
	$(BIN)/uv pip sync --quiet --compile-bytecode --python $(BIN)/python --require-hashes \
	  $(addprefix --find-links ,$(FIND_LINKS)) $(LOCK)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Refresh the lock after a change to pyproject.toml's requirements (uv pip compile, hashes).
lock:
	$(PYTHON) .ci/lockfile.py compile --lock $(LOCK) $(addprefix --find-links ,$(FIND_LINKS))

check-lock:
	@$(PYTHON) .ci/lockfile.py check --lock $(LOCK)

demo: $(STAMP)
	$(EP) demo-corpus $(DEMO_CORPUS)
	$(EP) ingest $(DEMO_CORPUS)
	$(EP) search "parse command line arguments" -k 5
	$(EP) search "compress data with gzip" -k 5
	$(EP) search "send an email through an SMTP server" -k 5

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

test: check-lock lint
	bash .ci/system-deps
	$(BIN)/pytest -q --durations=15

serve: $(STAMP)
	$(EP) serve

bench: $(STAMP)
	@for script in bench/*.py; do [ $$script = bench/soak.py ] && continue; \
		echo "== $$script"; $(BIN)/python $$script || exit 1; done

# Two hours of `embedpipe serve` with compressed schedules (not part of `make bench`).
soak: $(STAMP)
	$(BIN)/python bench/soak.py

clean:
	rm -rf $(VENV) .embedpipe .pytest_cache .mypy_cache .ruff_cache
