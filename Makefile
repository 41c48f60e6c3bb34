# crashcart developer tasks (GNU make). Every target that needs Python creates .venv itself.
VENV ?= .venv
VENV_BIN := $(VENV)/bin
# Re-install only when the dependencies (pyproject.toml) change.
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help venv demo test lint bench clean

help:
	@echo "make demo   the console TUI replaying a real recorded kernel panic (creates $(VENV))"
	@echo "make test   ruff check, then the test suite (creates $(VENV))"
	@echo "make lint   ruff check and ruff format --check"
	@echo "make bench  bench/run: every benchmark, one table, bench/RESULTS.md"
	@echo "make venv   create $(VENV) and pip install -e '.[test]'"
	@echo "make clean  remove $(VENV), build output and caches"

venv: $(STAMP)

# Prefer python3 when it is 3.11+, else python3.11. On Debian, `python3 -m venv` fails without
# the python3-venv package and leaves a half-made folder: remove it and say what to install.
$(STAMP): pyproject.toml
	@if [ ! -x "$(VENV_BIN)/python" ]; then \
	  py=python3; \
	  if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	     && command -v python3.11 >/dev/null 2>&1; then py=python3.11; fi; \
	  echo "creating $(VENV) with $$(command -v $$py)"; \
	  if ! $$py -m venv "$(VENV)"; then \
	    rm -rf "$(VENV)"; \
	    if [ "$$py" != python3.11 ] && command -v python3.11 >/dev/null 2>&1 \
	       && python3.11 -m venv "$(VENV)"; then :; else \
	      rm -rf "$(VENV)"; \
	      echo "cannot create $(VENV): on Debian/Ubuntu run: apt-get install python3-venv make" >&2; \
	      exit 1; \
	    fi; \
	  fi; \
	fi
	$(VENV_BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(VENV_BIN)/python -m pip install --disable-pip-version-check --progress-bar off -e '.[test]'
	@touch "$(STAMP)"

demo: venv
	$(VENV_BIN)/crashcart demo

test: venv
	$(VENV_BIN)/ruff check .
	$(VENV_BIN)/python -m pytest -q

lint: venv
	$(VENV_BIN)/ruff check .
	$(VENV_BIN)/ruff format --check .

bench: venv
	$(VENV_BIN)/python bench/run

clean:
	rm -rf "$(VENV)" build dist *.egg-info .pytest_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -not -path './.git/*' -exec rm -rf {} +
