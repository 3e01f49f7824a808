"""Two app replicas (`tutor serve` processes on loopback) sharing one PostgreSQL: what a learner does through
one shows on the other; 2 replicas x 10 learners submitting at once lose no row and complete exactly the
lessons due; `kill -9` of a replica while it grades loses no attempt it acknowledged.

Kept light: the lesson's exercises are written answers graded by checks (the real model only reads them as
the self-check, 24 tokens, weighted 0 so its verdict cannot change an outcome), and failing answers never
reach the model at all. Each replica reads its own embedded Chroma index of one small reading: this branch
has no Chroma server setting yet.
"""
import os
import signal
import subprocess
import sys
import threading
import time

import psycopg
import pytest
from gradio_client import Client

from tests.conftest import MODEL_CACHE_DATA_DIR, free_port
from tests.postgres import new_database
from tutor.config import ROOT, Settings
from tutor.startup import is_ready

pytestmark = pytest.mark.model

PASSWORD = "replica-test"
LESSON, EXERCISES = "class-basics", ["name-delimiter", "why-delimit"]
ANSWERS = {  # (exercise, passes?) -> a submission
    ("name-delimiter", True): "Triple backticks around the material.",
    ("name-delimiter", False): "I would just write it clearly.",
    ("why-delimit", True): "So the model does not mistake the material for instructions.",
    ("why-delimit", False): "It looks nicer that way.",
}


class Replica:
    def __init__(self, name: str, workdir, database_url: str):
        data = workdir / name
        data.mkdir()
        (data / "models").symlink_to(MODEL_CACHE_DATA_DIR / "models")  # the converted model, not converted again
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = workdir / f"{name}.log"
        env = {**os.environ, "TUTOR_DATA_DIR": str(data), "TUTOR_DATABASE_URL": database_url,
               "TUTOR_LESSONS_DIR": str(ROOT / "tests" / "data" / "class_lessons"),
               "TUTOR_READINGS_DIR": str(workdir / "readings"), "TUTOR_ADAPTER": "none", "TUTOR_THREADS": "1",
               "TUTOR_MAX_NEW_TOKENS": "16", "TUTOR_INSTRUCTOR_PASSWORD": PASSWORD,
               "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(self.port),
               "GRADIO_ANALYTICS_ENABLED": "False"}
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "tutor.cli", "serve"], cwd=ROOT, env=env,
                                         stdout=out, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"replica exited ({self.proc.returncode}):\n{self.log.read_text()[-3000:]}")
            if is_ready(self.url, timeout=2):  # not "/": the status page answers there while the model loads
                return
            time.sleep(1)
        raise AssertionError(f"replica not up after {timeout} s:\n{self.log.read_text()[-3000:]}")

    def client(self) -> Client:
        return Client(self.url, verbose=False)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def cluster(postgres_server, tmp_path_factory):
    from tutor.models.hf.loading import resolve_source

    resolve_source(Settings.from_env({}, data_dir=MODEL_CACHE_DATA_DIR, adapter="none"))  # the shared cache exists
    workdir = tmp_path_factory.mktemp("replicas")
    (workdir / "readings").mkdir()
    (workdir / "readings" / "delimiters.md").write_text(
        "# Delimiters\n\nTriple backticks mark where the material starts and ends, so the model does not "
        "mistake it for instructions.\n")
    url = new_database(postgres_server)
    replicas = [Replica(name, workdir, url) for name in ("a", "b")]
    try:
        for r in replicas:
            r.wait_ready()
        yield url, replicas
    finally:
        for r in replicas:
            r.stop()


def submit(client: Client, learner: str, exercise: str, passes: bool) -> str:
    return client.predict(learner, LESSON, exercise, ANSWERS[(exercise, passes)], api_name="/submit")


def rows(url: str, sql: str, params=()) -> list[tuple]:
    with psycopg.connect(url) as db:
        return db.execute(sql, params).fetchall()


