"""``build_app(tutor)``: the Blocks, composed from one builder per tab, with the queue's limits."""
from __future__ import annotations

import gradio as gr

from tutor.models import inspectable
from tutor.tutor import Tutor
from tutor.ui.common import CSS
from tutor.ui.tabs import compare, instructor, next_token, playground, tokenizer
from tutor.ui.tabs import tutor as tutor_tab


def build_app(tutor: Tutor) -> gr.Blocks:
    info = tutor.model.info
    adapter = f" + adapter `{info.adapter}`" if info.adapter else ""
    quant = f", {info.quantization}" if info.quantization else ""
    concurrency = tutor.settings.concurrency
    with gr.Blocks(title="Prompt-engineering tutor") as demo:
        gr.Markdown(
            f"# Prompt-engineering tutor\nModel: **{info.name}**{adapter} on {info.device} ({info.dtype}{quant}). "
            "Type `/help` in the chat to see the commands."
        )
        tutor_tab.build(demo, tutor)
        playground.build(tutor.model, concurrency)
        if inspectable(tutor.model):
            next_token.build(tutor.model, concurrency)
            tokenizer.build(tutor.model)
            compare.build(tutor.model, concurrency)
        if tutor.settings.instructor_password and tutor.course is not None:
            instructor.build(tutor.course, tutor.settings.instructor_password, tutor.settings.calibration_file)
    demo.queue(max_size=tutor.settings.queue_size, default_concurrency_limit=concurrency)
    return demo


def launch(demo: gr.Blocks, **kwargs):
    """Launch with the app's theme and CSS (they belong to launch() in Gradio 6)."""
    return demo.launch(css=CSS, theme=gr.themes.Soft(), **kwargs)
