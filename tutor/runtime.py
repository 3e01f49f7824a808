"""Composition root: build a ready Tutor from Settings. Used by app.py and the CLI; nothing else imports it."""
from __future__ import annotations

import logging

from tutor.config import Settings
from tutor.models import ChatModel, load_model
from tutor.tutor import Tutor

log = logging.getLogger(__name__)


def build_course(settings: Settings, model: ChatModel):
    from tutor.course import Course
    from tutor.grading import Grader, ModelCalibration
    from tutor.progress import Progress

    grader = Grader(model, settings.max_input_chars, ModelCalibration.for_model(model.info, settings.data_dir))
    return Course(settings, grader, Progress(settings.progress_db))


def build_answerer(settings: Settings, model: ChatModel):
    """Cited answers from the readings. The index is (re)built at start when missing or stale; if that fails,
    the tutor still answers from the model alone and says why in the log."""
    from tutor.readings import retrieval
    from tutor.readings.grounding import Answerer

    try:
        retrieval.ensure_index(settings)
        return Answerer(retrieval.Retriever(settings), model)
    except Exception:
        log.exception("the readings index could not be prepared; answering without citations")
        return None


def build_tutor(settings: Settings, model: ChatModel | None = None) -> Tutor:
    """Load the model (unless given) and everything the tutor serves."""
    model = model or load_model(settings)
    return Tutor(settings, model, course=build_course(settings, model), answerer=build_answerer(settings, model))
