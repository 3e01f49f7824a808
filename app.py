"""Hugging Face Spaces entry point: `python app.py` serves the tutor; importing it builds `demo` (for `gradio app.py`).

With no settings it runs `TUTOR_MODEL=auto`: Mistral-7B-Instruct in 4-bit on a GPU, the embedded default on a
CPU. A status page answers on the port while the model loads (tutor.startup). Settings: README, "Configuration".
"""
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

if __name__ == "__main__":
    from tutor.startup import start_app

    start_app()
else:
    import logging

    from tutor import ui
    from tutor.config import Settings
    from tutor.errors import TutorError
    from tutor.runtime import build_tutor

    try:
        settings = Settings.from_env()
        logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        demo = ui.build_app(build_tutor(settings, fallback=True))
    except TutorError as exc:  # a setting we cannot use: one line that names it, no traceback
        raise SystemExit(f"error: {exc}") from None
