"""The progress store, against real SQLite and a real PostgreSQL server (started by a fixture): the completion
rule, one transaction per attempt, concurrent writers, migrations, hostile keys, bad database URLs."""
import sqlite3
import threading
import time
from contextlib import contextmanager

import pytest

from tutor.config import Settings
from tutor.errors import ConfigError, ProgressError
from tutor.progress import Progress, migrations, open_progress
from tutor.progress.postgres import PostgresBackend
from tutor.progress.sqlite import SqliteBackend

EXERCISES = ["one", "two", "three"]


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, tmp_path):
    if request.param == "sqlite":
        return SqliteBackend(tmp_path / "progress.sqlite3")
    return PostgresBackend(request.getfixturevalue("postgres_url"))


@pytest.fixture
def store(backend):
    return Progress(backend)


def attempt(store, learner, exercise, passed, score=None, lesson="lesson", checks=()):
    return store.record_attempt(learner, lesson, exercise, score if score is not None else (0.9 if passed else 0.2),
                                passed, 0, failed_checks=checks, lesson_exercises=EXERCISES)


def test_a_lesson_is_complete_only_when_every_exercise_has_a_passing_attempt(store):
    assert attempt(store, "ada", "one", True) is False
    assert attempt(store, "ada", "two", True) is False
    assert attempt(store, "ada", "three", False) is False
    assert store.completed_lessons("ada") == []
    assert attempt(store, "ada", "one", True) is False  # passing one exercise twice does not count twice
    assert store.completed_lessons("ada") == []
    assert attempt(store, "ada", "three", True) is True
    assert store.summary("ada")["completed_lessons"] == ["lesson"]
    assert store.completed_lessons("grace") == []  # another learner's passes count for nothing


def test_best_score_is_the_maximum_over_attempts(store):
    for score in (0.3, 0.8, 0.5):
        attempt(store, "ada", "one", score >= 0.7, score=score)
    row = store.summary("ada")["exercises"][0]
    assert row["attempts"] == 3 and row["best_score"] == 0.8 and row["passed"] is True


def test_failed_checks_and_hints_are_kept(store):
    store.record_hint("ada", "lesson", "one", 2)
    store.record_hint("ada", "lesson", "one", 1)  # hints only ever go up
    attempt(store, "ada", "one", False, checks=["input_delimited (prompt)", "length (output)"])
    assert store.hints_used("ada", "lesson", "one") == 2
    (row,) = store.attempts()
    assert row.failed_checks == ("input_delimited (prompt)", "length (output)") and not row.passed


class Wrapped:
    """The real backend, with ``hook(sql)`` called before each statement (to crash or to stall a writer)."""

    def __init__(self, backend, hook):
        self.backend, self.dialect, self.hook = backend, backend.dialect, hook

    def describe(self):
        return self.backend.describe()

    @contextmanager
    def transaction(self, **kwargs):
        with self.backend.transaction(**kwargs) as tx:
            real_run = tx.run

            def run(sql, params=()):
                self.hook(sql)
                real_run(sql, params)

            tx.run = run
            yield tx


def crash_on_completion(sql):
    if sql.startswith("INSERT INTO completed"):
        raise RuntimeError("crash before the completion was written")


def test_the_attempt_and_the_completion_are_one_transaction(backend):
    store = Progress(backend)
    attempt(store, "ada", "one", True)
    attempt(store, "ada", "two", True)
    crashing = Progress(Wrapped(backend, crash_on_completion))
    with pytest.raises(RuntimeError):
        attempt(crashing, "ada", "three", True)
    assert {a.exercise for a in store.attempts()} == {"one", "two"}  # the attempt went with the completion
    assert store.completed_lessons("ada") == []


