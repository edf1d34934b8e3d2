# UPT set-up and everyday commands. `make demo` and `make test` each work on a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# The demo keeps its own store and model registry and starts from scratch each time, so a second
# `make demo` shows what the code does now (in a kept store its earlier labels and champion model
# would stand) and never touches ./.upt or ./mlruns.
DEMO_HOME := .upt/demo
DEMO      := $(DEMO_HOME)/data

.PHONY: install demo test bench check lint format migration clean constraints

install: $(STAMP)

# torch first, so pip takes the CPU build that lies on disk instead of a multi-GB CUDA build.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	$(BIN)/upt encoders prepare   # distill the default blocking encoder once, offline, into the cache
	touch $(STAMP)

demo: export UPT_HOME = $(DEMO_HOME)
demo: export UPT_MLFLOW_TRACKING_URI = $(DEMO_HOME)/mlruns
demo: install
	rm -rf $(DEMO_HOME)
	$(BIN)/upt generate --persons 2000 --seed 7 --bad-rate 0.005 --out $(DEMO)
	$(BIN)/upt ingest $(DEMO)/objects.jsonl
	$(BIN)/upt errors list --limit 5
	$(BIN)/upt block
	$(BIN)/upt block --evaluate --truth $(DEMO)/truth.csv
	@echo "== labelling: a SIMULATED labeller answers from the sample's truth file =="
	$(BIN)/upt label --oracle $(DEMO)/truth.csv --budget 50
	$(BIN)/upt train
	$(BIN)/upt resolve
	$(BIN)/upt export --mentions $(DEMO)/assignment.csv --profiles $(DEMO)/profiles
	$(BIN)/upt evaluate --truth $(DEMO)/truth.csv
	$(BIN)/upt report --truth $(DEMO)/truth.csv

test: install
	$(BIN)/pytest

bench: install
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,bench]'
	$(BIN)/python -m benchmarks.run

check: install lint
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy profiles features models labeling training pipelines benchmarks

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# New Alembic revision from the difference between profiles/store/schema.py and the migrations.
migration: install
	$(BIN)/python -c "import sys; from profiles.store.db import new_revision; new_revision(sys.argv[1])" "$(m)"

clean:
	rm -rf $(VENV) .upt .pytest_cache .ruff_cache .mypy_cache

# Pin what is installed now (after `make install` and the bench extra) as constraints.txt.
constraints: install
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,bench]'
	( sed -n '1,3p' constraints.txt; $(BIN)/pip freeze --exclude-editable | grep -v -i '^torch==' ) > constraints.new
	mv constraints.new constraints.txt
