"""The tutor's own prompt templates: one file per task under ``prompts/``, rendered strictly.

Templates are Jinja with ``StrictUndefined``: rendering without a variable the template uses raises a
``PromptError`` naming the template and the variable, instead of silently sending a broken prompt. The same
``render`` serves the app and training (tutor.finetune.train), so a model is trained on the format it is served with.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import jinja2

from tutor.config import ROOT
from tutor.errors import PromptError

PROMPTS_DIR = ROOT / "prompts"


@lru_cache(maxsize=None)
def _environment(folder: str) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
        autoescape=False,  # prompts are plain text for a model, not HTML
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(name: str, folder: Path = PROMPTS_DIR, **variables) -> str:
    """Render ``prompts/<name>.md`` with ``variables``; every variable the template uses must be given."""
    try:
        template = _environment(str(folder)).get_template(f"{name}.md")
    except jinja2.TemplateNotFound:
        raise PromptError(f"Prompt template {folder / (name + '.md')} does not exist.") from None
    try:
        return template.render(**variables).strip()
    except jinja2.UndefinedError as exc:
        raise PromptError(f"Prompt template {name}.md needs a variable that was not given: {exc.message}.") from None
