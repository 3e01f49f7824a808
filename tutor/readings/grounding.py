"""Answers from the course readings, with their sources and a label for how well the readings support them.

Imports no framework: it takes any retriever with ``search(query, k) -> passages`` (each passage has
``source``, ``heading``, ``text`` and ``score``; tutor.retrieval.Retriever is the real one) and any chat model
with ``stream(messages, settings)`` (tutor.model).

    ask = Answerer(retriever, model)
    for chunk in ask("What does temperature do?"):   # the answer, then the support label and the sources
        print(chunk, end="")

The steps:

1. Retrieve the top ``k`` passages. If even the best scores below ``RELEVANCE_THRESHOLD`` the readings do not
   cover the question: say so, without calling the model.
2. Render prompts/answer_from_readings.md with the numbered passages inside <passage> delimiters and generate
   greedily (same text every time, and the least room for invention).
3. Label the answer. Two checks, and the more cautious one wins:
   - lexical: the share of the answer's content words that occur in the passages (or the question).
     >= 0.7 grounded, >= 0.5 partly, below that not supported;
   - model self-check: prompts/grounding_check.md asks for "VERDICT: yes|partly|no", mapped to the same three
     labels. A reply without a readable verdict gives no information, so the lexical label stands alone; it can
     never raise a label.
   An answer that says the passages do not cover the question makes no claim to check: "not supported".
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator, Protocol

from tutor import prompts
from tutor.errors import TutorError
from tutor.models import GREEDY, ChatModel, GenerationSettings, complete

if TYPE_CHECKING:
    from tutor.readings.retrieval import Passage

LABELS = ("not supported", "partly", "grounded")  # weakest first: the combined label is the lower one
# The relevance cut, on the retriever's hybrid score (0.7 cosine + 0.3 saturated BM25). Measured with the
# shipped readings: the best passage for each of the 64 course questions in tests/data/retrieval_questions.jsonl
# scores 0.334 or more (lowest: "What is constitutional AI?" 0.334, "Is a shorter prompt always clearer?"
# 0.354), while 28 of 30 off-topic questions score 0.311 or less ("How do I bake bread?" 0.068, "What is the
# capital of France?" 0.23, "Best way to learn to play the guitar?" 0.311). 0.32 sits between the two. The two
# off-topic questions above it ("How do I train my dog to sit?" 0.42, "What is the best programming language
# for web design?" 0.41) share words with the course ("train", "language"); their answers get a low label.
RELEVANCE_THRESHOLD = 0.32
# Lexical cut-offs, measured on the 57 hand-written supported answers in datasets/tutor_sft/sources/grounded.yaml:
# against their own passages 72% reach 0.7 and all reach 0.5; the same answers against another topic's passages
# reach 0.7 in 2% of cases and 0.5 in 9%. Paraphrase keeps good answers below 1.0, hence not higher cut-offs.
LEXICAL_GROUNDED, LEXICAL_PARTLY = 0.7, 0.5
MAX_QUESTION_CHARS = 1_000  # ~250 tokens: a question, not an essay; longer text is cut before the prompt
# 160 new tokens are ~120 words, a few sentences: ~10 s of decoding for the embedded model on CPU (16 tok/s).
ANSWER_SETTINGS = GREEDY.with_(max_new_tokens=160)
CHECK_SETTINGS = GREEDY.with_(max_new_tokens=12)  # "VERDICT: partly" is 5 tokens; a little room for a preamble

NOT_COVERED = ("The course readings do not cover this question, so I won't guess an answer. Try asking about "
               "prompting, generation settings, fine-tuning, evaluation or another course topic, or rephrase "
               "the question with words the readings would use.")
DECLINE = re.compile(r"^\W*the (passages|readings) do not (cover|answer|say)", re.I)
VERDICT = re.compile(r"VERDICT\s*:?\s*\**\s*(yes|partly|partially|no)\b", re.I)
WORD = re.compile(r"[^\W\d_]{3,}")
STOP = frozenset("""about above after again against all also and any are because been before being below between
both but can cannot could did does doing down during each few for from further had has have having her here hers
him his how into its itself just more most much must not now off once only other our ours out over own same she
should some such than that the their theirs them then there these they this those through too under until upon
very was were what when where which while who whom why will with would you your yours one two use used using
like may might way ways make makes made well also thus""".split())


class Retriever(Protocol):
    def search(self, query: str, k: int = 3) -> list["Passage"]: ...


@dataclass
class Answer:
    text: str
    sources: list = field(default_factory=list)  # the passages the answer was written from, best first
    grounded: str = "not supported"  # one of LABELS
    support: float | None = None  # lexical support in [0, 1]; None when no model answer was checked
    verdict: str | None = None  # the self-check's label, None when it gave no readable verdict

    def as_dict(self) -> dict:
        return {"answer": self.text, "sources": [p.as_dict() for p in self.sources], "grounded": self.grounded}


# ---------------------------------------------------------------- the checks

def _stem(word: str) -> str:
    """A crude stem: the first five letters, so "models"/"model" and "training"/"trained" meet."""
    return word.lower()[:5]


def content_words(text: str) -> set[str]:
    return {_stem(w) for w in WORD.findall(text) if w.lower() not in STOP}


def lexical_support(answer: str, passages: list, question: str = "") -> float:
    """Share of the answer's content words found in the passages or the question (1.0 for an empty answer)."""
    words = content_words(answer)
    if not words:
        return 1.0
    allowed = content_words(question).union(*(content_words(p.text + " " + p.heading) for p in passages))
    return len(words & allowed) / len(words)


