# feedsim: every target bootstraps .venv from pyproject.toml (pinned by constraints.txt).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NAME ?= trinidad
ARGS ?=

.PHONY: setup test test-slow experiment report bench calibrate lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,ray]'
	touch $(STAMP)

test: setup
	$(BIN)/python -m pytest -q

test-slow: setup
	$(BIN)/python -m pytest -q -m slow

experiment: setup
	$(BIN)/python -m sim run experiments/$(NAME).toml $(ARGS)

report: setup
	$(BIN)/python -m sim report $(NAME)

bench: setup
	$(BIN)/python -m sim bench --scaling --json
	$(BIN)/python -m sim bench --jobs-scaling --json

# The calibration table: run the standard world (resumes if finished; --force reruns it when the
# calibrated defaults have changed since), then rebuild the table.
calibrate: setup
	$(BIN)/python -m sim run experiments/calibration.toml --out results/calibration --force $(ARGS)
	$(BIN)/python -m sim.calibrate results/calibration

lint: setup
	$(BIN)/ruff check sim tests
	$(BIN)/mypy

clean:
	rm -rf $(VENV) results
