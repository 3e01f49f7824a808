"""Seeing inside the real embedded model, through both local back-ends: next-token distributions, tokenization,
sequence probability."""
import json
import math
import subprocess
import sys

import pytest

from tutor import instruments
from tutor.models.hf.probe import shape_distribution

pytestmark = pytest.mark.model
PROMPT = "The capital of France is"


def test_candidates_are_ordered_and_sum_to_at_most_one(each_model):
    for options in ({}, {"temperature": 0.7, "top_k": 5}, {"temperature": 1.3, "top_p": 0.9}):
        candidates = each_model.next_token(PROMPT, show=10, **options)
        probs = [c["prob"] for c in candidates]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
        assert all(set(c) == {"token", "id", "prob"} for c in candidates)


def normalised_entropy(model, ids, temperature):
    by_id = {c["id"]: c["prob"] for c in model.next_token(PROMPT, temperature=temperature, show=200)}
    probs = [by_id[i] for i in ids]
    total = sum(probs)
    return -sum(p / total * math.log(p / total) for p in probs if p > 0)


def test_higher_temperature_gives_higher_entropy_over_the_same_candidates(each_model):
    ids = [c["id"] for c in each_model.next_token(PROMPT, temperature=1.0, show=10)]
    cold, warm, hot = (normalised_entropy(each_model, ids, t) for t in (0.5, 1.0, 1.8))
    assert cold < warm < hot


def test_top_k_top_p_and_greedy_cut_the_candidates(each_model):
    assert len(each_model.next_token(PROMPT, top_k=3, show=10)) == 3
    assert len(each_model.next_token(PROMPT, top_p=0.5, show=10)) < len(each_model.next_token(PROMPT, show=10))
    greedy = each_model.next_token(PROMPT, temperature=0, show=10)
    assert len(greedy) == 1 and greedy[0]["prob"] == 1.0 and "Paris" in greedy[0]["token"]


def test_shape_distribution_keeps_the_top_p_mass():
    import torch
    probs = shape_distribution(torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05])), 1.0, 0, 0.7)
    assert probs.tolist() == pytest.approx([0.5 / 0.8, 0.3 / 0.8, 0, 0])


TEXTS = ["Hello, world!", "  leading and  double  spaces\n\ttabs", "naïve café ünïcode", "emoji 🙂👍🏽 and 漢字",
         "numbers 3.14159 and 31415926", ""]


@pytest.mark.parametrize("text", TEXTS)
def test_tokens_round_trip_to_the_text(each_model, text):
    pieces = each_model.tokenize(text)
    assert "".join(p["text"] for p in pieces) == text
    assert len(pieces) == each_model.count_tokens(text)
    name, other = each_model.compare_tokenize(text)
    assert "".join(p["text"] for p in other) == text and "Llama 2" in name


def test_sequence_logprob_prefers_the_right_answer(each_model):
    right = each_model.sequence_logprob("What is the capital of France?", "Paris")
    wrong = each_model.sequence_logprob("What is the capital of France?", "Banana")
    assert right["total"] > wrong["total"]
    assert right["total"] == pytest.approx(sum(t["logprob"] for t in right["tokens"]), abs=1e-3)
    assert "Total log-probability" in instruments.logprob_markdown(right)


def test_compare_runs_both_prompts_with_token_counts_and_rouge(chat_model):
    from tutor.models import GenerationSettings

    states = list(instruments.compare(chat_model, "summarize: {input}", "Summarise in one sentence:\n```{input}```",
                                      "The fan is quiet but the base is flimsy.",
                                      GenerationSettings(max_new_tokens=16, temperature=0)))
    final = states[-1]
    assert final.done and final.a.output and final.b.output
    assert final.a.prompt_tokens > 0 and final.b.output_tokens > 0 and set(final.rouge) == {"rouge1", "rouge2", "rougeL"}
    assert "ROUGE between the outputs" in instruments.summary_markdown(final)


def cli(*args):
    result = subprocess.run([sys.executable, "-m", "tutor.cli", *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_cli_next_token_and_tokens_print_the_documented_json():
    data = cli("next-token", PROMPT, "--temperature", "0.8", "--top-k", "5", "--json")
    probs = [c["prob"] for c in data["candidates"]]
    assert len(probs) == 5 and probs == sorted(probs, reverse=True)
    text = "Tokenizers split words 🙂"
    tokens = cli("tokens", text, "--json")
    assert tokens["count"] == len(tokens["tokens"]) and "".join(t["text"] for t in tokens["tokens"]) == text
