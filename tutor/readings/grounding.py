"""Answers from the course readings, with their sources and a label for how well the readings support them.

Imports no framework: it takes any retriever with ``search(query, k) -> passages`` (each passage has
``source``, ``heading``, ``text`` and ``score``; tutor.readings.retrieval.Retriever is the real one) and any
chat model with ``stream(messages, settings)`` (tutor.models).

    ask = Answerer(retriever, model, mode="extractive")
    for chunk in ask("What does temperature do?"):   # the answer, then the support label and the sources
        print(chunk, end="")

The steps:

1. Retrieve passages. If none scores ``RELEVANCE_THRESHOLD`` or more, and none holds a technical term the
   question names ("QLoRA", "NF4"), the readings do not cover the question: say so, without calling the model.
2. Answer, in one of two modes (``TUTOR_ANSWER_MODE``; tutor.models.answer_mode picks for ``auto``):
   - extractive: the best-matching sentences of the passages, each run cited ``[n]``
     (tutor.readings.extractive). No model call; every sentence is the readings' own, so it is "grounded".
   - generative: render prompts/answer_from_readings.md with the numbered passages (after the conversation so
     far, so follow-ups make sense) and generate greedily. Each sentence is checked as it completes: one
     whose content words are less than half in the passages is dropped, and the answer says how many were.
     An answer left with no content falls back to the extractive one.
3. Label a generative answer. Two checks, and the more cautious one wins:
   - lexical: the share of the answer's content words that occur in the passages (or the question).
     >= 0.7 grounded, >= 0.5 partly, below that not supported; an answer without content words is not
     supported (``[1]: [1]`` claims nothing, so it supports nothing);
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
from tutor.models import GREEDY, ChatModel, GenerationSettings, answer_mode, complete
from tutor.readings.extractive import asks_example, compose
from tutor.readings.queries import technical_terms

if TYPE_CHECKING:
    from tutor.readings.retrieval import Passage

LABELS = ("not supported", "partly", "grounded")  # weakest first: the combined label is the lower one
# The relevance cut, on the retriever's hybrid score (0.7 cosine + 0.3 saturated BM25 over stems, headings and
# the expanded query). Measured with the shipped readings: the best passage for each of the 64 course questions
# in tests/data/retrieval_questions.jsonl scores 0.311 or more (lowest: "Is a shorter prompt always clearer?"
# 0.312, then "What does the Alpaca prompt format look like?" 0.374), while the 15 off-topic questions in
# tests/test_grounding.py score 0.269 or less ("What's the weather like tomorrow in Paris?" 0.269, "How do I bake
# bread?" far lower). 0.29 sits between the two. Short learner questions score lower still ("whats qlora" 0.24):
# those name a technical term, which ``covered`` accepts on its own. Off-topic questions that share words with the
# course ("What is the best programming language for web design?" 0.46) pass this cut; in the chat the tutoring
# moves (tutor.tutoring.moves) catch most of them first.
RELEVANCE_THRESHOLD = 0.29

# Lexical cut-offs, measured on the 57 hand-written supported answers in datasets/tutor_sft/sources/grounded.yaml:
# against their own passages 72% reach 0.7 and all reach 0.5; the same answers against another topic's passages
# reach 0.7 in 2% of cases and 0.5 in 9%. Paraphrase keeps good answers below 1.0, hence not higher cut-offs.
LEXICAL_GROUNDED, LEXICAL_PARTLY = 0.7, 0.5
MAX_QUESTION_CHARS = 1_000  # ~250 tokens: a question, not an essay; longer text is cut before the prompt
# 160 new tokens are ~120 words, a few sentences: ~10 s of decoding for the embedded model on CPU (16 tok/s).
ANSWER_SETTINGS = GREEDY.with_(max_new_tokens=160)
CHECK_SETTINGS = GREEDY.with_(max_new_tokens=12)  # "VERDICT: partly" is 5 tokens; a little room for a preamble

# Extractive answers pick sentences from the best 5 passages (~40 sentences): the answer to a two-part question
# is often spread over two sections, and only the passages actually quoted are shown as sources.
EXTRACTIVE_POOL = 5
NO_SENTENCES = ("The readings touch on this, but none of their sentences answers it directly. The closest passages "
                "are below; try asking with the words they use.")
DROPPED_NOTE = "\n\n_(I left out {n} sentence{s} that the readings below do not support.)_"
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
    support: float | None = None  # lexical support in [0, 1]; None when no answer was checked
    verdict: str | None = None  # the self-check's label, None when it gave no readable verdict
    mode: str = "extractive"  # how it was written: "extractive" or "generative"
    dropped: int = 0  # generated sentences left out because the passages did not support them

    def as_dict(self) -> dict:
        return {"answer": self.text, "sources": [p.as_dict() for p in self.sources], "grounded": self.grounded,
                "mode": self.mode}


# ---------------------------------------------------------------- the checks

def _stem(word: str) -> str:
    """A crude stem: the first five letters, so "models"/"model" and "training"/"trained" meet."""
    return word.lower()[:5]


def content_words(text: str) -> set[str]:
    return {_stem(w) for w in WORD.findall(text) if w.lower() not in STOP}


def lexical_support(answer: str, passages: list, question: str = "") -> float:
    """Share of the answer's content words found in the passages or the question (0.0 for an answer without
    any: it states nothing the passages could support)."""
    words = content_words(answer)
    if not words:
        return 0.0
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
    if DECLINE.match(answer) or not content_words(answer):
        return "not supported", support, None
    verdict = self_check(model, answer, passages)
    return combine(lexical_label(support), verdict), support, verdict


# ---------------------------------------------------------------- answering

def covered(passages: list, question: str, min_score: float = RELEVANCE_THRESHOLD) -> list:
    """The passages relevant enough to answer from: those scoring ``min_score`` or more, or, when none does,
    those holding a technical term the question names (a two-word question such as "whats qlora" scores low
    on the blend of cosine and BM25, yet "QLoRA" appears in exactly the passages that answer it)."""
    kept = [p for p in passages if p.score >= min_score]
    if kept:
        return kept
    asked = {w.lower() for w in re.findall(r"[\w-]{2,}", question)}
    return [p for p in passages if asked & technical_terms(p.text + " " + p.heading)]


class AnswerStream:
    """Iterate for the answer's text chunks; afterwards ``.answer`` holds the full Answer with sources and label.

    ``question`` is what the learner typed; ``query`` (default: the question) is what is searched for and what
    extractive sentences are scored against: for a follow-up ("example please") the caller passes the topic it
    refers to. ``history`` (earlier turns) reaches the model in generative mode."""

    def __init__(self, question: str, retriever: Retriever, model: ChatModel | None, k: int = 3,
                 system: str | None = None, min_score: float = RELEVANCE_THRESHOLD,
                 settings: GenerationSettings = ANSWER_SETTINGS, mode: str = "extractive",
                 history: list | None = None, query: str | None = None, avoid: str = "", within: tuple = ()):
        question = " ".join((question or "").split())
        if not re.search(r"\w", question):
            raise TutorError("The question is empty: type what you would like to know about the readings.")
        if mode not in ("auto", "extractive", "generative"):
            raise TutorError(f"Unknown answer mode {mode!r}: use auto, extractive or generative (TUTOR_ANSWER_MODE).")
        self.question = question[:MAX_QUESTION_CHARS]
        self.query = " ".join((query or question).split())[:MAX_QUESTION_CHARS]
        self.retriever, self.model, self.k, self.mode = retriever, model, k, mode
        self.system, self.min_score, self.settings = system, min_score, settings
        self.history = list(history or [])
        self.avoid = avoid  # text already shown (the last reply): a follow-up answer does not repeat its sentences
        self.within = tuple(within)  # a follow-up stays in the readings the last answer came from, when it can
        self.answer: Answer | None = None

    def __iter__(self) -> Iterator[str]:
        if self.mode == "auto":  # decided late, so a question the readings do not cover never loads a model
            self.mode = answer_mode("auto", self.model.info) if self.model is not None else "extractive"
        # Extractive answers choose among more passages' sentences (and cite only those they use); a follow-up,
        # which must not repeat what was said, looks further.
        pool = (2 if self.avoid else 1) * EXTRACTIVE_POOL if self.mode == "extractive" else self.k
        passages = covered(self.retriever.search(self.query, k=max(self.k, pool)), self.query, self.min_score)
        same_topic = [p for p in passages if p.source in self.within]
        passages = same_topic or passages
        if not passages:
            self.answer = Answer(NOT_COVERED, mode=self.mode)
            yield NOT_COVERED
            return
        if self.mode == "extractive":
            yield from self._extractive(passages)
        else:
            yield from self._generative(passages)

    def _extractive(self, passages: list) -> Iterator[str]:
        text, cited = compose(self.query, passages, avoid=self.avoid, wants_example=asks_example(self.question) or None)
        if not text:
            self.answer = Answer(NO_SENTENCES, passages[:self.k], mode="extractive")
        else:
            self.answer = Answer(text, cited, "grounded", round(lexical_support(text, cited), 3), None, "extractive")
        yield self.answer.text

    def _generative(self, passages: list) -> Iterator[str]:
        prompt = prompts.render("answer_from_readings", passages=_prompt_passages(passages), question=self.question)
        messages = ([{"role": "system", "content": self.system}] if self.system else []) + self.history + [
            {"role": "user", "content": prompt}]
        fit = getattr(self.model, "fit_messages", None)
        if fit is not None:  # keep the latest turns when the conversation outgrows the context window
            messages, _ = fit(messages, reserve=self.settings.max_new_tokens)
        kept, dropped = [], 0
        for sentence in _sentences(self.model.stream(messages, self.settings)):
            if supports(sentence, passages, self.question) or DECLINE.match(sentence):
                kept.append(sentence)
                yield sentence
            else:
                dropped += 1
        text = "".join(kept).strip()
        if not content_words(text):  # nothing left worth showing: answer from the readings' own sentences
            yield from self._extractive(passages)
            self.answer.dropped = dropped
            return
        grounded, support, verdict = label(self.model, self.question, text, passages)
        self.answer = Answer(text, passages, grounded, round(support, 3), verdict, "generative", dropped)
        if dropped:
            yield DROPPED_NOTE.format(n=dropped, s="" if dropped == 1 else "s")


def explain(retriever: Retriever, query: str, sentences: int = 2) -> tuple[str, list]:
    """A couple of cited sentences from the readings about ``query`` (for hints), or ("", []) when the readings
    do not cover it."""
    passages = covered(retriever.search(query, k=EXTRACTIVE_POOL), query)
    return compose(query, passages, limit=sentences) if passages else ("", [])


def supports(sentence: str, passages: list, question: str = "") -> bool:
    """A sentence the passages back: it has content words, and at least half of them are in the passages."""
    return bool(content_words(sentence)) and lexical_support(sentence, passages, question) >= LEXICAL_PARTLY


_SENTENCE_END = re.compile(r"(?<=[.!?])(?:\s*\[\d+\])*[\"')]*\s+")


def _sentences(chunks: Iterator[str]) -> Iterator[str]:
    """Regroup streamed chunks into whole sentences (each keeps its trailing space and citations)."""
    buffer = ""
    for chunk in chunks:
        buffer += chunk
        while (match := _SENTENCE_END.search(buffer)) is not None:
            yield buffer[:match.end()]
            buffer = buffer[match.end():]
    if buffer.strip():
        yield buffer


def stream_answer(question: str, retriever: Retriever, model: ChatModel | None, k: int = 3,
                  **options) -> AnswerStream:
    return AnswerStream(question, retriever, model, k, **options)


def answer(question: str, retriever: Retriever, model: ChatModel | None, k: int = 3, **options) -> Answer:
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

    def __init__(self, retriever: Retriever, model: ChatModel | None, k: int = 3, mode: str = "auto",
                 max_new_tokens: int = ANSWER_SETTINGS.max_new_tokens):
        self.retriever, self.model, self.k, self.mode = retriever, model, k, mode
        self.settings = ANSWER_SETTINGS.with_(max_new_tokens=max_new_tokens)

    def readings_count(self) -> int:
        sources = getattr(self.retriever, "sources", None)
        return len(sources()) if sources else 0

    def stream(self, question: str, system: str | None = None, history: list | None = None,
               query: str | None = None, avoid: str = "", within: tuple = ()) -> AnswerStream:
        return AnswerStream(question, self.retriever, self.model, self.k, system=system, settings=self.settings,
                            mode=self.mode, history=history, query=query, avoid=avoid, within=within)

    notes = staticmethod(format_sources)

    def covers(self, query: str) -> bool:
        """Whether the readings hold passages relevant enough to answer ``query`` from."""
        return bool(covered(self.retriever.search(query, k=EXTRACTIVE_POOL), query))

    def __call__(self, question: str, system: str | None = None, history: list | None = None,
                 query: str | None = None) -> Iterator[str]:
        stream = self.stream(question, system, history, query)
        yield from stream
        notes = format_sources(stream.answer)
        if notes:
            yield "\n\n" + notes
