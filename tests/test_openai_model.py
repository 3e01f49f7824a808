"""TUTOR_MODEL=openai:<url> against a real `transformers serve` process on the embedded model's cached folder."""
from __future__ import annotations

import pytest

pytest.importorskip("openai", reason="`transformers serve` needs the transformers[serving] extra (pip install -e '.[test]')")
pytest.importorskip("uvicorn", reason="`transformers serve` needs the transformers[serving] extra")

from tests.conftest import MODEL_CACHE_DATA_DIR, free_port
from tests.servers import BIN, running
from tutor.config import Settings
from tutor.errors import GenerationError, ModelLoadError
from tutor.models import GenerationSettings, complete, inspectable, load_model
from tutor.tutor import Session

pytestmark = pytest.mark.model

HELLO = [{"role": "user", "content": "Say hello to a new student."}]
GREEDY_8 = GenerationSettings(max_new_tokens=8, temperature=0, repetition_penalty=1.0)


def serve(tmp_path):
    """`transformers serve` on the embedded model's cached folder (built on first use, as the app does)."""
    from tutor.models.hf.loading import resolve_source

    folder, _ = resolve_source(Settings.from_env({}, data_dir=MODEL_CACHE_DATA_DIR))
    port = free_port()
    command = [str(BIN / "transformers"), "serve", folder, "--host", "127.0.0.1", "--port", str(port),
               "--dtype", "float32"]
    return running(command, f"http://127.0.0.1:{port}/health", tmp_path / "transformers-serve.log",
                   env={"HF_HUB_OFFLINE": "1"}), f"http://127.0.0.1:{port}/v1"


@pytest.fixture(scope="module")
def server_url(tmp_path_factory):
    server, url = serve(tmp_path_factory.mktemp("openai-server"))
    with server:
        yield url


def remote_settings(url: str, tmp_path, **overrides) -> Settings:
    return Settings.from_env({}, data_dir=tmp_path / "data", model=f"openai:{url}", **overrides)


@pytest.fixture(scope="module")
def remote(server_url, tmp_path_factory):
    model = load_model(remote_settings(server_url, tmp_path_factory.mktemp("remote")))
    yield model
    model.close()


def test_streams_a_reply_in_chunks_and_says_what_it_estimates(remote):
    chunks = list(remote.stream(HELLO, GREEDY_8))
    assert len(chunks) > 2 and "".join(chunks).strip()
    assert remote.info.backend == "openai" and remote.info.name.startswith(str(MODEL_CACHE_DATA_DIR / "models"))
    assert "estimated" in remote.info.extra["token_count"]  # transformers serve has no /tokenize
    assert remote.info.context_window == 4096 and "TUTOR_OPENAI_CONTEXT" in remote.info.extra["context_window_source"]
    assert not inspectable(remote), "no logits from this server: the instrument tabs must stay hidden"


def test_stop_sequence_ends_the_reply_even_though_the_server_ignores_it(remote):
    free = complete(remote, HELLO, GREEDY_8)
    words = free.split()
    assert len(words) >= 3, free
    stop = " " + words[2]
    stopped = complete(remote, HELLO, GREEDY_8.with_(stop=(stop,)))
    assert stop not in stopped and free.startswith(stopped) and len(stopped) < len(free)


def test_default_sampling_works_when_the_server_rejects_top_k(remote):
    # The tutor's defaults carry top_k and repetition_penalty; transformers serve answers 422 to them.
    text = complete(remote, HELLO, GenerationSettings(max_new_tokens=6, seed=3))
    assert text.strip()
    assert remote.send_extras is False


def test_hostile_text_is_cut_to_the_window_and_answered(server_url, tmp_path):
    model = load_model(remote_settings(server_url, tmp_path, openai_context=256))
    hostile = ("{input} {{input}} {% raw %} \x00 \u202e NaN ☃ " * 3000) + "\n" * 500
    messages, cut = model.fit_messages([{"role": "user", "content": hostile}], reserve=8)
    assert cut and "cut to fit" in messages[-1]["content"]
    assert model.count_tokens(model.render(messages)) <= 256 - 8
    assert isinstance(complete(model, messages, GenerationSettings(max_new_tokens=4, temperature=0)), str)
    model.close()


def test_a_tutor_chat_through_build_tutor(server_url, tmp_path):
    from tutor.runtime import build_tutor

    tutor = build_tutor(remote_settings(server_url, tmp_path, max_new_tokens=16))
    session = Session(learner="remote-learner")
    lesson = "".join(tutor.reply("/lesson delimiters", [], session))
    assert "Exercise 1" in lesson and session.lesson_id == "delimiters"
    assert "Hint 1" in "".join(tutor.reply("/hint", [], session))
    # A question: the grounded answer streams from the server; stop reading after a few chunks, as a closed tab does.
    reply = tutor.reply("What is a delimiter in a prompt?", [], session)
    first = [next(reply) for _ in range(3)]
    reply.close()
    assert "".join(first).strip()
    # The next request is served normally after the abandoned one.
    assert complete(tutor.model, HELLO, GREEDY_8.with_(max_new_tokens=2)).strip()


def test_wrong_urls_name_the_variable_to_fix(tmp_path):
    with pytest.raises(ModelLoadError, match="TUTOR_MODEL"):
        load_model(remote_settings(f"http://127.0.0.1:{free_port()}/v1", tmp_path, openai_retries=0))
    with pytest.raises(ModelLoadError, match="TUTOR_MODEL"):
        load_model(Settings.from_env({}, data_dir=tmp_path, model="openai:localhost-without-scheme"))


def test_unknown_model_name_lists_what_the_server_has(server_url, tmp_path):
    with pytest.raises(ModelLoadError, match="TUTOR_OPENAI_MODEL='no-such-model'.*smollm2"):
        load_model(remote_settings(server_url, tmp_path, openai_model="no-such-model"))


def test_a_server_that_dies_gives_a_clear_error(tmp_path):
    server, url = serve(tmp_path)
    with server as process:
        model = load_model(remote_settings(url, tmp_path, openai_retries=1))
        assert complete(model, HELLO, GREEDY_8.with_(max_new_tokens=2))
        from tests.servers import stop

        stop(process)
        with pytest.raises(GenerationError, match="cannot be reached.*TUTOR_MODEL"):
            complete(model, HELLO, GREEDY_8)
    model.close()
