"""Grading a submission: deterministic rubric checks, ROUGE against the references, and a model self-check.

The score comes from the checks and ROUGE only. The judge (a model reading ``prompts/judge.md``) is asked
only when that score already passes, and it can confirm the pass or lower the score by ``weights.judge``;
an unparseable verdict is "not confirmed" and changes nothing. So nothing a learner writes can raise their
own grade: the checks are code, ROUGE compares against fixed references, and the judge can only subtract.

    checks = sum(weight of passed checks) / sum(weights)
    rouge  = min(1, ROUGE-L of the output (or answer) vs the best reference / ROUGE_FULL)
    score  = (w_checks * checks + w_rouge * rouge) / (w_checks + w_rouge)  [- w_judge if the judge says no]
    passed = score >= pass_threshold and every required check passed
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tutor import prompts
from tutor.errors import TutorError
from tutor.grading.checks import PLACEHOLDER as INPUT_SLOT
from tutor.models import GREEDY, ChatModel, complete
from tutor.rouge import rouge

if TYPE_CHECKING:  # tutor.lessons imports tutor.grading.checks, so only type checkers import it here
    from tutor.lessons import Exercise

# A paraphrase that says the same thing as a reference rarely gets above ROUGE-L 0.5 (different wording and
# order), so 0.5 counts as full marks for the ROUGE part.
ROUGE_FULL = 0.5
# Prompt exercises run the learner's prompt greedily: the same prompt always gets the same output and grade.
RUN_SETTINGS = GREEDY.with_(max_new_tokens=64)
# The verdict line comes first (~5 tokens); 24 tokens leave room for a short reason and keep a rambling judge cheap.
JUDGE_SETTINGS = GREEDY.with_(max_new_tokens=24)
_VERDICT = re.compile(r"^\W*verdict\W*\s*(yes|no)\b", re.I | re.M)
_REASON = re.compile(r"^\W*reason\W*\s*(.+)$", re.I | re.M)
# The judge prompt fences learner text with <<<NAME ... NAME>>>; strip those markers from untrusted text
# so a submission cannot close its own fence and write outside it.
_FENCE = re.compile(r"<<<|>>>")


class EmptySubmission(TutorError):
    pass


@dataclass
class CheckResult:
    name: str
    passed: bool
    detail: str
    weight: float = 1.0
    required: bool = False


@dataclass
class Grade:
    passed: bool
    score: float
    checks: list[CheckResult]
    rouge: dict
    judge: dict
    output: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        data = {
            "passed": self.passed,
            "score": round(self.score, 3),
            "checks": [{"name": c.name, "passed": c.passed, "detail": c.detail} for c in self.checks],
            "rouge": self.rouge,
            "judge": self.judge,
        }
        if self.output is not None:
            data["output"] = self.output
        return data


def fill_input(prompt: str, material: str | None) -> str:
    """Put the exercise's material where the learner wrote {input}, or after the prompt if they did not."""
    material = (material or "").strip()
    if INPUT_SLOT in prompt:
        return prompt.replace(INPUT_SLOT, material)
    return f"{prompt}\n\n{material}" if material else prompt


def parse_judge_verdict(reply: str) -> dict:
    match = _VERDICT.search(reply)
    reason = _REASON.search(reply)
    if not match:
        return {"verdict": "not confirmed", "reason": "the judge's reply did not follow the VERDICT format"}
    return {"verdict": match.group(1).lower(), "reason": reason.group(1).strip()[:300] if reason else ""}


class Grader:
    def __init__(self, model: ChatModel, max_chars: int = 20_000):
        self.model = model
        self.max_chars = max_chars

    def run_prompt(self, exercise: Exercise, prompt: str) -> str:
        messages = [{"role": "user", "content": fill_input(prompt, exercise.input)}]
        messages, _ = self.model.fit_messages(messages, reserve=RUN_SETTINGS.max_new_tokens)
        return complete(self.model, messages, RUN_SETTINGS).strip()

    def judge(self, exercise: Exercise, submission: str, output: str | None) -> dict:
        text = prompts.render(
            "judge",
            task=exercise.task.strip(),
            reference=exercise.references[0].strip(),
            submission=_FENCE.sub("", submission),
            output=_FENCE.sub("", output or ""),
            question=exercise.judge.strip(),
        )
        return parse_judge_verdict(complete(self.model, [{"role": "user", "content": text}], JUDGE_SETTINGS))

    def grade(self, exercise: Exercise, text: str) -> Grade:
        text = (text or "").strip()
        if not text:
            raise EmptySubmission(
                "Your submission is empty, so there is nothing to grade. "
                + ("Write a prompt (use {input} where the material goes)." if exercise.kind == "prompt"
                   else "Write your answer in a few sentences.")
            )
        notes = []
        if len(text) > self.max_chars:
            text = text[: self.max_chars]
            notes.append(f"Only the first {self.max_chars:,} characters were graded.")
        output = self.run_prompt(exercise, text) if exercise.kind == "prompt" else None
        targets = {"prompt": text, "answer": text, "output": output or ""}

        checks = []
        for check in exercise.checks:
            passed, detail = check.evaluate(targets[check.target])
            checks.append(CheckResult(f"{check.type} ({check.target})", passed, detail, check.weight, check.required))
        total = sum(c.weight for c in checks)
        check_score = sum(c.weight for c in checks if c.passed) / total

        scores = rouge(output if output is not None else text, list(exercise.references))
        rouge_part = min(1.0, scores["rougeL"] / ROUGE_FULL)
        w = exercise.weights
        score = (w.checks * check_score + w.rouge * rouge_part) / ((w.checks + w.rouge) or 1.0)
        required_ok = all(c.passed for c in checks if c.required)

        if score >= exercise.pass_threshold and required_ok:
            verdict = self.judge(exercise, text, output)
            if verdict["verdict"] == "no":
                score = max(0.0, score - w.judge)
        else:
            verdict = {"verdict": "skipped", "reason": "the rubric did not pass, so there was nothing to confirm"}
        passed = score >= exercise.pass_threshold and required_ok
        return Grade(passed, score, checks, scores, verdict, output, notes)


def feedback_markdown(grade: Grade, threshold: float) -> str:
    """What the learner sees after a submission: every check, the ROUGE scores and the judge's verdict."""
    head = "**Passed**" if grade.passed else "**Not yet**"
    lines = [f"{head}: score {grade.score:.2f} (pass mark {threshold:.2f})", ""]
    if grade.output is not None:
        lines += ["**What the model produced from your prompt:**", "", "```", grade.output or "(nothing)", "```", ""]
    lines.append("**Checks**")
    for c in grade.checks:
        mark = "pass" if c.passed else "fail"
        lines.append(f"- **{mark}** `{c.name}`{' (required)' if c.required else ''}: {c.detail}")
    r = grade.rouge
    lines += ["", f"**ROUGE** vs the reference: ROUGE-1 {r['rouge1']:.2f} · ROUGE-2 {r['rouge2']:.2f} · "
                  f"ROUGE-L {r['rougeL']:.2f}", "",
              f"**Self-check:** {grade.judge['verdict']}" + (f": {grade.judge['reason']}" if grade.judge["reason"] else "")]
    lines += ["", *(f"_{n}_" for n in grade.notes)] if grade.notes else []
    return "\n".join(lines)
