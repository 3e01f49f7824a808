"""Extractive answers: sentences of the retrieved passages, scored against the question, cited, in reading order.
Runs on the real WordLlama vectors and the real index (no chat model is involved)."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

import pytest

from tutor.config import ROOT, Settings
from tutor.readings import extractive, grounding, retrieval

ANSWERS = ROOT / "tests" / "data" / "course_answers.jsonl"


@dataclass(frozen=True)
class P:
    source: str
    heading: str
    text: str
    score: float = 0.5


def test_sentences_of_markdown_passages():
    text = ("Temperature reshapes the distribution, e.g. it sharpens it. A temperature **below 1** makes text "
            "predictable.\n\n- **Memory:** only a small fraction of parameters need gradients. Training fits on one "
            "GPU.\n- **ROUGE-1** counts matching unigrams.\n\n| task | settings |\n|---|---|\n\n### Heading\n"
            'Zero-shot gives only the instruction: "Classify this review: \'I loved it!\' Sentiment:". It works.')
    assert extractive.split_sentences(text) == [
        "Temperature reshapes the distribution, e.g. it sharpens it.",
        "A temperature **below 1** makes text predictable.",
        "**Memory:** only a small fraction of parameters need gradients.",
        "Training fits on one GPU.",
        "**ROUGE-1** counts matching unigrams.",
        'Zero-shot gives only the instruction: "Classify this review: \'I loved it!\' Sentiment:".',
        "It works.",
    ]


def test_fragments_cut_by_the_chunk_overlap_and_list_intros_are_not_candidates():
    passage = P("r.md", "R > S", "the end of a sentence cut in half. Top-k keeps only the k most probable tokens. "
                                 "Two settings restrict sampling:\n- one\n\nThis last sentence is cut off in the")
    assert [s.text for s in extractive.candidates([passage])] == ["Top-k keeps only the k most probable tokens."]
    assert extractive.candidates([passage], avoid="Earlier I said: Top-k keeps only the k most probable tokens [1].") \
        == []


def test_compose_cites_each_run_and_keeps_reading_order():
    a = P("gen.md", "Gen > Temperature", "Temperature divides the logits before the softmax. A low temperature makes "
                                         "the text predictable and focused. A high temperature makes it varied.")
    b = P("gen.md", "Gen > Key points", "Temperature reshapes the distribution: low is focused, high is creative.")
    text, cited = extractive.compose("what does temperature do", [a, b, P("x.md", "X > Y", "Cats sleep a lot.")])
    assert cited[0] is a and P("x.md", "X > Y", "Cats sleep a lot.") not in cited
    numbers = [int(n) for n in re.findall(r"\[(\d)\]", text)]
    assert numbers == sorted(set(numbers)) and max(numbers) == len(cited)
    first = text.index("Temperature divides")
    assert first < text.index("A low temperature") and "Cats" not in text


@pytest.fixture(scope="module")
def shipped(tmp_path_factory) -> retrieval.Retriever:
    settings = Settings.from_env({}, data_dir=tmp_path_factory.mktemp("extractive"))
    retrieval.ingest(settings, progress=False)
    return retrieval.Retriever(settings)


QUESTIONS = [json.loads(line) for line in ANSWERS.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("row", QUESTIONS, ids=[q["question"][:40] for q in QUESTIONS])
def test_answers_are_verbatim_cited_and_short(shipped, row):
    result = grounding.answer(row["question"], shipped, None)
    assert result.grounded == "grounded" and result.sources
    for n in map(int, re.findall(r"\[(\d+)\]", result.text)):
        assert 1 <= n <= len(result.sources)
    passages = grounding.covered(shipped.search(row["question"], k=grounding.EXTRACTIVE_POOL), row["question"])
    chosen = extractive.select(row["question"], passages)
    assert extractive.MIN_SENTENCES <= len(chosen) <= extractive.MAX_BROAD
    assert sum(len(s.text) for s in chosen) <= extractive.MAX_CHARS
    assert len({s.text for s in chosen}) == len(chosen)  # no sentence twice
    for sentence in chosen:  # each is one of its passage's own sentences, and the answer shows it
        assert sentence.text in extractive.split_sentences(passages[sentence.passage].text)
        assert sentence.text.rstrip(".") in result.text


def test_most_course_questions_get_every_key_fact(shipped):
    """The automatic proxy for correctness: every written key fact (one of its phrasings) in the answer."""
    complete = 0
    for row in QUESTIONS:
        text = grounding.answer(row["question"], shipped, None).text.lower()
        complete += all(any(alt.lower() in text for alt in alts) for alts in row["key_facts"])
    assert complete >= 0.8 * len(QUESTIONS)  # measured: 35 of 40 (README)


def test_an_example_request_prefers_sentences_that_give_one(shipped):
    plain = grounding.answer("what are delimiters", shipped, None).text
    example = grounding.answer("can you give an example of delimiters", shipped, None).text
    assert "for example" in example.lower() or '"' in example
    assert plain != example
