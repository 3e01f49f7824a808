"""The Next token tab: the model's candidates for the next token, and stepping token by token."""
from __future__ import annotations

import gradio as gr

from tutor import instruments
from tutor.errors import TutorError
from tutor.models import Inspector
from tutor.ui.common import BadInput, gpu, number, text_of

EXAMPLE_PROMPT = "The best way to learn prompt engineering is to"


def build(model: Inspector, limits: dict, max_chars: int) -> None:
    def shaping(temperature, top_k, top_p) -> dict:
        return dict(temperature=number(temperature, "Temperature", 0, 2), top_k=number(top_k, "Top-k", 0, 200, whole=True),
                    top_p=number(top_p, "Top-p", 0.01, 1))

    @gpu
    def distribution(text, temperature, top_k, top_p):
        try:
            text, options = text_of(text, max_chars), shaping(temperature, top_k, top_p)
            if not text.strip():
                raise BadInput("Write some text first: the model predicts the token that comes after it.")
            candidates = model.next_token(text, show=10, **options)
        except (ValueError, TutorError) as exc:  # BadInput is a ValueError
            return {}, f"Cannot show the next token: {exc}", gr.update(choices=[])
        note = (f"Entropy of these candidates: **{instruments.entropy(candidates):.2f} nats** "
                "(higher = flatter, more random). Probabilities are after temperature, top-k and top-p.")
        choices = [(f"{instruments.visible(c['token'])} ({c['prob']:.1%})", c["id"]) for c in candidates]
        return instruments.label_data(candidates), note, gr.update(choices=choices, value=choices[0][1] if choices else None)

    @gpu
    def step(text, temperature, top_k, top_p, chosen, mode):
        try:
            text, options = text_of(text, max_chars), shaping(temperature, top_k, top_p)
            if mode == "pick" and chosen is not None:
                token = model.decode_token(number(chosen, "Candidate", 0, 10_000_000, whole=True))
            else:
                token = model.sample_next(text, seed=None, **options)["token"]
        except (ValueError, TutorError) as exc:
            return text if isinstance(text, str) else "", {}, f"Cannot take a step: {exc}", gr.update(choices=[])
        text += token
        return (text, *distribution(text, temperature, top_k, top_p))

    with gr.Tab("Next token", id="next-token"):
        gr.Markdown("The model's candidates for the **next token**, after temperature, top-k and top-p. Move the "
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
                show_btn = gr.Button("Show next-token probabilities", variant="primary")
                chosen = gr.Dropdown(label="Candidate to append", choices=[])
                with gr.Row():
                    pick_btn = gr.Button("Append chosen token")
                    sample_btn = gr.Button("Let the model sample")
        dist_io = ([nt_text, nt_temp, nt_topk, nt_topp], [chart, nt_note, chosen])
        show_btn.click(distribution, *dist_io, api_name="next_token", **limits)
        for control in (nt_temp, nt_topk, nt_topp):
            control.release(distribution, *dist_io, api_visibility="private", **limits)
        pick_btn.click(lambda *a: step(*a, "pick"), [nt_text, nt_temp, nt_topk, nt_topp, chosen],
                       [nt_text, chart, nt_note, chosen], api_name="step_pick", **limits)
        sample_btn.click(lambda *a: step(*a, None, "sample"), [nt_text, nt_temp, nt_topk, nt_topp],
                         [nt_text, chart, nt_note, chosen], api_name="step_sample", **limits)