def test_concurrent_passes_of_one_learner_complete_the_lesson_exactly_when_due(backend):
    """Writers racing on the same learner and lesson, each stalled between its attempt and its completion
    check (as a slow replica would be): the last commit must see every pass (no lost completion), and a
    learner who misses one exercise is never marked complete."""
    def stall_after_the_attempt(sql):
        if sql.startswith("SELECT DISTINCT exercise"):
            time.sleep(0.2)

    store = Progress(Wrapped(backend, stall_after_the_attempt))
    plan = [(learner, exercise, learner == "full" or exercise != "three")
            for learner in ("full", "partial") for exercise in EXERCISES]
    barrier = threading.Barrier(len(plan))
    errors = []

    def submit(learner, exercise, passed):
        try:
            barrier.wait(timeout=30)
            attempt(store, learner, exercise, passed)
        except Exception as exc:  # reported below: a thread's exception would otherwise vanish
            errors.append(exc)

    threads = [threading.Thread(target=submit, args=args) for args in plan]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert len(store.attempts()) == len(plan)
    assert store.completed_lessons("full") == ["lesson"]
    assert store.completed_lessons("partial") == []


HOSTILE = ["Robert'); DROP TABLE attempts; --", "x\" OR 1=1 --", "%s %(x)s ? $1", "a\x00b\x1b[31mc\u0085d", "💥" * 200]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_learner_and_lesson_ids_are_stored_as_data(store, name):
    attempt(store, name, "one", False, lesson=name)
    (row,) = store.attempts(lesson=row_key(name))
    assert row.learner == row_key(name) and row.lesson == row_key(name)
    assert store.summary(row_key(name))["exercises"][0]["attempts"] == 1
    assert store.passed_exercises(name, name) == set() and store.hints_used(name, name, "one") == 0  # raw key
    assert store.summary(name)["exercises"][0]["attempts"] == 1
    attempt(store, "ada", "one", False)  # the tables are still there
    assert len(store.attempts()) == 2


def row_key(name):
    """What the store keeps of a key: control characters dropped, 128 characters at most."""
    return "".join(ch for ch in name if ch not in "\x00\x1b\u0085")[:128]


def test_an_empty_or_control_only_key_is_refused_with_a_reason(store):
    with pytest.raises(ValueError, match="learner is empty"):
        attempt(store, "\x00\x07 ", "one", True)
    with pytest.raises(ValueError, match="finite"):
        store.record_attempt("ada", "lesson", "one", float("nan"), True, 0)


def test_filters_select_by_lesson_and_time(store):
    attempt(store, "ada", "one", True, lesson="a")
    attempt(store, "ada", "one", True, lesson="b")
    (first, second) = store.attempts()
    assert [a.lesson for a in store.attempts(lesson="b")] == ["b"]
    assert store.attempts(since=second.at + 1) == [] and len(store.attempts(until=second.at + 1)) == 2
    assert len(store.attempts(limit=1)) == 1 and store.attempts(limit=1)[0].lesson == "b"  # the newest


# -- migrations --------------------------------------------------------------------------------------------
# The schema as shipped before it had a version (tutor/progress.py, executed with executescript).
UNVERSIONED = """
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY,
    learner TEXT NOT NULL, lesson TEXT NOT NULL, exercise TEXT NOT NULL,
    score REAL NOT NULL, passed INTEGER NOT NULL, hints_used INTEGER NOT NULL, at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS hints (
    learner TEXT NOT NULL, lesson TEXT NOT NULL, exercise TEXT NOT NULL, used INTEGER NOT NULL,
    PRIMARY KEY (learner, lesson, exercise)
);
CREATE TABLE IF NOT EXISTS completed (
    learner TEXT NOT NULL, lesson TEXT NOT NULL, at REAL NOT NULL, PRIMARY KEY (learner, lesson)
);
CREATE INDEX IF NOT EXISTS attempts_by_learner ON attempts (learner, lesson, exercise);
"""


