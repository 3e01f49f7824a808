"""`tutor train`, `tutor eval adapter` and `tutor export-gguf`: fine-tuning from the shell."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from tutor.config import Settings
from tutor.errors import TutorError


def cmd_train(args, settings: Settings) -> int:
    from tutor.finetune import train

    return train.main(args, settings)


def cmd_eval_adapter(args, settings: Settings) -> int:
    from tutor.finetune import adapter_eval
    from tutor.models.hf.loading import find_adapter

    name = args.name or (find_adapter(settings) or Path("")).name
    if not name:
        raise TutorError("No adapter to evaluate: give --name, or set TUTOR_ADAPTER to a folder under adapters/.")
    result = adapter_eval.evaluate_adapter(settings, name, limit=args.limit)
    if args.save:
        adapter_eval.save(result, settings.adapters_dir / name)
    print(json.dumps(result, indent=None if args.json else 2))
    return 0


def cmd_export_gguf(args, settings: Settings) -> int:
    """The adapter as a GGUF LoRA adapter for llama.cpp: into the cache the llama.cpp back-end reads, or --out."""
    from tutor.models import lora_gguf, sources

    if args.adapter:
        settings = replace(settings, adapter=args.adapter)
    adapter = sources.find_adapter(settings)
    if adapter is None:
        raise TutorError("No adapter to export: give --adapter NAME (a folder under adapters/) or set TUTOR_ADAPTER.")
    base = sources.gguf_path(settings)  # the adapter is checked against the base it will run on
    out = Path(args.out) if args.out else lora_gguf.cache_path(settings, adapter, base)
    summary = lora_gguf.export(adapter, base, out)
    summary.update(adapter=adapter.name, base=str(base))
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"wrote {summary['path']}: {summary['modules']} LoRA pairs (r={summary['rank']}, alpha={summary['alpha']}), "
              f"{summary['bytes'] / 1e6:.1f} MB in {summary['seconds']} s; llama.cpp: --lora {summary['path']}")
    return 0


def register(sub, evals) -> None:
    s = evals.add_parser("adapter", help="validation loss and ROUGE-L: base model vs base + adapter")
    s.add_argument("--name", default=None, help="adapter folder under adapters/ (default: the one TUTOR_ADAPTER picks)")
    s.add_argument("--limit", type=int, default=24, help="validation records to generate for ROUGE-L")
    s.add_argument("--save", action="store_true", help="write eval.json and the figures into the model card")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_eval_adapter)

    from tutor.finetune.train import add_arguments  # argparse only: the heavy imports happen inside train()

    s = sub.add_parser("export-gguf", help="convert the LoRA adapter to a GGUF adapter for llama.cpp")
    s.add_argument("--adapter", default=None, help="adapter folder under adapters/ or a path (default: TUTOR_ADAPTER)")
    s.add_argument("--out", default=None, help="where to write it (default: the cache the llama.cpp back-end reads)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_export_gguf)

    s = add_arguments(sub.add_parser("train", help="fine-tune a LoRA adapter (QLoRA where bitsandbytes runs)"))
    s.set_defaults(fn=cmd_train)
