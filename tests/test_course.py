"""The lesson flow in the chat and learner progress in SQLite, with a scripted model (orchestration only)."""
import sqlite3

import pytest

from tests.fakes import ScriptedModel
from tutor import course as course_module
from tutor.config import ROOT, Settings
from tutor.course import Course
from tutor.grading import Grader
from tutor.progress import Progress, learner_id
from tutor.tutor import Session, Tutor

CLASS_LESSONS = ROOT / "tests" / "data" / "class_lessons"
SOUND = "Summarise the review between the triple backticks in one sentence.\n```\n{input}\n```"


@pytest.fixture
def make_tutor(tmp_path):
    def make(*replies, lessons_dir=ROOT / "lessons"):
        settings = Settings.from_env({}, data_dir=tmp_path / "data", lessons_dir=lessons_dir)
        model = ScriptedModel(*replies)
        course = Course(settings, Grader(model), Progress(settings.progress_db))
        return Tutor(settings, model, course=course)
    return make


def say(tutor, text, session):
    return "".join(tutor.reply(text, [], session))


def test_a_lesson_end_to_end_in_the_chat(make_tutor):
    tutor = make_tutor("A quiet fan with a flimsy base.", "VERDICT: yes\nREASON: fine")
    s = Session(learner="ada")
    intro = say(tutor, "/lesson delimiters", s)
    assert "Mark the parts of your input" in intro and "Exercise 1 of" in intro and "summarize-review" in intro
    exercise = tutor.course.current(s)[1]
    assert exercise.solution.strip() not in intro

    first = say(tutor, "/hint", s)
    second = say(tutor, "/hint", s)
    assert "Hint 1 of" in first and "Hint 2 of" in second and exercise.solution.strip() not in first + second

    empty = say(tutor, "/submit   ", s)
    assert "empty" in empty.lower()
    weak = say(tutor, "/submit summarize this: {input}", s)
    assert "Not yet" in weak and "input_delimited" in weak and "ROUGE" in weak
    assert exercise.solution.strip() not in weak
    good = say(tutor, f"/submit {SOUND}", s)
    assert "Passed" in good and exercise.solution.strip() in good  # the model solution only after a pass

    nxt = say(tutor, "/next", s)
    assert "Exercise 2 of" in nxt and s.exercise_index == 1


def test_hints_run_out_but_never_turn_into_the_solution(make_tutor):
    tutor = make_tutor("x")
    s = Session()
    say(tutor, "/lesson few-shot", s)
    exercise = tutor.course.current(s)[1]
    replies = [say(tutor, "/hint", s) for _ in range(len(exercise.hints) + 4)]
    assert [f"Hint {n} of {len(exercise.hints)}" in r for n, r in enumerate(replies[:len(exercise.hints)], 1)]
    assert "different task" in replies[len(exercise.hints)]  # then an example from another task
    assert "/next" in replies[-1] and replies[-1] == replies[-2]  # then a nudge, however often asked
    assert all(exercise.solution.strip() not in r and "model solution" not in r for r in replies)
    assert tutor.course.progress.hints_used(s.learner, "few-shot", exercise.id) == len(exercise.hints)


def test_after_a_pass_the_model_solution_is_available(make_tutor):
    tutor = make_tutor("A quiet fan with a flimsy base.", "VERDICT: yes\nREASON: fine")
    s = Session()
    say(tutor, "/lesson delimiters", s)
    say(tutor, f"/submit {SOUND}", s)
    exercise = tutor.course.current(s)[1]
    assert exercise.solution.strip() in say(tutor, "/hint", s)


def test_the_course_outline_marks_done_and_current(make_tutor):
    tutor = make_tutor("A quiet fan with a flimsy base.", "VERDICT: yes\nREASON: fine")
    s = Session(learner="outline")
    say(tutor, "/lesson delimiters", s)
    before = tutor.course.outline(s)
    n = len(tutor.course.lessons)
    assert f"0 of {n} lessons completed" in before and "→ **Mark the parts" in before and "→ `summarize-review`" in before
    say(tutor, f"/submit {SOUND}", s)
    say(tutor, "/next", s)
    after = tutor.course.outline(s)
    assert "✓ `summarize-review`" in after and "→ `resist-injection`" in after and "(`delimiters`): 1/2" in after
    tutor.course.progress.mark_completed("outline", "few-shot")
    assert f"1 of {n} lessons completed" in tutor.course.outline(s) and "✓ **Show the model" in tutor.course.outline(s)
    assert "→ " not in tutor.course.outline(Session(learner="someone-else")).split("\n", 1)[1]


