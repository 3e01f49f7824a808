"""The fine-tuning data in datasets/tutor_sft: valid, big enough, split once and for all, in the served formats,
and rebuilt from its sources and the current prompt templates."""
from __future__ import annotations

import importlib.util
import json
import re
from collections import Counter

import pytest

from tutor import grading
from tutor.config import ROOT
from tutor.finetune import dataset
from tutor.readings import grounding


@pytest.fixture(scope="module")
def splits():
    return {split: dataset.load_split(split) for split in dataset.SPLITS}


def replies(records, task):
    return [r["messages"][-1]["content"] for r in records if r["task"] == task]


def test_committed_splits_validate_and_are_large_enough(splits):
    train, validation = splits["train"], splits["validation"]
    assert len(train) + len(validation) >= 600
    assert 0.05 <= len(validation) / (len(train) + len(validation)) <= 0.15
    for split in splits.values():  # every behaviour is trained and measured
        assert set(Counter(r["task"] for r in split)) == set(dataset.TASKS)


def test_no_prompt_is_in_both_splits(splits):
    prompts = [{json.dumps(r["messages"][:-1]) for r in records} for records in splits.values()]
    assert not prompts[0] & prompts[1]


def test_judge_replies_parse_with_the_graders_parser(splits):
    records = splits["train"] + splits["validation"]
    verdicts = Counter()
    for reply in replies(records, "judge"):
        assert re.fullmatch(r"VERDICT: (yes|no)\nREASON: \S.*", reply), reply
        parsed = grading.parse_judge_verdict(reply)
        verdicts[parsed["verdict"]] += 1
        assert parsed["reason"]
    assert min(verdicts["yes"], verdicts["no"]) >= 0.3 * sum(verdicts.values())  # no lopsided judge


def test_grounded_replies_cite_or_decline_as_the_app_expects(splits):
    records = splits["train"] + splits["validation"]
    answers = replies(records, "grounded")
    declines = [a for a in answers if grounding.DECLINE.match(a)]
    assert all(a.startswith("The passages do not cover this.") for a in declines)
    assert 0.15 * len(answers) <= len(declines) <= 0.5 * len(answers)
    assert all(re.search(r"\[\d\]", a) for a in answers if a not in declines)


def test_hints_never_contain_the_solution(splits):
    from tutor.lessons import load_lessons

    solutions = [" ".join(e.solution.split()) for lesson in load_lessons(ROOT / "lessons") for e in lesson.exercises]
    for reply in replies(splits["train"] + splits["validation"], "hint"):
        assert not any(s in " ".join(reply.split()) for s in solutions)


def test_committed_data_matches_a_fresh_build():
    """Rendered with today's prompts/*.md and lessons: a stale file means the adapter trained on another format."""
    spec = importlib.util.spec_from_file_location("build_sft_data", ROOT / "scripts" / "build_sft_data.py")
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    assert builder.main(["--check"]) == 0, "run `python scripts/build_sft_data.py` and retrain the adapter"


def test_validate_reports_each_kind_of_problem():
    ok = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    records = [
        {"id": "a", "task": "explain", "source": "t", "messages": ok},
        {"id": "a", "task": "explain", "source": "t", "messages": ok},  # same id and same prompt
        {"id": "b", "task": "poetry", "source": "t", "messages": [{"role": "user", "content": "x"},
                                                                   {"role": "assistant", "content": " "}]},
        {"id": "c", "task": "hint", "source": "t", "messages": ok[::-1]},  # assistant before user
        {"id": "d", "task": "hint", "source": "t", "messages": ok[:1] + [{"role": "assistant",
                                                                          "content": "word " * 300}]},
        {"id": "e", "task": "hint", "messages": ok},
    ]
    problems = "\n".join(dataset.validate(records))
    for expected in ("id repeats", "same prompt", "'poetry' is not one of", "assistant message is empty",
                     "roles must be", "keep it under", "keys must be exactly"):
        assert expected in problems
    assert dataset.validate(records[:1]) == []


def test_split_is_a_fixed_function_of_the_id():
    ids = [dataset.record_id("explain", f"question {i}") for i in range(2000)]
    held_out = [i for i in ids if dataset.split_of(i) == "validation"]
    assert 0.08 <= len(held_out) / len(ids) <= 0.12
    assert held_out == [i for i in ids if dataset.split_of(i) == "validation"]  # deterministic
