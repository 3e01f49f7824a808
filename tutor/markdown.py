"""Showing text inside Markdown code blocks without the text breaking the block."""
from __future__ import annotations

import re


def fenced(text: str) -> str:
    """``text`` in a fenced code block whose fence is longer than any run of backticks inside it, so a solution
    or lesson material that itself uses ``` (a delimiter lesson does) shows whole instead of closing the block."""
    longest = max((len(run) for run in re.findall(r"`{3,}", text)), default=2)
    fence = "`" * (longest + 1)
    return f"{fence}\n{text}\n{fence}"
