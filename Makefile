# The two commands of the README: `make demo` and `make test`. Both set up `.venv` first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test bench tools clean

demo: $(STAMP)
	$(VENV)/bin/intar demo

test: $(STAMP) tools
	$(PY) -m pytest -W error -n auto

# Paper-scale measurements: slow, so not part of `make test`.
bench: $(STAMP) tools
	$(VENV)/bin/intar bench
	$(PY) -m pytest -W error -m slow -s

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

# Icarus Verilog runs the cocotb checks of exported Verilog; it is not on PyPI.
tools:
	@command -v iverilog >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq iverilog >/dev/null; \
	  else \
	    echo "intar-hw needs Icarus Verilog: install it (Debian/Ubuntu: sudo apt-get install iverilog)" >&2; \
	    exit 1; \
	  fi; }

clean:
	rm -rf $(VENV) build report sim_build .pytest_cache
