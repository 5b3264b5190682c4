# The two commands of the README. Each does all set-up first (idempotent, fast when done).
ARGS ?=

.PHONY: setup rollout test lint benchmark

setup:
	./setup.sh

rollout: setup
	.venv/bin/python -m embodied.rollout $(ARGS)

test: setup
	.venv/bin/python -m ruff check .
	.venv/bin/python -m ruff format --check .
	.venv/bin/python -m mypy
	.venv/bin/python -m pytest $(ARGS)

benchmark: setup
	.venv/bin/python -m experiments.benchmark_env $(ARGS)
