"""Readings ingestion and search against a real Chroma store in tmp_path (WordLlama is offline and fast)."""
from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tutor.config import ROOT, Settings
from tutor.errors import TutorError
from tutor.readings import evaluation, queries, retrieval
from tutor.tutor import Session
from tutor.tutoring.replies import resolve

QUESTIONS = ROOT / "tests" / "data" / "retrieval_questions.jsonl"
LEARNER_QUESTIONS = ROOT / "tests" / "data" / "learner_questions.jsonl"

READINGS = {
    "sampling.md": "# Sampling\n\n## Temperature\n\nTemperature divides the logits before the softmax. Low values "
                   "make the output predictable; high values make it varied.\n\n## Top-k\n\nTop-k keeps only the k "
                   "most probable tokens before sampling.\n",
    "memory.md": "# Memory\n\n## Bytes per parameter\n\nA 32-bit float takes four bytes, so one billion "
                 "parameters need four gigabytes of GPU memory.\n",
    "notes.txt": "Prompt injection hides instructions inside pasted text. Delimiters keep that text apart.\n",
}


def make_settings(tmp_path: Path, files: dict[str, str | bytes]) -> Settings:
    folder = tmp_path / "readings"
    folder.mkdir(exist_ok=True)
    for name, content in files.items():
        path = folder / name
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    return Settings.from_env({}, data_dir=tmp_path / "data", readings_dir=folder)


