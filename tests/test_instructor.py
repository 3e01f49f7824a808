"""The Instructor tab and the /submit API, served on a free port and scripted as other programs would: with
gradio_client, and with raw HTTP calls to the queue that no client library guards."""
import csv
import json
import uuid
from pathlib import Path

import gradio as gr
import httpx
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from tests.conftest import launch_app
from tutor import ui
from tutor.config import ROOT, Settings
from tutor.progress import report
from tutor.runtime import build_course
from tutor.tutor import Tutor
from tutor.ui.tabs.instructor import MAX_FAILURES, Gate

pytestmark = pytest.mark.model

PASSWORD = "class-of-2025 s3cret"
CLASS_LESSONS = ROOT / "tests" / "data" / "class_lessons"


@pytest.fixture(scope="module")
def app(chat_model, tmp_path_factory):
    data = tmp_path_factory.mktemp("class-data")
    settings = Settings.from_env({}, data_dir=data, lessons_dir=CLASS_LESSONS, max_new_tokens=16,
                                 instructor_password=PASSWORD)
    course = build_course(settings, chat_model)
    p = course.progress
    every = ["name-delimiter", "why-delimit"]
    for exercise in every:  # ada: both exercises, the first one at the second try
        if exercise == "name-delimiter":
            p.record_attempt("ada", "class-basics", exercise, 0.0, False, 1, ["contains (answer)"], every)
        p.record_attempt("ada", "class-basics", exercise, 1.0, True, 1, [], every)
    for _ in range(3):  # bob: three misses and no pass, so he looks stuck
        p.record_attempt("bob", "class-basics", "name-delimiter", 0.0, False, 2, ["contains (answer)"], every)
    p.record_attempt("=HYPERLINK(\"http://x\")", "class-basics", "why-delimit", 0.0, False, 0, [], every)
    (data / "calibration.json").write_text(json.dumps(
        [{"lesson": "class-basics", "exercise": "name-delimiter", "agreed": 9, "total": 10}]))
    demo, url = launch_app(Tutor(settings, chat_model, course=course))
    yield demo, url, course
    demo.close()


@pytest.fixture(scope="module")
def client(app):
    return Client(app[1], verbose=False)


def dashboard(client, password=PASSWORD, lesson=report.ALL, start="", end=""):
    return client.predict(password, lesson, start, end, api_name="/instructor_report")


@pytest.mark.parametrize("endpoint", ["/instructor_report", "/instructor_export"])
@pytest.mark.parametrize("password", ["", "wrong", None])
def test_instructor_endpoints_refuse_a_client_without_the_password(client, endpoint, password):
    with pytest.raises(AppError, match="[Ii]nstructor password"):
        client.predict(password, report.ALL, "", "", api_name=endpoint)


def raw_call(url: str, fn_index: int, data: list) -> dict:
    """Call one event by its function index over the queue, as the browser does: no client library checks."""
    session = uuid.uuid4().hex
    with httpx.Client(base_url=url, timeout=60) as http:
        http.post("gradio_api/queue/join", json={"data": data, "fn_index": fn_index, "session_hash": session,
                                                 "event_data": None, "trigger_id": None}).raise_for_status()
        with http.stream("GET", "gradio_api/queue/data", params={"session_hash": session}) as stream:
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    message = json.loads(line[5:])
                    if message.get("msg") == "process_completed":
                        return message
    raise AssertionError("the queue closed without an answer")


def test_every_event_of_the_tab_checks_the_password_even_when_called_by_index(app):
    demo, url, _ = app
    config = demo.get_config_file()
    password_id = next(c["id"] for c in config["components"] if c.get("props", {}).get("label") ==
                       "Instructor password")
    tab = next(c for c in config["components"] if c.get("props", {}).get("label") == "Instructor")
    inside = set()

    def collect(node):
        inside.add(node["id"])
        for child in node.get("children", []):
            collect(child)

    collect(next(n for n in _walk(config["layout"]) if n["id"] == tab["id"]))
    events = [(i, d) for i, d in enumerate(config["dependencies"])
              if set(d["inputs"]) & inside or set(d["outputs"]) & inside]
    assert len(events) >= 2
    for fn_index, dep in events:
        assert dep["inputs"][0] == password_id, f"event {dep.get('api_name')} does not take the password first"
        answer = raw_call(url, dep.get("id", fn_index), ["", report.ALL, "", ""])
        assert answer["success"] is False and "password" in json.dumps(answer).lower()
        assert "ada" not in json.dumps(answer)


