# pinsched — `make demo` runs it, `make test` tests it. Both install what they need into .venv.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
# Test processes: the suite mostly waits (daemons, subprocesses, PostgreSQL); 2 fill 2 cores.
PYTEST_WORKERS ?= 2

.PHONY: install demo serve sandbox test lint proto proto-check ruff mypy buf hadolint pytest bench clean lock hooks

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

demo: install            ## daemon + local sandbox + a few pins with their live status feed
	$(BIN)/pinsched demo

serve: install
	$(BIN)/pinsched serve

sandbox: install
	$(BIN)/pinsched sandbox --seed-demo

test: install lint pytest  ## everything CI runs

lint: proto-check ruff mypy buf hadolint

proto: install           ## regenerate pinsched/v1 from proto/
	$(BIN)/python scripts/gen_proto.py

proto-check: install
	$(BIN)/python scripts/gen_proto.py --check

ruff: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

mypy: install
	$(BIN)/mypy pinsched clients/python/pinsched_client tests

buf:
	npx --yes @bufbuild/buf@1.75.0 lint

hadolint: install
	$(BIN)/hadolint Dockerfile

# Branch coverage of pinsched/, reported after the run; below the floor in pyproject.toml
# ([tool.coverage.report] fail_under) the run fails.
pytest: install           ## the suite on PYTEST_WORKERS processes (pytest-xdist), with branch coverage
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist worksteal --cov=pinsched --cov-branch --cov-report=term

hooks: install           ## run what CI's lint runs before each commit (.pre-commit-config.yaml)
	$(BIN)/pre-commit install

# The Docker image's dependency locks, with sha256 hashes, from PyPI (needs network access).
# pip-compile keeps the pins already in the files; `make lock LOCK_FLAGS=--upgrade` moves them.
LOCK := PIP_CONFIG_FILE=/dev/null PIP_FIND_LINKS= $(BIN)/pip-compile --quiet --generate-hashes \
	--strip-extras --no-emit-index-url --index-url https://pypi.org/simple $(LOCK_FLAGS)
lock: install            ## regenerate requirements.lock and build.lock (Docker image)
	$(LOCK) --output-file requirements.lock pyproject.toml
	$(LOCK) --allow-unsafe --output-file build.lock build.in

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build *.egg-info