def test_an_unversioned_sqlite_file_is_upgraded_without_losing_rows(tmp_path):
    path = tmp_path / "progress.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(UNVERSIONED)
        db.executemany("INSERT INTO attempts (learner, lesson, exercise, score, passed, hints_used, at) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)",
                       [("ada", "delimiters", "summarize-review", 0.4, 0, 1, 100.0),
                        ("ada", "delimiters", "summarize-review", 0.9, 1, 2, 200.0)])
        db.execute("INSERT INTO hints VALUES ('ada', 'delimiters', 'summarize-review', 2)")
        db.execute("INSERT INTO completed VALUES ('ada', 'delimiters', 200.0)")
    db.close()

    store = Progress(path)
    assert store.applied == [m.label for m in migrations.MIGRATIONS]
    assert [(a.score, a.passed, a.hints_used, a.failed_checks) for a in store.attempts()] == [
        (0.4, False, 1, ()), (0.9, True, 2, ())]
    assert store.hints_used("ada", "delimiters", "summarize-review") == 2
    assert store.completed_lessons("ada") == ["delimiters"]
    assert migrations.current_version(store.db) == migrations.LATEST
    assert Progress(path).applied == []  # reopening applies nothing twice


def test_every_migration_has_both_dialects_and_postgres_upgrades_step_by_step(postgres_url):
    backend = PostgresBackend(postgres_url)
    first = migrations.MIGRATIONS[0]
    with backend.transaction(write=True) as tx:  # a database left at version 1 by an older release
        tx.run(migrations.VERSION_TABLE)
        for statement in first.statements["postgres"]:
            tx.run(statement)
        tx.run("INSERT INTO schema_version VALUES (1, 'initial', 0)")
        tx.run("INSERT INTO attempts (learner, lesson, exercise, score, passed, hints_used, at) "
               "VALUES ('ada', 'a', 'x', 0.9, 1, 0, 1.0)")
    store = Progress(backend)
    assert store.applied == [m.label for m in migrations.MIGRATIONS[1:]]
    assert [(a.learner, a.failed_checks) for a in store.attempts()] == [("ada", ())]
    for m in migrations.MIGRATIONS:
        assert m.statements["sqlite"] and m.statements["postgres"], m.label


def test_replicas_starting_together_apply_each_migration_once(postgres_url):
    results, errors = [], []

    def start():
        try:
            results.append(Progress(PostgresBackend(postgres_url)).applied)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert sorted(results, key=len) == [[], [], [], [m.label for m in migrations.MIGRATIONS]]


def test_a_database_from_a_newer_release_is_refused_clearly(backend):
    Progress(backend)
    with backend.transaction(write=True) as tx:
        tx.run("INSERT INTO schema_version VALUES (?, 'future', 0)", (migrations.LATEST + 1,))
    with pytest.raises(ProgressError, match=f"schema version {migrations.LATEST + 1}, newer than"):
        Progress(backend)


# -- bad settings -------------------------------------------------------------------------------------------
def test_a_wrong_database_url_names_the_variable_and_hides_the_password(tmp_path):
    from tests.conftest import free_port

    url = f"postgresql://tutor:s3cret@127.0.0.1:{free_port()}/tutor"  # nothing listens there
    with pytest.raises(ConfigError) as info:
        open_progress(Settings.from_env({"TUTOR_DATABASE_URL": url}, data_dir=tmp_path))
    message = str(info.value)
    assert message.startswith("TUTOR_DATABASE_URL=postgresql://tutor:***@127.0.0.1") and "s3cret" not in message
    assert "unset TUTOR_DATABASE_URL" in message
    with pytest.raises(ConfigError, match="TUTOR_DATABASE_URL=.*not a PostgreSQL URL"):
        Settings.from_env({"TUTOR_DATABASE_URL": "mysql://root:pw@db/x"})
    assert "pw" not in repr(Settings.from_env({"TUTOR_DATABASE_URL": "postgresql://u:pw@h/d"}))


def test_a_missing_database_is_named(postgres_server, tmp_path):
    url = postgres_server.rsplit("/", 1)[0] + "/no_such_db"
    with pytest.raises(ConfigError, match='TUTOR_DATABASE_URL=.*database "no_such_db" does not exist'):
        open_progress(Settings.from_env({"TUTOR_DATABASE_URL": url}, data_dir=tmp_path))