def _walk(node):
    yield node
    for child in node.get("children", []):
        yield from _walk(child)


def test_the_dashboard_shows_figures_per_exercise_and_who_is_stuck(client):
    status, chart, lessons, exercises, stuck = dashboard(client)
    assert "7 attempt(s)" in status and "3 learner(s)" in status
    rows = {r[1]: dict(zip(exercises["headers"], r)) for r in exercises["data"]}
    first = rows["name-delimiter"]
    assert first["learners"] == 2 and first["attempts"] == 5 and first["pass rate"] == 0.5
    assert first["median attempts to pass"] == 2 and first["hints used"] == 1.5 and first["stuck"] == 1
    assert first["failing checks"] == "contains (answer) ×4" and first["calibration"] == "9/10 agree (90%)"
    assert rows["why-delimit"]["pass rate"] == 0.5 and rows["why-delimit"]["calibration"] == ""
    assert [dict(zip(lessons["headers"], r))["completed"] for r in lessons["data"]] == [1]
    assert [r[0] for r in stuck["data"]] == ["bob"]
    assert chart["data"] == [["class-basics / name-delimiter", 0.5], ["class-basics / why-delimit", 0.5]]


def test_the_time_filter_bounds_the_figures(client):
    status, *_ = dashboard(client, start="2000-01-01", end="2000-01-02")
    assert "0 attempt(s)" in status


@pytest.mark.parametrize("start,end,message", [
    ("2025-13-45", "", "'from' date"), ("x" * 100_000, "", "'from' date"), ("NaN", "", "'from' date"),
    ("9999-01-01", "", "between 2000 and 2100"), ("2025-03-02", "2025-03-01", "swap the two dates"),
    ("2025-01-01'; DROP TABLE attempts; --", "", "'from' date")])
def test_bad_filters_get_a_clear_message(client, start, end, message):
    with pytest.raises(AppError, match=message):
        dashboard(client, start=start, end=end)
    assert "7 attempt(s)" in dashboard(client)[0]  # nothing was dropped


def test_a_lesson_filter_outside_the_list_is_refused(client):
    with pytest.raises(AppError):
        dashboard(client, lesson="x'; DROP TABLE attempts; --")
    assert "7 attempt(s)" in dashboard(client)[0]


def test_the_csv_export_has_one_row_per_attempt(client):
    path = client.predict(PASSWORD, "class-basics", "", "", api_name="/instructor_export")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == report.EXPORT_COLUMNS and len(rows) == 7
    assert {r["learner"] for r in rows} == {"ada", "bob", "'=HYPERLINK(\"http://x\")"}  # shown, never run
    assert rows[0]["failed checks"] == "contains (answer)" and rows[0]["passed"] == "no"


def test_submit_api_records_the_attempt_and_the_dashboard_counts_it(client):
    feedback = client.predict("Grace H", "class-basics", "name-delimiter", "Triple backticks.", api_name="/submit")
    assert "Passed" in feedback
    status, *_ = dashboard(client)
    assert "8 attempt(s)" in status and "4 learner(s)" in status
    client.predict("ada", "class-basics", "name-delimiter", "no idea", api_name="/submit")  # a later miss


@pytest.mark.parametrize("learner,lesson,exercise,text,expected", [
    ("", "class-basics", "name-delimiter", "x", "learner: give a name"),
    ("\x00\x1b\x07 ;'()", "class-basics", "name-delimiter", "x", "learner: give a name"),
    ("eve", "x'); DROP TABLE attempts; --", "name-delimiter", "x", "no lesson"),
    ("eve", "class-basics" * 10_000, "name-delimiter", "x", "no lesson"),
    ("eve", "class-basics", "nope\x1b[31m", "x", "has no exercise"),
    ("eve", "class-basics", "name-delimiter", "   ", "empty"),
    ("eve", "class-basics", "name-delimiter", "quote " * 20_000, "first 20,000"),
])
def test_submit_api_answers_hostile_input_with_what_to_fix(client, learner, lesson, exercise, text, expected):
    reply = client.predict(learner, lesson, exercise, text, api_name="/submit")
    assert expected in reply and len(reply) < 30_000 and "\x1b" not in reply


