"""The Instructor tab: the class's progress per lesson and exercise, stuck learners, a chart and a CSV export.

Only built when TUTOR_INSTRUCTOR_PASSWORD is set. Every handler here takes the password as its first input
and checks it before reading anything, so the protection holds for any client: the browser, gradio_client,
or a raw HTTP call to the queue by function index (api_visibility="private" only hides an endpoint from the
client libraries, it does not stop a request). A client that sends too many wrong passwords is refused for
a while without a check, which makes guessing slow.
"""
from __future__ import annotations

import hmac
import tempfile
import threading
import time
from collections import defaultdict, deque
from datetime import datetime, timezone
from pathlib import Path

import gradio as gr
import pandas as pd

from tutor.course import Course
from tutor.progress import report
from tutor.progress.store import MAX_ROWS

# Five wrong passwords within a minute from one client address, then a minute of refusals: a person who
# mistypes is never blocked, while guessing is held to 5 tries a minute (a 10-character password from 62
# symbols has 62**10, about 8e17, candidates).
MAX_FAILURES, WINDOW_S = 5, 60
MAX_PASSWORD_CHARS = 1_024  # a longer "password" is refused before it is compared
EXERCISE_COLUMNS = ["lesson", "exercise", "learners", "attempts", "pass rate", "median attempts to pass",
                    "hints used", "failing checks", "stuck", "calibration"]
LESSON_COLUMNS = ["lesson", "learners", "attempts", "completed", "completion rate"]
STUCK_COLUMNS = ["learner", "lesson", "exercise", "failed attempts", "last attempt"]
REFUSED = "Instructor password required: type the password set in TUTOR_INSTRUCTOR_PASSWORD."


class Gate:
    """The password check, with a per-client limit on wrong guesses."""

    def __init__(self, password: str):
        self.password = password.encode()
        self.failures: dict[str, deque] = defaultdict(deque)
        self.lock = threading.Lock()

    def check(self, given, client: str) -> None:
        """Return if ``given`` is the password; raise gr.Error (sent to the client, no data) if not."""
        now = time.monotonic()
        with self.lock:
            recent = self.failures[client]
            while recent and now - recent[0] > WINDOW_S:
                recent.popleft()
            if len(recent) >= MAX_FAILURES:
                raise gr.Error(f"Too many wrong instructor passwords from this address; wait {WINDOW_S} s.")
            text = given if isinstance(given, str) else ""
            if text and len(text) <= MAX_PASSWORD_CHARS and hmac.compare_digest(text.encode(), self.password):
                recent.clear()
                return
            if text:  # an empty box is a missing credential, not a guess
                recent.append(now)
            if len(self.failures) > 10_000:  # forget quiet clients so the table stays bounded
                for key in [k for k, v in self.failures.items() if not v]:
                    del self.failures[key]
        raise gr.Error(REFUSED if not text else "Wrong instructor password.")


def _client(request: gr.Request | None) -> str:
    return getattr(getattr(request, "client", None), "host", None) or "unknown"


def _frame(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns)


def build(course: Course, password: str, calibration_file: Path) -> None:
    """Add the tab to the Blocks being built. ``course`` gives the progress store and the lessons' order."""
    gate = Gate(password)
    progress = course.progress
    exports = tempfile.TemporaryDirectory(prefix="tutor-export-")  # removed when the app's process ends

    def filters(lesson, start, end) -> report.Filters:
        try:
            return report.parse_filters(lesson if isinstance(lesson, str) else None,
                                        start if isinstance(start, str) else None,
                                        end if isinstance(end, str) else None)
        except ValueError as exc:
            raise gr.Error(f"Filters: {exc}") from None

    def instructor_report(password: str, lesson: str, start: str, end: str, request: gr.Request):
        """The class dashboard. `password` is TUTOR_INSTRUCTOR_PASSWORD; `lesson` a lesson id or "all lessons";
        `start` / `end` UTC days as YYYY-MM-DD (both included; empty for open-ended)."""
        gate.check(password, _client(request))
        f = filters(lesson, start, end)
        attempts = progress.attempts(f.lesson, f.since, f.until)
        order = [(lesson.id, exercise.id) for lesson in course.lessons for exercise in lesson.exercises]
        exercises = report.exercise_figures(attempts, order, report.load_calibration(calibration_file))
        lessons = report.lesson_figures(attempts, progress.completions(f.lesson, f.since, f.until), order)
        chart = pd.DataFrame({"exercise": [f"{r['lesson']} / {r['exercise']}" for r in exercises],
                              "pass rate": [r["pass rate"] for r in exercises]})
        learners = len({a.learner for a in attempts})
        scope = f"lesson `{f.lesson}`" if f.lesson else "every lesson"
        span = f"from {start or 'the start'} to {end or 'now'} (UTC)"
        capped = (f" Only the newest {MAX_ROWS:,} attempts are counted; narrow the filters."
                  if len(attempts) >= MAX_ROWS else "")
        status = (f"**{len(attempts)} attempt(s)** by **{learners} learner(s)** on {scope}, {span}. "
                  f"Refreshed {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.{capped}")
        return (status, chart, _frame(lessons, LESSON_COLUMNS), _frame(exercises, EXERCISE_COLUMNS),
                _frame(report.stuck_learners(attempts), STUCK_COLUMNS))

    def instructor_export(password: str, lesson: str, start: str, end: str, request: gr.Request) -> str:
        """One CSV row per attempt (learner, lesson, exercise, time, passed, score, failed checks, hints used)
        within the filters. Same arguments as instructor_report."""
        gate.check(password, _client(request))
        f = filters(lesson, start, end)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        path = Path(tempfile.mkdtemp(dir=exports.name)) / f"class-progress-{f.lesson or 'all'}-{stamp}.csv"
        path.write_text(report.csv_text(progress.attempts(f.lesson, f.since, f.until)), encoding="utf-8")
        return str(path)

    with gr.Tab("Instructor", id="instructor"):
        gr.Markdown("The class's progress. Type the instructor password, pick the filters and press **Show "
                    "the class**. Learners cannot see any of it without the password.")
        with gr.Row():
            password_box = gr.Textbox(label="Instructor password", type="password", max_length=200, scale=2)
            lesson = gr.Dropdown([report.ALL, *course.lessons.ids], value=report.ALL, label="Lesson", scale=2)
            start = gr.Textbox(label="From (YYYY-MM-DD, UTC)", max_length=10, scale=1)
            end = gr.Textbox(label="To (YYYY-MM-DD, included)", max_length=10, scale=1)
        with gr.Row():
            show = gr.Button("Show the class", variant="primary")
            export = gr.Button("Export CSV")
        status = gr.Markdown()
        chart = gr.BarPlot(x="exercise", y="pass rate", y_lim=[0, 1], title="Pass rate per exercise",
                           x_label_angle=-30, height=320)
        lessons_table = gr.Dataframe(label="Lessons", headers=LESSON_COLUMNS, interactive=False)
        exercises_table = gr.Dataframe(label="Exercises", headers=EXERCISE_COLUMNS, interactive=False, wrap=True)
        stuck_table = gr.Dataframe(label="Learners who look stuck", headers=STUCK_COLUMNS, interactive=False)
        download = gr.File(label="CSV export", interactive=False)

        inputs = [password_box, lesson, start, end]
        show.click(instructor_report, inputs, [status, chart, lessons_table, exercises_table, stuck_table],
                   api_name="instructor_report")
        export.click(instructor_export, inputs, [download], api_name="instructor_export")
