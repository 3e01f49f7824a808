"""Composition root: build a ready Tutor from Settings. Used by app.py and the CLI; nothing else imports it."""
from __future__ import annotations

import logging
from dataclasses import replace
from typing import Callable

from tutor.config import EMBEDDED, Settings
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


def unavailable(exc: BaseException, settings: Settings) -> tuple[str, str] | None:
    """When the model failed to load because it is not available here (gated without a token, not on the Hub or
    not downloadable, out of GPU memory): (why, in a few words for learners; what the operator should set, for
    the log). None for any other failure: a wrong setting must stop the app, not be papered over."""
    chain, seen = [], exc
    while seen is not None and len(chain) < 8:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    names = {type(e).__name__ for e in chain}
    model = settings.model
    if "GatedRepoError" in names:
        return ("access to it on the Hugging Face Hub needs a token",
                f"accept {model}'s terms on the Hub and add a token that may read it as the HF_TOKEN secret, "
                "or set TUTOR_MODEL to another model")
    if {"RepositoryNotFoundError", "RevisionNotFoundError"} & names:
        return ("it is not on the Hugging Face Hub (or is private)",
                f"check TUTOR_MODEL={model!r}; for a private model add a token that may read it as HF_TOKEN")
    if {"LocalEntryNotFoundError", "OfflineModeIsEnabled"} & names:
        return ("it could not be downloaded here",
                "let this machine reach the Hugging Face Hub, or put the model in the cache, or set TUTOR_MODEL")
    if "OutOfMemoryError" in names:
        return ("there is not enough GPU memory",
                "choose a GPU with more memory, keep TUTOR_4BIT=auto (4-bit), or set a smaller TUTOR_MODEL")
    return None


def load_model_or_embedded(settings: Settings) -> tuple[ChatModel, Settings, str]:
    """The model the settings ask for, or, when it is not available here, the embedded default: (model, the
    settings it was loaded with, a one-line notice for learners, empty when nothing went wrong).

    For the app only: a command that works on one model (eval, calibrate) should fail instead of quietly using
    another. Never for a model server (`openai:`): a replica whose server is not up yet should fail and be
    restarted, not serve the small model for good. Any other failure (a wrong TUTOR_ADAPTER, TUTOR_DEVICE=cuda
    without a GPU...) stops the app with its message."""
    try:
        return load_model(settings), settings, ""
    except Exception as exc:
        problem = None if settings.model == EMBEDDED or settings.model.startswith("openai:") else \
            unavailable(exc, settings)
        if problem is None:
            raise
        why, what_to_set = problem
        log.error("%s could not load (%s); starting on the embedded default instead. To serve it: %s.",
                  settings.model, why, what_to_set)
        log.debug("the load failure", exc_info=exc)
        # On the CPU, the embedded default's tested path (llama.cpp); a GPU that just ran out of memory is left alone.
        fallback = replace(settings, model=EMBEDDED, adapter="auto", quantize="auto", backend="auto", device="cpu")
        model = load_model(fallback)
        notice = (f"This tutor is running on the small built-in model ({model.info.name}) because "
                  f"{settings.model} could not load: {why}. Answers and feedback are simpler than usual.")
        return model, fallback, notice


def build_tutor(settings: Settings, model: ChatModel | None = None, *, progress=None, fallback: bool = False,
                on_step: Callable[[str], None] | None = None) -> Tutor:
    """Load the model (unless given) and everything the tutor serves. ``fallback``: start on the embedded
    default when the model cannot load (the app); ``on_step`` hears what is being done (the status page)."""
    from tutor.progress import open_progress

    step = on_step or (lambda _: None)
    step("opening learner progress")
    progress = progress or open_progress(settings)  # first: a wrong TUTOR_DATABASE_URL fails in seconds
    notice = ""
    if model is None:
        step("loading the model")
        if fallback:
            model, settings, notice = load_model_or_embedded(settings)
        else:
            model = load_model(settings)
    step("indexing the readings")
    answerer = build_answerer(settings, model)
    retriever = answerer.retriever if answerer is not None else None
    step("loading the lessons")
    course = build_course(settings, model, progress, retriever)
    tutor = Tutor(settings, model, course=course, answerer=answerer, moves=build_moves(course, retriever))
    tutor.notice = notice
    return tutor
