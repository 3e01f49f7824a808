"""The Tokenizer tab: how text becomes tokens, beside a second tokenizer."""
from __future__ import annotations

import gradio as gr

from tutor import instruments
from tutor.models import Inspector
from tutor.ui.common import BadInput, text_of


def build(model: Inspector) -> None:
    def tokenize(text):
        try:
            text = text_of(text, instruments.MAX_TOKENIZER_CHARS + 1)
        except BadInput as exc:
            return [[], f"Cannot tokenize: {exc}", [], [], ""]
        note = ""
        if len(text) > instruments.MAX_TOKENIZER_CHARS:
            text = text[:instruments.MAX_TOKENIZER_CHARS]
            note = f" (the first {instruments.MAX_TOKENIZER_CHARS:,} characters: paste less to see it all)"
        pieces = model.tokenize(text)
        result = [instruments.highlighted(pieces),
                  f"**{len(pieces)} tokens** with {model.info.name}'s tokenizer{note}", instruments.token_table(pieces)]
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
