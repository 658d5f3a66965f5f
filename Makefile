# fundpool — the two commands of the quick start are `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "fundpool needs Python >= 3.11")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==25.3
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/fundpool demo

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest -q -p no:cacheprovider -n 2 --dist loadfile --no-loadscope-reorder

bench: install
	$(BIN)/python bench/ledger.py
	$(BIN)/python bench/sql_bulk.py
	$(BIN)/python bench/payments.py
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/routing.py
	$(BIN)/python bench/risk.py
	$(BIN)/python bench/screening.py
	$(BIN)/python bench/recon.py
	$(BIN)/python bench/statements.py
	$(BIN)/python bench/netting.py
	$(BIN)/python bench/liquidity.py
	$(BIN)/python bench/risk_patterns.py
	$(BIN)/python bench/risk_patterns.py --policy anomaly
	$(BIN)/python bench/audit.py
	$(BIN)/python bench/approvals.py
	$(BIN)/python bench/events.py
	$(BIN)/python bench/api.py
	$(BIN)/python bench/console.py
	$(BIN)/python bench/startup.py

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache .hypothesis
