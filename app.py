"""Hugging Face Spaces entry point: `python app.py` serves the tutor (a Space runs exactly that).

With no settings it runs `TUTOR_MODEL=auto`: Mistral-7B-Instruct in 4-bit on a GPU, the embedded default on a
CPU. A status page answers on the port while the model loads (tutor.startup). Settings: README, "Configuration".
"""
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

if __name__ == "__main__":
    from tutor.startup import start_app

    start_app()
