# Every target sets itself up from nothing: the virtualenv is made on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
GUIDE := docs/admin-guide/upgrading/parallel.md
# The Debian packages each target needs, installed when missing (or a clear stop).
SYSTEM_PACKAGES := tools/system-packages
# Extra pytest arguments, e.g. `make test PYTEST_ARGS=tests/test_ssh.py`; the default is all.
PYTEST_ARGS ?=

export NO_MKDOCS_2_WARNING := 1

.PHONY: all demo test lint docs serve bench clean system-packages-test system-packages-demo \
	system-packages-production production-servers demo-production demo-production-clean

all: lint test docs

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

system-packages-test system-packages-demo system-packages-production: system-packages-%:
	@$(SYSTEM_PACKAGES) install $*

## demo: rehearse the parallel upgrade on this machine, end to end, with no questions asked
# This copy's own sandbox, whatever SBX_ROOT another shell exported; its ports are the
# defaults when free, else free ones that `sbx provision` picks and prints.
demo: export SBX_ROOT = $(CURDIR)/sandbox/var
demo: system-packages-demo $(STAMP)
	$(BIN)/python sandbox/sbx teardown >/dev/null 2>&1 || true
	$(BIN)/runbook reset $(GUIDE)
	$(BIN)/python sandbox/sbx provision
	$(BIN)/runbook exec $(GUIDE) --yes --tab Sandbox --set site-name="Rehearsal site"

## production-servers: start two rehearsal servers on this machine, old-server and new-server
# (sshd and MariaDB each, see docs/rehearsal-production.md); `tools/production status` shows them.
production-servers: system-packages-production
	tools/production up

## demo-production: rehearse the guide's Production database path on those two servers,
# unattended, ending with `verified: N tables, counts equal, checksums equal`
demo-production: system-packages-production $(STAMP)
	tools/demo-production

## demo-production-clean: stop both rehearsal servers, keeping their data
demo-production-clean:
	tools/production down

## test: run the test suite
test: system-packages-test $(STAMP)
	$(BIN)/pytest -q $(PYTEST_ARGS)

## lint: ruff, mypy (strict on runbook/) and runbook's own lint of the docs
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/runbook lint docs

## docs: build the site with the runbook plugin, strictly
docs: $(STAMP)
	$(BIN)/mkdocs build --strict

serve: $(STAMP)
	$(BIN)/mkdocs serve

## bench: print the performance figures side by side with the peer tools
bench: $(STAMP)
	$(BIN)/pip install --quiet -r bench/requirements.txt
	$(BIN)/python bench/bench_load.py
	$(BIN)/python bench/bench_exec.py

clean:
	rm -rf $(VENV) site .runbook .pytest_cache .mypy_cache .ruff_cache
