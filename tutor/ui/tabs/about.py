"""About the model: what is loaded, and the shipped adapter's training curve and evaluation figures."""
from __future__ import annotations

import json
from pathlib import Path

import gradio as gr

from tutor.models import ModelInfo


def adapter_figures(folder: Path) -> str:
    """Markdown of the adapter's eval.json (base vs adapter), or a line saying there are none."""
    try:
        result = json.loads((folder / "eval.json").read_text())
        base, tuned = result["base"], result["adapter"]
    except (OSError, ValueError, KeyError):
        return "No evaluation figures are stored with this adapter (`tutor eval adapter --save` writes them)."
    return "\n".join([
        f"Measured on {result.get('validation_records', '?')} validation records "
        f"({result.get('decoding', 'greedy')}):", "",
        "| | validation loss (lower is better) | ROUGE-L vs reference replies (higher is better) |",
        "|---|---|---|",
        f"| base model | {base['loss']:.3f} | {base['rougeL']:.3f} |",
        f"| base + adapter | {tuned['loss']:.3f} | {tuned['rougeL']:.3f} |",
    ])


def build(info: ModelInfo, adapters_dir: Path) -> None:
    with gr.Accordion("About the model", open=False):
        backend = f", served by {info.backend}" if info.backend else ""
        lines = [f"**{info.name}** on {info.device} ({info.dtype}{backend}); context window "
                 f"{info.context_window:,} tokens, prompts capped at {info.max_prompt_tokens:,} "
                 "(`TUTOR_MAX_PROMPT_TOKENS`)."]
        if not info.adapter:
            gr.Markdown(" ".join(lines + ["No fine-tuned adapter is loaded."]))
            return
        folder = adapters_dir / info.adapter
        gr.Markdown(" ".join(lines + [f"Fine-tuned with the LoRA adapter `{info.adapter}` (its model card is "
                                      f"`adapters/{info.adapter}/README.md`)."]) + "\n\n" + adapter_figures(folder))
        curve = folder / "loss_curve.png"
        if curve.is_file():
            gr.Image(str(curve), label="Training and validation loss", show_label=True, interactive=False,
                     height=300)
