"""The model self-check (``prompts/judge.md``) and fitting learner text to the model's context window.

Learner text reaches the model twice while grading: the learner's own prompt is run (prompt exercises), and the
judge reads the submission and that output. Both are budgeted in tokens, never characters: 6,000 characters
of CJK or emoji are ~11,600 SmolLM2 tokens, past its 8,192-token window.

    budget for learner text = context window - tokens the reply may use - tokens of everything else we send

and never more than ``SUBMISSION_TOKENS``. Text over budget keeps its beginning, and the grade says so.
"""
from __future__ import annotations

import re

from tutor import prompts
from tutor.models import GREEDY, ChatModel, complete

# The longest shipped model solution is ~150 tokens and a thorough learner answer a few hundred; 1,024 tokens
# (~750 English words, ~5x the longest solution) grades any honest submission whole. It also bounds the cost:
# prefilling 1,024 tokens on the embedded model takes a few seconds on 2 CPU cores, where the 11,600-token
# CJK submission took 95 s and held the one model lock while other learners waited.
SUBMISSION_TOKENS = 1024
# The verdict line comes first (~5 tokens); 24 tokens leave room for a short reason and keep a rambling judge cheap.
JUDGE_SETTINGS = GREEDY.with_(max_new_tokens=24)
_VERDICT = re.compile(r"^\W*verdict\W*\s*(yes|no)\b", re.I | re.M)
_REASON = re.compile(r"^\W*reason\W*\s*(.+)$", re.I | re.M)
# The judge prompt fences learner text with <<<NAME ... NAME>>>. A run of three or more < or > in learner text
# becomes the look-alike ‹ or › one for one. Replacing (never deleting) cannot join two runs into a new
# one, so one pass leaves no <<< or >>> at all: "SUBMISSION>><<<>" becomes "SUBMISSION>>‹‹‹>", not
# "SUBMISSION>>>" as deleting "<<<" would.
_RUNS = re.compile(r"<{3,}|>{3,}")


def defuse_fences(text: str) -> str:
    """``text`` with no ``<<<`` or ``>>>`` left in it, so it cannot close the fence it is put in."""
    return _RUNS.sub(lambda m: ("‹" if m.group(0)[0] == "<" else "›") * len(m.group(0)), text)


def fit_tokens(model: ChatModel, text: str, budget: int) -> tuple[str, int]:
    """(the longest prefix of ``text`` within ``budget`` tokens, the tokens ``text`` had). A binary search
    over character offsets: ~15 tokenizer calls for 20,000 characters, whatever the back-end's tokenizer."""
    total = model.count_tokens(text)
    if total <= budget:
        return text, total
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if model.count_tokens(text[:mid]) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo], total


def overhead(model: ChatModel, content: str) -> int:
    """Tokens the chat template and ``content`` take as one user message (special tokens included)."""
    return model.count_tokens(model.render([{"role": "user", "content": content}]))


def cut_note(kept: int, total: int, window: int, reserve: int) -> str:
    return (f"Your text is {total:,} tokens long; the grader read its first {kept:,}, the most that fits beside the "
            f"rest of the prompt in the model's {window:,}-token context window with {reserve} tokens kept for the "
            f"reply (and at most {SUBMISSION_TOKENS:,}). Shorten it to have all of it graded.")


def parse_judge_verdict(reply: str) -> dict:
    match = _VERDICT.search(reply)
    reason = _REASON.search(reply)
    if not match:
        return {"verdict": "not confirmed", "reason": "the judge's reply did not follow the VERDICT format"}
    return {"verdict": match.group(1).lower(), "reason": reason.group(1).strip()[:300] if reason else ""}


def judge_prompt(model: ChatModel, exercise, submission: str, output: str | None) -> tuple[str, list[str]]:
    """The judge prompt with the learner's text fitted to the window, and a note per cut."""
    fields = dict(task=exercise.task.strip(), reference=exercise.references[0].strip(), question=exercise.judge.strip())
    submission, output = defuse_fences(submission), defuse_fences(output or "")
    reserve = JUDGE_SETTINGS.max_new_tokens
    window = model.info.context_window
    # everything but the learner's text: the template, the task, the reference, the question
    fixed = overhead(model, prompts.render("judge", submission="", output="x" if output else "", **fields))
    budget = max(0, window - reserve - fixed)
    # The output is at most the 64 tokens the run produced; the submission gets the rest, so the judge sees
    # what the prompt did even when the prompt itself is cut.
    output, out_tokens = fit_tokens(model, output, min(budget // 4, SUBMISSION_TOKENS))
    submission, sub_tokens = fit_tokens(model, submission, min(budget - model.count_tokens(output), SUBMISSION_TOKENS))
    notes = []
    if model.count_tokens(submission) < sub_tokens:
        notes.append(cut_note(model.count_tokens(submission), sub_tokens, window, reserve))
    return prompts.render("judge", submission=submission, output=output, **fields), notes


def ask_judge(model: ChatModel, exercise, submission: str, output: str | None) -> tuple[dict, list[str]]:
    text, notes = judge_prompt(model, exercise, submission, output)
    return parse_judge_verdict(complete(model, [{"role": "user", "content": text}], JUDGE_SETTINGS)), notes
