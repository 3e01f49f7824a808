# Two commands: `make run` (set up and start the app) and `make test` (set up and run the whole suite).
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# torch, at the version pyproject.toml pins: on the project's machines pip takes the CPU wheel from local disk;
# elsewhere PyPI's build. Everything else comes from requirements.lock (exact versions and hashes; `make lock`).
TORCH ?= $(shell grep -oE '"torch==[^"]+"' pyproject.toml | tr -d '"')
STAMP := $(VENV)/.installed
# llama-cpp-python (the CPU serving back-end) has no binary wheel on PyPI: pip builds it from source once (about
# 3 minutes on 2 cores) and keeps the wheel in its cache for later installs. Only the library is built (no server,
# tools, examples or LLaVA); GGML_OPENMP=OFF gives ggml its own thread pool instead of a second OpenMP runtime
# beside torch's in the same process.
LLAMA_CMAKE_ARGS := -DLLAVA_BUILD=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_TOOLS=OFF \
	-DLLAMA_BUILD_SERVER=OFF -DGGML_OPENMP=OFF

.PHONY: run test lint install prepare bench clean lock space-check screenshot

$(PY):
	python3 -m venv $(VENV)

$(STAMP): pyproject.toml requirements.lock | $(PY)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet "$(TORCH)"
	CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" \
		$(PIP) install --quiet --require-hashes --no-deps -r requirements.lock
	$(PIP) install --quiet --no-deps -e .
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

# Re-resolve pyproject.toml into requirements.lock (make's install) and requirements.txt (a Space's install).
lock: $(STAMP)
	$(PIP) install --quiet uv
	bash scripts/lock.sh

# A classroom load test against the app started on a free loopback port (a benchmark: prints figures).
.PHONY: loadtest
loadtest: $(STAMP)
	GRADIO_ANALYTICS_ENABLED=False $(PY) -m tutor.loadtest

# What a Hugging Face Space does, checked here: the repository's files in a fresh folder, a fresh virtualenv from
# requirements.txt only, `python app.py` with no TUTOR_* variable, one question through gradio_client.
space-check:
	python3 scripts/space_check.py

# The README's screenshot (docs/screenshot.png), taken in Chromium from the real app by a browser test.
screenshot: $(STAMP)
	SCREENSHOT_TO=docs/screenshot.png GRADIO_ANALYTICS_ENABLED=False $(PY) -m pytest -q tests/test_screenshot.py
