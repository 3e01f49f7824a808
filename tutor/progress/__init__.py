"""Learner progress: attempts, hints and completed lessons, in SQLite (embedded default) or PostgreSQL
(``TUTOR_DATABASE_URL``, shared by several replicas). ``open_progress(settings)`` picks the store."""
from tutor.progress.store import Attempt, Progress, learner_id, open_progress

__all__ = ["Attempt", "Progress", "learner_id", "open_progress"]
