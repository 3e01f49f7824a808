"""Instruments for seeing inside the model: next-token distributions, tokenization, side-by-side prompts and
the probability of a whole response. Framework-free: the UI and the CLI call these; the model's inspection
methods (tutor.models.hf.probe) do the tensor work."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterator

from tutor.grading import fill_input
from tutor.lessons import PLACEHOLDER as INPUT_SLOT
from tutor.models import ChatModel, GenerationSettings
from tutor.rouge import rouge

# The tokenizer view draws one coloured span per token: 4,000 characters is ~1,000 tokens of English (up to
# ~4,000 for emoji or CJK), as much as a page can show readably.
MAX_TOKENIZER_CHARS = 4_000
# Compare prompts: each prompt may use {input} a few times (before and after an instruction, say); more is a
# mistake, and each copy multiplies the material.
MAX_PLACEHOLDERS = 4


def entropy(candidates: list[dict]) -> float:
    """Shannon entropy (nats) of the shown candidates, renormalised to sum to 1.

    Renormalising matters: at a high temperature each top candidate's own probability shrinks as mass moves
    to the long tail, so an unnormalised sum over the top 10 would fall while the distribution gets flatter."""
    total = sum(c["prob"] for c in candidates)
    return -sum(c["prob"] / total * math.log(c["prob"] / total) for c in candidates if c["prob"] > 0) if total else 0.0


def visible(token: str) -> str:
    """A token as a learner should see it: leading spaces and newlines made visible."""
    return token.replace(" ", "␣").replace("\n", "↵").replace("\t", "⇥") or "∅"


def label_data(candidates: list[dict]) -> dict[str, float]:
    """{visible token (id): probability} for a bar chart."""
    return {f"{visible(c['token'])}  (id {c['id']})": c["prob"] for c in candidates}


def highlighted(pieces: list[dict]) -> list[tuple[str, str]]:
    """(text, label) pairs for a coloured token view; alternate labels so neighbouring tokens differ."""
    return [(p["text"], f"{i % 6}") for i, p in enumerate(pieces)]


def token_table(pieces: list[dict]) -> list[list]:
    return [[i, visible(p["text"]), p["id"]] for i, p in enumerate(pieces)]


@dataclass
class Side:
    prompt: str
    output: str = ""
    prompt_tokens: int = 0
    output_tokens: int = 0


@dataclass
class Comparison:
    a: Side
    b: Side
    rouge: dict = field(default_factory=dict)  # ROUGE of B's output against A's
    done: bool = False


def compare(model: ChatModel, prompt_a: str, prompt_b: str, material: str,
            settings: GenerationSettings) -> Iterator[Comparison]:
    """Run two prompts on the same material with the same settings, A then B, streaming both."""
    if not (prompt_a or "").strip() or not (prompt_b or "").strip():
        raise ValueError("Write both prompts (A and B) to compare them.")
    for name, prompt in (("A", prompt_a), ("B", prompt_b)):
        if prompt.count(INPUT_SLOT) > MAX_PLACEHOLDERS:
            raise ValueError(f"Prompt {name} uses {INPUT_SLOT} {prompt.count(INPUT_SLOT)} times: use it at most "
                             f"{MAX_PLACEHOLDERS} times (once is usual), where the material should go.")
    # Each prompt is then fitted to the context window (tutor.models.budget), however long the material is.
    state = Comparison(Side(fill_input(prompt_a.strip(), material)), Side(fill_input(prompt_b.strip(), material)))
    for side in (state.a, state.b):
        messages = [{"role": "user", "content": side.prompt}]
        messages, _ = model.fit_messages(messages, reserve=settings.max_new_tokens)
        side.prompt_tokens = model.count_tokens(model.render(messages))
        for chunk in model.stream(messages, settings):
            side.output += chunk
            side.output_tokens = model.count_tokens(side.output)
            yield state
    state.rouge = rouge(state.b.output, [state.a.output]) if state.a.output.strip() else {}
    state.done = True
    yield state


def summary_markdown(state: Comparison) -> str:
    lines = [
        "| | prompt tokens | output tokens |", "|---|---|---|",
        f"| A | {state.a.prompt_tokens} | {state.a.output_tokens} |",
        f"| B | {state.b.prompt_tokens} | {state.b.output_tokens} |",
    ]
    if state.rouge:
        r = state.rouge
        lines.append(f"\n**ROUGE between the outputs:** ROUGE-1 {r['rouge1']:.2f} · ROUGE-2 {r['rouge2']:.2f} · "
                     f"ROUGE-L {r['rougeL']:.2f} (1.0 = the same words in the same order)")
    return "\n".join(lines)


def logprob_heatmap(result: dict) -> list[tuple[str, float]]:
    """(token text, score) pairs for a heat-map: score = 2p - 1, so a token the model found certain (p = 1) is at
    the top of the colour scale, an even bet (p = 0.5) in the middle and a surprise (p near 0) at the bottom."""
    return [(t["token"], round(2 * math.exp(t["logprob"]) - 1, 4)) for t in result["tokens"]]


def logprob_markdown(result: dict) -> str:
    """The totals under the heat-map; the per-token figures stay in a folded table."""
    rows = [f"| {visible(t['token'])} | {t['id']} | {t['logprob']:.3f} | {math.exp(t['logprob']):.4f} |"
            for t in result["tokens"]]
    return "\n".join([
        f"**Total log-probability:** {result['total']:.3f} (probability {math.exp(result['total']):.3g}); "
        f"mean per token {result['mean']:.3f}", "", "<details><summary>Per token</summary>", "",
        "| token | id | log p | p |", "|---|---|---|---|", *rows, "", "</details>"])
