# Everything the project needs is installed here, into .venv, from PyPI.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 9999
STAMP := $(VENV)/.installed

.PHONY: install run test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]' --config-settings editable_mode=compat
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/twistd -n twistchat --port $(PORT)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench all

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis
