"""Starting the app as a Space does (`python app.py`, settings from the environment only): the status page while
the model loads, the app after it, and the embedded default with a notice when the chosen model cannot load."""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import httpx
import pytest
import torch
from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

from tests.conftest import MODEL_CACHE_DATA_DIR, free_port
from tutor import startup
from tutor.config import ROOT, Settings
from tutor.errors import ModelLoadError
from tutor.runtime import load_model_or_embedded, unavailable


def start(tmp_path, **env):
    """`python app.py` on a free loopback port; (process, url, log path)."""
    port = free_port()
    log = tmp_path / "app.log"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TUTOR_")}
    full_env.update({"GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port), "TUTOR_LOG_LEVEL": "INFO",
                     **env})
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=full_env, stdout=out,
                                   stderr=subprocess.STDOUT)
    return process, f"http://127.0.0.1:{port}/", log


def stop(process):
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def get(url: str, timeout: float = 5):
    """(status, headers, body text) of a GET; (None, {}, '') when nothing answers yet."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None, {}, ""


def wait_until(check, what: str, process, log, timeout: float = 240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    ended = "timed out" if process.poll() is None else f"the app exited ({process.poll()})"
    raise AssertionError(f"{ended} waiting for {what}; app log:\n{log.read_text()[-3000:]}")


def app_is_up(url):
    code, _, body = get(url + "config")
    return code == 200 and '"components"' in body and body


@pytest.mark.model
@pytest.mark.browser
def test_the_status_page_shows_while_the_model_loads_and_then_turns_into_the_app(tmp_path):
    from tests.browser import chromium

    # A data folder of its own: this start converts the model and indexes the readings, as a first start does.
    with chromium() as browser:
        process, url, log = start(tmp_path, TUTOR_DATA_DIR=str(tmp_path / "data"), TUTOR_MODEL="embedded")
        try:
            status = wait_until(lambda: get(url + "startup-status")[0] == 200 and get(url + "startup-status"),
                                "the status page", process, log, timeout=60)
            assert json.loads(status[2])["ready"] is False
            # Loading takes seconds from here (Gradio is imported, the model converted, the readings indexed),
            # so the page a learner opens now is the status page.
            page = browser.new_page()
            page.goto(url)
            shown = page.locator("#status").inner_text(timeout=5_000)
            assert "Preparing the model SmolLM2-135M-Instruct (built in)" in shown and "s so far" in shown

            page.wait_for_selector("textarea", timeout=240_000)  # the page reloads itself into the app
            assert page.locator("#status").count() == 0
            assert page.get_by_text("Prompt-engineering tutor").first.is_visible()
            page.screenshot(path=str(tmp_path / "app.png"))
        finally:
            stop(process)
    assert "the status page is at" in log.read_text()
    # The next start says how long this one took.
    assert "as the last start took" in startup.expected_time(Settings.from_env({}, data_dir=tmp_path / "data"))


@pytest.mark.model
def test_a_model_that_cannot_load_starts_the_embedded_default_and_says_why(tmp_path):
    from gradio_client import Client

    process, url, log = start(tmp_path, TUTOR_MODEL="no-such-org/no-such-model",
                              TUTOR_DATA_DIR=str(MODEL_CACHE_DATA_DIR), HF_HUB_OFFLINE="1")
    try:
        config = wait_until(lambda: app_is_up(url), "the app", process, log)
        assert "running on the small built-in model" in config and "no-such-org/no-such-model could not load" in config
        reply = Client(url, verbose=False).predict("What is a delimiter?", [], "", api_name="/chat")
        assert "[1]" in str(reply), reply  # answered from the readings, with a citation
    finally:
        stop(process)
    text = log.read_text()
    assert "no-such-org/no-such-model could not load" in text and "To serve it:" in text and "Traceback" not in text


def test_only_a_model_that_is_not_available_here_falls_back_and_the_log_says_what_to_set():
    settings = Settings.from_env({"TUTOR_MODEL": "mistralai/Mistral-7B-Instruct-v0.2"})
    response = httpx.Response(401, request=httpx.Request("GET", "https://huggingface.co/mistralai"))

    def caused_by(cause):
        error = ModelLoadError("TUTOR_MODEL='mistralai/Mistral-7B-Instruct-v0.2' could not be loaded")
        error.__cause__ = cause
        return error

    gated = caused_by(GatedRepoError("Access to model mistralai/Mistral-7B-Instruct-v0.2 is restricted.",
                                     response=response))
    assert "token" in unavailable(gated, settings)[0] and "HF_TOKEN" in unavailable(gated, settings)[1]
    # A typo: the Hub's 401 text mentions "gated" too, but the error type says what it is.
    typo = caused_by(RepositoryNotFoundError("401 Client Error. Repository Not Found ... private or gated repo",
                                             response=response))
    assert "not on the Hugging Face Hub" in unavailable(typo, settings)[0]
    why, what = unavailable(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"), settings)
    assert "GPU memory" in why and "TUTOR_4BIT" in what
    # Anything else is a setting to fix: the app stops with its message instead of serving another model.
    assert unavailable(ModelLoadError("TUTOR_ADAPTER='mistral-tutr': no adapter at adapters/mistral-tutr"),
                       settings) is None
    assert unavailable(ValueError("Unrecognized configuration class"), settings) is None
    with pytest.raises(ModelLoadError, match="TUTOR_MODEL"):  # a model server that is not up: no fallback
        load_model_or_embedded(Settings.from_env({"TUTOR_MODEL": f"openai:http://127.0.0.1:{free_port()}/v1",
                                                  "TUTOR_OPENAI_RETRIES": "0"}))


def test_a_setting_that_cannot_work_stops_before_the_status_page(tmp_path):
    process, url, log = start(tmp_path, TUTOR_4BIT="sometimes")
    assert process.wait(timeout=120) != 0
    text = log.read_text()
    assert [line for line in text.splitlines() if line.startswith("error:")] == [
        "error: TUTOR_4BIT='sometimes' is not valid: use one of auto, on, off."]
    assert "status page" not in text


def test_the_status_page_answers_every_path_without_the_app(tmp_path):
    status = startup.StartupStatus("a <b>model</b>", "about 3 s")
    status.set("loading the model")
    port = free_port()
    server = startup.StatusServer("127.0.0.1", port, status)
    try:
        url = f"http://127.0.0.1:{port}"
        code, _, page = get(url + "/?__theme=dark")
        assert code == 200 and "loading the model" in page and "<b>" not in page  # escaped
        code, _, body = get(url + "/startup-status")
        assert code == 200 and json.loads(body)["step"] == "loading the model"
        code, headers, _ = get(url + "/config")  # what health checks poll: not ready yet
        assert code == 503 and headers["Retry-After"] == "5"
        request = urllib.request.Request(url + "/gradio_api/call/chat", data=b"{}", method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)
        assert refused.value.code == 503 and refused.value.headers["Retry-After"] == "5"
    finally:
        server.close()
    with socket.socket() as s:  # the port is free again for Gradio
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
