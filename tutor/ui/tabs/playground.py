"""The Playground tab: any prompt, every generation setting, and the exact text the model received."""
from __future__ import annotations

import gradio as gr

from tutor import playground
from tutor.errors import TutorError
from tutor.models import ChatModel, GenerationSettings
from tutor.ui.common import MODEL_QUEUE, gpu, text_of


def build(model: ChatModel, concurrency: int) -> None:
    @gpu
    def run_playground(system, prompt, max_new_tokens, temperature, top_k, top_p,
                       repetition_penalty, frequency_penalty, presence_penalty, stop, seed):
        try:
            settings = GenerationSettings(
                max_new_tokens=int(max_new_tokens), temperature=float(temperature), top_k=int(top_k),
                top_p=float(top_p), repetition_penalty=float(repetition_penalty),
                frequency_penalty=float(frequency_penalty), presence_penalty=float(presence_penalty),
                stop=playground.parse_stops(stop), seed=int(seed) if seed not in (None, "", -1) else None,
            )
            for state in playground.run(model, text_of(system), text_of(prompt), settings):
                yield state.reply, state.rendered, state.counts_markdown()
        except (ValueError, TutorError) as exc:
            yield f"Cannot run: {exc}", "", ""

    with gr.Tab("Playground", id="playground"):
        gr.Markdown("Run any prompt on the model. Every generation setting is here; the box on the right shows "
                    "the exact text the model received, with its chat template applied.")
        with gr.Row():
            with gr.Column(scale=3):
                system = gr.Textbox(label="System message (optional)", lines=2)
                prompt = gr.Textbox(label="Prompt", lines=6, placeholder="Summarize the text in ```...```")
                run_btn = gr.Button("Run", variant="primary")
                output = gr.Textbox(label="Model output", lines=8, interactive=False)
                counts = gr.Markdown()
            with gr.Column(scale=2):
                max_new = gr.Slider(1, 1024, value=128, step=1, label="Max new tokens")
                temperature = gr.Slider(0, 2, value=0.7, step=0.05, label="Temperature (0 = greedy)")
                top_k = gr.Slider(0, 200, value=50, step=1, label="Top-k (0 = off)")
                top_p = gr.Slider(0.05, 1, value=0.95, step=0.05, label="Top-p (1 = off)")
                repetition = gr.Slider(0.5, 2, value=1.0, step=0.05, label="Repetition penalty (1 = off)")
                frequency = gr.Slider(0, 2, value=0, step=0.05, label="Frequency penalty")
                presence = gr.Slider(0, 2, value=0, step=0.05, label="Presence penalty")
                stop = gr.Textbox(label="Stop sequences (one per line)", lines=2)
                seed = gr.Number(label="Seed (-1 = random)", value=-1, precision=0)
        rendered = gr.Code(label="Exact text sent to the model", language=None, interactive=False)
        run_btn.click(
            run_playground,
            [system, prompt, max_new, temperature, top_k, top_p, repetition, frequency, presence, stop, seed],
            [output, rendered, counts],
            api_name="playground",
            concurrency_limit=concurrency,
            concurrency_id=MODEL_QUEUE,
        )
