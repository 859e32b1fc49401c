VENV ?= .venv
BIN = $(VENV)/bin
STAMP = $(VENV)/.installed
# The lowest Kinto that setup.cfg allows (.venv has the newest).
# Port of `make serve` and `make demo`: `make serve PORT=8899`.
PORT ?= 8888
LOWEST = .venv-lowest
LOWEST_STAMP = $(LOWEST)/.installed
BENCH_STAMP = $(VENV)/.bench-installed

.PHONY: install serve demo test test-newest test-lowest lint format bench bench-quick bench-long-poll bench-plots clean

$(STAMP): setup.py setup.cfg
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

$(LOWEST_STAMP): setup.py setup.cfg .ci/kinto-lowest.txt
	python3 -m venv $(LOWEST)
	$(LOWEST)/bin/pip install --quiet --upgrade pip
	$(LOWEST)/bin/pip install --quiet -e ".[test]" -c .ci/kinto-lowest.txt
	touch $(LOWEST_STAMP)

# The benchmarks also draw their pictures with matplotlib (the ``bench`` extra).
$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e ".[test,bench]"
	touch $(BENCH_STAMP)

## Run Kinto with the plugin on the memory backend: http://127.0.0.1:$(PORT)/v1/
serve: install
	$(BIN)/kinto start --ini config/kinto.ini --port $(PORT)

## With `make serve` running: the buckets, collections, records and users
## that README.rst and docs/ use (idempotent).
demo: install
	@$(BIN)/python demo/create_example_data.py --port $(PORT)

## Lint, then the whole suite on memory and PostgreSQL, with the newest Kinto
## (with a coverage gate), then with the lowest Kinto that setup.cfg allows:
## there without the tests that start server processes (they exercise the
## same plugin code as the in-process ones) and with 100 random convergence
## steps instead of 300, to keep CI short.
test: lint test-newest test-lowest

test-newest: install
	$(BIN)/python -c "import kinto; print('Kinto', kinto.__version__)"
	$(BIN)/pytest --cov=kinto_changes --cov-report=term-missing --cov-fail-under=90 tests

test-lowest: $(LOWEST_STAMP)
	$(LOWEST)/bin/python -c "import kinto; print('Kinto', kinto.__version__)"
	KINTO_CHANGES_CONVERGENCE_STEPS=100 $(LOWEST)/bin/pytest -p no:cacheprovider -m "not processes" tests

lint: install
	$(BIN)/ruff check kinto_changes tests $(wildcard bench) $(wildcard demo)
	$(BIN)/ruff format --check kinto_changes tests $(wildcard bench) $(wildcard demo)

format: install
	$(BIN)/ruff check --fix kinto_changes tests $(wildcard bench) $(wildcard demo)
	$(BIN)/ruff format kinto_changes tests $(wildcard bench) $(wildcard demo)

## Benchmarks on real servers, memory and PostgreSQL: about 20 minutes.
bench: $(BENCH_STAMP)
	$(BIN)/python bench/run.py

## The same with N = 100 and 1,000 only: under 3 minutes.
bench-quick: $(BENCH_STAMP)
	$(BIN)/python bench/run.py --quick

## The long poll: wake latency, idle waiters' cost, polls saved (about 7 minutes).
bench-long-poll: $(BENCH_STAMP)
	$(BIN)/python bench/long_poll.py

## Redraw docs/img/ from bench/results.json and bench/long_poll.json (no run).
bench-plots: $(BENCH_STAMP)
	$(BIN)/python bench/plots.py

clean:
	rm -rf $(VENV) $(LOWEST) *.egg-info .pytest_cache .coverage