def test_an_attempt_through_one_replica_shows_on_the_other(cluster):
    url, (a, b) = cluster
    first = submit(a.client(), "Cross Replica", EXERCISES[0], True)
    assert "Passed" in first and "You have completed" not in first
    status, *_, stuck = b.client().predict(PASSWORD, LESSON, "", "", api_name="/instructor_report")
    assert "1 attempt(s)" in status and "1 learner(s)" in status
    # B completes the lesson only because it sees the pass recorded through A
    assert "You have completed **Class basics**" in submit(b.client(), "Cross Replica", EXERCISES[1], True)
    assert rows(url, "SELECT learner, lesson FROM completed") == [("Cross Replica", LESSON)]


def test_twenty_learners_on_two_replicas_at_once_lose_nothing(cluster):
    """Each learner sends both exercises at the same moment, one to each replica: 40 submissions in flight,
    racing on the same learner's completion across processes."""
    url, (a, b) = cluster
    learners = [f"learner {i:02d}" for i in range(20)]
    plan = {name: (i % 4 != 2, i % 4 != 1) for i, name in enumerate(learners)}  # (first passes, second passes)
    clients = {(name, r.url): r.client() for name in learners for r in (a, b)}
    barrier = threading.Barrier(2 * len(learners))
    replies, errors = {}, []

    def send(name, k):
        home, away = (a, b) if learners.index(name) < 10 else (b, a)
        replica = home if k == 0 else away
        try:
            barrier.wait(timeout=120)
            replies[(name, k)] = submit(clients[(name, replica.url)], name, EXERCISES[k], plan[name][k])
        except Exception as exc:
            errors.append(f"{name} #{k}: {exc!r}")

    threads = [threading.Thread(target=send, args=(name, k)) for name in learners for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not errors and len(replies) == 40
    for (name, k), reply in replies.items():
        assert ("Passed" if plan[name][k] else "Not yet") in reply, (name, k, reply[-300:])

    stored = rows(url, "SELECT learner, exercise, passed FROM attempts WHERE learner LIKE %s", ("learner %",))
    assert sorted(stored) == sorted((name, EXERCISES[k], int(plan[name][k])) for name in learners for k in (0, 1))
    completed = {r[0] for r in rows(url, "SELECT learner FROM completed WHERE learner LIKE %s", ("learner %",))}
    assert completed == {name for name, (one, two) in plan.items() if one and two}


def test_kill_9_while_grading_loses_no_acknowledged_attempt(cluster):
    url, (a, b) = cluster
    # Forty: on a quiet machine a graded answer takes tens of milliseconds, and six were all done before the
    # kill could land; forty queued behind one model keep work in flight for seconds after the second reply.
    learners = [f"killed {i}" for i in range(40)]
    acked, failed = [], []

    def send(name):
        try:
            reply = submit(b.client(), name, EXERCISES[0], True)
            if "Passed" in reply:
                acked.append(name)
        except Exception as exc:  # the replica died under it: not acknowledged
            failed.append(f"{name}: {type(exc).__name__}")

    threads = [threading.Thread(target=send, args=(name,), daemon=True) for name in learners]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 300
    while len(acked) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(acked) >= 2, f"no replies before the kill: {failed}"
    os.kill(b.proc.pid, signal.SIGKILL)  # mid-queue: one submission being graded, others waiting
    b.proc.wait(timeout=30)
    for t in threads:
        t.join(timeout=60)

    stored = {r[0] for r in rows(url, "SELECT learner FROM attempts WHERE learner LIKE %s", ("killed %",))}
    assert set(acked) <= stored, f"acknowledged but lost: {set(acked) - stored}"
    assert len(acked) < len(learners), "the kill came too late to interrupt anything"
    # the survivor carries on with the same learners: no lock was left behind by the dead process
    done = submit(a.client(), acked[0], EXERCISES[1], True)
    assert "You have completed **Class basics**" in done
    print(f"\nkill -9: {len(acked)} acknowledged (all stored), {len(failed)} cut off, "
          f"{len(stored) - len(acked)} stored but never acknowledged")
