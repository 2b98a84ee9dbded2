# Two commands do all set-up: `make demo` and `make test`. Both create or reuse .venv/.
PY := .venv/bin/python
SETUP := scripts/setup_env.sh

.PHONY: env demo test lint bench clean

env:
	@bash $(SETUP)

demo: env
	$(PY) -m hetmap demo

test: env
	$(PY) -m ruff check src tests bench
	$(PY) -m pytest -q

lint: env
	$(PY) -m ruff check src tests bench

bench: env
	$(PY) bench/supernet_overhead.py

clean:
	rm -rf .venv runs .pytest_cache .ruff_cache
