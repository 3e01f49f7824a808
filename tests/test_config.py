import re
from pathlib import Path

import pytest

from tutor import config
from tutor.config import EMBEDDED, PRODUCTION, ROOT, Settings, markdown_table
from tutor.errors import ConfigError


def test_defaults_point_into_the_repository():
    s = Settings.from_env({})
    assert s.model == "embedded" and s.adapter == "auto" and s.quantize == "auto"  # auto, on a machine with no GPU
    assert s.lessons_dir == ROOT / "lessons"
    assert s.progress_db.parent == s.data_dir


@pytest.mark.parametrize("gpu, env, model", [
    (False, {}, EMBEDDED),
    (True, {}, PRODUCTION),
    (True, {"TUTOR_DEVICE": "cpu"}, EMBEDDED),
    (False, {"TUTOR_DEVICE": "cuda"}, PRODUCTION),
    (True, {"TUTOR_MODEL": "embedded"}, EMBEDDED),
    (True, {"TUTOR_MODEL": "HuggingFaceTB/SmolLM2-360M-Instruct"}, "HuggingFaceTB/SmolLM2-360M-Instruct"),
])
def test_auto_model_is_mistral_on_a_gpu_and_the_embedded_default_elsewhere(monkeypatch, gpu, env, model):
    monkeypatch.setattr(config, "gpu_visible", lambda: gpu)
    assert Settings.from_env(env).model == model
    assert Settings().model == (PRODUCTION if gpu else EMBEDDED)  # also when built in code, not from the environment


def test_environment_overrides_and_types():
    s = Settings.from_env({"TUTOR_MODEL": "mistralai/Mistral-7B-Instruct-v0.2", "TUTOR_4BIT": "on",
                           "TUTOR_QUEUE_SIZE": "5", "TUTOR_DATA_DIR": "/tmp/x", "TUTOR_LESSONS_DIR": "/tmp/lessons"})
    assert s.model.startswith("mistralai/") and s.quantize == "on" and s.queue_size == 5
    assert s.data_dir == Path("/tmp/x") and s.lessons_dir == Path("/tmp/lessons")


@pytest.mark.parametrize("env, name", [({"TUTOR_4BIT": "maybe"}, "TUTOR_4BIT"),
                                       ({"TUTOR_DEVICE": "tpu"}, "TUTOR_DEVICE"),
                                       ({"TUTOR_QUEUE_SIZE": "many"}, "TUTOR_QUEUE_SIZE"),
                                       ({"TUTOR_CONCURRENCY": "0"}, "TUTOR_CONCURRENCY"),
                                       ({"TUTOR_ANSWER_MODE": "poetic"}, "TUTOR_ANSWER_MODE")])
def test_bad_values_name_the_variable(env, name):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env(env)


def test_readme_documents_every_variable():
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"`(TUTOR_[A-Z0-9_]+)`", readme))
    in_code = set(re.findall(r"`(TUTOR_[A-Z0-9_]+)`", markdown_table()))
    assert in_code <= documented, f"README lacks {sorted(in_code - documented)}"