def lexical_label(support: float) -> str:
    return "grounded" if support >= LEXICAL_GROUNDED else "partly" if support >= LEXICAL_PARTLY else "not supported"


def parse_support_verdict(reply: str) -> str | None:
    """The label a self-check reply gives, or None when it has no readable verdict."""
    match = VERDICT.search(reply)
    if not match:
        return None
    return {"yes": "grounded", "partly": "partly", "partially": "partly", "no": "not supported"}[match[1].lower()]


def combine(lexical: str, verdict: str | None) -> str:
    """The more cautious of the two labels; a missing verdict leaves the lexical label as it is."""
    return lexical if verdict is None else min(lexical, verdict, key=LABELS.index)


def _prompt_passages(passages: list) -> list[dict]:
    return [{"title": f"{p.source} > {p.heading}" if p.heading else p.source, "text": p.text} for p in passages]


def self_check(model: ChatModel, answer: str, passages: list) -> str | None:
    prompt = prompts.render("grounding_check", passages=_prompt_passages(passages), answer=answer)
    return parse_support_verdict(complete(model, [{"role": "user", "content": prompt}], CHECK_SETTINGS))


def label(model: ChatModel, question: str, answer: str, passages: list) -> tuple[str, float, str | None]:
    """(label, lexical support, self-check label) for an answer written from ``passages``."""
    support = lexical_support(answer, passages, question)
    if DECLINE.match(answer):
        return "not supported", support, None
    verdict = self_check(model, answer, passages)
    return combine(lexical_label(support), verdict), support, verdict


# ---------------------------------------------------------------- answering

class AnswerStream:
    """Iterate for the answer's text chunks; afterwards ``.answer`` holds the full Answer with sources and label.

    Retrieval happens on the first ``next()``, the label after the last chunk (it costs one more, short model
    call), so a UI can show text as it arrives and then attach the sources."""

    def __init__(self, question: str, retriever: Retriever, model: ChatModel, k: int = 3,
                 system: str | None = None, min_score: float = RELEVANCE_THRESHOLD,
                 settings: GenerationSettings = ANSWER_SETTINGS):
        question = " ".join((question or "").split())
        if not re.search(r"\w", question):
            raise TutorError("The question is empty: type what you would like to know about the readings.")
        self.question = question[:MAX_QUESTION_CHARS]
        self.retriever, self.model, self.k = retriever, model, k
        self.system, self.min_score, self.settings = system, min_score, settings
        self.answer: Answer | None = None

    def __iter__(self) -> Iterator[str]:
        passages = self.retriever.search(self.question, k=self.k)
        passages = [p for p in passages if p.score >= self.min_score]
        if not passages:
            self.answer = Answer(NOT_COVERED)
            yield NOT_COVERED
            return
        prompt = prompts.render("answer_from_readings", passages=_prompt_passages(passages), question=self.question)
        messages = ([{"role": "system", "content": self.system}] if self.system else []) + [
            {"role": "user", "content": prompt}]
        parts = []
        for chunk in self.model.stream(messages, self.settings):
            parts.append(chunk)
            yield chunk
        text = "".join(parts).strip()
        if not text:
            self.answer = Answer("The model wrote no answer. The passages it was given are listed below.", passages)
            yield self.answer.text
            return
        grounded, support, verdict = label(self.model, self.question, text, passages)
        self.answer = Answer(text, passages, grounded, round(support, 3), verdict)


def stream_answer(question: str, retriever: Retriever, model: ChatModel, k: int = 3, **options) -> AnswerStream:
    return AnswerStream(question, retriever, model, k, **options)


def answer(question: str, retriever: Retriever, model: ChatModel, k: int = 3, **options) -> Answer:
    """Answer ``question`` from the readings: text, the passages used, and a grounding label."""
    stream = AnswerStream(question, retriever, model, k, **options)
    for _ in stream:
        pass
    return stream.answer


# ---------------------------------------------------------------- for the chat

LABEL_NOTES = {
    "grounded": "grounded: the readings below support this answer.",
    "partly": "partly supported: some of this answer goes beyond the readings below; check it against them.",
    "not supported": "not supported: the readings below do not back this answer up; treat it with care.",
}


def format_sources(result: Answer) -> str:
    """Markdown for under an answer: the support label, then each source as an expandable passage."""
    if not result.sources:
        return ""
    lines = [f"**Support:** {LABEL_NOTES[result.grounded]}", "", "**Sources**", ""]
    for n, p in enumerate(result.sources, 1):
        where = f"{p.source} — {p.heading}" if p.heading else p.source
        lines += [f"<details><summary>[{n}] {where}</summary>", "", p.text.strip(), "", "</details>", ""]
    return "\n".join(lines).rstrip()


class Answerer:
    """What tutor.Tutor calls for a free question: streams the answer, then the label and the sources."""

    def __init__(self, retriever: Retriever, model: ChatModel, k: int = 3):
        self.retriever, self.model, self.k = retriever, model, k

    def readings_count(self) -> int:
        sources = getattr(self.retriever, "sources", None)
        return len(sources()) if sources else 0

    def __call__(self, question: str, system: str | None = None) -> Iterator[str]:
        stream = AnswerStream(question, self.retriever, self.model, self.k, system=system)
        yield from stream
        notes = format_sources(stream.answer)
        if notes:
            yield "\n\n" + notes
