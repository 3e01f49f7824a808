"""The message classifier on labelled learner messages, with the real WordLlama vectors and readings index."""
from __future__ import annotations

import json
from collections import Counter

import pytest

from tutor.config import ROOT, Settings
from tutor.lessons import load_lessons
from tutor.readings import retrieval
from tutor.runtime import build_moves
from tutor.tutoring.moves import EXAMPLES, HELD_OUT, INTENTS

MESSAGES = [json.loads(line) for line in (ROOT / "tests" / "data" / "learner_messages.jsonl").read_text().splitlines()
            if line.strip()]
LESSONS = load_lessons(ROOT / "lessons")


class Course:  # what build_moves reads from a course: its lessons
    lessons = LESSONS


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    settings = Settings.from_env({}, data_dir=tmp_path_factory.mktemp("moves"))
    retrieval.ingest(settings, progress=False)
    return build_moves(Course(), retrieval.Retriever(settings))


def classify(classifier, row):
    exercise = LESSONS.get(row["lesson"]).exercise(row["exercise"]) if row.get("lesson") else None
    history = ([{"role": "user", "content": row["previous"]}, {"role": "assistant", "content": "(an answer)"}]
               if row.get("previous") else [])
    return classifier.classify(row["message"], history, exercise)


TRAINING = ("dev", "test", "holdout", "blind", "fresh", "fresh2")


def test_the_message_set_covers_every_intent_in_every_split():
    assert len(MESSAGES) >= 300
    for split in (*TRAINING, *HELD_OUT):
        counts = Counter(r["intent"] for r in MESSAGES if r["split"] == split)
        assert set(counts) == set(INTENTS), (split, counts)


@pytest.mark.parametrize("split", TRAINING)
def test_the_model_fits_the_messages_it_learns_from(classifier, split):
    rows = [r for r in MESSAGES if r["split"] == split]
    wrong = [(r["message"], r["intent"], got.name) for r in rows if (got := classify(classifier, r)).name != r["intent"]]
    assert 1 - len(wrong) / len(rows) >= 0.95, wrong


def test_intent_accuracy_on_the_held_out_messages(classifier):
    """63 messages written after the model's design was fixed and never used to fit or tune it: measured once
    at 51/63 (0.81; the pattern rules alone: 38/63). Everything here is deterministic (WordLlama, BM25, numpy),
    so a drop means a change made the classifier worse on new phrasings."""
    rows = [r for r in MESSAGES if r["split"] in HELD_OUT]
    right = sum(classify(classifier, r).name == r["intent"] for r in rows)
    assert len(rows) == 63 and right >= 49, right


def test_the_shipped_examples_are_the_labelled_messages_less_the_held_out_split():
    from scripts.intent_examples import examples

    shipped = [json.loads(line) for line in EXAMPLES.read_text().splitlines() if line.strip()]
    assert shipped == examples()  # `python scripts/intent_examples.py` after editing the messages
    held_out = {r["message"] for r in MESSAGES if r["split"] in HELD_OUT}
    assert not held_out & {r["message"] for r in shipped}


def test_a_check_request_with_an_attempt_is_graded_at_once(classifier):
    exercise = LESSONS.get("delimiters").exercise("summarize-review")
    asked = classifier.classify("is this right? Summarise the review in one sentence: ```{input}```", [], exercise)
    assert asked.name == "attempt" and asked.grade_now and asked.rest.startswith("Summarise the review")
    pasted = classifier.classify("Summarise the review between <r> tags in one sentence. <r>{input}</r>", [], exercise)
    assert pasted.name == "attempt" and not pasted.grade_now


def test_outside_an_exercise_nothing_is_an_attempt_and_follow_ups_need_a_conversation(classifier):
    assert classifier.classify("Summarise the review in one sentence: ```{input}```", [], None).name != "attempt"
    assert classifier.classify("why?", [], None).name != "followup"
    assert classifier.classify("why?", [{"role": "user", "content": "what is top-p"}], None).name == "followup"


@pytest.mark.parametrize("hostile", [
    "{input}" * 5_000, "[" * 10_000 + "]" * 10_000, "NaN", "nan nan inf -inf", "\x00\x01\x02", "🔥" * 3_000,
    "a" * 100_000, "<script>alert(1)</script>", "'; DROP TABLE attempts; --", "\n" * 5_000, "?" * 1_000,
])
def test_any_message_gets_an_intent_without_error(classifier, hostile):
    exercise = LESSONS.get("delimiters").exercise("summarize-review")
    for where in (exercise, None):
        assert classifier.classify(hostile, [{"role": "user", "content": "hi"}], where).name in INTENTS