def test_without_a_password_setting_there_is_no_instructor_tab(chat_model, tmp_path):
    settings = Settings.from_env({}, data_dir=tmp_path, lessons_dir=CLASS_LESSONS)
    demo = ui.build_app(Tutor(settings, chat_model, course=build_course(settings, chat_model)))
    config = demo.get_config_file()
    assert not [d for d in config["dependencies"] if str(d.get("api_name", "")).startswith("instructor")]
    assert "Instructor" not in json.dumps([c.get("props", {}).get("label") for c in config["components"]])


def test_guessing_is_slowed_per_client():
    gate = Gate("right")
    for _ in range(MAX_FAILURES):
        with pytest.raises(gr.Error, match="Wrong"):
            gate.check("guess", "10.0.0.1")
    with pytest.raises(gr.Error, match="Too many"):
        gate.check("right", "10.0.0.1")  # even the right one, for a while
    gate.check("right", "10.0.0.2")  # another client is not affected
    with pytest.raises(gr.Error, match="required"):
        gate.check("", "10.0.0.3")


def test_an_empty_calibration_or_a_broken_file_shows_nothing(tmp_path):
    assert report.load_calibration(tmp_path / "missing.json") == {}
    (tmp_path / "bad.json").write_text("{not json")
    assert report.load_calibration(tmp_path / "bad.json") == {}
    (tmp_path / "ok.json").write_text(json.dumps({"exercises": [{"lesson": "a", "exercise": "b", "agreement": 0.75}]}))
    assert report.load_calibration(Path(tmp_path / "ok.json")) == {("a", "b"): "75% agree"}


@pytest.mark.parametrize("stored", ["<script>alert(1)</script>\x1b[2J" + "a" * 5_000, "<>;'\x00", 12345])
def test_a_forged_browser_id_is_cleaned_like_a_name(app, stored):
    """The browser-local id arrives from the client (its encryption key is in the page): clean and bound it."""
    demo, url, _ = app
    config = demo.get_config_file()
    browser_state = next(c["id"] for c in config["components"] if c["type"] == "browserstate")
    fn_index, dep = next((i, d) for i, d in enumerate(config["dependencies"])
                         if d["outputs"] and d["outputs"][0] == browser_state)
    answer = raw_call(url, dep.get("id", fn_index), [stored, "", None])
    assert answer["success"], answer
    learner = answer["output"]["data"][0]
    assert 0 < len(learner) <= 64 and all(ch.isalnum() or ch in " .@-" for ch in learner)
    if isinstance(stored, str) and stored.startswith("<script>"):
        assert learner == ("scriptalert1script2J" + "a" * 64)[:64]
    elif stored == 12345:
        assert learner.startswith("learner-")


def call_json(url: str, api_name: str, data_json: str) -> str:
    """An endpoint called with JSON written by hand (NaN, lone surrogates, nesting), as a script can send."""
    response = httpx.post(f"{url}gradio_api/call/{api_name}", content='{"data": ' + data_json + "}",
                          headers={"content-type": "application/json"}, timeout=60)
    assert response.status_code == 200, response.text
    return httpx.get(f"{url}gradio_api/call/{api_name}/{response.json()['event_id']}", timeout=300).text


@pytest.mark.parametrize("data,expected", [
    ('[NaN, "class-basics", "name-delimiter", "x"]', "learner: Send the message as text, not float"),
    ('["eve", Infinity, "name-delimiter", "x"]', "lesson_id: Send the message as text, not float"),
    ('["eve", "class-basics", "name-delimiter", [[["deep"]]]]', "text: Each part of a message must be text"),
    ('["\\ud800eve", "class-basics", "name-delimiter", "\\udfff backtick"]', "Passed"),
])
def test_submit_api_takes_raw_json_from_scripts(app, data, expected):
    assert expected in call_json(app[1], "submit", data)


@pytest.mark.parametrize("password", ["NaN", '["%s"]' % PASSWORD])
def test_instructor_endpoints_refuse_anything_but_the_password_string(app, password):
    stream = call_json(app[1], "instructor_report", f'[{password}, "all lessons", "", ""]')
    assert stream.startswith("event: error") and "instructor password" in stream.lower() and "ada" not in stream
