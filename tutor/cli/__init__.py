"""The `tutor` command. Each subcommand parses its arguments and calls plain functions elsewhere; one module
per command group registers its subcommands.

    tutor serve                      # the app on http://127.0.0.1:7860 (what `make run` starts)
    tutor chat "What is few-shot prompting?"
    tutor info --json
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

from tutor.cli import agent, finetune, instruments, lessons, progress, readings, serve
from tutor.cli import evals as eval_commands
from tutor.config import Settings
from tutor.errors import TutorError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tutor", description="The prompt-engineering tutor.")
    sub = p.add_subparsers(dest="command", required=True)
    serve.register(sub)
    lessons.register(sub)
    instruments.register(sub)
    progress.register(sub)
    evals = sub.add_parser("eval", help="measure the tutor").add_subparsers(dest="what", required=True)
    readings.register(sub)
    eval_commands.register(evals)
    finetune.register(sub, evals)
    agent.register(sub, evals)
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
