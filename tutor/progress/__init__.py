"""Learner progress: attempts, hints and completed lessons, in SQLite (embedded default) or PostgreSQL."""
from tutor.progress.store import Progress, learner_id

__all__ = ["Progress", "learner_id"]
