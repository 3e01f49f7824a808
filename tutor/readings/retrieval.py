"""Course readings in Chroma: incremental ingestion, hybrid search, and the retrieval evaluation.

The only module besides ``tutor.readings.store`` (where the index lives: embedded on disk, or a Chroma server
named by TUTOR_CHROMA_URL) that imports LangChain and Chroma; the embedder lives in ``tutor.readings.embeddings``.

An ingest builds a new version of the index aside, applying only the changes (new, changed and deleted files)
to a copy of the current one, then moves the index's pointer to it in one step (see ``store``). Readers open
whatever the pointer names and never share a build with the writer, so a second process (or replica) neither
waits nor sees half an index.
"""
from __future__ import annotations

import logging
import re
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from langchain_core.documents import Document
from langchain_text_splitters import MarkdownHeaderTextSplitter, RecursiveCharacterTextSplitter
from nltk.stem import PorterStemmer
from rank_bm25 import BM25Okapi
from tqdm import tqdm

from tutor.config import Settings
from tutor.errors import TutorError
from tutor.readings.embeddings import SkipFile, WordLlamaEmbeddings, file_fingerprint, read_pdf, read_reading, scan
from tutor.readings.queries import expand, technical_terms
from tutor.readings.store import exclusive as _exclusive  # noqa: F401  (tests hold the lock as an ingest would)
from tutor.readings.store import open_index

log = logging.getLogger(__name__)

# Chunk size, measured on the question set with the hybrid ranking below (recall@1 / recall@3):
#   400 chars 0.83 / 0.97, 600 0.88 / 0.95, 800 0.89 / 0.97, 1200 0.89 / 0.97.
# Below ~800 a chunk loses the words that tie a question to its section; above it recall stops improving while
# the prompt grows: the answer prompt holds 3 passages, 3 x 800 chars ~ 600 tokens ~ 1.7 s of prefill for the
# embedded model on CPU (362 tok/s). The overlap (~1-2 sentences) keeps an idea cut at a boundary findable.
CHUNK_SIZE, CHUNK_OVERLAP = 800, 120
CHUNKING = {"schema": 3, "embedder": WordLlamaEmbeddings.name, "size": CHUNK_SIZE, "overlap": CHUNK_OVERLAP}
# Queries are cut to ~200 words before embedding: WordLlama averages token vectors, so a pasted essay blurs
# into a generic vector anyway, and the cut bounds the time per query.
MAX_QUERY_CHARS = 1_000


@dataclass(frozen=True)
class Passage:
    """One retrieved chunk. ``score`` blends cosine similarity and BM25 (see VECTOR_WEIGHT); higher is more
    relevant, and below about 0.32 the readings barely touch the query (see tutor.grounding)."""

    source: str
    heading: str
    text: str
    score: float

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # file -> why it was not indexed
    chunks: int = 0  # in the store after the ingest
    seconds: float = 0.0

    def summary(self) -> str:
        return (f"{len(self.added)} added, {len(self.changed)} changed, {len(self.removed)} removed, "
                f"{len(self.unchanged)} unchanged, {len(self.skipped)} skipped; {self.chunks} chunks "
                f"in {self.seconds:.1f} s")


_HEADERS = [("#", "h1"), ("##", "h2"), ("###", "h3")]
_SIZER = RecursiveCharacterTextSplitter(chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP)


def _sections(path: Path) -> list[tuple[str, str]]:
    """(heading path, text) pieces: markdown split by headings, PDFs by page, plain text whole."""
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        return read_pdf(path)
    text = read_reading(path)
    if suffix == ".txt":
        return [("", text)]
    parts = MarkdownHeaderTextSplitter(_HEADERS).split_text(text)
    return [(" > ".join(d.metadata[k] for _, k in _HEADERS if k in d.metadata), d.page_content) for d in parts]


def split_file(path: Path, source: str, digest: str) -> list[Document]:
    """The chunks of one reading, with metadata; raises SkipFile when the file cannot be used.

    Each chunk's text starts with its heading path ("Hallucinations and grounding > Why models hallucinate"),
    so the vector and BM25 see what the section is about even when the chunk itself never names it (the
    heading line is taken off again before a passage is shown; see ``_body``)."""
    docs = [Document(page_content=f"{heading}\n{piece}" if heading else piece,
                     metadata={"source": source, "heading": heading, "hash": digest})
            for heading, text in _sections(path) for piece in _SIZER.split_text(text)]
    if not docs:
        raise SkipFile("it has no text to index")
    for n, doc in enumerate(docs):
        doc.metadata["chunk"] = n
    return docs


