"""Fine-tune the tutor: LoRA on every linear projection, over a 4-bit NF4 base where it pays (QLoRA).

    # The shipped adapter: the embedded default (SmolLM2-135M) on CPU over its 4-bit NF4 base, one epoch
    tutor train --name smollm2-tutor --epochs 1

    # Mistral-7B-Instruct-v0.2 on one GPU: NF4 + double quant, paged 8-bit AdamW, gradient checkpointing
    # (expected peak ~6-7 GB at batch 4 x 512 tokens: the arithmetic is in README.md, "Fine-tuning the tutor")
    TUTOR_MODEL=mistralai/Mistral-7B-Instruct-v0.2 tutor train --name mistral-7b-tutor --epochs 2 --max-length 512

    # A one-minute smoke run that writes nowhere near adapters/
    tutor train --name smoke --limit 16 --max-steps 2 --output-dir /tmp/tutor-smoke

    # Then compare base and base + adapter on the validation split:
    tutor eval adapter --name smollm2-tutor --json

Each record of datasets/tutor_sft is rendered with the base model's own chat template (Mistral's [INST] for
Mistral, ChatML for SmolLM2) and only the reply tokens carry a label (tutor.finetune.dataset.encode). The adapter,
its model card, the loss log and a loss curve (train and validation) land in adapters/<name>/.
"""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

from tutor.config import ROOT, Settings
from tutor.finetune import dataset


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--name", required=True, help="adapter folder name under adapters/ (TUTOR_ADAPTERS_DIR)")
    p.add_argument("--output-dir", type=Path, help="write the adapter here instead of adapters/<name>")
    p.add_argument("--data-dir", type=Path, default=dataset.DATA_DIR, help="folder with train/validation.jsonl")
    p.add_argument("--epochs", type=float, default=2.0)
    p.add_argument("--max-steps", type=int, default=-1, help="stop after this many optimizer steps (-1: epochs)")
    p.add_argument("--limit", type=int, default=0, help="use only the first N records of each split (smoke runs)")
    # 4 records of ~280 tokens a step (SmolLM2 template): 141 steps an epoch over 561 training records.
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--grad-accum", type=int, default=1, help="gradient accumulation steps")
    p.add_argument("--lr", type=float, default=2e-4, help="peak learning rate (LoRA tolerates ~10x full FT)")
    # 90% of records are under ~400 tokens (SmolLM2 template); longer ones are dropped, never cut mid-reply.
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--lora-r", type=int, default=16, help="LoRA rank; 4-32 is the usual range")
    p.add_argument("--lora-alpha", type=int, default=32, help="LoRA scale is alpha / r = 2")
    p.add_argument("--lora-dropout", type=float, default=0.05)
    # Each pass reads all ~62 validation records (~16k tokens, about a minute on 2 cores).
    p.add_argument("--evals", type=int, default=4, help="validation passes spread over the run (plus one before)")
    p.add_argument("--seed", type=int, default=0)
    return p


def load_data(args, tokenizer):
    from datasets import Dataset

    splits, dropped, counts = {}, 0, {}
    for split in dataset.SPLITS:
        records = dataset.load_split(split, args.data_dir)
        records = records[: args.limit] if args.limit else records
        encoded, n_dropped = dataset.encode_all(records, tokenizer, args.max_length)
        splits[split], dropped = Dataset.from_list(encoded), dropped + n_dropped
        counts[split] = {"records": len(encoded), "by_task": dict(sorted(Counter(r["task"] for r in records).items()))}
    return splits, counts, dropped


