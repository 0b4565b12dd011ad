PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Every package the venv holds, pinned with hashes (pip-tools; `make upgrade-deps` refreshes it).
LOCK := requirements.lock
LOCK_FLAGS := --extra test --extra bench --extra dev --all-build-deps --allow-unsafe \
	--strip-extras --generate-hashes --no-emit-index-url --no-emit-find-links

.PHONY: test demo bench bench-engine bench-load bench-server bench-providers lock upgrade-deps clean

# A new venv whenever the lock or the project's metadata changes: nothing stale survives.
$(STAMP): pyproject.toml $(LOCK)
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --require-hashes -r $(LOCK)
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q -n 2

demo: $(STAMP)
	$(PY) examples/run_program.py examples/local

bench: bench-engine bench-load bench-server bench-providers

bench-engine: $(STAMP)
	$(PY) benchmarks/engine.py

bench-load: $(STAMP)
	$(PY) benchmarks/load.py

bench-server: $(STAMP)
	$(PY) benchmarks/server.py

bench-providers: $(STAMP)
	$(PY) benchmarks/providers.py

# Re-resolve the lock within pyproject.toml's ranges, keeping the pins that still fit.
lock: $(STAMP)
	$(VENV)/bin/pip-compile -q $(LOCK_FLAGS) -o $(LOCK) pyproject.toml

# Move every pin to the newest release and run the whole suite against them.
upgrade-deps: $(STAMP)
	$(VENV)/bin/pip-compile -q --upgrade $(LOCK_FLAGS) -o $(LOCK) pyproject.toml
	$(MAKE) test

clean:
	rm -rf $(VENV)
