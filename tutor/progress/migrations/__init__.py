"""Numbered schema migrations for the progress store, one module per version: ``mNNNN_<what>.py`` holding the
statements for each dialect (``SQLITE`` and ``POSTGRES`` lists). One schema, one version number for both.

``upgrade(backend)`` applies the missing versions in order, in ONE transaction that holds the migration lock:
two replicas starting at once apply each version once, and a failure leaves the database at its old version.
To change the schema, add the next numbered module; never edit one that has shipped.
"""
from __future__ import annotations

import importlib
import pkgutil
import re
import time
from dataclasses import dataclass

from tutor.errors import ProgressError

_MODULE = re.compile(r"^m(\d{4})_(\w+)$")
LOCK = "prompt-tutor schema migrations"
VERSION_TABLE = ("CREATE TABLE IF NOT EXISTS schema_version "
                 "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: dict[str, list[str]]  # dialect -> statements

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"


def discover() -> list[Migration]:
    found = []
    for info in pkgutil.iter_modules(__path__):
        match = _MODULE.match(info.name)
        if match:
            module = importlib.import_module(f"{__name__}.{info.name}")
            found.append(Migration(int(match.group(1)), match.group(2),
                                   {"sqlite": list(module.SQLITE), "postgres": list(module.POSTGRES)}))
    found.sort(key=lambda m: m.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migration numbers must run 1, 2, 3... without gaps: {[m.label for m in found]}")
    return found


MIGRATIONS = discover()
LATEST = MIGRATIONS[-1].version


def current_version(backend) -> int:
    with backend.transaction(write=True, lock=LOCK) as tx:
        tx.run(VERSION_TABLE)
        return tx.rows("SELECT COALESCE(MAX(version), 0) FROM schema_version")[0][0]


def upgrade(backend) -> list[str]:
    """Bring the schema to LATEST; returns the labels of the migrations applied (empty when up to date)."""
    applied = []
    with backend.transaction(write=True, lock=LOCK) as tx:
        tx.run(VERSION_TABLE)
        done = {row[0] for row in tx.rows("SELECT version FROM schema_version")}
        if done and max(done) > LATEST:
            raise ProgressError(
                f"the progress database ({backend.describe()}) is at schema version {max(done)}, newer than this "
                f"tutor knows ({LATEST}): a newer release upgraded it. Run that release (or a newer one) here too.")
        for migration in MIGRATIONS:
            if migration.version in done:
                continue
            for statement in migration.statements[backend.dialect]:
                tx.run(statement)
            tx.run("INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                   (migration.version, migration.name, time.time()))
            applied.append(migration.label)
    return applied