# ---------------------------------------------------------------- the index

def current_build(settings: Settings) -> str | None:
    """The name of the build in use (a folder, or a collection on the Chroma server), or None."""
    return open_index(settings).current()


def _manifest(index, build: str | None) -> dict:
    """The build's manifest, or {} when there is none or it was made with other chunking (then rebuild all)."""
    if build is None:
        return {}
    try:
        manifest = index.manifest(build)
    except (OSError, ValueError, KeyError):  # unreadable: treat as absent, and the next ingest rebuilds from scratch
        return {}
    return manifest if manifest.get("chunking") == CHUNKING else {}


def _known(manifest: dict) -> dict[str, str]:
    return {**manifest.get("files", {}), **{f: s["fingerprint"] for f, s in manifest.get("skipped", {}).items()}}


def _on_disk(settings: Settings) -> dict[str, Path]:
    return scan(settings.readings_dir) if settings.readings_dir.is_dir() else {}


def is_stale(settings: Settings) -> bool:
    """True when there is no index, or the readings folder no longer matches what was indexed."""
    index = open_index(settings)
    manifest = _manifest(index, index.current())
    return not manifest or _known(manifest) != {f: file_fingerprint(p) for f, p in _on_disk(settings).items()}


def ingest(settings: Settings, progress: bool = True) -> IngestReport:
    """Bring the index in line with the readings folder, embedding only new and changed files."""
    start = time.monotonic()
    index = open_index(settings)
    with index.exclusive():
        old_build = index.current()  # read under the lock: another ingest may just have swapped
        old = _manifest(index, old_build)
        files = _on_disk(settings)
        now, before = {f: file_fingerprint(p) for f, p in files.items()}, _known(old)
        report = IngestReport(
            added=[f for f in now if f not in before],
            changed=[f for f in now if f in before and before[f] != now[f]],
            removed=[f for f in before if f not in now],
            unchanged=[f for f in now if before.get(f) == now[f]])
        skipped = {f: s for f, s in old.get("skipped", {}).items() if f in report.unchanged}
        report.skipped = {f: s["reason"] for f, s in skipped.items()}
        indexed = {f: d for f, d in old.get("files", {}).items() if f in report.unchanged}
        if old and not (report.added or report.changed or report.removed):
            report.chunks, report.seconds = old["chunks"], time.monotonic() - start
            return report
        if not settings.readings_dir.is_dir():
            log.warning("The readings folder %s does not exist: the index will be empty.", settings.readings_dir)

        build = index.create(copy_of=old_build if old else None)
        client, store = index.open(build)
        try:
            for f in report.changed + report.removed:
                store.delete(where={"source": f})
            for f in tqdm(report.added + report.changed, desc="Indexing readings", unit="file",
                          file=sys.stderr, disable=not progress):
                try:
                    docs = split_file(files[f], f, now[f])
                except SkipFile as why:
                    log.warning("Skipped reading %s: %s.", files[f], why)
                    skipped[f], report.skipped[f] = {"fingerprint": now[f], "reason": str(why)}, str(why)
                    continue
                store.add_documents(docs, ids=[f"{f}#{d.metadata['chunk']}" for d in docs])
                indexed[f] = now[f]
            report.chunks = len(store.get(include=[])["ids"])
        finally:
            if client is not None:
                client.close()
        manifest = {"chunking": CHUNKING, "chunks": report.chunks, "files": indexed, "skipped": skipped}
        index.publish(build, manifest, previous=old_build)
    report.seconds = time.monotonic() - start
    return report


def ensure_index(settings: Settings, progress: bool = False) -> IngestReport | None:
    """Ingest when the index is missing or stale (the app calls this at start); None when it was fresh."""
    return ingest(settings, progress=progress) if is_stale(settings) else None


# ---------------------------------------------------------------- search

_WORD = re.compile(r"\w+")
_STOP = frozenset("a an and are as at be by can do does for from how i in is it me my of on or should that the "
                  "this to what when which why with".split())
