"""The instrument tabs: Next token, Tokenizer, Compare prompts. Built inside build_app's Blocks."""
from __future__ import annotations

import gradio as gr

from tutor import instruments
from tutor.errors import TutorError
from tutor.models import GenerationSettings, Inspector

EXAMPLE_PROMPT = "The best way to learn prompt engineering is to"


def add_tabs(model: Inspector, gpu, concurrency: int) -> None:
    limits = dict(concurrency_limit=concurrency)

    # -- next token -------------------------------------------------------------------------------------
    @gpu
    def distribution(text, temperature, top_k, top_p):
        if not (text or "").strip():
            return {}, "Write some text first: the model predicts the token that comes after it.", gr.update(choices=[])
        candidates = model.next_token(text, temperature=float(temperature), top_k=int(top_k), top_p=float(top_p),
                                      show=10)
        note = (f"Entropy of these candidates: **{instruments.entropy(candidates):.2f} nats** "
                "(higher = flatter, more random). Probabilities are after temperature, top-k and top-p.")
        choices = [(f"{instruments.visible(c['token'])} ({c['prob']:.1%})", c["id"]) for c in candidates]
        return instruments.label_data(candidates), note, gr.update(choices=choices, value=choices[0][1] if choices else None)

    @gpu
    def step(text, temperature, top_k, top_p, chosen, mode):
        text = text or ""
        if mode == "pick" and chosen is not None:
            token = model.decode_token(int(chosen))
        else:
            token = model.sample_next(text, temperature=float(temperature), top_k=int(top_k), top_p=float(top_p),
                                      seed=None)["token"]
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

    # -- tokenizer --------------------------------------------------------------------------------------
    def tokenize(text):
        text = text or ""
        pieces = model.tokenize(text)
        result = [instruments.highlighted(pieces), f"**{len(pieces)} tokens** with {model.info.name}'s tokenizer",
                  instruments.token_table(pieces)]
        other = model.compare_tokenize(text)
        if other:
            name, other_pieces = other
            result += [instruments.highlighted(other_pieces), f"**{len(other_pieces)} tokens** with the {name}"]
        else:
            result += [[], "No second tokenizer is available offline on this machine."]
        return result

    with gr.Tab("Tokenizer", id="tokenizer"):
        gr.Markdown("How text becomes tokens. Each coloured piece is one token; the table lists the ids.")
        tk_text = gr.Textbox(label="Text", lines=3, value="Tokenizers split unbelievable words, numbers like "
                                                          "31415 and emoji 🙂 into pieces.")
        tk_btn = gr.Button("Tokenize", variant="primary")
        tk_count = gr.Markdown()
        tk_view = gr.HighlightedText(label="Tokens (this model)", combine_adjacent=False, show_legend=False)
        tk_table = gr.Dataframe(headers=["#", "token", "id"], label="Token ids", interactive=False)
        tk_other_count = gr.Markdown()
        tk_other = gr.HighlightedText(label="Tokens (comparison tokenizer)", combine_adjacent=False, show_legend=False)
        tk_btn.click(tokenize, [tk_text], [tk_view, tk_count, tk_table, tk_other, tk_other_count], api_name="tokens")

    # -- compare prompts and sequence probability -------------------------------------------------------
    @gpu
    def compare(prompt_a, prompt_b, material, max_new_tokens, temperature):
        settings = GenerationSettings(max_new_tokens=int(max_new_tokens), temperature=float(temperature), seed=0)
        try:
            for state in instruments.compare(model, prompt_a, prompt_b, material, settings):
                yield state.a.output, state.b.output, instruments.summary_markdown(state)
        except (ValueError, TutorError) as exc:
            yield "", "", f"Cannot run: {exc}"

    @gpu
    def logprob(prompt, response):
        try:
            return instruments.logprob_markdown(model.sequence_logprob(prompt or "", response or ""))
        except (ValueError, TutorError) as exc:
            return f"Cannot run: {exc}"

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
            out_a = gr.Textbox(label="Output A", lines=8, interactive=False)
            out_b = gr.Textbox(label="Output B", lines=8, interactive=False)
        cmp_summary = gr.Markdown()
        cmp_btn.click(compare, [prompt_a, prompt_b, material, cmp_tokens, cmp_temp], [out_a, out_b, cmp_summary],
                      api_name="compare", **limits)
        with gr.Accordion("Sequence probability: how likely is a given response?", open=False):
            lp_prompt = gr.Textbox(label="Prompt", value="What is the capital of France?")
            lp_response = gr.Textbox(label="Response", value="Paris")
            lp_btn = gr.Button("Score the response")
            lp_out = gr.Markdown()
            lp_btn.click(logprob, [lp_prompt, lp_response], [lp_out], api_name="logprob", **limits)
