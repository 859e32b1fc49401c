VENV ?= .venv
BIN = $(VENV)/bin
STAMP = $(VENV)/.installed
BENCH_STAMP = $(VENV)/.bench-installed

.PHONY: install serve test lint format bench bench-quick clean

$(STAMP): setup.py setup.cfg
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# The benchmarks also draw their plot with matplotlib (the ``bench`` extra).
$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e ".[test,bench]"
	touch $(BENCH_STAMP)

## Run Kinto with the plugin on the memory backend: http://127.0.0.1:8888/v1/
serve: install
	$(BIN)/kinto start --ini config/kinto.ini

## Lint, then the whole suite on memory and PostgreSQL, with a coverage gate.
test: install lint
	$(BIN)/pytest --cov=kinto_changes --cov-report=term-missing --cov-fail-under=90 tests

lint: install
	$(BIN)/ruff check kinto_changes tests $(wildcard bench)
	$(BIN)/ruff format --check kinto_changes tests $(wildcard bench)

format: install
	$(BIN)/ruff check --fix kinto_changes tests $(wildcard bench)
	$(BIN)/ruff format kinto_changes tests $(wildcard bench)

## Benchmarks on real servers, memory and PostgreSQL: about 20 minutes.
bench: $(BENCH_STAMP)
	$(BIN)/python bench/run.py

## The same with N = 100 and 1,000 only: under 3 minutes.
bench-quick: $(BENCH_STAMP)
	$(BIN)/python bench/run.py --quick

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .coverage
