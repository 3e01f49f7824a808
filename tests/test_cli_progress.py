"""`tutor grade --learner`, `tutor progress export --csv`, `tutor db upgrade` and a wrong TUTOR_DATABASE_URL at
start, run as a user runs them: subprocesses configured by environment variables only."""
import csv
import io
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import MODEL_CACHE_DATA_DIR, free_port
from tutor.config import ROOT

CLASS_LESSONS = ROOT / "tests" / "data" / "class_lessons"


def run(*args, env=None, timeout=300):
    full_env = {**os.environ, "TUTOR_DATA_DIR": str(MODEL_CACHE_DATA_DIR), **(env or {})}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=full_env, timeout=timeout,
                          cwd=ROOT)


def tutor(*args, **kwargs):
    return run("-m", "tutor.cli", *args, **kwargs)


@pytest.mark.model
def test_grade_with_a_learner_records_attempts_as_the_app_does(postgres_url, tmp_path):
    env = {"TUTOR_DATABASE_URL": postgres_url, "TUTOR_LESSONS_DIR": str(CLASS_LESSONS), "TUTOR_ADAPTER": "none"}
    batch = tmp_path / "batch.jsonl"
    batch.write_text("\n".join(json.dumps({"lesson": "class-basics", "exercise": e, "text": t}) for e, t in [
        ("name-delimiter", "Triple backticks."), ("why-delimit", "So the model does not mistake it for instructions."),
        ("why-delimit", "")]) + "\n")
    result = tutor("grade", "--learner", "Ada L'; --", "--batch", str(batch), env=env)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.returncode == 1 and len(lines) == 3, result.stderr  # 1: the third line is empty
    assert lines[0]["passed"] and lines[0]["recorded"] and lines[0]["learner"] == "Ada L --"
    assert lines[0]["lesson_completed"] is False and lines[1]["lesson_completed"] is True
    assert "empty" in lines[2]["error"]

    export = tutor("progress", "export", "--csv", "--lesson", "class-basics", env=env)
    assert export.returncode == 0, export.stderr
    rows = list(csv.DictReader(io.StringIO(export.stdout)))
    assert [(r["learner"], r["exercise"], r["passed"]) for r in rows] == [
        ("Ada L --", "name-delimiter", "yes"), ("Ada L --", "why-delimit", "yes")]
    assert tutor("progress", "export", "--csv", "--lesson", "few-shot", env=env).stdout.count("\n") == 1  # header


def test_db_upgrade_applies_each_migration_once(tmp_path):
    env = {"TUTOR_DATA_DIR": str(tmp_path)}
    first, second = tutor("db", "upgrade", env=env), tutor("db", "upgrade", env=env)
    assert first.returncode == 0 and "schema version 2; applied 0001_initial, 0002_failed_checks" in first.stdout
    assert "applied nothing (already up to date)" in second.stdout


def test_export_refuses_bad_filters_with_what_to_fix(tmp_path):
    result = tutor("progress", "export", "--csv", "--from", "yesterday", env={"TUTOR_DATA_DIR": str(tmp_path)})
    assert result.returncode == 2 and "YYYY-MM-DD" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("command", [["-m", "tutor.cli", "serve"], ["app.py"]])
@pytest.mark.parametrize("url,needle", [
    ("postgresql://tutor:hunter2@127.0.0.1:{port}/tutor", "cannot connect to PostgreSQL"),
    ("mysql://root:hunter2@db/tutor", "is not a PostgreSQL URL")])
def test_a_wrong_database_url_stops_the_app_with_one_clear_line(command, url, needle):
    result = run(*command, env={"TUTOR_DATABASE_URL": url.format(port=free_port())}, timeout=120)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and "hunter2" not in result.stderr
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "TUTOR_DATABASE_URL=" in error[0] and needle in error[0], result.stderr
