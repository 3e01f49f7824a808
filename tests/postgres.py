"""A real PostgreSQL server for the tests, from Debian's `postgresql` package, on a free loopback port.

The server refuses to run as root, so as root it runs as the `postgres` user (`runuser`), in a data
directory of its own under /tmp (pytest's tmp_path is private to root). ``running_postgres()`` always
stops it and removes the directory. Durability settings are relaxed (fsync off): the tests kill app
replicas, never the database server, so they lose nothing they check.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from tests.conftest import free_port


def bin_dir() -> Path | None:
    """Debian keeps the server binaries off PATH, under /usr/lib/postgresql/<major>/bin."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _as_server_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@contextmanager
def running_postgres() -> Iterator[str]:
    """Start a throwaway server; yields the superuser URL of its `postgres` database."""
    bindir = bin_dir()
    if bindir is None:
        raise RuntimeError("no PostgreSQL server binaries: `apt-get install postgresql`")
    root = Path(tempfile.mkdtemp(prefix="tutor-pg-"))
    data, sockets = root / "data", root / "sock"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    port = free_port()
    run = dict(check=True, capture_output=True, text=True, timeout=120)
    pg_ctl = [str(bindir / "pg_ctl"), "-D", str(data)]
    try:
        try:
            subprocess.run(_as_server_user([str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
                                            "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"]), **run)
            options = (f"-p {port} -k {sockets} -h 127.0.0.1 -c fsync=off -c full_page_writes=off "
                       "-c synchronous_commit=off -c max_connections=200")
            subprocess.run(_as_server_user([*pg_ctl, "-o", options, "-w", "-t", "60", "-l", str(root / "server.log"),
                                            "start"]), **run)
        except subprocess.CalledProcessError as exc:
            log = (root / "server.log").read_text() if (root / "server.log").exists() else ""
            raise RuntimeError(f"PostgreSQL did not start: {exc.stderr}\n{log}") from None
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(_as_server_user([*pg_ctl, "-m", "immediate", "-w", "stop"]), capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def new_database(server_url: str) -> str:
    """A fresh, empty database on the server; returns its URL."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as db:
        db.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + "/" + name
