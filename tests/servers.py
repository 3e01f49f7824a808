"""Real server processes for end-to-end tests: started on loopback on a free port, waited for on their health
URL, and always stopped (the whole process group), whatever the test did."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tutor.loadtest import stop_group

BIN = Path(sys.executable).parent  # the virtualenv's console scripts (transformers, chroma)


@contextmanager
def running(command: list[str], health_url: str, log_path: Path, timeout_s: float = 180.0, env: dict | None = None):
    """Run ``command`` until the block ends; yields once ``health_url`` answers 200. On a start failure the test
    fails with the tail of the server's log."""
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                   env={**os.environ, **(env or {})})
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                pytest.fail(f"{command[0]} exited with {process.returncode} before answering:\n{_tail(log_path)}")
            try:
                if httpx.get(health_url, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"{health_url} did not answer within {timeout_s:.0f} s:\n{_tail(log_path)}")
            time.sleep(0.25)
        yield process
    finally:
        stop(process)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM to the server's process group, SIGKILL after 10 s."""
    stop_group(process, grace_s=10)


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
