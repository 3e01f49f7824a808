"""TUTOR_CHROMA_URL: the readings index on a real `chroma run` server, shared by several app replicas."""
from __future__ import annotations

import threading

import chromadb
import pytest

from tests.conftest import free_port
from tests.servers import BIN, running
from tests.test_retrieval import READINGS, make_settings
from tutor.errors import TutorError
from tutor.readings import retrieval, store


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory):
    folder = tmp_path_factory.mktemp("chroma-server")
    port = free_port()
    command = [str(BIN / "chroma"), "run", "--path", str(folder / "db"), "--host", "127.0.0.1", "--port", str(port)]
    with running(command, f"http://127.0.0.1:{port}/api/v2/heartbeat", folder / "chroma.log", timeout_s=60):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def server(chroma_url):
    """The shared server, emptied before each test (the tests share one pointer collection)."""
    client = chromadb.HttpClient(host="127.0.0.1", port=int(chroma_url.rsplit(":", 1)[1]),
                                 settings=store.chroma_settings())
    for collection in client.list_collections():
        client.delete_collection(collection.name)
    return chroma_url, client


def replica(tmp_path, url: str, name: str, files=READINGS):
    """Settings of one app replica: its own data dir, the shared readings and Chroma server."""
    folder = tmp_path / name
    folder.mkdir(exist_ok=True)
    settings = make_settings(folder, files)
    return type(settings).from_env({}, data_dir=settings.data_dir, readings_dir=settings.readings_dir, chroma_url=url)


def names(client) -> set[str]:
    return {c.name for c in client.list_collections()}


def test_ingest_and_search_go_to_the_server(server, tmp_path):
    url, client = server
    settings = replica(tmp_path, url, "a")
    assert retrieval.is_stale(settings)
    report = retrieval.ingest(settings, progress=False)
    assert sorted(report.added) == sorted(READINGS) and report.chunks >= 4
    assert not list(settings.chroma_dir.glob("build-*")), "nothing may be indexed on local disk"
    build = retrieval.current_build(settings)
    assert names(client) == {store.POINTER, build}
    retriever = retrieval.Retriever(settings)
    assert retriever.search("how many bytes does a billion parameters need", k=1)[0].source == "memory.md"
    assert len(retriever) == report.chunks
    for hostile in ("x" * 100_000, "'; DROP TABLE collections; -- 温度 🔥 \x00 {input} NaN", "$where " * 500):
        assert len(retriever.search(hostile, k=2)) == 2


def test_a_second_replica_uses_the_index_and_follows_a_new_build(server, tmp_path):
    url, client = server
    first, second = replica(tmp_path, url, "a"), replica(tmp_path, url, "b")
    retrieval.ingest(first, progress=False)
    assert not retrieval.is_stale(second), "the same readings on another replica: no rebuild needed"
    held = retrieval.Retriever(second)
    assert held.search("top-k sampling", k=1)[0].source == "sampling.md"

    (first.readings_dir / "memory.md").write_text("# Memory\n\n## Sharding\n\nSharding spreads optimizer states.\n")
    (first.readings_dir / "agents.md").write_text("# Agents\n\nReAct alternates thought, action, observation.\n")
    report = retrieval.ingest(first, progress=False)
    assert report.changed == ["memory.md"] and report.added == ["agents.md"]
    assert sorted(report.unchanged) == ["notes.txt", "sampling.md"]  # copied with their vectors, not re-embedded
    assert held.search("thought action observation loop", k=1)[0].source == "agents.md"
    memory = [p for p in held.search("sharding optimizer states", k=10) if p.source == "memory.md"]
    assert memory and all("four bytes" not in p.text for p in memory)

    retrieval.ingest(replica(tmp_path, url, "a", {**READINGS, "extra.md": "# Extra\n\nMore.\n"}), progress=False)
    assert len(names(client)) == 3, "the pointer, the current build and the one before it"


def test_a_crash_mid_ingest_leaves_the_pointer_on_the_whole_build(server, tmp_path, monkeypatch):
    url, client = server
    settings = replica(tmp_path, url, "a")
    retrieval.ingest(settings, progress=False)
    before = retrieval.current_build(settings)
    (settings.readings_dir / "new.md").write_text("# New\n\nSomething new.\n")
    real = retrieval.split_file

    def dies(path, source, digest):
        raise RuntimeError("power cut")

    monkeypatch.setattr(retrieval, "split_file", dies)
    with pytest.raises(RuntimeError):
        retrieval.ingest(settings, progress=False)
    assert retrieval.current_build(settings) == before
    assert len(names(client)) == 3  # the leftover half build is still there...
    assert retrieval.Retriever(settings).search("four bytes per parameter", k=1)[0].source == "memory.md"
    monkeypatch.setattr(retrieval, "split_file", real)
    assert retrieval.ingest(settings, progress=False).added == ["new.md"]
    (settings.readings_dir / "new.md").unlink()
    retrieval.ingest(settings, progress=False)
    assert len(names(client)) == 3  # ...until a later ingest removes it


def test_readers_never_see_half_an_index(server, tmp_path):
    url, _ = server
    writer = replica(tmp_path, url, "w")
    retrieval.ingest(writer, progress=False)
    reader = retrieval.Retriever(replica(tmp_path, url, "r"))
    whole = {len(reader)}
    seen, failures, done = set(), [], threading.Event()

    def read():
        while not done.is_set():
            try:
                hits = reader.search("four bytes per parameter", k=1)
                seen.add(len(reader))
                assert hits[0].source == "memory.md"
            except Exception as exc:  # reported below
                failures.append(exc)
                return

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for n in range(3):
            (writer.readings_dir / f"more{n}.md").write_text(f"# More {n}\n\n" + "A longer note. " * 120 * (n + 1))
            whole.add(retrieval.ingest(writer, progress=False).chunks)
    finally:
        done.set()
        thread.join(timeout=60)
    assert not failures, failures
    assert seen <= whole, f"a reader saw a chunk count no whole build had: {seen - whole}"


def test_an_unreachable_server_names_the_variable(tmp_path):
    settings = replica(tmp_path, f"http://127.0.0.1:{free_port()}", "a")
    with pytest.raises(TutorError, match="TUTOR_CHROMA_URL"):
        retrieval.ingest(settings, progress=False)
    with pytest.raises(TutorError, match="TUTOR_CHROMA_URL"):
        retrieval.Retriever(replica(tmp_path, "localhost:8000", "b"))
