"""Seeing inside the real embedded model, through both local back-ends: next-token distributions, tokenization,
sequence probability."""
import json
import math
import subprocess
import sys

import pytest

from tutor import instruments

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


SHAPED = {"temperature": 0.8, "top_k": 20, "top_p": 0.9, "min_p": 0.05, "repetition_penalty": 1.3}


def test_the_shown_distribution_is_the_one_generate_samples(hf_chat_model):
    import torch

    chat_model = hf_chat_model
    shown = {c["id"]: c["prob"] for c in chat_model.next_token(PROMPT, show=50, **SHAPED)}
    assert abs(sum(shown.values()) - 1) < 1e-4  # top-k 20 keeps every token with mass inside the 50 shown
    # generate itself, called independently with the same settings and seed, draws the token sample_next reports
    ids = chat_model.tokenizer(PROMPT, return_tensors="pt", add_special_tokens=False)["input_ids"]
    for seed in range(5):
        torch.manual_seed(seed)
        drawn = chat_model.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True,
                                          max_new_tokens=1, pad_token_id=chat_model.tokenizer.pad_token_id,
                                          **SHAPED)[0, -1]
        step = chat_model.sample_next(PROMPT, seed=seed, **SHAPED)
        assert step["id"] == int(drawn) and step["prob"] == pytest.approx(shown[step["id"]], abs=1e-5)


def test_the_shown_distribution_is_the_one_llama_cpp_samples(llamacpp_chat_model):
    """llama.cpp's instruments shape the logits with the sampler chain generation uses, and draw with it."""
    from tutor.models import GenerationSettings, complete

    model = llamacpp_chat_model
    shown = {c["id"]: c["prob"] for c in model.next_token(PROMPT, show=50, **SHAPED)}
    assert abs(sum(shown.values()) - 1) < 1e-4  # top-k 20 keeps every token with mass inside the 50 shown
    chat = {k: v for k, v in SHAPED.items() if k != "min_p"}  # GenerationSettings has no min-p
    for seed in range(5):
        step = model.sample_next(PROMPT, seed=seed, chat=True, **chat)
        reply = complete(model, [{"role": "user", "content": PROMPT}], GenerationSettings(max_new_tokens=1, seed=seed, **chat))
        assert step["token"] == reply  # the same chain and seed draw the same first token of a reply
        assert 0 < step["prob"] <= 1


def test_extreme_settings_give_a_distribution_or_a_clear_error(each_model):
    tiny = each_model.next_token(PROMPT, top_p=0.001, show=10)
    assert len(tiny) == 1 and tiny[0]["prob"] == pytest.approx(1.0)  # was NaN for every token at top-p ~0
    for bad, name in (({"top_p": 0}, "top_p"), ({"temperature": float("nan")}, "temperature"),
                      ({"min_p": 1.5}, "min_p"), ({"top_k": -1}, "top_k")):
        with pytest.raises(ValueError, match=name):
            each_model.next_token(PROMPT, **bad)


def test_cli_refuses_bad_settings_before_loading_the_model():
    result = subprocess.run([sys.executable, "-m", "tutor.cli", "next-token", "Hi", "--top-p", "0"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "top_p must be above 0" in result.stderr and "Traceback" not in result.stderr


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
    heat = instruments.logprob_heatmap(right)
    assert [t for t, _ in heat] == [t["token"] for t in right["tokens"]] and all(-1 <= v <= 1 for _, v in heat)
    assert heat[0][1] > instruments.logprob_heatmap(wrong)[0][1]  # the expected token sits higher on the scale


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
