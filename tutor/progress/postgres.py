"""Progress in PostgreSQL, shared by several app replicas (``TUTOR_DATABASE_URL``). The only psycopg importer.

One short connection per call, like the SQLite store: a replica killed mid-request leaves nothing open, and
PostgreSQL releases its locks the moment the connection drops. Writes that must not interleave (a learner's
attempt and the lesson-completion check that follows it) take a transaction-scoped advisory lock named
after the learner and lesson, so two replicas grading the same learner at once queue on it instead of each
missing the other's attempt.
"""
from __future__ import annotations

import hashlib
from contextlib import contextmanager
from typing import Iterator

import psycopg

from tutor.config import redact_url as redact
from tutor.errors import ConfigError, ProgressError

ENV = "TUTOR_DATABASE_URL"
# Seconds to wait for the server to accept a connection: a wrong host fails at start instead of hanging.
CONNECT_TIMEOUT = 5


def lock_key(name: str) -> int:
    """A signed 64-bit advisory-lock key for a name (pg_advisory_xact_lock takes a bigint)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


def _reason(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class PostgresTx:
    """What a store query sees inside a transaction: the store writes ``?`` placeholders, psycopg wants ``%s``."""

    def __init__(self, cursor: psycopg.Cursor):
        self.cursor = cursor

    def run(self, sql: str, params: tuple = ()) -> None:
        self.cursor.execute(sql.replace("%", "%%").replace("?", "%s"), params)

    def rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        self.run(sql, params)
        return self.cursor.fetchall()


class PostgresBackend:
    dialect = "postgres"

    def __init__(self, url: str):
        self.url = url
        try:
            with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT) as db:
                db.execute("SELECT 1")
        except psycopg.Error as exc:
            raise ConfigError(
                f"{ENV}={redact(url)}: cannot connect to PostgreSQL ({_reason(exc)}). Check that the server is "
                "running and reachable from here and that the user, password and database in the URL exist; "
                f"unset {ENV} to keep progress in SQLite under TUTOR_DATA_DIR.") from None

    def describe(self) -> str:
        return f"PostgreSQL at {redact(self.url)}"

    @contextmanager
    def transaction(self, *, write: bool, lock: str | None = None) -> Iterator[PostgresTx]:
        """One transaction, committed when the block ends, rolled back if it raises (psycopg's connection
        context does both, then closes). ``lock`` serialises writers that name the same thing."""
        try:
            with psycopg.connect(self.url, connect_timeout=CONNECT_TIMEOUT) as db:
                db.read_only = not write
                with db.cursor() as cursor:
                    if lock:
                        cursor.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(lock),))
                    yield PostgresTx(cursor)
        except psycopg.OperationalError as exc:  # the server went away, refused, or timed out
            raise ProgressError(f"the progress database ({self.describe()}) could not be reached "
                                f"({_reason(exc)}); try again in a moment.") from None
        except psycopg.errors.InsufficientPrivilege as exc:
            raise ProgressError(f"the user in {ENV} lacks a privilege the tutor needs ({_reason(exc)}): let it "
                                "create tables in that database, or run `tutor db upgrade` as the owner.") from None
