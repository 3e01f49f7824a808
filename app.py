"""Hugging Face Spaces entry point: builds `demo` at module level; `python app.py` serves it locally.

On a Space, set TUTOR_MODEL / TUTOR_ADAPTER in the Space's variables (see README, "Deploy to Spaces")."""
import logging
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from tutor import ui  # noqa: E402
from tutor.config import Settings  # noqa: E402
from tutor.runtime import build_tutor  # noqa: E402

settings = Settings.from_env()
logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
demo = ui.build_app(build_tutor(settings))

if __name__ == "__main__":
    ui.launch(demo)
