"""What a model can be trusted with when grading, measured once per model and cached.

Output checks look at what the model wrote from the learner's prompt, so on a small model they measure the
model as much as the learner. Before an exercise's output checks count, the lesson's own solution is run on
the current model: an output check the solution fails is "not counted on this model" (it cannot fail a
learner, and leaves the score). One extra greedy run per exercise, the first time it is graded.

The self-check (judge) counts only on a model where it was measured on labelled samples
(``tutor lessons calibrate``) and earned it: see ``judge_earns_its_weight``. Unmeasured, it is "not used".

Both are cached in ``<data dir>/calibration/<model>.json``, keyed on the model's name, adapter, back-end and
quantization (what changes its outputs), and per exercise on a fingerprint of the exercise, so editing a
lesson re-measures only that exercise.
"""
from __future__ import annotations

import hashlib
import json
import re
import threading
from pathlib import Path
from typing import Callable

from tutor.models import ModelInfo

# The judge can only veto work the rubric passed. Say the rubric passes ~half the submissions and a few percent
# of those should fail. A judge that wrongly says "no" on more than 1 in 10 sound submissions turns more
# right passes into fails than the few wrong passes it can catch, so it must be right on >= 85% of labelled
# cases and say "no" to <= 10% of the sound ones. Below 90% parseable verdicts it is mostly not answering.
JUDGE_MIN_CASES, JUDGE_MIN_PARSED, JUDGE_MIN_ACCURACY, JUDGE_MAX_FALSE_NO = 20, 0.90, 0.85, 0.10


def model_key(info: ModelInfo) -> dict:
    return {"name": info.name, "adapter": info.adapter, "backend": info.backend, "quantization": info.quantization}


def fingerprint(exercise) -> str:
    data = exercise.model_dump(mode="json", include={"id", "task", "input", "solution", "checks"})
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def judge_earns_its_weight(stats: dict) -> tuple[bool, str]:
    """(use it, why) from ``{"cases", "parsed", "correct", "sound", "false_no"}``."""
    cases, parsed = stats.get("cases", 0), stats.get("parsed", 0)
    if cases < JUDGE_MIN_CASES:
        return False, f"measured on {cases} labelled cases; at least {JUDGE_MIN_CASES} are needed"
    accuracy = stats["correct"] / cases
    false_no = stats["false_no"] / max(1, stats["sound"])
    figures = (f"{parsed}/{cases} verdicts parsed, {accuracy:.0%} right, said no to {false_no:.0%} of sound "
               f"samples")
    if parsed / cases < JUDGE_MIN_PARSED or accuracy < JUDGE_MIN_ACCURACY or false_no > JUDGE_MAX_FALSE_NO:
        return False, (f"{figures}; it counts at >= {JUDGE_MIN_PARSED:.0%} parsed, >= {JUDGE_MIN_ACCURACY:.0%} "
                       f"right and <= {JUDGE_MAX_FALSE_NO:.0%} wrong noes")
    return True, figures


class ModelCalibration:
    """Per-model trust: which output checks count per exercise, and whether the judge counts."""

    def __init__(self, key: dict, path: Path | None = None, *, outputs: bool | None = None,
                 judge: dict | None = None):
        self.key, self.path = key, path
        self._fixed_outputs = outputs  # tests: True/False for every output check, None to measure
        self._lock = threading.Lock()
        self.data = {"model": key, "outputs": {}, "judge": judge}
        if path and path.is_file():
            try:
                stored = json.loads(path.read_text(encoding="utf-8"))
                if stored.get("model") == key:
                    self.data.update(outputs=stored.get("outputs", {}), judge=stored.get("judge"))
            except (OSError, ValueError):
                pass  # a damaged cache is measured again

    @classmethod
    def for_model(cls, info: ModelInfo, data_dir: Path) -> "ModelCalibration":
        key = model_key(info)
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join(str(v) for v in key.values()))[:120]
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:8]
        return cls(key, Path(data_dir) / "calibration" / f"{slug}-{digest}.json")

    @classmethod
    def assumed(cls, outputs: bool, judge: bool) -> "ModelCalibration":
        """In memory, nothing measured: every output check counts (or none does), the judge counts or not."""
        stats = {"cases": JUDGE_MIN_CASES, "parsed": JUDGE_MIN_CASES, "correct": JUDGE_MIN_CASES, "sound": 1,
                 "false_no": 0} if judge else {"cases": 0}
        return cls({"name": "assumed"}, None, outputs=outputs, judge=stats)

    def output_counted(self, exercise, run_solution: Callable[[], str]) -> dict[int, bool]:
        """{index in exercise.checks: counted} for each output check; runs the solution once per model."""
        indexes = [i for i, c in enumerate(exercise.checks) if c.target == "output"]
        if not indexes:
            return {}
        if self._fixed_outputs is not None:
            return {i: self._fixed_outputs for i in indexes}
        key = f"{exercise.id}:{fingerprint(exercise)}"
        with self._lock:
            stored = self.data["outputs"].get(key)
            if stored is None:
                output = run_solution()
                stored = {str(i): exercise.checks[i].evaluate(output)[0] for i in indexes}
                self.data["outputs"][key] = stored
                self._save()
        return {i: bool(stored.get(str(i), False)) for i in indexes}

    def trace_counted(self, exercise, run_reference: Callable[[], list]) -> dict[str, bool]:
        """{trace check name: counted} for an agent exercise: the lesson's reference spec is run once per model,
        and a trace check it fails (the model did not call the tool, say) cannot fail a learner on this model."""
        if self._fixed_outputs is not None:
            return {}
        key = f"trace:{exercise.id}:{fingerprint(exercise)}"
        with self._lock:
            stored = self.data["outputs"].get(key)
            if stored is None:
                stored = {c.name: c.passed for c in run_reference()}
                self.data["outputs"][key] = stored
                self._save()
        return {name: bool(ok) for name, ok in stored.items()}

    def judge_status(self) -> tuple[bool, str]:
        stats = self.data.get("judge")
        if not stats:
            return False, "not measured on this model yet (`tutor lessons calibrate` measures it)"
        return judge_earns_its_weight(stats)

    def record_judge(self, stats: dict) -> None:
        with self._lock:
            self.data["judge"] = stats
            self._save()

    def _save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, sort_keys=True), encoding="utf-8")
        tmp.replace(self.path)  # atomic: a reader never sees half a file