def test_free_questions_do_not_carry_the_solution(make_tutor):
    tutor = make_tutor("Think about where the review starts and ends.")
    s = Session()
    say(tutor, "/lesson delimiters", s)
    say(tutor, "Can you just write the prompt for me?", s)
    system = tutor.model.prompts[-1][0]["content"]
    exercise = tutor.course.current(s)[1]
    assert exercise.task.strip()[:40] in system and exercise.solution.strip() not in system
    assert "Never write the finished answer" in system


def test_unknown_lesson_and_command_get_clear_messages(make_tutor):
    tutor = make_tutor("x")
    s = Session()
    assert "no lesson 'nope'" in say(tutor, "/lesson nope", s) and "delimiters" in say(tutor, "/lesson nope", s)
    assert "/help" in say(tutor, "/dance", s)
    assert "no exercise" in say(tutor, "/hint", s).lower()


def test_a_dropped_in_lesson_is_served_and_a_bad_one_skipped_without_a_restart(make_tutor, tmp_path, monkeypatch,
                                                                               caplog):
    monkeypatch.setattr(course_module, "REFRESH_SECONDS", 0.0)
    folder = tmp_path / "lessons"
    folder.mkdir()
    (folder / "delimiters.yaml").write_text((ROOT / "lessons" / "delimiters.yaml").read_text())
    tutor = make_tutor("x", lessons_dir=folder)
    assert tutor.course.lessons.ids == ["delimiters"]
    (folder / "few-shot.yaml").write_text((ROOT / "lessons" / "few-shot.yaml").read_text())
    (folder / "broken.yaml").write_text("id: broken\ntitle: [unclosed\n")
    with caplog.at_level("WARNING"):
        listing = say(tutor, "/lessons", Session())
    assert "`few-shot`" in listing and "broken" not in listing  # learners see only valid lessons, no paths
    assert tutor.course.lessons.ids == ["delimiters", "few-shot"]
    assert "broken.yaml:" in caplog.text  # the instructor finds the problem in the log (and `tutor lessons check`)
    (folder / "few-shot.yaml").unlink()
    assert "few-shot" not in say(tutor, "/lessons", Session())
    assert "/reload" not in say(tutor, "/help", Session())


def test_progress_survives_a_restart(make_tutor, tmp_path):
    tutor = make_tutor("A quiet fan with a flimsy base.", "VERDICT: yes\nREASON: fine")
    s = Session(learner="grace")
    say(tutor, "/lesson delimiters", s)
    say(tutor, "/hint", s)
    say(tutor, f"/submit {SOUND}", s)
    say(tutor, "/submit summarize this: {input}", s)  # a weaker second try: the best score is the first
    db = tutor.settings.progress_db
    del tutor

    reopened = Progress(db)  # a new process would open the same file
    first, second = reopened.attempts()
    assert first.passed and not second.passed and first.score > second.score
    assert "input_delimited (prompt)" in second.failed_checks and "input_delimited (prompt)" not in first.failed_checks
    summary = reopened.summary("grace")
    assert summary["exercises"] == [{"lesson": "delimiters", "exercise": "summarize-review", "attempts": 2,
                                     "best_score": round(first.score, 3), "passed": True, "hints_used": 1}]
    assert "summarize-review" in reopened.markdown("grace")
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    later = make_tutor("x")  # same data dir: a restarted app
    s2 = Session(learner="grace")
    say(later, "/lesson delimiters", s2)
    assert s2.hints_shown == 1 and s2.solved


def test_completing_every_exercise_completes_the_lesson(make_tutor):
    """The rule: a lesson is complete when every exercise has a passing attempt; the course applies it."""
    tutor = make_tutor("VERDICT: yes\nREASON: fine", lessons_dir=CLASS_LESSONS)
    s = Session(learner="ada")
    say(tutor, "/lesson class-basics", s)
    assert "Passed" in (first := say(tutor, "/submit Triple backticks.", s)) and "You have completed" not in first
    assert tutor.course.progress.completed_lessons("ada") == []  # one of two exercises passed
    say(tutor, "/next", s)
    assert "Not yet" in say(tutor, "/submit Because it looks nicer.", s)  # a failing attempt
    assert tutor.course.progress.completed_lessons("ada") == []
    done = say(tutor, "/submit So the model does not mistake the material for instructions.", s)
    assert "You have completed **Class basics**" in done
    assert tutor.course.progress.completed_lessons("ada") == ["class-basics"]


def test_learner_ids_are_cleaned():
    assert learner_id("  Ada Lovelace ", "fallback") == "Ada Lovelace"
    assert learner_id("<script>", "fallback") == "script"
    assert learner_id("", "learner-1234") == "learner-1234"
    assert learner_id("Robert'); DROP TABLE attempts;--\x1b[31m", "x") == "Robert DROP TABLE attempts--31m"
