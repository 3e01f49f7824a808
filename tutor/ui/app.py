"""``build_app(tutor)``: the Blocks, composed from one builder per tab, with the queue's limits."""
from __future__ import annotations

import gradio as gr

from tutor.models import inspectable
from tutor.tutor import Tutor
from tutor.ui.common import CSS
from tutor.ui.limits import limit_per_client
from tutor.ui.tabs import about, agent_lab, compare, instructor, next_token, playground, tokenizer
from tutor.ui.tabs import tutor as tutor_tab


def build_app(tutor: Tutor) -> gr.Blocks:
    info = tutor.model.info
    adapter = f" + adapter `{info.adapter}`" if info.adapter else ""
    quant = f", {info.quantization}" if info.quantization else ""
    settings = tutor.settings
    # Every event that runs the model shares one concurrency group: TUTOR_CONCURRENCY is the number of model
    # calls at once across the whole app, not per button.
    limits = dict(concurrency_limit=settings.concurrency, concurrency_id="model")
    chars = settings.max_input_chars
    # Gradio keeps uploaded and generated files in its cache; nothing here needs them for long, so every hour
    # files older than an hour go.
    with gr.Blocks(title="Prompt-engineering tutor", delete_cache=(3600, 3600)) as demo:
        gr.Markdown(
            f"# Prompt-engineering tutor\nModel: **{info.name}**{adapter} on {info.device} ({info.dtype}{quant}). "
            "Type `/help` in the chat to see the commands."
        )
        if tutor.notice:
            gr.Markdown(f"**Note:** {tutor.notice}", elem_id="model-notice")
        about.build(info, settings.adapters_dir)
        tutor_tab.build(demo, tutor, limits)
        playground.build(tutor.model, limits, chars)
        agent_lab.build(tutor, limits)
        if inspectable(tutor.model):
            next_token.build(tutor.model, limits, chars)
            tokenizer.build(tutor.model)
            compare.build(tutor.model, limits, chars)
        if settings.instructor_password and tutor.course is not None:
            instructor.build(tutor.course, settings.instructor_password, settings.calibration_file)
    demo.queue(max_size=settings.queue_size, default_concurrency_limit=settings.concurrency)
    limit_per_client(demo, settings.queue_per_client)
    return demo


# No tab takes uploads, but Gradio's upload route is always there: without a cap anyone could store files of
# any size. 1 MB is more than any text a learner pastes.
MAX_FILE_SIZE = "1mb"


def launch(demo: gr.Blocks, **kwargs):
    """Launch with the app's theme and CSS (they belong to launch() in Gradio 6) and the upload cap."""
    return demo.launch(css=CSS, theme=gr.themes.Soft(), max_file_size=MAX_FILE_SIZE, **kwargs)
