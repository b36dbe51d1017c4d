# Two commands on a fresh machine:
#   make demo   creates .venv and trains a CNN on the embedded digits dataset
#   make test   creates .venv and runs the test suite
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: venv demo test repro bench clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $@

demo: venv
	$(BIN)/archlab train cnn --data digits --out runs/cnn-digits --overwrite

test: venv
	$(BIN)/python -m compileall -q src  # the CLI tests' subprocesses read bytecode, not sources
	$(BIN)/python -m pytest -q

repro: venv
	$(BIN)/python -m pytest -q -m slow

clean:
	rm -rf $(VENV) runs
