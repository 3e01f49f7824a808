"""Composition root: build a ready Tutor from Settings. Used by app.py and the CLI; nothing else imports it."""
from __future__ import annotations

import logging

from tutor.config import Settings
from tutor.models import ChatModel, answer_mode, load_model
from tutor.tutor import Tutor

log = logging.getLogger(__name__)


def build_course(settings: Settings, model: ChatModel, progress=None, retriever=None):
    from tutor.course import Course
    from tutor.grading import Grader, ModelCalibration
    from tutor.progress import open_progress
    from tutor.tutoring.hints import Coach

    explain = None
    if retriever is not None:
        from tutor.readings.grounding import explain as from_readings

        def explain(query: str):
            return from_readings(retriever, query)
    grader = Grader(model, settings.max_input_chars, ModelCalibration.for_model(model.info, settings.data_dir))
    return Course(settings, grader, progress or open_progress(settings), coach=Coach(explain=explain))


def build_answerer(settings: Settings, model: ChatModel):
    """Cited answers from the readings. The index is (re)built at start when missing or stale; if that fails,
    the tutor still answers from the model alone and says why in the log."""
    from tutor.readings import retrieval
    from tutor.readings.grounding import Answerer

    try:
        retrieval.ensure_index(settings)
        mode = answer_mode(settings.answer_mode, model.info)
        log.info("answering from the readings in %s mode", mode)
        return Answerer(retrieval.Retriever(settings), model, mode=mode, max_new_tokens=settings.max_new_tokens)
    except Exception:
        log.exception("the readings index could not be prepared; answering without citations")
        return None


def build_moves(course, retriever):
    """The message classifier, on the course's own vocabulary: reading headings, lesson titles, objectives and
    reading topics."""
    from tutor.tutoring.moves import Classifier

    texts = list(retriever.headings()) if retriever is not None else []
    if course is not None:
        texts += [t for lesson in course.lessons for t in (lesson.title, *lesson.objectives, *lesson.reading_topics)]
    relevance = None
    if retriever is not None:
        def relevance(text: str) -> float:
            hits = retriever.search(text, k=1)
            return hits[0].score if hits else 0.0
    return Classifier(texts, relevance=relevance, terms=retriever.terms() if retriever is not None else set())


def build_tutor(settings: Settings, model: ChatModel | None = None) -> Tutor:
    """Load the model (unless given) and everything the tutor serves."""
    from tutor.progress import open_progress

    progress = open_progress(settings)  # first: a wrong TUTOR_DATABASE_URL fails in seconds, not after the model
    model = model or load_model(settings)
    answerer = build_answerer(settings, model)
    retriever = answerer.retriever if answerer is not None else None
    course = build_course(settings, model, progress, retriever)
    return Tutor(settings, model, course=course, answerer=answerer, moves=build_moves(course, retriever))
