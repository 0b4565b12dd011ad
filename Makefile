PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test demo bench bench-engine bench-load bench-server clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,bench]'
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

demo: $(STAMP)
	$(PY) examples/run_program.py examples/local

bench: bench-engine bench-load bench-server

bench-engine: $(STAMP)
	$(PY) benchmarks/engine.py

bench-load: $(STAMP)
	$(PY) benchmarks/load.py

bench-server: $(STAMP)
	$(PY) benchmarks/server.py

clean:
	rm -rf $(VENV)
