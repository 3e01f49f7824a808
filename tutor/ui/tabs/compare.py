"""The Compare prompts tab: two prompts on the same material, and the probability of a response."""
from __future__ import annotations

import gradio as gr

from tutor import instruments
from tutor.errors import TutorError
from tutor.models import GenerationSettings, Inspector
from tutor.ui.common import gpu, number, text_of


def build(model: Inspector, limits: dict, max_chars: int) -> None:
    @gpu
    def compare(prompt_a, prompt_b, material, max_new_tokens, temperature):
        try:
            settings = GenerationSettings(max_new_tokens=number(max_new_tokens, "Max new tokens", 1, 256, whole=True),
                                          temperature=number(temperature, "Temperature", 0, 2), seed=0)
            prompt_a, prompt_b, material = (text_of(t, max_chars) for t in (prompt_a, prompt_b, material))
            for state in instruments.compare(model, prompt_a, prompt_b, material, settings):
                yield state.a.output, state.b.output, instruments.summary_markdown(state)
        except (ValueError, TutorError) as exc:
            yield "", "", f"Cannot run: {exc}"

    @gpu
    def logprob(prompt, response):
        try:
            prompt, response = text_of(prompt, max_chars), text_of(response, max_chars)
            result = model.sequence_logprob(prompt, response)
            return instruments.logprob_heatmap(result), instruments.logprob_markdown(result)
        except (ValueError, TutorError) as exc:
            return [], f"Cannot run: {exc}"

    with gr.Tab("Compare prompts", id="compare"):
        gr.Markdown("Run two prompts on the same material with the same settings and see what a tactic changes. "
                    "Write `{input}` where the material goes.")
        material = gr.Textbox(label="Material ({input})", lines=3, value="The Breeze desk fan is quiet and covers the "
                              "whole desk, but its clip-on base is flimsy and fell off the shelf twice.")
        with gr.Row():
            prompt_a = gr.Textbox(label="Prompt A", lines=4, value="summarize this: {input}")
            prompt_b = gr.Textbox(label="Prompt B", lines=4, value="Summarise the review between the <review> tags "
                                  "in one sentence.\n<review>{input}</review>")
        with gr.Row():
            cmp_tokens = gr.Slider(8, 256, value=64, step=8, label="Max new tokens")
            cmp_temp = gr.Slider(0, 2, value=0, step=0.05, label="Temperature (0 = greedy)")
        cmp_btn = gr.Button("Run both", variant="primary")
        with gr.Row():
            out_a = gr.Textbox(label="Output A", lines=8, interactive=False, buttons=["copy"])
            out_b = gr.Textbox(label="Output B", lines=8, interactive=False, buttons=["copy"])
        cmp_summary = gr.Markdown()
        cmp_btn.click(compare, [prompt_a, prompt_b, material, cmp_tokens, cmp_temp], [out_a, out_b, cmp_summary],
                      api_name="compare", **limits)
        with gr.Accordion("Sequence probability: how likely is a given response?", open=False):
            lp_prompt = gr.Textbox(label="Prompt", value="What is the capital of France?")
            lp_response = gr.Textbox(label="Response", value="Paris")
            lp_btn = gr.Button("Score the response")
            lp_map = gr.HighlightedText(label="Each response token, coloured by its probability (green: expected, "
                                              "red: a surprise)", combine_adjacent=False, show_legend=False)
            lp_out = gr.Markdown()
            lp_btn.click(logprob, [lp_prompt, lp_response], [lp_map, lp_out], api_name="logprob", **limits)
