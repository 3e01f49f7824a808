"""From a reading file to vectors, short of chunking (which tutor.retrieval does): finding, fingerprinting and
reading .md, .txt and .pdf files with the rules for skipping bad ones, and the offline embedder.

The embedder is WordLlama's 256-d vectors behind LangChain's ``Embeddings`` interface. WordLlama ships its
weights inside the wheel, so nothing is downloaded. ``WordLlama.load()`` with no arguments would still try the
Hugging Face Hub (the wheel's folder name does not match what it looks for), so the package folder is passed as
the cache and downloads are switched off.

WordLlama averages learned token vectors: it embeds ~2,000 chunks of 800 characters per second on this CPU, so
re-indexing changed readings at app start costs about a second.
"""
from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

import wordllama
from langchain_core.embeddings import Embeddings
from pypdf import PdfReader
from wordllama import WordLlama

#: Recorded in the index manifest: a different embedder or size means the whole index must be rebuilt.
NAME = "wordllama-l2_supercat-256"
DIM = 256
SUFFIXES = (".md", ".txt", ".pdf")
# 2 MB of text is ~350,000 words, a thousand-page book: no reading is that long, so a bigger file is a mistake
# (a log, a data dump). PDFs carry fonts and images, so they get ten times the room.
MAX_TEXT_BYTES, MAX_PDF_BYTES = 2_000_000, 20_000_000


@lru_cache(maxsize=1)
def wordllama_model() -> WordLlama:
    """The one WordLlama model in the process (the readings index and the grader's concept checks share it)."""
    return WordLlama.load(cache_dir=Path(wordllama.__file__).parent, disable_download=True, dim=DIM)


class WordLlamaEmbeddings(Embeddings):
    """Unit-length WordLlama vectors, so cosine similarity is a plain dot product."""

    name = NAME

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        return wordllama_model().embed(list(texts), norm=True).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


class SkipFile(Exception):
    """A reading that cannot be indexed; the message says why."""


def scan(folder: Path) -> dict[str, Path]:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file())
    return {p.relative_to(folder).as_posix(): p for p in files}


def file_fingerprint(path: Path) -> str:
    size = path.stat().st_size
    if size > (MAX_PDF_BYTES if path.suffix.lower() == ".pdf" else MAX_TEXT_BYTES):
        return f"too-big:{size}"  # never read a huge file just to learn that it is still too big
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_reading(path: Path) -> str:
    data = path.read_bytes()
    if len(data) > MAX_TEXT_BYTES:
        raise SkipFile(f"it is {len(data) / 1e6:.1f} MB, over the {MAX_TEXT_BYTES / 1e6:.0f} MB cap for a reading")
    if b"\x00" in data:
        raise SkipFile("it looks binary (it contains NUL bytes)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SkipFile(f"it is not UTF-8 text (bad byte at offset {exc.start}); save it as UTF-8") from None
    if not text.strip():
        raise SkipFile("it is empty")
    return text


def read_pdf(path: Path) -> list[tuple[str, str]]:
    if path.stat().st_size > MAX_PDF_BYTES:
        raise SkipFile(f"it is over the {MAX_PDF_BYTES / 1e6:.0f} MB cap for a PDF reading")
    try:
        pages = [(f"page {n}", page.extract_text() or "") for n, page in enumerate(PdfReader(path).pages, 1)]
    except Exception as exc:  # pypdf raises many different types on damaged files
        raise SkipFile(f"it is not a readable PDF ({type(exc).__name__}: {exc})") from None
    if not any(text.strip() for _, text in pages):
        raise SkipFile("the PDF has no extractable text (a scan? run OCR on it first)")
    return pages


def embed(texts: list[str]):
    """Unit-length vectors for ``texts`` as a (len(texts), DIM) numpy array: cosine similarity is a dot product.
    Short texts (sentences, chat messages) embed at tens of thousands per second."""
    return wordllama_model().embed(list(texts), norm=True)
