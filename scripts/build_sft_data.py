"""Build datasets/tutor_sft/{train,validation}.jsonl from the hand-written sources and the lessons.

    python scripts/build_sft_data.py            # write the splits and print the counts
    python scripts/build_sft_data.py --check    # exit 1 if the committed files differ from a fresh build

Every prompt is rendered with the template the app serves that task with: the tutor
persona (prompts/tutor_system.md) as the system message of chat tasks, with the exercise filled in for hints;
prompts/judge.md for verdicts; the grounded-answer prompt for questions over passages. Change a template,
rebuild, retrain: the test suite fails while the committed data is stale.

Hand-written sources live in datasets/tutor_sft/sources/*.yaml (see the comment at the top of each file). The
lesson-derived part comes from lessons/*.yaml: each tactic explained, each weak/improved example critiqued,
the graduated hints of every exercise as a conversation, and two judge verdicts per exercise.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from collections import Counter
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tutor import prompts
from tutor.config import ROOT
from tutor.finetune.dataset import (
    DATA_DIR,
    read_jsonl,
    record_id,
    split_of,
    validate,
    write_splits,
)
from tutor.lessons import load_lessons

SOURCES = DATA_DIR / "sources"

# How learners phrase requests in the chat. One is picked per example by a hash of its key, so the build is
# deterministic and the wording varies across the data.
CRITIQUE_ASKS = [
    "Can you critique this prompt and suggest a fix?",
    "What's wrong with my prompt?",
    "How would you improve this prompt?",
    "Please review this prompt. What would make it better?",
    "Is this a good prompt? Be honest.",
    "Give me feedback on this prompt.",
    "I wrote this prompt but the results are poor. Why?",
]
HINT_ASKS = [
    "Here's my attempt. Can you give me a hint?",
    "I'm stuck. This is what I have so far:",
    "Is this on the right track? Just a hint, please.",
    "What am I missing? My attempt:",
    "Can you nudge me in the right direction? I wrote:",
]
STUCK_ASKS = [
    "I'm stuck on this exercise. Can you give me a hint?",
    "I don't know where to start. Any hint?",
    "Can I have a hint for this one?",
    "Help, I'm not sure what this exercise wants.",
]
MORE_ASKS = ["Still stuck. Another hint?", "That helped a bit. Can I have one more hint?", "Any other hint?"]
TACTIC_ASKS = ["What is the idea behind \"{title}\"?", "Can you explain the lesson \"{title}\"?",
               "Why should I {title_lower}?", "Explain \"{title}\" in simple terms."]


def pick(options: list[str], key: str) -> str:
    return options[int(hashlib.sha1(key.encode()).hexdigest(), 16) % len(options)]


def record(task: str, key: str, source: str, messages: list[dict]) -> dict:
    return {"id": record_id(task, key), "task": task, "source": source, "messages": messages}


def system(exercise_task: str = "", lesson=None) -> dict:
    text = prompts.render(
        "tutor_system",
        lesson_title=lesson.title if lesson else "",
        lesson_tactic=lesson.tactic.strip() if lesson else "",
        exercise_task=exercise_task.strip(),
    )
    return {"role": "system", "content": text}


def chat(task, key, source, user, reply, system_message=None) -> dict:
    messages = [system_message or system(), {"role": "user", "content": user.strip()},
                {"role": "assistant", "content": reply.strip()}]
    return record(task, key, source, messages)


def fenced(text: str) -> str:
    return f'"""\n{text.strip()}\n"""'


def judge(key, source, task_text, question, reference, submission, verdict, reason, output="") -> dict:
    """A verdict in the format tutor.grading parses, on the prompt it sends: prompts/judge.md as the only message."""
    user = prompts.render("judge", task=task_text.strip(), reference=reference.strip(), submission=submission.strip(),
                          output=output.strip(), question=question.strip())
    reply = f"VERDICT: {verdict}\nREASON: {reason.strip()}"
    return record("judge", key, source, [{"role": "user", "content": user}, {"role": "assistant", "content": reply}])


def grounded(key, source, passages, question, answer) -> dict:
    user = prompts.render("answer_from_readings", passages=passages, question=question.strip())
    return chat("grounded", key, source, user, answer)


# ---------------------------------------------------------------- hand-written sources
def from_sources(folder: Path = SOURCES) -> list[dict]:
    records = []
    for path in sorted(folder.glob("*.yaml")):
        items, name = yaml.safe_load(path.read_text(encoding="utf-8")), path.name
        for item in items:
            if name.startswith("explain"):
                records += [chat("explain", p["q"], name, p["q"], p["a"]) for p in item["pairs"]]
            elif name == "steer.yaml":
                records.append(chat("steer", item["q"], name, item["q"], item["a"]))
            elif name == "critique.yaml":
                ask = pick(CRITIQUE_ASKS, item["prompt"])
                records.append(chat("critique", item["prompt"], name, f"{ask}\n\n{fenced(item['prompt'])}",
                                    item["critique"]))
            elif name == "hints.yaml":
                key = item["exercise"] + item["attempt"]
                user = f"{pick(HINT_ASKS, key)}\n\n{fenced(item['attempt'])}"
                records.append(chat("hint", key, name, user, item["hint"], system(item["exercise"])))
            elif name == "grounded.yaml":
                passages = [{"title": p["title"], "text": p["text"].strip()} for p in item["passages"]]
                records += [grounded(q["q"] + passages[0]["title"], name, passages, q["q"], q["a"])
                            for q in item["questions"]]
            elif name == "judge.yaml":
                records += [judge(item["task"] + s["text"], name, item["task"], item["criterion"], item["reference"],
                                  s["text"], s["verdict"], s["reason"]) for s in item["submissions"]]
            else:
                raise SystemExit(f"{path}: unknown source file; add a branch for it in {Path(__file__).name}")
    return records


# ---------------------------------------------------------------- lesson-derived part
def from_lessons(lessons) -> list[dict]:
    records, exercises = [], [(lesson, e) for lesson in lessons for e in lesson.exercises]
    for lesson in lessons:
        source = f"lessons/{lesson.id}"
        title_lower = lesson.title[0].lower() + lesson.title[1:]
        ask = pick(TACTIC_ASKS, lesson.id).format(title=lesson.title, title_lower=title_lower)
        records.append(chat("explain", f"tactic:{lesson.id}", source, ask, lesson.tactic))
        for n, example in enumerate(lesson.examples):
            reply = f"{example.why.strip()}\n\nImproved prompt:\n{fenced(example.improved)}"
            user = f"{pick(CRITIQUE_ASKS, example.weak)}\n\n{fenced(example.weak)}"
            records.append(chat("critique", f"{lesson.id}:example:{n}", source, user, reply))
    for i, (lesson, exercise) in enumerate(exercises):
        key, source = f"{lesson.id}:{exercise.id}", f"lessons/{lesson.id}"
        # The graduated hints as a conversation: the learner asks again, the tutor goes one hint further.
        messages = [system(exercise.task, lesson)]
        for n, hint in enumerate(exercise.hints):
            messages += [{"role": "user", "content": pick(MORE_ASKS if n else STUCK_ASKS, f"{key}:{n}")},
                         {"role": "assistant", "content": hint.strip()}]
            records.append(record("hint", f"{key}:hint:{n}", source, list(messages)))
        records += lesson_verdicts(key, source, exercise, exercises[(i + 7) % len(exercises)][1])
    return records


def lesson_verdicts(key: str, source: str, exercise, other) -> list[dict]:
    """Two verdicts per exercise, on what tutor.grading sends the judge: the model solution (yes), and a
    failure the question rules out: a prompt whose output merely echoes the material, or an answer written
    for a different exercise (no)."""
    common = {"source": source, "task_text": exercise.task, "question": exercise.judge,
              "reference": exercise.references[0]}
    if exercise.kind in ("prompt", "agent"):  # the judge also sees what ran: the prompt's output or the agent's trace
        material = exercise.input if exercise.kind == "prompt" else exercise.agent.question
        return [
            judge(f"{key}:sound", submission=exercise.solution, output=exercise.references[-1], verdict="yes",
                  reason="The output does what the question asks, much like the reference.", **common),
            judge(f"{key}:echo", submission=exercise.solution, output=material, verdict="no",
                  reason="The output only repeats the exercise's material instead of doing the task.", **common),
        ]
    return [
        judge(f"{key}:sound", submission=exercise.solution, verdict="yes",
              reason="The answer covers the point the question asks about, in line with the reference.", **common),
        judge(f"{key}:off-topic", submission=other.solution, verdict="no",
              reason="The answer is about a different question and does not address this one.", **common),
    ]


def build(lessons_dir: Path | None = None) -> list[dict]:
    lessons = load_lessons(lessons_dir or ROOT / "lessons")
    if lessons.problems:
        raise SystemExit("Fix the lessons first:\n" + "\n".join(lessons.problems))
    return from_sources() + from_lessons(lessons)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare a fresh build with the committed files")
    args = parser.parse_args(argv)
    records = build()
    if args.check:
        problems = validate(records)
        for split in ("train", "validation"):
            fresh = sorted((r for r in records if split_of(r["id"]) == split), key=lambda r: r["id"])
            if read_jsonl(DATA_DIR / f"{split}.jsonl") != fresh:
                problems.append(f"{split}.jsonl is stale: run `python scripts/build_sft_data.py`")
        print("\n".join(problems) or "datasets/tutor_sft is up to date")
        return 1 if problems else 0
    counts = write_splits(records)
    by_task = Counter(r["task"] for r in records)
    print(f"{len(records)} records -> {counts}; by task: {dict(sorted(by_task.items()))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