# Hybrid ranking: score = 0.7 x cosine + 0.3 x b / (b + 5), with b the chunk's BM25 score for the query.
# b / (b + 5) puts BM25 on an absolute [0, 1) scale: one rare word matched once scores about 5 (its IDF among
# ~150 chunks is ln(150) ~ 5), so it counts half, while a common word ("work", "time") adds little. That keeps
# off-topic questions low, which the relevance cut in tutor.readings.grounding relies on.
# BM25 runs on Porter stems ("hallucinate" meets "hallucinations", "examples" meets "example"), and both the
# vector and BM25 see the chunk's heading path. The query is expanded first (tutor.readings.queries).
# Measured on the dev half of tests/data/learner_questions.jsonl (74 questions as learners type them),
# recall@3 / MRR:
#   as before (no stems, no headings, no expansion):  0.892 / 0.848
#   + Porter stems in BM25:                            0.919 / 0.857
#   + heading path in each chunk:                      0.919 / 0.872
#   + query expansion:                                 0.986 / 0.950
# The weights sit in a flat region (cosine weight 0.5 to 0.8 and K 3 to 8 give recall@3 0.97 to 0.99 on dev);
# the test half, never used for these choices, is reported in the README.
VECTOR_WEIGHT, BM25_HALF = 0.7, 5.0
_STEM = PorterStemmer().stem


def _tokens(text: str) -> list[str]:
    return [_STEM(w) for w in _WORD.findall(text.lower()) if w not in _STOP]


def _body(text: str, heading: str) -> str:
    """A chunk's text without the heading line ``split_file`` put in front of it."""
    return text[len(heading) + 1:] if heading and text.startswith(heading + "\n") else text


class Retriever:
    """Search over the current build. Re-opens by itself when another process swaps in a newer build."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.index = open_index(settings)
        self._build: str | None = None
        self._client = None
        self._lock = threading.Lock()  # the app may search from several threads; a re-open must not interleave
        self._open()

    def _open(self) -> None:
        build = self.index.current()
        if build is None:
            raise TutorError(f"The readings index at {self.index.where} does not exist yet. "
                             "Run `tutor ingest` (the app also builds it at start).")
        if build == self._build:
            return
        self.close()
        self._client, self._store = self.index.open(build)
        everything = self._store.get(include=["documents", "metadatas"])
        self._chunks = {i: (text, meta) for i, text, meta in
                        zip(everything["ids"], everything["documents"], everything["metadatas"])}
        self._ids = list(self._chunks)
        self._bm25 = BM25Okapi([_tokens(self._chunks[i][0]) for i in self._ids]) if self._ids else None
        self._build = build

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def __len__(self) -> int:
        """Chunks in the index."""
        return len(self._ids)

    def sources(self) -> list[str]:
        return sorted({meta["source"] for _, meta in self._chunks.values()})

    def terms(self) -> set[str]:
        """The technical terms the readings use ("qlora", "nf4", "rlhf"), lower-cased."""
        return set().union(*(technical_terms(text) for text, _ in self._chunks.values()))

    def headings(self) -> list[str]:
        """Every section heading (the last part of each heading path), e.g. "Why models hallucinate"."""
        return sorted({meta["heading"].split(" > ")[-1] for _, meta in self._chunks.values() if meta["heading"]})

    def search(self, query: str, k: int = 3) -> list[Passage]:
        """The ``k`` most relevant passages, best first. Any text is accepted; text without words is an error."""
        query = " ".join(query.split())[:MAX_QUERY_CHARS]
        if not _WORD.search(query):
            raise TutorError("The search query is empty: type a few words about what you want to find.")
        if k < 1:
            raise TutorError(f"k must be at least 1, got {k}.")
        with self._lock:
            self._open()
            return self._rank(expand(query), k) if self._ids else []

    def _rank(self, query: str, k: int) -> list[Passage]:
        # Candidates: the vector search's best 40 plus BM25's best 40. A BM25 candidate the vector search did not
        # return gets the pool's lowest cosine, an optimistic estimate that can only help it.
        pool = max(40, 4 * k)
        cosine = {d.id: 1.0 - distance for d, distance in self._store.similarity_search_with_score(query, k=pool)}
        keyword = dict(zip(self._ids, self._bm25.get_scores(_tokens(query))))
        floor = min(cosine.values())
        candidates = set(cosine) | set(sorted(keyword, key=keyword.get, reverse=True)[:pool])
        scored = sorted(((VECTOR_WEIGHT * cosine.get(i, floor)
                          + (1 - VECTOR_WEIGHT) * keyword[i] / (keyword[i] + BM25_HALF), i) for i in candidates),
                        reverse=True)
        passages = []
        for score, i in scored[:k]:
            text, meta = self._chunks[i]
            passages.append(Passage(source=meta["source"], heading=meta["heading"], text=_body(text, meta["heading"]),
                                    score=round(float(score), 4)))
        return passages
