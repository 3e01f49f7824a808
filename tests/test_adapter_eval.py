"""`tutor eval adapter` on the tiny random Mistral trained in test_train: base vs base + adapter figures."""
import math

import pytest

pytest.importorskip("bitsandbytes")
from tests.test_train import tiny, trained  # noqa: E402,F401  (module fixtures: a tiny model and its adapter)
from tutor.finetune import adapter_eval  # noqa: E402


def test_eval_adapter_compares_base_and_adapter(tiny, trained, tmp_path):  # noqa: F811
    root, _, settings = tiny
    result = adapter_eval.evaluate_adapter(settings, "tiny", limit=2, data_dir=root / "data")
    for side in ("base", "adapter"):
        assert set(result[side]) == {"loss", "rougeL"}
        assert math.isfinite(result[side]["loss"]) and 0 <= result[side]["rougeL"] <= 1
    assert result["adapter"]["loss"] != result["base"]["loss"]  # disable_adapter() really gives the base
    assert result["rouge_records"] == 2

    folder = root / "adapters" / "tiny"
    adapter_eval.save(result, folder)
    assert "## Evaluation" in (folder / "README.md").read_text() and (folder / "eval.json").is_file()
