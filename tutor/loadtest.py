"""A classroom load test: N simulated learners use the running app over HTTP, the way their browsers do.

    make loadtest                                     # 20 learners against an app it starts on a free port
    python -m tutor.loadtest --learners 5 --max-seconds 300
    python -m tutor.loadtest --url http://127.0.0.1:7860/   # the app's TUTOR_DATABASE_URL / TUTOR_DATA_DIR set here too

Each learner is one gradio_client session (its own session hash, so the server keeps its gr.State as it does
for a browser tab) and calls the Tutor tab's own browser events (`/ui_*`, see tutor.ui.tabs.tutor): type a
name, start a lesson, ask for a hint, ask a question (the tutor picks its move: an answer from the readings, a hint...), submit an attempt
(the model runs the prompt and judges it), refresh the progress panel. Learners arrive over a ramp and pause
between actions like people do. Everything is bounded: the number of learners and a deadline for the whole run.

It prints p50/p95 latency per action, errors, the largest queue position the server reported (what the
learner's browser shows while waiting), and lost progress rows: every attempt and hint the app acknowledged
must be in the progress store afterwards. A benchmark, not a test: it prints figures, it does not judge them.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from gradio_client import Client
from tqdm import tqdm

from tutor.config import Settings
from tutor.lessons import load_lessons
from tutor.progress import Progress, open_progress
from tutor.startup import is_ready

ACTIONS = ("identify", "lesson", "hint", "question", "submit", "progress")
QUESTIONS = ("What is a delimiter in a prompt?", "Why do few-shot examples help?",
             "What does the temperature setting change?", "How do I ask for JSON output?",
             "What is chain-of-thought prompting?")
SUBMISSION = 'Summarize the review between the triple quotes in one sentence.\n"""{input}"""'
# What the tutor says when a reply failed (tutor.tutor.Tutor.reply): counted as errors whatever the action.
FAILURES = ("Sorry, something went wrong", "Sorry, that did not work")
APP_START_S = 600  # a cold first start converts the model (~30 s) and indexes the readings; a loaded CPU is slower


@dataclass
class Figures:
    latency: dict[str, list[float]] = field(default_factory=lambda: {a: [] for a in ACTIONS})
    first_update: list[float] = field(default_factory=list)  # question: queue wait + retrieval + first token
    errors: list[str] = field(default_factory=list)
    max_queue_position: int = 0
    finished: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, action: str, seconds: float) -> None:
        with self.lock:
            self.latency[action].append(seconds)

    def error(self, learner: str, action: str, why: str) -> None:
        with self.lock:
            self.errors.append(f"{learner} {action}: {why}")


class Learner:
    def __init__(self, url: str, name: str, lesson: str, question: str, figures: Figures, deadline: float,
                 think_s: float, rng: random.Random, bar: tqdm):
        self.name, self.lesson, self.question = name, lesson, question
        self.figures, self.deadline, self.think_s, self.rng, self.bar = figures, deadline, think_s, rng, bar
        # _skip_components=False: send every input a browser sends, including the learner id a browser keeps in
        # its local storage (gr.BrowserState); gr.State values still come from this session on the server.
        self.client = Client(url, verbose=False, _skip_components=False)
        self.history: list = []
        self.acknowledged = {"attempts": 0, "hints": 0}

    def run(self) -> None:
        steps = [("identify", "/ui_identify", lambda: [f"{self.name}-browser", self.name, None], None),
                 ("lesson", "/ui_start", lambda: [self.history, None, self.lesson], "Exercise 1"),
                 ("hint", "/ui_hint", lambda: [self.history, None], "Hint 1"),
                 ("question", None, None, None),
                 ("submit", "/ui_submit", lambda: [self.history, None, SUBMISSION], "pass mark"),
                 ("progress", "/ui_progress", lambda: [None], self.name)]
        try:
            for action, api, args, expect in steps:
                if time.monotonic() > self.deadline:
                    self.figures.error(self.name, action, "not started before the run's deadline")
                    return
                ok = self.ask() if action == "question" else self.call(action, api, args(), expect)
                self.bar.update(1)
                if not ok:
                    return
                time.sleep(self.rng.uniform(0.5, 1.5) * self.think_s)
            with self.figures.lock:
                self.figures.finished += 1
        finally:
            self.client.close()

    def call(self, action: str, api: str, args: list, expect: str | None, first: list | None = None,
             timed: bool = True) -> bool:
        started = time.monotonic()
        job = self.client.submit(*args, api_name=api)
        try:
            while not job.done():
                status = job.status()
                if status.rank is not None:
                    with self.figures.lock:
                        self.figures.max_queue_position = max(self.figures.max_queue_position, status.rank + 1)
                if first is not None and not first and job.outputs():
                    first.append(time.monotonic() - started)
                if time.monotonic() > self.deadline:
                    job.cancel()
                    self.figures.error(self.name, action, "still waiting at the run's deadline")
                    return False
                time.sleep(0.1)
            result = job.result()
            if first is not None and not first:  # the whole reply came in one update
                first.append(time.monotonic() - started)
        except Exception as exc:  # the app's error, a dropped connection, a full queue: all count
            self.figures.error(self.name, action, f"{type(exc).__name__}: {str(exc)[:200]}")
            return False
        seconds = time.monotonic() - started
        text = self.remember(result)
        failed = next((f for f in FAILURES if f in text), None)
        if failed or (expect and expect not in text):
            self.figures.error(self.name, action, f"the reply {'says ' + repr(failed) if failed else 'lacks ' + repr(expect)}"
                                                  f": {text[-200:]!r}")
            return False
        if timed:
            self.figures.record(action, seconds)
        if action == "submit":
            self.acknowledged["attempts"] += 1
        elif action == "hint":
            self.acknowledged["hints"] += 1
        return True

    def ask(self) -> bool:
        """A typed question is two browser events: take the text from the box, then answer from the session."""
        if not self.call("question", "/ui_take_message", [self.question], None, timed=False):
            return False  # that step only moves the text from the box; the answer is what is timed
        first: list[float] = []
        # The tutor picks its move (an answer from the readings, a hint aimed at the exercise...): any real reply.
        ok = self.call("question", "/ui_converse", [self.history, None, None], None, first)
        if ok and first:
            with self.figures.lock:
                self.figures.first_update.append(first[0])
        return ok

    def remember(self, result) -> str:
        """The chat history the app returned (the browser shows it and sends it back), as text."""
        outputs = result if isinstance(result, (list, tuple)) else [result]
        if outputs and isinstance(outputs[0], list):
            self.history = outputs[0]
            last = self.history[-1]["content"] if self.history else ""
            return last if isinstance(last, str) else json.dumps(last)
        return " ".join(str(o) for o in outputs)


def stored_rows(progress: Progress, names: list[str], lesson: str, exercise: str) -> dict[str, dict[str, int]]:
    """Per learner, the attempts at ``exercise`` and whether a hint was recorded, read through the app's own store."""
    rows = {}
    for name in names:
        attempts = sum(e["attempts"] for e in progress.summary(name)["exercises"]
                       if (e["lesson"], e["exercise"]) == (lesson, exercise))
        rows[name] = {"attempts": attempts, "hints": int(progress.hints_used(name, lesson, exercise) > 0)}
    return rows


