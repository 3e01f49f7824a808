"""`tutor eval adapter`: does the trained adapter help? Base model versus base + adapter on the validation split.

Two figures for each: the validation loss on the reply tokens (teacher forcing, the quantity training
minimises) and ROUGE-L of greedy generations against the reference replies (what a learner would read).
The model is loaded once with its adapter; the base figures come from peft's ``disable_adapter()``, so both
sides see the exact same weights, prompts and decoding.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import torch
from tqdm import tqdm

from tutor.config import Settings
from tutor.finetune import dataset
from tutor.models import GenerationSettings, complete
from tutor.rouge import rouge_many

# Greedy decoding, as the grader uses; 96 tokens cover most reference replies (median ~60 tokens) while
# keeping 2 x 24 generations to a few minutes on 2 CPU cores.
DECODE = GenerationSettings(temperature=0.0, repetition_penalty=1.1, max_new_tokens=96)


def validation_loss(model, tokenizer, records: list[dict], max_length: int = 512, label: str = "") -> float:
    """Token-weighted mean cross-entropy over the reply tokens of every record that fits ``max_length``."""
    encoded, _ = dataset.encode_all(records, tokenizer, max_length)
    total, count = 0.0, 0
    with torch.inference_mode():
        for item in tqdm(encoded, desc=f"{label} loss", unit="record", disable=not label):
            ids = torch.tensor([item["input_ids"]], device=model.device)
            labels = torch.tensor([item["labels"]], device=model.device)
            n = int((labels[:, 1:] != dataset.IGNORE_INDEX).sum())  # the model predicts token t+1 from t
            total += float(model(input_ids=ids, labels=labels).loss) * n
            count += n
    return total / max(1, count)


def generation_rouge(chat_model, records: list[dict], label: str = "") -> float:
    predictions = [complete(chat_model, r["messages"][:-1], DECODE)
                   for r in tqdm(records, desc=f"{label} ROUGE-L", unit="reply", disable=not label)]
    references = [[r["messages"][-1]["content"]] for r in records]
    return rouge_many(predictions, references)["rougeL"]


def evaluate_adapter(settings: Settings, name: str, limit: int = 24, data_dir: Path = dataset.DATA_DIR) -> dict:
    """{"base": {"loss", "rougeL"}, "adapter": {"loss", "rougeL"}, ...} on the validation split.

    The loss uses every validation record; ROUGE-L uses the first ``limit`` (generation is the slow part)."""
    from tutor.models.hf import HFChatModel, loading

    chat_model = HFChatModel(loading.load(replace(settings, adapter=name), merge=False))  # keep it switchable
    if chat_model.info.adapter is None:
        raise loading.ModelLoadError(f"No adapter named {name!r} was loaded; see `tutor info --json`.")
    records = dataset.load_split("validation", data_dir)
    sample = records[:limit]
    peft_model = chat_model.model
    result = {}
    for side in ("base", "adapter"):
        if side == "base":
            with peft_model.disable_adapter():
                loss = validation_loss(peft_model, chat_model.tokenizer, records, label=side)
                rouge_l = generation_rouge(chat_model, sample, label=side)
        else:
            loss = validation_loss(peft_model, chat_model.tokenizer, records, label=side)
            rouge_l = generation_rouge(chat_model, sample, label=side)
        result[side] = {"loss": round(loss, 4), "rougeL": round(rouge_l, 4)}
    result.update({"adapter_name": name, "model": chat_model.info.name, "validation_records": len(records),
                   "rouge_records": len(sample), "decoding": "greedy, max 96 new tokens"})
    return result


def save(result: dict, folder: Path) -> None:
    """Keep the figures beside the adapter and in its model card."""
    (folder / "eval.json").write_text(json.dumps(result, indent=2))
    card = folder / "README.md"
    if card.is_file():
        text = card.read_text().split("\n## Evaluation")[0].rstrip()
        b, a = result["base"], result["adapter"]
        text += (
            "\n\n## Evaluation\n\n`tutor eval adapter --name {n} --json` on the validation split "
            "({v} records for the loss, the first {r} for ROUGE-L of greedy generations):\n\n"
            "| | validation loss | ROUGE-L |\n|---|---|---|\n"
            f"| base model | {b['loss']} | {b['rougeL']} |\n| base + adapter | {a['loss']} | {a['rougeL']} |\n"
        ).format(n=result["adapter_name"], v=result["validation_records"], r=result["rouge_records"])
        card.write_text(text)
