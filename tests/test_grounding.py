"""Answers with citations and the grounding label: generative orchestration with scripted fakes, extractive
answers and the relevance cut on the real index, and answers from the real embedded model."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tutor.config import Settings
from tutor.errors import TutorError
from tutor.models import GenerationSettings, ModelInfo, answer_mode
from tutor.readings import evaluation, grounding, retrieval


@dataclass(frozen=True)
class P:
    source: str
    heading: str
    text: str
    score: float

    def as_dict(self):
        return {"source": self.source, "heading": self.heading, "text": self.text, "score": self.score}


TEMPERATURE = P("generation-settings.md", "Temperature",
                "Temperature reshapes the probability distribution. A temperature below one sharpens it and makes "
                "the text more predictable; above one flattens it and makes the output more varied.", 0.61)
TOP_K = P("generation-settings.md", "Top-k and top-p", "Top-k keeps only the k most probable tokens.", 0.45)
FAR = P("open-models.md", "Phi", "Phi-2 has 2.7 billion parameters.", 0.12)


class FakeRetriever:
    def __init__(self, passages):
        self.passages, self.queries = passages, []

    def search(self, query, k=3):
        self.queries.append(query)
        return self.passages[:k]

    def sources(self):
        return sorted({p.source for p in self.passages})


class FakeModel:
    """Replies from a script, one per call, streamed in small chunks; records what it was sent."""

    def __init__(self, *replies):
        self.replies, self.calls = list(replies), []

    def stream(self, messages, settings: GenerationSettings):
        self.calls.append((messages, settings))
        reply = self.replies.pop(0)
        for i in range(0, len(reply), 7):
            yield reply[i:i + 7]


GOOD = "A temperature below one sharpens the probability distribution, so the text is more predictable [1]."
INVENTED = "Temperature is measured in kelvin by a sensor on the graphics card, which throttles when it overheats."


def test_off_topic_question_says_the_readings_do_not_cover_it_without_calling_the_model():
    model = FakeModel()
    result = grounding.answer("How do I bake bread?", FakeRetriever([FAR]), model)
    assert result.text == grounding.NOT_COVERED
    assert result.sources == [] and result.grounded == "not supported"
    assert model.calls == []


def test_supported_answer_is_grounded_and_cites_its_passages():
    retriever, model = FakeRetriever([TEMPERATURE, TOP_K, FAR]), FakeModel(GOOD, "VERDICT: yes")
    result = grounding.answer("What does a low temperature do?", retriever, model, mode="generative")
    assert result.text == GOOD and result.grounded == "grounded" and result.verdict == "grounded"
    assert result.sources == [TEMPERATURE, TOP_K]  # FAR is below the relevance cut
    prompt = model.calls[0][0][-1]["content"]
    assert '<passage number="1" title="generation-settings.md > Temperature">' in prompt
    assert "What does a low temperature do?" in prompt and "Phi-2" not in prompt
    assert model.calls[0][1].greedy and model.calls[0][1].max_new_tokens <= 200
    assert GOOD in model.calls[1][0][-1]["content"]  # the self-check saw the answer
    assert result.as_dict() == {"answer": GOOD, "sources": [TEMPERATURE.as_dict(), TOP_K.as_dict()],
                                "grounded": "grounded", "mode": "generative"}


@pytest.mark.parametrize("reply, verdict, label", [
    (GOOD, "VERDICT: no", "not supported"),  # the self-check can lower the label...
    (GOOD, "VERDICT: partly", "partly"),
    (GOOD, "I think the answer is fine.", "grounded"),  # ...an unreadable one changes nothing...
    (GOOD + " " + INVENTED, "VERDICT: yes", "grounded"),  # ...the invented sentence is dropped before labelling
])
def test_the_more_cautious_check_wins(reply, verdict, label):
    result = grounding.answer("What does temperature do?", FakeRetriever([TEMPERATURE]), FakeModel(reply, verdict),
                              mode="generative")
    assert result.grounded == label


def test_unsupported_sentences_are_dropped_as_they_stream_and_the_answer_says_so():
    stream = grounding.stream_answer("What does temperature do?", FakeRetriever([TEMPERATURE]),
                                     FakeModel(GOOD + " " + INVENTED, "VERDICT: yes"), mode="generative")
    shown = "".join(stream)
    assert GOOD in shown and "kelvin" not in shown and "left out 1 sentence" in shown
    assert stream.answer.text == GOOD and stream.answer.dropped == 1


@pytest.mark.parametrize("empty", ["[1]: [1] [1]: [1]", "[1]", "...", "   "])
def test_an_answer_without_content_is_never_grounded(empty):
    assert grounding.lexical_support(empty, [TEMPERATURE]) == 0.0
    assert grounding.label(FakeModel("VERDICT: yes"), "What does temperature do?", empty, [TEMPERATURE])[0] \
        == "not supported"
    # In the chat such an answer is never shown: the readings' own sentences replace it.
    result = grounding.answer("What does temperature do?", FakeRetriever([TEMPERATURE]), FakeModel(empty),
                              mode="generative")
    assert result.mode == "extractive" and "[1]" in result.text and "sharpens" in result.text
    assert grounding.content_words(result.text) and result.grounded == "grounded"


def test_history_reaches_the_model_in_generative_mode():
    history = [{"role": "user", "content": "What is top-k?"}, {"role": "assistant", "content": "It keeps k tokens [1]."}]
    model = FakeModel(GOOD, "VERDICT: yes")
    grounding.answer("and temperature?", FakeRetriever([TEMPERATURE]), model, mode="generative", history=history,
                     system="You are Ada.")
    sent = model.calls[0][0]
    assert sent[0]["role"] == "system" and sent[1:3] == history and "and temperature?" in sent[-1]["content"]


def test_a_declined_answer_is_not_supported_and_skips_the_self_check():
    model = FakeModel("The passages do not cover this. They explain temperature and top-k [1][2].")
    result = grounding.answer("What temperature does ChatGPT use?", FakeRetriever([TEMPERATURE, TOP_K]), model,
                              mode="generative")
    assert result.grounded == "not supported" and result.sources and len(model.calls) == 1


def test_lexical_support_and_verdict_parsing():
    assert grounding.lexical_support(GOOD, [TEMPERATURE]) >= 0.8
    assert grounding.lexical_support(INVENTED, [TEMPERATURE]) < 0.5
    assert grounding.lexical_support("", [TEMPERATURE]) == 0.0
    assert grounding.parse_support_verdict("Sure.\nVERDICT: Partly - one claim is extra") == "partly"
    assert grounding.parse_support_verdict("**VERDICT:** yes") == "grounded"
    assert grounding.parse_support_verdict("verdict no") == "not supported"
    assert grounding.parse_support_verdict("The passage supports the answer") is None
    assert grounding.combine("partly", None) == "partly"
    assert grounding.combine("grounded", "partly") == grounding.combine("partly", "grounded") == "partly"


def test_stream_answer_yields_sentence_by_sentence_then_holds_the_answer():
    two = GOOD + " A temperature above one flattens the distribution, so the output is more varied [1]."
    stream = grounding.stream_answer("What does temperature do?", FakeRetriever([TEMPERATURE]),
                                     FakeModel(two, "VERDICT: yes"), mode="generative")
    chunks = list(stream)
    assert len(chunks) == 2 and "".join(chunks).strip() == two
    assert stream.answer.grounded == "grounded" and stream.answer.sources == [TEMPERATURE]


def test_answerer_streams_the_answer_then_the_label_and_expandable_sources():
    answerer = grounding.Answerer(FakeRetriever([TEMPERATURE, TOP_K]), FakeModel(GOOD, "VERDICT: yes"),
                                  mode="generative")
    assert answerer.readings_count() == 1
    reply = "".join(answerer("What does temperature do?", system="You are Ada."))
    assert reply.startswith(GOOD)
    assert "**Support:** grounded" in reply
    assert "<details><summary>[1] generation-settings.md — Temperature</summary>" in reply
    assert "[2] generation-settings.md — Top-k and top-p" in reply and TOP_K.text in reply
    assert answerer.model.calls[0][0][0] == {"role": "system", "content": "You are Ada."}


def test_questions_of_any_length_or_content():
    with pytest.raises(TutorError, match="empty"):
        grounding.answer("  ?! ", FakeRetriever([TEMPERATURE]), FakeModel())
    retriever = FakeRetriever([TEMPERATURE])
    result = grounding.answer("temperature " * 10_000, retriever, FakeModel(GOOD, "VERDICT: yes"), mode="generative")
    assert result.grounded == "grounded" and len(retriever.queries[0]) <= grounding.MAX_QUESTION_CHARS
    result = grounding.answer("温度は何をしますか? 🔥", FakeRetriever([FAR]), FakeModel())
    assert result.text == grounding.NOT_COVERED
    with pytest.raises(TutorError, match="answer mode"):
        grounding.answer("What does temperature do?", FakeRetriever([TEMPERATURE]), FakeModel(), mode="poetic")


def test_extractive_answers_need_no_model_and_cite_only_what_they_quote():
    result = grounding.answer("What does a low temperature do?", FakeRetriever([TEMPERATURE, TOP_K, FAR]), None)
    assert result.mode == "extractive" and result.grounded == "grounded" and result.support == 1.0
    assert "sharpens" in result.text and result.text.count("[1]") == 1 and "[2]" not in result.text
    assert result.sources == [TEMPERATURE]  # top-k was retrieved but not quoted, and FAR is below the cut


def test_auto_mode_follows_the_reported_model_size():
    small, large = FakeModel(), FakeModel(GOOD, "VERDICT: yes")
    small.info = ModelInfo("tiny", None, "cpu", "float32", None, 2048, parameters=135_000_000)
    large.info = ModelInfo("big", None, "cuda", "bfloat16", None, 32768, parameters=7_000_000_000)
    assert grounding.answer("What does temperature do?", FakeRetriever([TEMPERATURE]), small, mode="auto").mode \
        == "extractive" and small.calls == []
    assert grounding.answer("What does temperature do?", FakeRetriever([TEMPERATURE]), large, mode="auto").mode \
        == "generative"
    unknown = ModelInfo("remote", None, "remote", "?", None, 4096)  # a back-end that cannot tell: extractive
    assert answer_mode("auto", unknown) == "extractive" and answer_mode("generative", unknown) == "generative"


# ---------------------------------------------------------------- the relevance cut on the real index

OFF_TOPIC = ["What is the capital of France?", "How do I bake bread?", "Who won the football world cup in 2018?",
             "What's the weather like tomorrow in Paris?", "How many legs does a spider have?",
             "How do I fix a flat bicycle tyre?", "Who wrote Pride and Prejudice?", "What is photosynthesis?",
             "When did the Roman empire fall?", "How tall is Mount Everest?", "What is the stock price of Apple?",
             "Tell me a joke about cats", "hello", "asdfghjkl qwerty", "How do I knit a scarf?"]


@pytest.fixture(scope="module")
def shipped(tmp_path_factory) -> retrieval.Retriever:
    settings = Settings.from_env({}, data_dir=tmp_path_factory.mktemp("readings"))
    retrieval.ingest(settings, progress=False)
    return retrieval.Retriever(settings)


def test_relevance_threshold_separates_course_questions_from_off_topic_ones(shipped):
    course = evaluation.load_questions(Path(__file__).parent / "data" / "retrieval_questions.jsonl")
    best = {q["question"]: shipped.search(q["question"], k=1)[0].score for q in course}
    assert min(best.values()) >= grounding.RELEVANCE_THRESHOLD, min(best.items(), key=lambda kv: kv[1])
    off = {q: shipped.search(q, k=1)[0].score for q in OFF_TOPIC}
    assert max(off.values()) < grounding.RELEVANCE_THRESHOLD, max(off.items(), key=lambda kv: kv[1])


# ---------------------------------------------------------------- the real embedded model

def test_short_questions_naming_a_course_term_are_covered(shipped):
    for question, term in [("whats qlora", "qlora"), ("what is NF4", "nf4")]:
        assert max(p.score for p in shipped.search(question, k=3)) < grounding.RELEVANCE_THRESHOLD  # too short
        result = grounding.answer(question, shipped, None)
        assert result.sources and all(term in p.text.lower() for p in result.sources), question
        assert term in result.text.lower() and result.grounded == "grounded"


def test_extractive_answer_to_a_course_question_on_the_real_index(shipped):
    result = grounding.answer("What is chain-of-thought prompting and when should I use it?", shipped, None)
    assert result.grounded == "grounded" and result.sources[0].source == "chain-of-thought.md"
    assert "intermediate reasoning" in result.text


@pytest.mark.model
def test_generative_answer_from_the_real_model_keeps_only_supported_sentences(shipped, chat_model):
    # A short reply keeps this test to a few seconds of decoding; the pipeline is the same as in the app.
    question = "What does the temperature setting do when generating text?"
    result = grounding.answer(question, shipped, chat_model, mode="generative",
                              settings=grounding.ANSWER_SETTINGS.with_(max_new_tokens=48))
    assert result.text.strip() and result.text != grounding.NOT_COVERED
    assert result.sources and result.sources[0].source == "generation-settings.md"
    if result.mode == "generative":  # what the model wrote, minus what the passages do not support
        sentences = [s for s in grounding._sentences(iter([result.text])) if s.strip()]
        assert all(grounding.supports(s, result.sources, question) or grounding.DECLINE.match(s) for s in sentences)
    else:  # the model wrote nothing with content: the readings' sentences stand in
        assert result.grounded == "grounded"
    assert result.grounded != "grounded" or result.support >= grounding.LEXICAL_GROUNDED
    assert grounding.answer("How do I bake bread?", shipped, chat_model).text == grounding.NOT_COVERED
