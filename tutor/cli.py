"""The `tutor` command. Each subcommand parses its arguments and calls plain functions elsewhere.

    tutor serve                      # the app on http://127.0.0.1:7860 (what `make run` starts)
    tutor chat "What is few-shot prompting?"
    tutor info --json
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from tutor.config import Settings
from tutor.errors import TutorError


def cmd_serve(args, settings: Settings) -> int:
    from tutor import ui
    from tutor.runtime import build_tutor

    demo = ui.build_app(build_tutor(settings))
    ui.launch(
        demo,
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
    )
    return 0


def cmd_prepare(args, settings: Settings) -> int:
    """Everything a first start would do, ahead of time: convert and cache the model, index the readings."""
    from tutor.runtime import build_tutor

    tutor = build_tutor(settings)
    info = tutor.model.info
    print(f"ready: {info.name} (adapter: {info.adapter or 'none'}) in {info.extra.get('load_seconds')} s; "
          + ", ".join(f"{k}: {v}" for k, v in tutor.counts().items()))
    return 0


def cmd_chat(args, settings: Settings) -> int:
    from tutor.runtime import build_tutor
    from tutor.tutor import Session

    tutor = build_tutor(settings)
    for chunk in tutor.reply(args.message, [], Session()):
        sys.stdout.write(chunk)
        sys.stdout.flush()
    sys.stdout.write("\n")
    return 0


def info_dict(settings: Settings) -> dict:
    from dataclasses import asdict

    from tutor.runtime import build_tutor

    tutor = build_tutor(settings)
    data = asdict(tutor.model.info)
    data.update(tutor.counts())
    return data


def cmd_info(args, settings: Settings) -> int:
    data = info_dict(settings)
    if args.json:
        print(json.dumps(data, indent=2, default=str))
    else:
        for key, value in data.items():
            print(f"{key}: {value}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tutor", description="The prompt-engineering tutor.")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("serve", help="start the web app").set_defaults(fn=cmd_serve)

    sub.add_parser("prepare", help="cache the model and index the readings").set_defaults(fn=cmd_prepare)

    s = sub.add_parser("chat", help="ask the tutor one question and stream the reply")
    s.add_argument("message")
    s.set_defaults(fn=cmd_chat)

    s = sub.add_parser("info", help="what model, adapter and course material are loaded")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_info)

    # Subcommands for lessons, grading, readings, training and model inspection are added below.
    return p


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    args = parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
        return args.fn(args, settings)
    except TutorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
