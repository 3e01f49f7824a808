"""Where the readings index lives: an embedded Chroma store on disk, or a Chroma server (TUTOR_CHROMA_URL).

Both keep whole, versioned builds and one pointer to the build in use, swapped in a single step, so a reader
(any app replica) sees the old index or the new one, never half of one:

embedded (``settings.chroma_dir``)::

    CURRENT        the name of the build in use, replaced atomically (os.replace)
    ingest.lock    flock held by the one process that is ingesting
    build-<ns>/    a Chroma persist directory plus manifest.json ({file: fingerprint}, skipped files, chunking)

server (``chroma run``; collection names need 3-512 characters)::

    readings-current    an empty collection whose metadata {"current": "readings-<ns>"} is the pointer
    readings-<ns>       one build; its metadata {"manifest": "<json>"} is written last, when the build is whole

An ingest copies the current build aside (a folder copy, or the server's rows with their embeddings, so
unchanged files are not embedded again), applies the changes to the copy, records the manifest, then moves the
pointer. Chroma updates a collection's metadata in one statement, so the server-side swap is as atomic as
``os.replace``. A crash leaves the pointer on the previous, whole build; the next ingest removes the leftover.
The previous build is kept for readers that still have it open.

Two ingesters: on one machine the flock serializes them. Replicas on different machines that ingest at the same
moment each build a whole index from the same readings and the last pointer write wins; cleanup only removes
builds older than the one that was current when the ingest began, so it never deletes a build in progress.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import chromadb
from chromadb.errors import NotFoundError
from langchain_chroma import Chroma

from tutor.config import Settings
from tutor.errors import TutorError
from tutor.readings.embeddings import WordLlamaEmbeddings

COLLECTION = "readings"  # the collection inside each embedded build folder
POINTER = "readings-current"
LOCK_TIMEOUT_S = 300
COSINE = {"hnsw": {"space": "cosine"}}


def chroma_settings() -> chromadb.Settings:
    """A fresh object per client: chromadb.HttpClient writes the server's address into the one it is given."""
    return chromadb.Settings(anonymized_telemetry=False)


def open_index(settings: Settings) -> "DiskIndex | ServerIndex":
    return ServerIndex(settings) if settings.chroma_url else DiskIndex(settings)


def _langchain(client, name: str) -> Chroma:
    return Chroma(collection_name=name, embedding_function=WordLlamaEmbeddings(), client=client,
                  collection_configuration=COSINE)


@contextmanager
def exclusive(path: Path, timeout: float = LOCK_TIMEOUT_S):
    """One ingester at a time. Polled, so a stuck ingester gives a clear error instead of a silent hang."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TutorError(f"Another process has been indexing the readings for over {timeout:.0f} s "
                                     f"({path} is locked). Wait for it to finish, or stop it.") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class DiskIndex:
    """Builds as folders under ``settings.chroma_dir``; each build has its own PersistentClient."""

    def __init__(self, settings: Settings):
        self.root = settings.chroma_dir
        self.where = str(self.root)

    def exclusive(self):
        return exclusive(self.root / "ingest.lock")

    def current(self) -> str | None:
        try:
            name = (self.root / "CURRENT").read_text().strip()
        except FileNotFoundError:
            return None
        return name if (self.root / name / "manifest.json").is_file() else None

    def manifest(self, build: str) -> dict:
        return json.loads((self.root / build / "manifest.json").read_text())

    def create(self, copy_of: str | None) -> str:
        name = f"build-{time.time_ns()}"
        shutil.copytree(self.root / copy_of, self.root / name) if copy_of else (self.root / name).mkdir(parents=True)
        return name

    def open(self, build: str) -> tuple[chromadb.ClientAPI, Chroma]:
        client = chromadb.PersistentClient(path=str(self.root / build), settings=chroma_settings())
        return client, _langchain(client, COLLECTION)

    def publish(self, build: str, manifest: dict, previous: str | None) -> None:
        _write_durably(self.root / build / "manifest.json", json.dumps(manifest, indent=1, sort_keys=True))
        _write_durably(self.root / "CURRENT.tmp", build)
        os.replace(self.root / "CURRENT.tmp", self.root / "CURRENT")  # atomic on POSIX: readers see old or new
        for path in self.root.glob("build-*"):  # keep the previous build for readers that still have it open
            if path.name not in (build, previous):
                shutil.rmtree(path, ignore_errors=True)


class ServerIndex:
    """Builds as collections on a Chroma server, shared by every replica that sets the same TUTOR_CHROMA_URL."""

    def __init__(self, settings: Settings):
        url = settings.chroma_url.rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise TutorError(f"TUTOR_CHROMA_URL={url!r} is not a server URL: write it as http://HOST:PORT.")
        self.where = url
        self.lock_path = settings.chroma_dir / "ingest.lock"
        try:
            self.client = chromadb.HttpClient(host=parts.hostname, port=parts.port or (443 if parts.scheme == "https"
                                              else 8000), ssl=parts.scheme == "https", settings=chroma_settings())
            self.client.heartbeat()
        except Exception as exc:  # chromadb raises ValueError, httpx errors or its own, depending on the failure
            raise TutorError(f"No Chroma server answers at TUTOR_CHROMA_URL={url} ({exc}). Start one "
                             "(`chroma run --path DIR --host HOST --port PORT`), fix the URL, or leave "
                             "TUTOR_CHROMA_URL empty to keep the index on local disk.") from exc

    def exclusive(self):
        return exclusive(self.lock_path)

    def _metadata(self, name: str) -> dict:
        try:
            return self.client.get_collection(name).metadata or {}  # fetched fresh: the pointer moves
        except NotFoundError:
            return {}

    def current(self) -> str | None:
        name = self._metadata(POINTER).get("current")
        return name if name and "manifest" in self._metadata(name) else None

    def manifest(self, build: str) -> dict:
        return json.loads(self._metadata(build)["manifest"])

    def create(self, copy_of: str | None) -> str:
        name = f"{COLLECTION}-{time.time_ns()}"
        target = self.client.create_collection(name, configuration=COSINE)
        if copy_of:
            source = self.client.get_collection(copy_of)
            batch = self.client.get_max_batch_size()
            for offset in range(0, source.count(), batch):
                rows = source.get(include=["embeddings", "documents", "metadatas"], limit=batch, offset=offset)
                target.add(ids=rows["ids"], embeddings=rows["embeddings"], documents=rows["documents"],
                           metadatas=rows["metadatas"])
        return name

    def open(self, build: str) -> tuple[None, Chroma]:
        return None, _langchain(self.client, build)  # the server connection is shared, nothing to close per build

    def publish(self, build: str, manifest: dict, previous: str | None) -> None:
        self.client.get_collection(build).modify(metadata={"manifest": json.dumps(manifest, sort_keys=True)})
        self.client.get_or_create_collection(POINTER).modify(metadata={"current": build})
        floor = _stamp(previous) if previous else -1  # with nothing current before, a rival build may be in progress
        for collection in self.client.list_collections():
            name = collection.name
            if name.startswith(f"{COLLECTION}-") and name not in (POINTER, build, previous) and _stamp(name) < floor:
                self.client.delete_collection(name)


def _stamp(name: str) -> int:
    try:
        return int(name.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return -1


def _write_durably(path: Path, text: str) -> None:
    with open(path, "w") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
