# celltwin: the two commands a newcomer needs are `make demo` and `make test`; `make docs` builds the
# API reference into docs/_build/html.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch lies in /opt/wheels on this kind of machine; elsewhere pip finds torch on PyPI.
TORCH_FIND_LINKS := $(shell [ -d /opt/wheels ] && echo --find-links /opt/wheels)

.PHONY: venv demo test docs lint clean

$(BIN)/celltwin: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_FIND_LINKS) torch==2.13.0
	$(BIN)/python -m pip install -q $(TORCH_FIND_LINKS) -e ".[test,chem,docs,explain,dask,serve]"
	touch $(BIN)/celltwin

venv: $(BIN)/celltwin

demo: venv
	$(BIN)/python scripts/demo.py --out demo_out

test: venv
	$(BIN)/ruff check src tests benchmarks scripts docs
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

# Warnings are errors (-W); --keep-going lists all of them before failing.
docs: venv
	rm -rf docs/api/generated  # stubs of names no longer exported would warn
	$(BIN)/sphinx-build -W --keep-going -q -b html docs docs/_build/html

lint: venv
	$(BIN)/ruff check src tests benchmarks scripts docs
	$(BIN)/ruff format --check src tests benchmarks scripts docs

clean:
	rm -rf $(VENV) demo_out docs/_build docs/api/generated
