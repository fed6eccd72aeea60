# pgfleet.partitions: developer and CI entry points. `make test` is what CI runs (.ci/run).
# Every gate is a function in scripts/test-all; `make <gate>` runs one, `make test` runs them all.

SHELL := /bin/bash
.DEFAULT_GOAL := help

# `make test PYTHON=/path/to/python3.12` picks the controller venv's Python (>= 3.12); without it,
# scripts/find-python chooses. Only the command line counts: a PYTHON in the environment may mean anything.
ifeq ($(origin PYTHON),command line)
export PGFLEET_PYTHON := $(PYTHON)
endif

# The gates, in order: one list, ALL_GATES in scripts/test-all.
GATES := $(shell scripts/test-all --list)
ifeq ($(strip $(GATES)),)
$(error scripts/test-all --list named no gates)
endif

.PHONY: help venv test lint doc $(GATES) clean distclean demo demo-clean report-screenshot bench

help:
	@echo "make test          every gate, then a summary (what CI runs)"
	@echo "make lint          yamllint + ansible-lint + ruff"
	@echo "make <gate>...     some gates, one summary: $(GATES)"
	@echo "make doc           = make ansible-doc"
	@echo "make venv          create or refresh .venv (automatic for the targets above; the 2.17 gates build .venv/ansible-2.17)"
	@echo "make clean         remove tests/output and build artefacts; make distclean also removes .venv"
	@echo "make demo | demo-clean | report-screenshot | bench"
	@echo "logs: tests/output/logs/<gate>.log"

venv:
	@scripts/venv

test: venv
	@scripts/test-all

lint: venv
	@scripts/test-all yamllint ansible-lint ruff

doc: ansible-doc

# `make sanity pytest` runs both gates in one scripts/test-all, so one summary covers them: the first gate
# named on the command line runs them all, the others have nothing left to do.
GOAL_GATES := $(filter $(GATES),$(MAKECMDGOALS))
$(GATES): venv
	@if [[ -z "$(GOAL_GATES)" ]]; then scripts/test-all $@; \
	elif [[ "$@" == "$(firstword $(GOAL_GATES))" ]]; then scripts/test-all $(GOAL_GATES); fi

clean:
	rm -rf tests/output dist .pytest_cache .ruff_cache .ansible
	find . -path ./.venv -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf .venv

# Entry points whose scripts other work brings; until then they say so and fail.
define run_if_present
	@if [[ -x $(1) ]]; then scripts/venv && exec $(1); else echo "$@: not yet available ($(1) does not exist)"; exit 1; fi
endef

demo:
	$(call run_if_present,scripts/demo)

demo-clean:
	$(call run_if_present,scripts/demo-clean)

# The README's picture of the report make demo writes (docs/img/report.png).
report-screenshot:
	@scripts/report-screenshot

bench:
	$(call run_if_present,bench/run)
