"""Reading a file a command was given, with an error that names it."""
from __future__ import annotations

from tutor.errors import TutorError


def read_text_file(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise TutorError(f"cannot read {path}: {exc}") from exc
