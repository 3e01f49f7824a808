"""Composition root: build a ready Tutor from Settings. Used by app.py and the CLI; nothing else imports it."""
from __future__ import annotations

import logging

from tutor.config import Settings
from tutor.model import ChatModel, load_model
from tutor.tutor import Tutor

log = logging.getLogger(__name__)


def build_tutor(settings: Settings, model: ChatModel | None = None) -> Tutor:
    """Load the model (unless given) and everything the tutor serves."""
    model = model or load_model(settings)
    return Tutor(settings, model)
