"""How often the model completes each agent exercise with its reference spec, and how long a step takes.

    tutor eval agents                 # greedy (what grading runs) plus 4 sampled runs per exercise
    tutor eval agents --samples 10 --json

A run *completes* an exercise when every check on its trace passes: the right tool called, with arguments it
accepts, the right final answer, and no forbidden tool. Greedy decoding is what grading uses, so that run
decides the exercise's trace checks; sampled runs (temperature 0.7, one seed each) show how close the model
is to doing it, which a single greedy run cannot.
"""
from __future__ import annotations

import statistics

from tutor.agents.adapter import AGENT_SETTINGS
from tutor.agents.grade import trace_checks
from tutor.agents.loop import Agent, RunSpec
from tutor.agents.spec import parse_spec
from tutor.lessons import LessonSet
from tutor.models import ChatModel

# Sampling as the chat does (temperature 0.7, top-p 0.95), minus the repetition penalty the format dislikes.
SAMPLED = AGENT_SETTINGS.with_(temperature=0.7, top_p=0.95)


def reference_spec(exercise) -> RunSpec:
    task = exercise.agent
    learner = parse_spec(exercise.solution, task.offered)
    return RunSpec(question=task.question, tools=learner.tools, system=learner.system,
                   descriptions={**task.descriptions, **learner.descriptions}, examples=task.examples,
                   limits=task.limits, shop=task.shop, weather=task.weather)


def run_once(model: ChatModel, exercise, settings) -> dict:
    trace = None
    for trace in Agent(model, reference_spec(exercise), settings=settings, timed=False).run():
        pass
    checks = trace_checks(exercise.agent.expect, trace)
    model_steps = [s for s in trace.steps if s.by == "model"]
    return {"completed": all(c.passed for c in checks), "status": trace.status, "steps": len(trace.steps),
            "failed": [c.name for c in checks if not c.passed], "answer": trace.answer,
            "step_seconds": [s.seconds for s in model_steps], "prompt_tokens": [s.prompt_tokens for s in model_steps],
            "reply_tokens": [s.reply_tokens for s in model_steps], "summary": trace.summary()}


def calibrate(model: ChatModel, lessons: LessonSet, samples: int = 4, progress=None) -> list[dict]:
    rows = []
    for lesson in lessons:
        for exercise in lesson.exercises:
            if exercise.kind != "agent":
                continue
            greedy = run_once(model, exercise, AGENT_SETTINGS)
            sampled = [run_once(model, exercise, SAMPLED.with_(seed=seed)) for seed in range(samples)]
            runs = [greedy, *sampled]
            seconds = [s for r in runs for s in r["step_seconds"]]
            prompts = [t for r in runs for t in r["prompt_tokens"]]
            row = {"exercise": f"{lesson.id}/{exercise.id}", "greedy_completed": greedy["completed"],
                   "greedy_failed": greedy["failed"], "greedy_answer": greedy["answer"],
                   "sampled_completed": sum(r["completed"] for r in sampled), "samples": samples,
                   "steps": len(seconds), "seconds_per_step": round(statistics.median(seconds), 2) if seconds else None,
                   "prompt_tokens_per_step": round(statistics.median(prompts)) if prompts else None,
                   "runs": runs}
            rows.append(row)
            if progress:
                progress(row)
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| exercise | greedy run (graded) | sampled runs completed | median s/step | median prompt tokens |",
             "|---|---|---|---|---|"]
    for r in rows:
        greedy = "completes" if r["greedy_completed"] else "fails: " + ", ".join(r["greedy_failed"])
        lines.append(f"| `{r['exercise']}` | {greedy} | {r['sampled_completed']}/{r['samples']} | "
                     f"{r['seconds_per_step']} | {r['prompt_tokens_per_step']} |")
    return "\n".join(lines)
