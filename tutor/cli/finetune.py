"""`tutor train` and `tutor eval adapter`: fine-tuning from the shell."""
from __future__ import annotations

import json
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


def register(sub, evals) -> None:
    s = evals.add_parser("adapter", help="validation loss and ROUGE-L: base model vs base + adapter")
    s.add_argument("--name", default=None, help="adapter folder under adapters/ (default: the one TUTOR_ADAPTER picks)")
    s.add_argument("--limit", type=int, default=24, help="validation records to generate for ROUGE-L")
    s.add_argument("--save", action="store_true", help="write eval.json and the figures into the model card")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_eval_adapter)

    from tutor.finetune.train import add_arguments  # argparse only: the heavy imports happen inside train()

    s = add_arguments(sub.add_parser("train", help="fine-tune a LoRA adapter (QLoRA where bitsandbytes runs)"))
    s.set_defaults(fn=cmd_train)