@contextmanager
def app_process(settings: Settings, log_path: Path):
    """`tutor serve` on a free loopback port, in its own process group; always stopped afterwards."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
           "GRADIO_ANALYTICS_ENABLED": "False", "TUTOR_DATA_DIR": str(settings.data_dir)}
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "tutor.cli", "serve"], stdout=log, stderr=subprocess.STDOUT,
                                   env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + APP_START_S
        while True:
            if process.poll() is not None:
                raise SystemExit(f"the app exited with {process.returncode} while starting; see {log_path}")
            if is_ready(url, timeout=2):  # not "/": the status page answers there while the model loads
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"the app did not answer at {url} within {APP_START_S} s; see {log_path}")
            time.sleep(0.5)
        yield url
    finally:
        stop_group(process, grace_s=30)


def stop_group(process: subprocess.Popen, grace_s: float) -> None:
    """SIGTERM to a server started with ``start_new_session=True`` and its children, SIGKILL after ``grace_s``."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def run(url: str, progress: Progress, learners: int, max_seconds: float, ramp_s: float, think_s: float,
        lesson: str, exercise: str, seed: int) -> dict:
    run_id = uuid.uuid4().hex[:6]
    names = [f"loadtest-{run_id}-{n:02d}" for n in range(learners)]
    figures = Figures()
    started = time.monotonic()
    deadline = started + max_seconds
    crowd: list[Learner] = []
    with tqdm(total=learners * len(ACTIONS), desc=f"{learners} learners", unit="action", file=sys.stderr) as bar:
        threads = []
        for n, name in enumerate(names):
            time.sleep(ramp_s / max(learners, 1))  # arrivals spread over the ramp, as a class logs in
            learner = Learner(url, name, lesson, QUESTIONS[n % len(QUESTIONS)], figures, deadline, think_s,
                              random.Random(seed + n), bar)
            crowd.append(learner)
            threads.append(threading.Thread(target=learner.run, name=name, daemon=True))
            threads[-1].start()
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()) + 30)
    wall = time.monotonic() - started
    stored = stored_rows(progress, names, lesson, exercise)
    expected = sum(sum(learner.acknowledged.values()) for learner in crowd)
    found = sum(min(stored[lr.name][k], lr.acknowledged[k]) for lr in crowd for k in lr.acknowledged)
    return {
        "learners": learners, "finished": figures.finished, "wall_seconds": round(wall, 1),
        "errors": len(figures.errors), "error_samples": figures.errors[:10],
        "latency_seconds": {a: _percentiles(v) for a, v in figures.latency.items()},
        "question_first_update_seconds": _percentiles(figures.first_update),
        "max_queue_position": figures.max_queue_position,
        "progress_rows": {"acknowledged": expected, "stored": found, "lost": expected - found},
    }


