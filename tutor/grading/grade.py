"""Grading a submission: rubric checks, ROUGE against the references, and a model self-check -> a ``Grade``.

Passing is decided by the requirements: a submission passes when every *counted required* check passes (a
requirement the task states outright) and the self-check, where it counts, does not say no. The score only
ranks work (the feedback shows it), so no pile of optional keywords can carry a missing requirement:

    checks = sum(weight of passed counted checks) / sum(weight of counted checks)
    rouge  = min(1, ROUGE-L of the output (or answer) vs the best reference / ROUGE_FULL)
    score  = (w_checks * checks + w_rouge * rouge) / (w_checks + w_rouge)  [- w_judge if the judge says no]
    passed = every counted required check passed, and not (the judge counts and says no)

An output check is counted on a model only when the lesson's own solution passes it there, and the judge
counts only on a model where it was measured and earned it (tutor.grading.calibrate). The judge is asked only
when the requirements pass, and can only confirm or veto: an unparseable verdict changes nothing. So nothing a
learner writes can raise their own grade: the checks are code, ROUGE compares against fixed references, and
the judge can only subtract.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tutor.errors import TutorError
from tutor.grading.calibrate import ModelCalibration
from tutor.grading.checks import PLACEHOLDER as INPUT_SLOT
from tutor.grading.judge import SUBMISSION_TOKENS, ask_judge, cut_note, fit_tokens, overhead
from tutor.markdown import fenced
from tutor.models import GREEDY, ChatModel, complete
from tutor.rouge import rouge

if TYPE_CHECKING:  # tutor.lessons imports tutor.grading.checks, so only type checkers import it here
    from tutor.lessons import Exercise

# A paraphrase that says the same thing as a reference rarely gets above ROUGE-L 0.5 (different wording and
# order), so 0.5 counts as full marks for the ROUGE part.
ROUGE_FULL = 0.5
# Prompt exercises run the learner's prompt greedily: the same prompt always gets the same output and grade.
RUN_SETTINGS = GREEDY.with_(max_new_tokens=64)


class EmptySubmission(TutorError):
    pass


@dataclass
class CheckResult:
    name: str
    passed: bool
    detail: str
    weight: float = 1.0
    required: bool = False
    #: False for an output check the lesson's own solution fails on this model: it cannot fail a learner here
    counted: bool = True
    #: what the task asks for (the check's ``asks:``), named in the feedback when a required check fails
    asks: str | None = None
    target: str = "answer"  # what the check read: "prompt", "output" or "answer"


@dataclass
class Grade:
    passed: bool
    score: float
    checks: list[CheckResult]
    rouge: dict
    judge: dict
    output: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def missing(self) -> list[CheckResult]:
        """The counted required checks that failed: the reasons the submission did not pass."""
        return [c for c in self.checks if c.required and c.counted and not c.passed]

    def to_json(self) -> dict:
        data = {
            "passed": self.passed,
            "score": round(self.score, 3),
            "checks": [{"name": c.name, "passed": c.passed, "detail": c.detail, "required": c.required,
                        "counted": c.counted} for c in self.checks],
            "rouge": self.rouge,
            "judge": self.judge,
        }
        if self.output is not None:
            data["output"] = self.output
        if self.notes:
            data["notes"] = self.notes
        return data


def fill_input(prompt: str, material: str | None) -> str:
    """Put the exercise's material where the learner wrote {input}, or after the prompt if they did not."""
    material = (material or "").strip()
    if INPUT_SLOT in prompt:
        return prompt.replace(INPUT_SLOT, material)
    return f"{prompt}\n\n{material}" if material else prompt


