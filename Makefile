# Everything the project needs is installed here, into .venv, from PyPI.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 9999
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.bench-installed

PURE_TESTS := tests/wire tests/reliable tests/netsim tests/test_compiled.py \
	tests/endpoint tests/chat/test_server_memberships.py
# The same tests again on the pure Python fallback of the compiled hot path
# (twistchat/compiled.py): both builds are tested wherever `make test` runs.

.PHONY: install compile run test test-pure bench bench-transport clean

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]' --config-settings editable_mode=compat
	touch $(STAMP)

install: $(STAMP)

# Compile the hot path again after editing it (the install does it once;
# until then the edited tree runs pure Python: twistchat/compiled.py).
compile: $(STAMP)
	$(BIN)/pip install --quiet --no-deps -e . --config-settings editable_mode=compat

run: $(STAMP)
	$(BIN)/twistd -n twistchat --port $(PORT)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	$(MAKE) --no-print-directory test-pure

test-pure: $(STAMP)
	TWISTCHAT_PURE_PYTHON=1 $(BIN)/python -m pytest $(PURE_TESTS) $(PYTEST_ARGS)

# The bench extras (KCP and aioquic, for `bench transport`) go into the same venv.
$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/pip install --quiet -e '.[test,bench]' --config-settings editable_mode=compat
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench all

bench-transport: $(BENCH_STAMP)
	$(BIN)/python -m bench transport $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis .mypy_cache
	rm -f twistchat_hotpath__mypyc*.so twistchat/wire/*.so twistchat/reliable/*.so \
		twistchat/endpoint/*.so twistchat/chat/server/*.so twistchat/compiled-sources.json
