# Bookify developer tasks; `make` alone lists them.
.DEFAULT_GOAL := help
SHELL := /bin/bash
PY := .venv/bin/python
# python3.11 if present, else python3 (its version is checked before creating the venv).
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3 2>/dev/null)
IS_311 := 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'
LOCK_HEADER := \# Full pinned lock; edit requirements/*.in then regenerate with `make lock`
# Python keeps the bytecode of what it imports (in .venv and the project's __pycache__/, both
# ignored by git) even where the calling environment says not to: without it every service
# process, and every test that starts one, compiles its imports again (about 2 s of CPU each).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: help venv lock run shell test migrate seed bench clean distclean

help: ## list the targets
	@echo "Bookify: make <target>"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

venv: .venv/.installed ## create .venv and install requirements/lock.txt

.venv/.installed: requirements/lock.txt
	@$(PYTHON) -c $(IS_311) 2>/dev/null \
	  || { echo "Bookify needs Python 3.11; found '$(PYTHON)'. Install python3.11 or pass PYTHON=/path/to/python3.11." >&2; exit 1; }
	@# Reuse a working 3.11 venv; recreate one that is broken or on another Python.
	$(PY) -c $(IS_311) 2>/dev/null || $(PYTHON) -m venv --clear .venv
	@# No .pyc for every installed module up front: the few that are imported compile on first
	@# import, and a fresh install (CI) is a minute shorter.
	.venv/bin/pip install -q --no-compile --disable-pip-version-check -r requirements/lock.txt
	touch $@

lock: ## regenerate requirements/lock.txt (sorted, setuptools included) from requirements/*.in
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(PYTHON) -m venv "$$tmp/venv"; \
	"$$tmp/venv/bin/pip" install -q $(addprefix -r ,$(wildcard requirements/*.in)); \
	{ echo '$(LOCK_HEADER)'; "$$tmp/venv/bin/pip" freeze --all --exclude-editable | grep -v '^pip==' | LC_ALL=C sort -f; } > "$$tmp/lock.txt"; \
	mv "$$tmp/lock.txt" requirements/lock.txt; echo "requirements/lock.txt regenerated"

run: venv ## start RabbitMQ if needed, migrate, seed and run every service (Ctrl-C stops)
	$(PY) -m scripts.run_local

shell: venv ## operator console on the running system (docs/operators.md)
	$(PY) -m scripts.shell

test: venv ## run the test suite (starts RabbitMQ/MariaDB first if needed)
	bash scripts/ensure_infra.sh
	$(PY) -m scripts.run_tests $(PYTEST_ARGS)

migrate: venv ## apply database migrations
	$(PY) -m scripts.migrate

seed: venv ## load seed data
	$(PY) -m scripts.seed

bench: venv ## run the benchmarks
	$(PY) -m bench

clean: ## remove var/ (local databases, logs) and caches; keeps .venv
	rm -rf var .pytest_cache *.egg-info
	find . -path ./.venv -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean ## clean, and remove .venv too
	rm -rf .venv
