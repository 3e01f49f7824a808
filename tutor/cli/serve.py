"""`tutor serve | prepare | chat | info`: run the app and look at what it loaded."""
from __future__ import annotations

import json
import sys

from tutor.config import Settings


def cmd_serve(args, settings: Settings) -> int:
    from tutor.startup import start_app

    # What `python app.py` does: a status page while loading, then the app on GRADIO_SERVER_NAME:PORT
    # (default 127.0.0.1:7860), on the embedded default when the chosen model cannot load.
    start_app(settings)
    return 0


def cmd_prepare(args, settings: Settings) -> int:
    """Everything a first start would do, ahead of time: convert and cache the model, index the readings."""
    from tutor.runtime import build_tutor

    tutor = build_tutor(settings, fallback=True)  # what the app will serve
    if tutor.notice:
        print(f"note: {tutor.notice}")
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


def register(sub) -> None:
    sub.add_parser("serve", help="start the web app").set_defaults(fn=cmd_serve)

    sub.add_parser("prepare", help="cache the model and index the readings").set_defaults(fn=cmd_prepare)

    s = sub.add_parser("chat", help="ask the tutor one question and stream the reply")
    s.add_argument("message")
    s.set_defaults(fn=cmd_chat)

    s = sub.add_parser("info", help="what model, adapter and course material are loaded")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_info)