class Grader:
    """Grades submissions on ``model``. With ``model=None`` it grades the rubric alone, the part of the decision
    no model can change: prompts are not run, output checks are not counted, the judge is not used."""

    def __init__(self, model: ChatModel | None, max_chars: int = 20_000,
                 calibration: ModelCalibration | None = None):
        self.model = model
        self.max_chars = max_chars
        if calibration is None:  # unmeasured: output checks measured on first use (in memory), no judge
            calibration = (ModelCalibration({"name": model.info.name}) if model is not None
                           else ModelCalibration.assumed(outputs=False, judge=False))
        self.calibration = calibration

    def run_prompt(self, exercise: Exercise, prompt: str) -> str:
        """The learner's prompt with the material filled in, run greedily. The filled text is cut to what fits
        the window beside the chat template and the reply (a prompt repeating {input} 1,000 times included)."""
        filled = fill_input(prompt, exercise.input)
        budget = self.model.info.context_window - RUN_SETTINGS.max_new_tokens - overhead(self.model, "")
        filled, _ = fit_tokens(self.model, filled, max(1, budget))
        return complete(self.model, [{"role": "user", "content": filled}], RUN_SETTINGS).strip()

    def judge(self, exercise: Exercise, submission: str, output: str | None) -> dict:
        return ask_judge(self.model, exercise, submission, output)[0]

    def _cut(self, text: str) -> tuple[str, list[str]]:
        """The submission within max_chars and SUBMISSION_TOKENS (or less on a small window), and a note if cut."""
        notes = []
        if len(text) > self.max_chars:
            text = text[: self.max_chars]
            notes.append(f"Only the first {self.max_chars:,} characters were graded.")
        if self.model is None:
            return text, notes
        window, reserve = self.model.info.context_window, RUN_SETTINGS.max_new_tokens
        # the run sends the learner text plus the template: half the window leaves room for the material
        budget = min(SUBMISSION_TOKENS, max(1, (window - reserve - overhead(self.model, "")) // 2))
        kept, total = fit_tokens(self.model, text, budget)
        if len(kept) < len(text):
            notes.append(cut_note(self.model.count_tokens(kept), total, window, reserve))
        return kept, notes

    def _agent_checks(self, exercise: Exercise, text: str) -> tuple[str, list[CheckResult]]:
        """Run the learner's agent spec and grade its trace. Each trace check is a requirement (right tool, valid
        arguments, correct final answer), counted on this model only if the lesson's reference spec passes it."""
        from tutor.agents.grade import run_exercise

        output, found = run_exercise(self.model, exercise, text)
        counted = self.calibration.trace_counted(exercise, lambda: run_exercise(self.model, exercise,
                                                                                exercise.solution)[1])
        checks = []
        for c in found:
            on_model = counted.get(c.name, True)
            detail = c.detail if on_model else (f"not counted on this model: the lesson's reference spec fails it "
                                                f"on {self.model.info.name} too ({c.detail})")
            checks.append(CheckResult(c.name, c.passed, detail, c.weight, True, on_model, None, "output"))
        return output, checks

    def grade(self, exercise: Exercise, text: str) -> Grade:
        text = (text or "").strip()
        if not text:
            raise EmptySubmission(
                "Your submission is empty, so there is nothing to grade. "
                + {"prompt": "Write a prompt (use {input} where the material goes).",
                   "agent": "Write the agent's system prompt (and, if you like, a `Tools:` line)."}.get(
                    exercise.kind, "Write your answer in a few sentences.")
            )
        text, notes = self._cut(text)
        trace_checks = []
        if exercise.kind == "agent" and self.model is not None:  # the learner's agent runs; its trace is graded
            output, trace_checks = self._agent_checks(exercise, text)
            if any(not c.counted for c in trace_checks):
                notes.append(f"The agent's run is shown but only partly graded on {self.model.info.name}: even the "
                             "lesson's reference spec does not complete it on this model, so your spec is graded "
                             "mostly on what it says. A larger model runs it for real.")
        else:
            output = self.run_prompt(exercise, text) if exercise.kind == "prompt" and self.model is not None else None
        targets = {"prompt": text, "answer": text, "output": output or ""}
        counted = self.calibration.output_counted(exercise, lambda: self.run_prompt(exercise, exercise.solution))

        checks = []
        for i, check in enumerate(exercise.checks):
            passed, detail = check.evaluate(targets[check.target])
            on_model = counted.get(i, True)
            if not on_model and self.model is None:
                passed, detail = False, "not counted: the rubric alone was graded, no model ran the prompt"
            elif not on_model:
                detail = (f"not counted on this model: the lesson's own solution fails it on "
                          f"{self.model.info.name} ({detail})")
            checks.append(CheckResult(f"{check.type} ({check.target})", passed, detail, check.weight,
                                      check.required, on_model, check.asks, check.target))
        checks += trace_checks
        scored = [c for c in checks if c.counted]
        total = sum(c.weight for c in scored) or 1.0
        check_score = sum(c.weight for c in scored if c.passed) / total

        scores = rouge(output if output is not None else text, list(exercise.references))
        rouge_part = min(1.0, scores["rougeL"] / ROUGE_FULL)
        w = exercise.weights
        score = (w.checks * check_score + w.rouge * rouge_part) / ((w.checks + w.rouge) or 1.0)
        required_ok = all(c.passed for c in scored if c.required)

        vetoed = False
        if not required_ok:
            verdict = {"verdict": "skipped", "reason": "a requirement of the task is missing, so there was nothing "
                                                        "to confirm", "counted": False}
        else:
            used, why = self.calibration.judge_status()
            if used:
                verdict, judge_notes = ask_judge(self.model, exercise, text, output)
                verdict["counted"] = True
                notes += judge_notes
                if verdict["verdict"] == "no":
                    score, vetoed = max(0.0, score - w.judge), True
            else:
                verdict = {"verdict": "not used on this model", "reason": why, "counted": False}
        return Grade(required_ok and not vetoed, score, checks, scores, verdict, output, notes)


_YOUR = {"prompt": "your prompt", "answer": "your answer", "output": "what the model wrote from your prompt"}


def _self_check_line(judge: dict) -> str:
    """The model's own verdict, in learner terms: operators read why it is off in `tutor lessons calibrate`."""
    if judge["verdict"] == "not used on this model":
        return "**Self-check:** not used with this model (it counts only where it was measured to be reliable)."
    return f"**Self-check:** {judge['verdict']}" + (f": {judge['reason']}" if judge["reason"] else "")


def feedback_markdown(grade: Grade) -> str:
    """What the learner sees after a submission: what is missing first, then every check, ROUGE and the judge."""
    head = "**Passed**" if grade.passed else "**Not yet**"
    lines = [f"{head}: score {grade.score:.2f} (the score ranks work; the task's requirements decide the pass)", ""]
    for c in grade.missing:
        if c.asks:
            lines.append(f"- The task asks for {c.asks}; {_YOUR.get(c.target, 'your submission')} does not have it "
                         f"yet. {c.detail}")
        else:
            lines.append(f"- A requirement of the task is missing: {c.detail}")
    if grade.judge.get("counted") and grade.judge["verdict"] == "no":
        lines.append(f"- The self-check did not confirm it: {grade.judge['reason'] or 'no reason given'}")
    if lines[-1] != "":
        lines = lines[:2] + ["**What is missing**"] + lines[2:] + [""]
    if grade.output is not None:
        lines += ["**What the model produced from your prompt:**", "", fenced(grade.output or "(nothing)"), ""]
    lines.append("**Checks**")
    for c in grade.checks:
        mark = "pass" if c.passed else "fail"
        mark = mark if c.counted else f"{mark}, not counted on this model"
        tags = ([f"`{c.name}`"] if c.asks else []) + (["required"] if c.required else [])
        label = c.asks or f"`{c.name}`"  # what the task asks, in words, where the lesson says it
        suffix = f" ({', '.join(tags)})" if tags else ""
        lines.append(f"- **{mark}** {label}{suffix}: {c.detail}")
    r = grade.rouge
    lines += ["", f"**ROUGE** vs the reference: ROUGE-1 {r['rouge1']:.2f} · ROUGE-2 {r['rouge2']:.2f} · "
                  f"ROUGE-L {r['rougeL']:.2f}", "",
              _self_check_line(grade.judge)]
    lines += ["", *(f"_{n}_" for n in grade.notes)] if grade.notes else []
    return "\n".join(lines)
