"""The `concept` check: meaning, not spelling. Groups carry who does what, negation must agree, misconceptions are
read per clause, and both sides are normalised (real WordLlama embeddings, no model)."""
import pytest

from tutor.grading.checks import ConceptCheck
from tutor.grading.concept import MAX_UNITS, normalise, units


def concept(**fields) -> ConceptCheck:
    return ConceptCheck(type="concept", target="answer", message="Say it.", **fields)


PENALTY = concept(expresses=("the [frequency] penalty [grow|increas|scal]",),
                  misconceptions=("the [presence] penalty [grow|increas|scal]",))


@pytest.mark.parametrize("text", [
    "A frequency penalty increases with every repeat.",
    "The frequency\npenalty grows with\nevery repeat.",  # hard-wrapped lines are one sentence
    "**Frequency penalty**: scales with how often a token appeared.",
    "Unlike the presence penalty, the frequency penalty grows with each repeat.",  # a contrast, not a swap
])
def test_paraphrases_of_the_idea_pass(text):
    passed, detail = PENALTY.evaluate(text)
    assert passed, detail


@pytest.mark.parametrize("text, why", [
    ("The frequency penalty does not grow with repeats.", "negated"),
    ("Bananas are yellow and grow on trees.", "a group is missing"),
    ("Penalties are useful settings.", "nothing said"),
])
def test_negations_and_other_topics_fail(text, why):
    assert not PENALTY.evaluate(text)[0], why


def test_swapped_roles_are_read_as_the_misconception_and_named():
    passed, detail = PENALTY.evaluate("The presence penalty grows with each repeat. The frequency penalty grows too.")
    assert not passed and "misconception" in detail and "presence penalty grow" in detail


def test_at_least_counts_different_ideas():
    two = concept(expresses=("a [paraphrase] scores [low]", "a [jumbled] output scores [high]"), at_least=2)
    passed, detail = two.evaluate("A paraphrase scores low.")
    assert not passed and "found only" in detail
    assert two.evaluate("A paraphrase scores low. A jumbled output can still score high.")[0]


def test_normalisation_and_sentence_splitting():
    assert normalise("Thirty-word **one-sentence** summaries") == "30 word 1 sentence summary"
    both, clauses = units("It sees tokens (e.g. straw + berry), not letters. Next one.")
    assert both[0] == "it see token e g straw berry not letter"  # "e.g." ends no sentence
    assert "not letter" in clauses and "next 1" in both


@pytest.mark.parametrize("example, fragment", [
    ("the [frequency penalty grows", "unbalanced"),
    ("the [frequency|] penalty", "empty alternative"),
    ("[=]", "empty alternative"),
])
def test_broken_examples_are_rejected_when_the_lesson_loads(example, fragment):
    with pytest.raises(ValueError, match=fragment):
        concept(expresses=(example,))


def test_at_least_cannot_exceed_the_examples():
    with pytest.raises(ValueError, match="at_least is 3"):
        concept(expresses=("a [b]", "c [d]"), at_least=3)


def test_hostile_text_reads_a_bounded_number_of_units():
    huge = "the frequency penalty grows. " * 800 + "[" * 5000 + "{input}" * 500
    both, clauses = units(huge)
    assert len(both) <= MAX_UNITS and len(clauses) <= MAX_UNITS
    assert PENALTY.evaluate(huge)[0]  # and the answer is still right
    assert not PENALTY.evaluate("\x00" * 20_000 + "NaN " * 1000)[0]