def _percentiles(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]  # nearest rank; n=20 -> the 19th
    return {"n": len(values), "p50": round(statistics.median(ordered), 2), "p95": round(p95, 2),
            "max": round(ordered[-1], 2)}


def report(figures: dict) -> str:
    lines = [f"{'action':10} {'n':>4} {'p50 s':>8} {'p95 s':>8} {'max s':>8}"]
    rows = [*figures["latency_seconds"].items(), ("1st chunk", figures["question_first_update_seconds"])]
    for action, f in rows:
        lines.append(f"{action:10} {f['n']:>4} " + (f"{f['p50']:>8.2f} {f['p95']:>8.2f} {f['max']:>8.2f}"
                                                      if f["n"] else f"{'-':>8} {'-':>8} {'-':>8}"))
    rows = figures["progress_rows"]
    lines += ["", f"learners finished: {figures['finished']}/{figures['learners']} in {figures['wall_seconds']} s",
              f"errors: {figures['errors']}", *(f"  {e}" for e in figures["error_samples"]),
              f"largest queue position reported to a learner: {figures['max_queue_position']}",
              f"progress rows: {rows['acknowledged']} acknowledged, {rows['stored']} stored, {rows['lost']} lost"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tutor.loadtest", description=__doc__.split("\n\n")[0])
    p.add_argument("--learners", type=int, default=20)
    p.add_argument("--max-seconds", type=float, default=1800, help="deadline for the whole run")
    p.add_argument("--ramp", type=float, default=20, help="seconds over which learners arrive")
    p.add_argument("--think", type=float, default=3, help="mean pause between a learner's actions, seconds")
    p.add_argument("--lesson", default="delimiters")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--url", help="a running app (its progress store is the one TUTOR_DATABASE_URL or TUTOR_DATA_DIR "
                   "names here); without it the app is started on a free loopback port")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if not 1 <= args.learners <= 500 or args.max_seconds <= 0:
        p.error("--learners must be 1 to 500 and --max-seconds above 0")
    settings = Settings.from_env()
    lessons = load_lessons(settings.lessons_dir)
    if args.lesson not in lessons.ids:
        p.error(f"--lesson {args.lesson!r} is not in {settings.lessons_dir}: use one of {', '.join(lessons.ids)}")
    progress = open_progress(settings)  # learners are counted by their run-unique names, so a shared store is fine
    options = dict(learners=args.learners, max_seconds=args.max_seconds, ramp_s=args.ramp, think_s=args.think,
                   lesson=args.lesson, exercise=lessons.get(args.lesson).exercises[0].id, seed=args.seed)
    if args.url:
        figures = run(args.url, progress, **options)
    else:
        log_path = Path(tempfile.gettempdir()) / f"tutor-loadtest-app-{os.getpid()}.log"
        print(f"starting the app (log: {log_path})", file=sys.stderr)
        with app_process(settings, log_path) as url:
            figures = run(url, progress, **options)
    print(json.dumps(figures, indent=2) if args.json else report(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