# ---------------------------------------------------------------- instructor calibration on labelled samples
def grade_samples(lessons, grader, split: str | None = None, judge_cases: int = 0, progress=None) -> list[dict]:
    """Grade every labelled sample (of one split, or all) and, on up to ``judge_cases`` of the tuning samples
    (alternating should-pass and should-fail), ask the judge as well, to measure it."""
    from tutor.grading.judge import ask_judge

    rows, asked = [], {"pass": 0, "fail": 0}
    for lesson in lessons:
        for exercise in lesson.exercises:
            for n, sample in enumerate(exercise.samples):
                if split and sample.split != split:
                    continue
                grade = grader.grade(exercise, sample.text)
                row = {"lesson": lesson.id, "exercise": exercise.id, "sample": n, "split": sample.split,
                       "expect": sample.expect, "near_miss": sample.near_miss, "passed": grade.passed,
                       "missing": [c.name for c in grade.missing], "score": round(grade.score, 3)}
                if (grader.model is not None and sample.split == "tune"
                        and asked[sample.expect] < (judge_cases + 1) // 2):
                    asked[sample.expect] += 1
                    row["judge"] = ask_judge(grader.model, exercise, sample.text, grade.output)[0]["verdict"]
                rows.append(row)
                if progress:
                    progress(row)
    return rows


def judge_stats(rows: list[dict]) -> dict:
    judged = [r for r in rows if "judge" in r]
    return {"cases": len(judged), "parsed": sum(r["judge"] in ("yes", "no") for r in judged),
            "correct": sum((r["judge"] == "yes") == (r["expect"] == "pass")
                           for r in judged if r["judge"] != "not confirmed"),
            "sound": sum(r["expect"] == "pass" for r in judged),
            "false_no": sum(r["expect"] == "pass" and r["judge"] == "no" for r in judged)}


def _figures(rows: list[dict]) -> dict:
    fails = [r for r in rows if r["expect"] == "fail"]
    passes = [r for r in rows if r["expect"] == "pass"]
    false_pass = sum(r["passed"] for r in fails)
    false_fail = sum(not r["passed"] for r in passes)
    return {"samples": len(rows), "agree": len(rows) - false_pass - false_fail,
            "agreement": round((len(rows) - false_pass - false_fail) / max(1, len(rows)), 3),
            "false_pass": false_pass, "false_pass_rate": round(false_pass / max(1, len(fails)), 3),
            "false_fail": false_fail, "false_fail_rate": round(false_fail / max(1, len(passes)), 3),
            "near_miss_passed": sum(r["passed"] for r in fails if r["near_miss"])}


def summarise(rows: list[dict]) -> dict:
    """Agreement, false passes and false fails per split, per lesson and per exercise."""
    report = {}
    for split in ("tune", "heldout"):
        part = [r for r in rows if r["split"] == split]
        if not part:
            continue
        lessons = dict.fromkeys(r["lesson"] for r in part)
        exercises = dict.fromkeys((r["lesson"], r["exercise"]) for r in part)
        report[split] = {
            "total": _figures(part),
            "lessons": {lid: _figures([r for r in part if r["lesson"] == lid]) for lid in lessons},
            "exercises": {f"{lid}/{eid}": _figures([r for r in part if (r["lesson"], r["exercise"]) == (lid, eid)])
                          for lid, eid in exercises},
            "disagreements": [r for r in part if r["passed"] != (r["expect"] == "pass")],
        }
    return report
