"""Hugging Face Spaces entry point: builds `demo` at module level; `python app.py` serves it locally.

On a Space, set TUTOR_MODEL / TUTOR_ADAPTER in the Space's variables (see README, "Deploy to Spaces")."""
import logging
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from tutor import ui  # noqa: E402
from tutor.config import Settings  # noqa: E402
from tutor.errors import TutorError  # noqa: E402
from tutor.runtime import build_tutor  # noqa: E402

try:
    settings = Settings.from_env()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    demo = ui.build_app(build_tutor(settings))
except TutorError as exc:  # a setting we cannot use: one line that names it, no traceback
    raise SystemExit(f"error: {exc}") from None

if __name__ == "__main__":
    ui.launch(demo)
