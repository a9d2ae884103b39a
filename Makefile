# feedsim: every target bootstraps .venv from pyproject.toml (pinned by constraints.txt).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NAME ?= trinidad
ARGS ?=

SEED_CASES := trinidad jessia kardashian microcommunities feedback small_business discovery cant_cheat calibration

.PHONY: setup setup-ray test test-slow experiment experiments example report docs bench calibrate lint clean

# What `make test` needs: the package (what a run needs) and its dev extra (test tools, matplotlib
# for the report, pandas for Results.to_pandas); `make test` adds Ray (setup-ray).
setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# Ray (--executor ray): the tests run a two-node Ray cluster, so `make test` installs it.
setup-ray: $(VENV)/.installed-ray

$(VENV)/.installed-ray: $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,ray]'
	touch $@

test: setup-ray
	$(BIN)/python -m pytest -q

test-slow: setup-ray
	$(BIN)/python -m pytest -q -m slow

experiment: setup
	$(BIN)/python -m sim run experiments/$(NAME).toml $(ARGS)

# Every seed case and the calibration world, then their declared [[claims]]: fails if any run fails or
# any claim does not pass (ARGS=--quick: the quick variants, in results/<name>-quick).
experiments: setup
	@status=0; folders=""; \
	for name in $(SEED_CASES); do \
		$(BIN)/python -m sim run experiments/$$name.toml $(ARGS) || status=1; \
		folders="$$folders results/$$name$(if $(findstring --quick,$(ARGS)),-quick,)"; \
	done; \
	$(BIN)/python -m sim claims $$folders || status=1; \
	exit $$status

# A custom ranker outside sim/ (examples/my_ranker) against content and follower, through sim.run.
example: setup
	PYTHONPATH=examples/my_ranker $(BIN)/python examples/compare_rankers.py

report: setup
	$(BIN)/python -m sim report $(NAME)

# docs/results.md, docs/results-schema.md and the README's results table, from results/ and the schema.
docs: setup
	$(BIN)/python -m sim docs

bench: setup
	$(BIN)/python -m sim bench --scaling --json
	$(BIN)/python -m sim bench --jobs-scaling --json

# The calibration table: run the standard world (resumes if finished; --force reruns it when the
# configuration or the git revision has changed since), then rebuild the table.
calibrate: setup
	$(BIN)/python -m sim run experiments/calibration.toml --out results/calibration --force $(ARGS)
	$(BIN)/python -m sim.analysis.calibrate results/calibration

lint: setup
	$(BIN)/ruff check sim tests
	$(BIN)/mypy

clean:
	rm -rf $(VENV) results
