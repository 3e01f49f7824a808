"""The Next token tab: the model's candidates for the next token, and stepping token by token."""
from __future__ import annotations

import gradio as gr

from tutor import instruments
from tutor.errors import TutorError
from tutor.models import Inspector
from tutor.ui.common import BadInput, gpu, number, text_of

EXAMPLE_PROMPT = "The best way to learn prompt engineering is to"


def build(model: Inspector, limits: dict, max_chars: int) -> None:
    def shaping(temperature, top_k, top_p, min_p, repetition) -> dict:
        return dict(temperature=number(temperature, "Temperature", 0, 2), top_k=number(top_k, "Top-k", 0, 200, whole=True),
                    top_p=number(top_p, "Top-p", 0.01, 1), min_p=number(min_p, "Min-p", 0, 0.99),
                    repetition_penalty=number(repetition, "Repetition penalty", 0.5, 2))

    @gpu
    def distribution(text, temperature, top_k, top_p, min_p=0.0, repetition=1.0):
        try:
            text, options = text_of(text, max_chars), shaping(temperature, top_k, top_p, min_p, repetition)
            if not text.strip():
                raise BadInput("Write some text first: the model predicts the token that comes after it.")
            candidates = model.next_token(text, show=10, **options)
        except (ValueError, TutorError) as exc:  # BadInput is a ValueError
            return {}, f"Cannot show the next token: {exc}", gr.update(choices=[])
        note = (f"Entropy of these candidates: **{instruments.entropy(candidates):.2f} nats** "
                "(higher = flatter, more random). These are the probabilities the model samples with: "
                "transformers' own repetition penalty, temperature, top-k, top-p and min-p, in generate's order.")
        choices = [(f"{instruments.visible(c['token'])} ({c['prob']:.1%})", c["id"]) for c in candidates]
        return instruments.label_data(candidates), note, gr.update(choices=choices, value=choices[0][1] if choices else None)

    @gpu
    def step(text, temperature, top_k, top_p, min_p, repetition, chosen, mode):
        try:
            text, options = text_of(text, max_chars), shaping(temperature, top_k, top_p, min_p, repetition)
            if mode == "pick" and chosen is not None:
                token = model.decode_token(number(chosen, "Candidate", 0, 10_000_000, whole=True))
            else:
                token = model.sample_next(text, seed=None, **options)["token"]
        except (ValueError, TutorError) as exc:
            return text if isinstance(text, str) else "", {}, f"Cannot take a step: {exc}", gr.update(choices=[])
        text += token
        return (text, *distribution(text, temperature, top_k, top_p, min_p, repetition))

    with gr.Tab("Next token", id="next-token"):
        gr.Markdown("The model's candidates for the **next token**, shaped exactly as sampling shapes them. Move the "
                    "temperature: low values sharpen the distribution, high values flatten it. Step token by token "
                    "by picking a candidate or letting the model sample.")
        with gr.Row():
            with gr.Column(scale=3):
                nt_text = gr.Textbox(label="Text so far", value=EXAMPLE_PROMPT, lines=4)
                chart = gr.Label(label="Next-token probabilities", num_top_classes=10)
                nt_note = gr.Markdown()
            with gr.Column(scale=2):
                nt_temp = gr.Slider(0, 2, value=1.0, step=0.05, label="Temperature")
                nt_topk = gr.Slider(0, 100, value=0, step=1, label="Top-k (0 = off)")
                nt_topp = gr.Slider(0.05, 1, value=1.0, step=0.05, label="Top-p (1 = off)")
                nt_minp = gr.Slider(0, 0.5, value=0, step=0.01, label="Min-p (0 = off)")
                nt_rep = gr.Slider(0.5, 2, value=1.0, step=0.05, label="Repetition penalty (1 = off)")
                show_btn = gr.Button("Show next-token probabilities", variant="primary")
                chosen = gr.Dropdown(label="Candidate to append", choices=[])
                with gr.Row():
                    pick_btn = gr.Button("Append chosen token")
                    sample_btn = gr.Button("Let the model sample")
        controls = [nt_temp, nt_topk, nt_topp, nt_minp, nt_rep]
        dist_io = ([nt_text, *controls], [chart, nt_note, chosen])
        show_btn.click(distribution, *dist_io, api_name="next_token", **limits)
        for control in controls:
            control.release(distribution, *dist_io, api_visibility="private", **limits)
        pick_btn.click(lambda *a: step(*a, "pick"), [nt_text, *controls, chosen],
                       [nt_text, chart, nt_note, chosen], api_name="step_pick", **limits)
        sample_btn.click(lambda *a: step(*a, None, "sample"), [nt_text, *controls],
                         [nt_text, chart, nt_note, chosen], api_name="step_sample", **limits)