def sources(settings: Settings, query: str, k: int = 3) -> list[str]:
    retriever = retrieval.Retriever(settings)
    try:
        return [p.source for p in retriever.search(query, k=k)]
    finally:
        retriever.close()


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF whose page shows ``text``, with a correct cross-reference table."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
               b"/Resources << /Font << /F1 5 0 R >> >> >>",
               b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (n, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


# ---------------------------------------------------------------- ingestion

def test_ingest_is_incremental(tmp_path):
    settings = make_settings(tmp_path, READINGS)
    assert retrieval.is_stale(settings)
    first = retrieval.ingest(settings, progress=False)
    assert sorted(first.added) == sorted(READINGS) and first.chunks >= 4
    assert not retrieval.is_stale(settings)
    assert sources(settings, "how many bytes does a billion parameters need", k=1) == ["memory.md"]

    build = retrieval.current_build(settings)
    again = retrieval.ingest(settings, progress=False)
    assert (again.added, again.changed, again.removed) == ([], [], [])
    assert sorted(again.unchanged) == sorted(READINGS)
    assert retrieval.current_build(settings) == build  # nothing to do: no new build

    (settings.readings_dir / "memory.md").write_text("# Memory\n\n## Sharding\n\nSharding spreads optimizer "
                                                     "states across many GPUs.\n")
    changed = retrieval.ingest(settings, progress=False)
    assert changed.changed == ["memory.md"] and sorted(changed.unchanged) == ["notes.txt", "sampling.md"]
    hits = retrieval.Retriever(settings).search("sharding optimizer states across GPUs", k=10)
    memory = [p for p in hits if p.source == "memory.md"]
    assert memory and all("four bytes" not in p.text for p in memory)  # old chunks replaced, not kept
    assert memory[0].heading == "Memory > Sharding"

    (settings.readings_dir / "notes.txt").unlink()
    (settings.readings_dir / "agents.md").write_text("# Agents\n\nAn agent calls tools in a loop.\n")
    last = retrieval.ingest(settings, progress=False)
    assert last.removed == ["notes.txt"] and last.added == ["agents.md"]
    assert "notes.txt" not in sources(settings, "prompt injection delimiters pasted text", k=10)
    assert retrieval.Retriever(settings).sources() == ["agents.md", "memory.md", "sampling.md"]
    builds = sorted(p.name for p in settings.chroma_dir.glob("build-*"))
    assert len(builds) <= 2  # the current build and the one before it


def test_bad_files_are_skipped_with_a_warning_naming_them(tmp_path, caplog):
    bad = {
        "empty.md": "",
        "blank.txt": "   \n\n",
        "binary.md": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        "latin1.txt": "caf\xe9 cr\xe8me".encode("latin-1"),
        "corrupt.pdf": b"%PDF-1.4\n this is not really a pdf",
        "huge.txt": b"word " * 420_000,  # 2.1 MB, over the 2 MB cap
    }
    settings = make_settings(tmp_path, {**READINGS, **bad, "good.pdf": minimal_pdf("LoRA freezes the base weights")})
    with caplog.at_level(logging.WARNING, logger="tutor.readings.retrieval"):
        report = retrieval.ingest(settings, progress=False)
    assert sorted(report.skipped) == sorted(bad)
    warned = "\n".join(r.getMessage() for r in caplog.records)
    for name in bad:
        assert name in warned
    assert "2 MB" in report.skipped["huge.txt"] and "NUL" in report.skipped["binary.md"]
    assert "UTF-8" in report.skipped["latin1.txt"] and "PDF" in report.skipped["corrupt.pdf"]
    assert sorted(report.added) == sorted([*READINGS, *bad, "good.pdf"])
    assert sources(settings, "LoRA freezes the base weights", k=1) == ["good.pdf"]
    # Skipped files are remembered: the store is not stale and a second ingest does nothing.
    assert not retrieval.is_stale(settings)
    assert sorted(retrieval.ingest(settings, progress=False).unchanged) == sorted([*READINGS, *bad, "good.pdf"])


def test_a_crash_mid_ingest_leaves_the_previous_store_usable(tmp_path, monkeypatch):
    settings = make_settings(tmp_path, READINGS)
    retrieval.ingest(settings, progress=False)
    before = retrieval.current_build(settings)
    (settings.readings_dir / "sampling.md").write_text("# Sampling\n\nTop-p keeps the smallest nucleus.\n")
    (settings.readings_dir / "new.md").write_text("# New\n\nSomething new.\n")

    real = retrieval.split_file

    def dies_on_new(path, source, digest):
        if source == "new.md":
            raise RuntimeError("power cut")
        return real(path, source, digest)

    monkeypatch.setattr(retrieval, "split_file", dies_on_new)
    with pytest.raises(RuntimeError):
        retrieval.ingest(settings, progress=False)
    assert retrieval.current_build(settings) == before
    hits = retrieval.Retriever(settings).search("temperature divides the logits", k=1)
    assert hits[0].source == "sampling.md" and "Temperature" in hits[0].text  # the old text, intact

    monkeypatch.setattr(retrieval, "split_file", real)
    report = retrieval.ingest(settings, progress=False)
    assert sorted(report.added) == ["new.md"] and report.changed == ["sampling.md"]
    assert len(list(settings.chroma_dir.glob("build-*"))) == 2  # the half-written build was removed


def test_a_second_process_can_search_while_the_store_is_held_and_locked(tmp_path):
    settings = make_settings(tmp_path, READINGS)
    retrieval.ingest(settings, progress=False)
    held = retrieval.Retriever(settings)
    assert held.search("top-k sampling", k=1)[0].source == "sampling.md"
    script = textwrap.dedent(f"""
        from pathlib import Path
        from tutor.readings import retrieval
        from tutor.config import Settings
        s = Settings.from_env({{}}, data_dir=Path({str(settings.data_dir)!r}), readings_dir=Path({str(settings.readings_dir)!r}))
        print(retrieval.Retriever(s).search("four bytes per parameter", k=1)[0].source)
    """)
    with retrieval._exclusive(settings.chroma_dir / "ingest.lock"):  # as if an ingest were running
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "memory.md"
    assert held.search("four bytes per parameter", k=1)[0].source == "memory.md"


def test_a_busy_lock_gives_a_clear_error_instead_of_hanging(tmp_path):
    settings = make_settings(tmp_path, READINGS)
    settings.chroma_dir.mkdir(parents=True)
    script = textwrap.dedent(f"""
        import fcntl, time
        with open({str(settings.chroma_dir / "ingest.lock")!r}, "a") as handle:  # what an ingest holds
            fcntl.flock(handle, fcntl.LOCK_EX)
            print("locked", flush=True)
            time.sleep(30)
    """)
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(TutorError, match="Another process"):
            with retrieval._exclusive(settings.chroma_dir / "ingest.lock", timeout=0.5):
                pass
    finally:
        holder.kill()
        holder.wait()


def test_ensure_index_builds_once_and_a_retriever_follows_new_builds(tmp_path):
    settings = make_settings(tmp_path, READINGS)
    with pytest.raises(TutorError, match="tutor ingest"):
        retrieval.Retriever(settings)
    assert retrieval.ensure_index(settings) is not None
    assert retrieval.ensure_index(settings) is None
    retriever = retrieval.Retriever(settings)
    (settings.readings_dir / "agents.md").write_text("# Agents\n\nReAct alternates thought, action, observation.\n")
    assert retrieval.is_stale(settings)
    retrieval.ensure_index(settings)
    assert retriever.search("thought action observation loop", k=1)[0].source == "agents.md"


# ---------------------------------------------------------------- search over the shipped readings

@pytest.fixture(scope="module")
def shipped(tmp_path_factory) -> retrieval.Retriever:
    settings = Settings.from_env({}, data_dir=tmp_path_factory.mktemp("shipped"))
    report = retrieval.ingest(settings, progress=False)
    assert not report.skipped and len(report.added) >= 14
    return retrieval.Retriever(settings)


@pytest.mark.parametrize("query, source", [
    ("What does a temperature above one do to sampling?", "generation-settings.md"),
    ("How many gigabytes for one billion parameters at 32-bit?", "quantization-and-memory.md"),
    ("low-rank matrices B and A", "peft-lora-qlora.md"),
])
def test_search_finds_the_expected_reading(shipped, query, source):
    passages = shipped.search(query, k=3)
    assert len(passages) == 3 and passages[0].source == source
    assert passages[0].heading and passages[0].text
    assert [p.score for p in passages] == sorted((p.score for p in passages), reverse=True)
    assert set(passages[0].as_dict()) == {"source", "heading", "text", "score"}


def test_any_query_gets_results_or_a_clear_error(shipped):
    for empty in ("", "   ", "?!", "\n\t"):
        with pytest.raises(TutorError, match="empty"):
            shipped.search(empty)
    with pytest.raises(TutorError, match="k must be"):
        shipped.search("temperature", k=0)
    assert len(shipped.search("tokens " * 50_000, k=2)) == 2  # cut before embedding
    assert shipped.search("¿Qué es la temperatura? 温度 🔥 '; DROP TABLE readings; --", k=1)
    assert len(shipped.search("temperature", k=1000)) <= len(shipped)


def test_recall_at_3_meets_the_target(shipped):
    questions = evaluation.load_questions(QUESTIONS)
    assert len(questions) >= 40
    assert {q["source"] for q in questions} <= set(shipped.sources())
    result = evaluation.evaluate(shipped, questions, k=3)
    assert result["recall"] >= 0.9, json.dumps(result["misses"], indent=1)


def follow_up(question: str, previous: list[str]) -> str:
    """What the chat searches for: a follow-up is resolved against the learner's previous question."""
    return resolve(question, [{"role": "user", "content": p} for p in previous], Session(), bool(previous))


@pytest.mark.parametrize("split", ["dev", "test"])
def test_recall_on_questions_as_learners_type_them(shipped, split):
    """Slang, typos and follow-ups; the test half was never used to choose the ranking (see retrieval.py)."""
    questions = evaluation.load_questions(LEARNER_QUESTIONS)
    assert len(questions) >= 100 and {q["source"] for q in questions} <= set(shipped.sources())
    result = evaluation.evaluate(shipped, questions, k=3, split=split, resolve=follow_up)
    assert result["questions"] >= 50
    assert result["recall"] >= 0.95 and result["mrr"] >= 0.85, json.dumps(result["misses"], indent=1)


def test_a_follow_up_alone_does_not_find_its_topic_but_resolved_it_does(shipped):
    assert shipped.search("can you give an example of that?", k=1)[0].source != "chain-of-thought.md"
    resolved = follow_up("can you give an example of that?", ["what is chain of thought"])
    assert shipped.search(resolved, k=1)[0].source == "chain-of-thought.md"


def test_the_reading_about_hallucinations_wins_over_general_introductions(shipped):
    """The issue's example: in-context learning, tokenization and prompting principles used to rank first."""
    hits = shipped.search("Why do language models hallucinate, and how can a prompt reduce it?", k=3)
    assert hits[0].source == "hallucinations-and-grounding.md"
    assert shipped.search("why do LLMs make stuff up", k=1)[0].source == "hallucinations-and-grounding.md"


def test_passages_show_the_reading_text_without_the_indexed_heading_line(shipped):
    passage = shipped.search("What is nucleus sampling?", k=1)[0]
    assert passage.heading.endswith("Top-k and top-p") and not passage.text.startswith(passage.heading)


@pytest.mark.parametrize("typed, term", [("why do LLMs make stuff up", "hallucinat"), ("whats the diff", "difference"),
                                         ("my loss is NaN, bro fake citations", "hallucinat"),
                                         ("why use #### in prompts", "delimiter"), ("temp 0 vs 1", "temperature")])
def test_query_expansion_adds_the_course_terms(typed, term):
    expanded = queries.expand(typed)
    assert term in expanded and expanded.startswith(queries.normalize(typed))


def test_query_expansion_leaves_plain_questions_alone():
    assert queries.expand("What does a temperature above one do to sampling?") == \
        "What does a temperature above one do to sampling?"
    assert len(queries.expand("x" * 5000)) == 5000
