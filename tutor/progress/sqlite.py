"""The embedded progress store: one SQLite file in WAL mode, one short connection per call.

Connections are not shared across Gradio's worker threads, and WAL lets readers (the progress panel, the
dashboard) run while a grade is being written. Every write transaction starts with ``BEGIN IMMEDIATE``: it
takes the file's single write lock up front, so two submissions of one learner are serialised and the second
one's completion check sees the first one's attempt.
"""
from __future__ import annotations

import sqlite3
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Iterator

from tutor.errors import ProgressError

# A writer waits this long for another writer's lock before giving up (a grade write takes milliseconds).
BUSY_MS = 10_000


class SqliteTx:
    """What a store query sees inside a transaction: ``?`` placeholders, rows as tuples."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db
        self.cursor: sqlite3.Cursor | None = None

    def run(self, sql: str, params: tuple = ()) -> None:
        self.cursor = self.db.execute(sql, params)

    def rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        self.run(sql, params)
        return self.cursor.fetchall()


class SqliteBackend:
    dialect = "sqlite"

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with closing(self._connect()) as db:
                db.execute("PRAGMA journal_mode=WAL")  # persistent: stored in the file, outside any transaction
        except (OSError, sqlite3.Error) as exc:
            raise ProgressError(f"cannot open the progress database {self.path}: {exc}. Check that "
                                "TUTOR_DATA_DIR is writable and has free space.") from None

    def describe(self) -> str:
        return f"SQLite file {self.path}"

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: no implicit transactions; transaction() issues BEGIN / COMMIT itself.
        db = sqlite3.connect(self.path, timeout=BUSY_MS / 1000, isolation_level=None)
        db.execute(f"PRAGMA busy_timeout={BUSY_MS}")
        return db

    @contextmanager
    def transaction(self, *, write: bool, lock: str | None = None) -> Iterator[SqliteTx]:
        """One transaction, committed when the block ends, rolled back if it raises. ``lock`` names what a
        write must hold alone; SQLite's one write lock (BEGIN IMMEDIATE) covers every name."""
        try:
            with closing(self._connect()) as db:
                db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    yield SqliteTx(db)
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
        except sqlite3.OperationalError as exc:  # locked past BUSY_MS, disk full, file removed...
            raise ProgressError(f"the progress database {self.path} could not be used ({exc}); try again in a "
                                "moment, and check the disk under TUTOR_DATA_DIR if it keeps happening.") from None
