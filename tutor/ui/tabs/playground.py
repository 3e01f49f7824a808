"""The Playground tab: any prompt, every generation setting, and the exact text the model received."""
from __future__ import annotations

import gradio as gr

from tutor import playground
from tutor.errors import TutorError
from tutor.models import ChatModel, GenerationSettings
from tutor.ui.common import gpu, number, text_of

# 1,024 new tokens: a long answer, ~60 s of decoding on the 2-core CPU at ~16 tok/s; more would hold the one
# model for minutes. The stop field holds at most 8 sequences of 64 characters (GenerationSettings' limits).
MAX_NEW_TOKENS = 1024
MAX_STOP_FIELD = 8 * 66


def build(model: ChatModel, limits: dict, max_chars: int) -> None:
    @gpu
    def run_playground(system, prompt, max_new_tokens, temperature, top_k, top_p,
                       repetition_penalty, frequency_penalty, presence_penalty, stop, seed):
        try:
            seed = number(-1 if seed in (None, "") else seed, "Seed", -1, 2**32 - 1, whole=True)
            settings = GenerationSettings(
                max_new_tokens=number(max_new_tokens, "Max new tokens", 1, MAX_NEW_TOKENS, whole=True),
                temperature=number(temperature, "Temperature", 0, 2),
                top_k=number(top_k, "Top-k", 0, 200, whole=True),
                top_p=number(top_p, "Top-p", 0.01, 1),
                repetition_penalty=number(repetition_penalty, "Repetition penalty", 0.5, 2),
                frequency_penalty=number(frequency_penalty, "Frequency penalty", 0, 2),
                presence_penalty=number(presence_penalty, "Presence penalty", 0, 2),
                stop=playground.parse_stops(text_of(stop, MAX_STOP_FIELD)),
                seed=None if seed == -1 else seed,
            )
            for state in playground.run(model, text_of(system, max_chars), text_of(prompt, max_chars), settings):
                yield state.reply, state.rendered, state.counts_markdown()
        except (ValueError, TutorError) as exc:  # BadInput is a ValueError
            yield f"Cannot run: {exc}", "", ""

    with gr.Tab("Playground", id="playground"):
        gr.Markdown("Run any prompt on the model. Every generation setting is here; the box below the settings shows "
                    "the exact text the model received, with its chat template applied.")
        with gr.Row():
            with gr.Column(scale=3):
                system = gr.Textbox(label="System message (optional)", lines=2)
                prompt = gr.Textbox(label="Prompt", lines=6, placeholder="Summarize the text in ```...```")
                run_btn = gr.Button("Run", variant="primary")
                output = gr.Textbox(label="Model output", lines=8, interactive=False, buttons=["copy"])
                counts = gr.Markdown()
            with gr.Column(scale=2):
                max_new = gr.Slider(1, MAX_NEW_TOKENS, value=128, step=1, label="Max new tokens")
                temperature = gr.Slider(0, 2, value=0.7, step=0.05, label="Temperature (0 = greedy)")
                top_k = gr.Slider(0, 200, value=50, step=1, label="Top-k (0 = off)")
                top_p = gr.Slider(0.05, 1, value=0.95, step=0.05, label="Top-p (1 = off)")
                repetition = gr.Slider(0.5, 2, value=1.0, step=0.05, label="Repetition penalty (1 = off)")
                frequency = gr.Slider(0, 2, value=0, step=0.05, label="Frequency penalty")
                presence = gr.Slider(0, 2, value=0, step=0.05, label="Presence penalty")
                stop = gr.Textbox(label="Stop sequences (one per line)", lines=2)
                seed = gr.Number(label="Seed (-1 = random)", value=-1)  # checked in the handler, not by Gradio
        rendered = gr.Code(label="Exact text sent to the model", language=None, interactive=False)
        run_btn.click(
            run_playground,
            [system, prompt, max_new, temperature, top_k, top_p, repetition, frequency, presence, stop, seed],
            [output, rendered, counts],
            api_name="playground",
            **limits,
        )