def build_model(loaded, args, device: str):
    """The QLoRA recipe (peft's own helpers): prepare the k-bit base, then wrap every linear projection."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    model = loaded.model
    if loaded.quantization:
        # Casts norms to fp32 and enables input gradients; checkpointing only where memory is the limit (GPU).
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=device == "cuda")
    config = LoraConfig(
        r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
        target_modules="all-linear",  # q, k, v, o, gate, up, down; never lm_head
        bias="none", task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def training_arguments(args, device: str, out: str, steps_per_epoch: int):
    import torch
    from transformers import TrainingArguments

    total = args.max_steps if args.max_steps > 0 else int(steps_per_epoch * args.epochs + 0.999)
    cuda = device == "cuda"
    return TrainingArguments(
        output_dir=out, num_train_epochs=args.epochs, max_steps=args.max_steps,
        per_device_train_batch_size=args.batch_size, per_device_eval_batch_size=args.batch_size,
        gradient_accumulation_steps=args.grad_accum, learning_rate=args.lr,
        lr_scheduler_type="cosine", warmup_steps=max(1, total // 20),  # 5% warm-up
        logging_steps=1, eval_strategy="steps", eval_steps=max(1, total // max(1, args.evals)),
        save_strategy="no", report_to=[], disable_tqdm=False, seed=args.seed,
        train_sampling_strategy="group_by_length",  # similar lengths per batch: less compute spent on padding
        # Paged 8-bit AdamW and checkpointing are the GPU memory savers of QLoRA; on CPU, memory is plentiful
        # and bitsandbytes' paged optimizers need CUDA, so plain AdamW and no recomputation.
        optim="paged_adamw_8bit" if cuda else "adamw_torch",
        activation_checkpointing=cuda, activation_checkpointing_kwargs={"use_reentrant": False} if cuda else None,
        bf16=cuda and torch.cuda.is_bf16_supported(), use_cpu=not cuda,
    )


def plot_loss(history: list[dict], path: Path, window: int = 1) -> None:
    """Train loss per step and as a running mean over ``window`` steps, and the validation loss."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [(h["step"], h["loss"]) for h in history if "loss" in h]
    val = [(h["step"], h["eval_loss"]) for h in history if "eval_loss" in h]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    if train:
        steps, losses = zip(*train)
        ax.plot(steps, losses, lw=0.8, alpha=0.35, label="train (per step)")
        smooth = [sum(losses[max(0, i - window + 1):i + 1]) / len(losses[max(0, i - window + 1):i + 1])
                  for i in range(len(losses))]
        ax.plot(steps, smooth, lw=1.8, label=f"train (mean of last {window} steps)")
    if val:
        ax.plot(*zip(*val), "o-", lw=2, label="validation")
    ax.set(xlabel="optimizer step", ylabel="loss (reply tokens only)", title=path.parent.name)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def exact_command(args: argparse.Namespace, settings: Settings) -> str:
    """The command that reproduces this run: the model settings and every option spelled out, so a later
    change of a default cannot change what it does."""
    env = f"TUTOR_MODEL={settings.model} TUTOR_4BIT={settings.quantize} TUTOR_DEVICE={settings.device}"
    env += f" TUTOR_THREADS={settings.threads}" if settings.threads else ""
    skip = {"fn", "command", "output_dir"} | ({"limit"} if not args.limit else set())
    skip |= {"data_dir"} if Path(args.data_dir) == dataset.DATA_DIR else set()
    options = [f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k not in skip]
    return " ".join([env, "tutor train", *options])


def training_settings(settings: Settings) -> Settings:
    """TUTOR_4BIT=auto means 4-bit on CUDA for serving; for training it means 4-bit wherever bitsandbytes runs,
    CPU included (bnb >= 0.45 quantizes NF4 and trains LoRA on CPU). TUTOR_4BIT=off trains LoRA over fp32."""
    return replace(settings, quantize="on") if settings.quantize == "auto" else settings


