# celltwin: the two commands a newcomer needs are `make demo` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch lies in /opt/wheels on this kind of machine; elsewhere pip finds torch on PyPI.
TORCH_FIND_LINKS := $(shell [ -d /opt/wheels ] && echo --find-links /opt/wheels)

.PHONY: venv demo test lint clean

$(BIN)/celltwin: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_FIND_LINKS) torch==2.13.0
	$(BIN)/python -m pip install -q $(TORCH_FIND_LINKS) -e ".[test,chem]"
	touch $(BIN)/celltwin

venv: $(BIN)/celltwin

demo: venv
	$(BIN)/python scripts/demo.py --out demo_out

test: venv
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/python -m pytest -q

lint: venv
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts

clean:
	rm -rf $(VENV) demo_out
