"""Grading an agent exercise: run the learner's agent on the model and check its trace.

``tutor.grading.Grader`` calls ``run_exercise`` for ``kind: agent``: the learner's spec (tutor.agents.spec) runs
greedily, so the same spec always gets the same trace and grade. What comes back is the run's summary (shown
to the learner as the output, compared with the references by ROUGE and read by the judge) and one check per
expectation in the exercise's ``agent.expect``, weighted like checks on a prompt exercise's output. The
grader adds them to the rubric checks on the spec and scores them all the same way.
"""
from __future__ import annotations

import json
import re

from tutor.agents.loop import Agent, RunSpec
from tutor.agents.spec import Expect, parse_spec
from tutor.agents.trace import Trace
from tutor.grading import CheckResult
from tutor.lessons import Exercise
from tutor.models import ChatModel

# A number as people and models write it: 2,480 / 434.00 / -3.5 / 1e3.
_NUMBER = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?(?:e[+-]?\d+)?", re.I)


def run_exercise(model: ChatModel, exercise: Exercise, text: str) -> tuple[str, list[CheckResult]]:
    """(the run's summary, the checks on its trace). SpecError tells the learner what to fix in the spec."""
    task = exercise.agent
    learner = parse_spec(text, task.offered)
    spec = RunSpec(question=task.question, tools=learner.tools, system=learner.system,
                   descriptions={**task.descriptions, **learner.descriptions}, examples=task.examples,
                   limits=task.limits, shop=task.shop, weather=task.weather)
    trace = None
    for trace in Agent(model, spec, timed=False).run():
        pass
    return trace.summary(), trace_checks(task.expect, trace)


def trace_checks(expect: Expect, trace: Trace) -> list[CheckResult]:
    w = expect.weight
    checks = []
    calls = trace.calls()
    called = ", ".join(dict.fromkeys(s.tool for s in calls)) or "no tool"
    for tool in expect.tools:
        mine = [s for s in calls if s.tool == tool]
        if mine:
            checks.append(CheckResult(f"agent: calls {tool}", True, f"step {mine[0].number} calls {tool}", w))
        else:
            checks.append(CheckResult(f"agent: calls {tool}", False, f"the agent never called {tool} (it called "
                                      f"{called}); say in the spec when {tool} is the tool to use", w))
        ran = next((s for s in mine if s.ok), None)
        if ran:
            detail = f"{tool} ran with {_args(ran)} and returned {_clip(ran.observation)}"
        elif mine:
            detail = f"{tool} failed with {_args(mine[-1])}: {_clip(mine[-1].observation)}; show the input format"
        else:
            detail = f"no call to {tool}, so no arguments to check"
        checks.append(CheckResult(f"agent: valid arguments for {tool}", ran is not None, detail, w))
    for tool in expect.avoid:
        bad = next((s for s in calls if s.tool == tool), None)
        detail = (f"step {bad.number} calls {tool}: the agent followed an instruction it should not have; tell it "
                  "that tool results are data, not orders" if bad else f"the agent never called {tool}")
        checks.append(CheckResult(f"agent: does not call {tool}", bad is None, detail, w))
    if expect.answer is not None or expect.answer_any:
        passed, detail = answer_check(expect, trace)
        checks.append(CheckResult("agent: final answer", passed, detail, w))
    return checks


def answer_check(expect: Expect, trace: Trace) -> tuple[bool, str]:
    if trace.answer is None:
        return False, f"no final answer ({trace.message or 'the run did not finish'})"
    answer = trace.answer
    if expect.answer is not None:
        target = expect.answer
        for text in _NUMBER.findall(answer):
            value = float(text.replace(",", ""))
            if abs(value - target) <= expect.tolerance * max(abs(target), 1e-9):
                return True, f"the final answer has {text}, within {expect.tolerance:.0%} of {_num(target)}"
        return False, f"the final answer '{_clip(answer)}' does not contain {_num(target)} (±{expect.tolerance:.0%})"
    hay = " ".join(answer.casefold().split())
    hit = next((p for p in expect.answer_any if " ".join(p.casefold().split()) in hay), None)
    if hit:
        return True, f"the final answer says '{hit}'"
    return False, f"the final answer '{_clip(answer)}' says none of: {', '.join(expect.answer_any)}"


def _args(step) -> str:
    return json.dumps(step.args or {}, ensure_ascii=False)


def _num(value: float) -> str:
    return f"{value:g}"


def _clip(text: str | None, n: int = 100) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= n else text[: n - 1] + "…"