def train(args: argparse.Namespace, settings: Settings, callbacks=()) -> tuple[object, dict]:
    """Train and save the adapter; return the trained PEFT model and the metrics in its model card."""
    import torch
    from transformers import DataCollatorForSeq2Seq, Trainer, set_seed

    from tutor.models.hf import loading

    settings = training_settings(settings)
    set_seed(args.seed)
    out_dir = args.output_dir or settings.adapters_dir / args.name
    loaded = loading.load_base_model(settings, for_training=True)
    device = loaded.device
    data, counts, dropped = load_data(args, loaded.tokenizer)
    model = build_model(loaded, args, device)
    trainable, total = model.get_nb_trainable_parameters()
    steps_per_epoch = -(-len(data["train"]) // (args.batch_size * args.grad_accum))
    work = tempfile.mkdtemp(prefix="tutor-train-")
    trainer = Trainer(
        model=model, args=training_arguments(args, device, work, steps_per_epoch),
        train_dataset=data["train"], eval_dataset=data["validation"],
        # Pads input_ids with the pad token and labels with -100, so padding never counts in the loss.
        data_collator=DataCollatorForSeq2Seq(loaded.tokenizer, label_pad_token_id=dataset.IGNORE_INDEX),
        callbacks=list(callbacks),
    )
    started = time.perf_counter()
    before = trainer.evaluate()["eval_loss"]  # LoRA starts as a no-op (B = 0): this is the base model's loss
    result = trainer.train()
    evals = [h for h in trainer.state.log_history if "eval_loss" in h]
    at_end = evals and evals[-1]["step"] == result.global_step
    after = evals[-1]["eval_loss"] if at_end else trainer.evaluate()["eval_loss"]
    wall = time.perf_counter() - started
    history = [{"step": 0, "eval_loss": before}, *trainer.state.log_history]
    shutil.rmtree(work, ignore_errors=True)

    out_dir.mkdir(parents=True, exist_ok=True)
    # find_adapter("auto") matches this to TUTOR_MODEL, so record the value the app is configured with.
    model.peft_config["default"].base_model_name_or_path = settings.model
    model.save_pretrained(out_dir)
    (out_dir / "training_log.json").write_text(json.dumps(history, indent=1))
    # Length grouping sorts each "megabatch" of min(n // (4 * batch), 50) batches by length (transformers'
    # get_length_grouped_indices), so the loss cycles with the tasks' lengths; average over one megabatch.
    plot_loss(history, out_dir / "loss_curve.png", window=max(1, min(len(data["train"]) // (4 * args.batch_size), 50)))
    peak = (torch.cuda.max_memory_allocated() if device == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)  # ru_maxrss is KiB on Linux
    metrics = {
        "base_model": loaded.name, "tutor_model": settings.model, "source": loaded.source, "device": device,
        "threads": torch.get_num_threads(), "quantization": loaded.quantization or f"none ({loaded.dtype} weights)",
        "trainable_params": trainable, "total_params": total, "data": counts,
        "data_dir": _shown(args.data_dir), "data_sha256": dataset.data_fingerprint(args.data_dir), "dropped_too_long": dropped,
        "steps": result.global_step, "epochs": round(result.metrics.get("epoch", args.epochs), 2),
        "train_loss_mean": round(result.training_loss, 4), "val_loss_before": round(before, 4),
        "val_loss_after": round(after, 4), "wall_seconds": round(wall), "peak_memory_gib": round(peak / 2**30, 2),
        "hyperparameters": {k: v for k, v in vars(args).items() if k not in ("fn", "command", "output_dir", "data_dir")},
        "command": exact_command(args, settings), "adapter_dir": str(out_dir),
    }
    (out_dir / "train_metrics.json").write_text(json.dumps(metrics, indent=2))
    (out_dir / "README.md").write_text(model_card(args.name, metrics))
    return model, metrics


def main(args: argparse.Namespace, settings: Settings | None = None) -> int:
    _, metrics = train(args, settings or Settings.from_env())
    print(json.dumps({k: metrics[k] for k in ("steps", "val_loss_before", "val_loss_after", "wall_seconds")}))
    print(f"adapter saved to {metrics['adapter_dir']}")
    return 0


def _shown(path: Path) -> str:
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def model_card(name: str, m: dict) -> str:
    h = m["hyperparameters"]
    train, val = m["data"]["train"], m["data"]["validation"]
    tasks = ", ".join(f"{t} {n}" for t, n in train["by_task"].items())
    served = ("" if m["device"] != "cpu" or not m["quantization"].startswith("bnb") else
              " On CPU the app serves\nthe base in fp32 (`TUTOR_4BIT=auto`) and applies this adapter, trained over the NF4 base, unchanged;\n"
              "`tutor eval adapter` measures that served pairing.")
    return f"""# {name}: LoRA adapter for the prompt-engineering tutor

The tutor's own fine-tune: it teaches the base model the tutor's behaviour (explaining tactics, giving hints
without the answer, critiquing prompts, answering from passages or saying they do not cover the question,
and judging submissions in the judge's `VERDICT:` / `REASON:` format).

| | |
|---|---|
| base model | {m['base_model']} (`TUTOR_MODEL={m['tutor_model']}`) |
| method | LoRA r={h['lora_r']}, alpha={h['lora_alpha']}, dropout={h['lora_dropout']} on all linear projections (q, k, v, o, gate, up, down) |
| trainable parameters | {m['trainable_params']:,} of {m['total_params']:,} ({100 * m['trainable_params'] / m['total_params']:.2f}%) |
| base weights during training | {m['quantization']} |
| data | `{m['data_dir']}` (sha256 {m['data_sha256']}): {train['records']} train / {val['records']} validation records ({tasks}); {m['dropped_too_long']} dropped as longer than {h['max_length']} tokens |
| schedule | {m['steps']} steps ({m['epochs']} epochs), batch {h['batch_size']} x {h['grad_accum']} accumulation, lr {h['lr']} cosine with 5% warm-up, seed {h['seed']} |
| hardware | {m['device']}, {m['threads']} threads; wall time {m['wall_seconds'] / 60:.1f} min; peak memory {m['peak_memory_gib']} GiB |
| validation loss | {m['val_loss_before']} before training -> {m['val_loss_after']} after (reply tokens only; Trainer's mean of per-batch means over the training base) |

Loss is computed on the reply tokens only; the prompt is rendered with the base model's chat template.{served}

![loss curve](loss_curve.png)

## Use

The app loads it by default when `TUTOR_MODEL={m['tutor_model']}` (`TUTOR_ADAPTER=auto`); `TUTOR_ADAPTER=none`
turns it off and `TUTOR_ADAPTER={name}` forces it.

## Reproduce

```
{m['command']}
```

## Evaluation

Run `tutor eval adapter --name {name} --json --save` to compare the base model with base + adapter on the
validation split (loss and ROUGE-L of greedy replies); `--save` replaces this section with the figures.
"""


if __name__ == "__main__":
    main(add_arguments(argparse.ArgumentParser(description="Fine-tune the tutor (LoRA / QLoRA).")).parse_args())
