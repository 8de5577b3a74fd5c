# pinsched — `make demo` runs it, `make test` tests it. Both install what they need into .venv.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: install demo serve sandbox test lint proto proto-check ruff mypy buf hadolint pytest bench clean

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

mypy: install
	$(BIN)/mypy pinsched clients/python/pinsched_client

buf:
	npx --yes @bufbuild/buf@1.75.0 lint

hadolint: install
	$(BIN)/hadolint Dockerfile

pytest: install
	$(BIN)/pytest -q

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build *.egg-info
