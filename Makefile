# Peluit: the verbs. `make run` starts the product on embedded defaults; `make test` installs
# what is missing and runs every test. See README.md.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
INSTANCE ?= instance

# Translations are compiled from the committed .po files; axe-core (for the accessibility
# check of the end-to-end test) comes from the npm registry at a pinned version.
PO  := $(wildcard source_iface/translations/*/LC_MESSAGES/messages.po \
              journalist_iface/translations/*/LC_MESSAGES/messages.po)
MO  := $(PO:.po=.mo)
AXE := $(VENV)/axe/axe.min.js

.DEFAULT_GOAL := help
.PHONY: help install system-deps run test lint bench clean translations lock

help: ## Show the verbs
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

system-deps: ## Install the system packages the tests need (gnupg, tor, postgresql, chromium, ...)
	@./scripts/system-deps.sh test

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

%.mo: %.po $(STAMP)
	$(BIN)/pybabel compile --statistics -i $< -o $@

translations: $(MO) ## Compile the interface translations

$(AXE): scripts/fetch-axe.sh
	./scripts/fetch-axe.sh $@

install: $(STAMP) $(MO) ## Create .venv with Peluit installed editable, with its dev extras

run: install ## Start Peluit on embedded defaults (SQLite, local store, demo tenants)
	@./scripts/system-deps.sh run
	$(BIN)/peluit --instance $(INSTANCE) init --demo
	$(BIN)/peluit --instance $(INSTANCE) run

test: system-deps install $(AXE) ## Run every test (SQLite and a private PostgreSQL server)
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install ## ruff, mypy, and the import contracts that keep the layers (pyproject.toml)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# The hashed locks that deploy/install.sh installs: after any change of the dependencies in
# pyproject.toml (tests/deploy/test_lock.py fails until then). Pins are kept while they fit;
# LOCK_ARGS=--upgrade (or --upgrade-package NAME) moves them. See scripts/lock.sh.
lock: install ## Regenerate deploy/requirements*.txt, the installer's hashed locks, from pyproject.toml
	./scripts/lock.sh $(LOCK_ARGS)

bench: install ## Benchmarks: ratios against gpg alone and the disk, same run
	@./scripts/system-deps.sh bench
	$(BIN)/python bench/run.py

clean: ## Remove the virtualenv and caches (never the instance folder)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
