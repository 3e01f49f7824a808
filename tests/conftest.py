"""Shared fixtures. Nothing here reaches the Hugging Face Hub: offline mode is forced for the whole run."""
from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

from tutor import config  # noqa: E402
from tutor.config import ROOT, Settings  # noqa: E402

# The suite is about the embedded default: on a machine with a GPU, TUTOR_MODEL=auto would pick Mistral-7B.
# (tests/test_config.py checks the choice itself with its own stand-in.) Subprocesses get TUTOR_MODEL=embedded.
config.gpu_visible = lambda: False
os.environ.setdefault("TUTOR_MODEL", "embedded")

# The dequantized embedded model is cached here across runs (and shared with `make run`), so only the first
# test session on a machine pays the ~30 s conversion.
MODEL_CACHE_DATA_DIR = Path(os.environ.get("TUTOR_DATA_DIR", ROOT / ".tutor-data"))


@pytest.fixture
def settings(tmp_path) -> Settings:
    """Settings with a private data dir (progress, readings index) for one test."""
    return Settings.from_env({}, data_dir=tmp_path / "data")


def _embedded(**overrides) -> Settings:
    return Settings.from_env({}, data_dir=MODEL_CACHE_DATA_DIR, **overrides)


@pytest.fixture(scope="session")
def chat_model(request):
    """The real embedded default model without the adapter, on the back-end the app picks by default (llama.cpp
    on a CPU machine where llama-cpp-python is installed), loaded once per test session."""
    from tutor.models import resolve_backend

    backend = resolve_backend(_embedded(adapter="none"))
    return request.getfixturevalue("llamacpp_chat_model" if backend == "llamacpp" else "hf_chat_model")


@pytest.fixture(scope="session")
def hf_chat_model():
    """The embedded model on the transformers back-end (what training uses), without the adapter."""
    from tutor.models import load_model

    return load_model(_embedded(adapter="none", backend="transformers"))


@pytest.fixture(scope="session")
def llamacpp_chat_model():
    """The embedded model on the llama.cpp back-end, without the adapter."""
    pytest.importorskip("llama_cpp")
    from tutor.models import load_model

    return load_model(_embedded(adapter="none", backend="llamacpp"))


@pytest.fixture(scope="session", params=["llamacpp", "transformers"])
def each_model(request):
    """The embedded model on each local back-end in turn: behaviour the interface promises holds on both."""
    return request.getfixturevalue("hf_chat_model" if request.param == "transformers" else "llamacpp_chat_model")


@pytest.fixture(scope="session")
def served_model():
    """The model as the app serves it by default (with the shipped adapter when there is one)."""
    from tutor.models import load_model

    return load_model(_embedded())


# Mistral-7B-Instruct-v0.2's chat template: it raises on a system message (the folding path must run).
MISTRAL_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
)


@pytest.fixture(scope="session")
def postgres_server():
    """One real PostgreSQL server for the session (Debian's `postgresql`); its superuser URL."""
    from tests import postgres

    if postgres.bin_dir() is None:
        if os.environ.get("CI") == "true":
            raise RuntimeError("CI=true but no PostgreSQL found: .ci/run installs Debian's `postgresql`; install it.")
        pytest.skip("no PostgreSQL on this machine: `apt-get install postgresql` to run these tests")
    with postgres.running_postgres() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """A fresh, empty database on the session's PostgreSQL server."""
    from tests.postgres import new_database

    return new_database(postgres_server)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_app(tutor):
    """The Gradio app for ``tutor`` on a free loopback port, in this process: (demo, url). Close the demo after."""
    from tutor import ui

    demo = ui.build_app(tutor)
    port = free_port()
    ui.launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    return demo, f"http://127.0.0.1:{port}/"


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")
