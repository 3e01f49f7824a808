"""`tutor ingest | search | ask`: the course readings from the shell (their evaluation: tutor.cli.evals)."""
from __future__ import annotations

import json
import sys

from tutor.config import Settings


def cmd_ingest(args, settings: Settings) -> int:
    from tutor.readings import retrieval

    report = retrieval.ingest(settings, progress=not args.json)
    if args.json:
        from dataclasses import asdict

        print(json.dumps(asdict(report), indent=2))
    else:
        print(report.summary())
        for name, why in report.skipped.items():
            print(f"skipped {name}: {why}")
    return 0


def cmd_search(args, settings: Settings) -> int:
    from tutor.readings import retrieval

    retrieval.ensure_index(settings, progress=True)
    passages = retrieval.Retriever(settings).search(args.query, k=args.k)
    if args.json:
        print(json.dumps([p.as_dict() for p in passages], indent=2, ensure_ascii=False))
    else:
        for n, p in enumerate(passages, 1):
            print(f"[{n}] {p.score:.3f}  {p.source} > {p.heading}\n{p.text}\n")
    return 0


class _LazyModel:
    """Loads the model on first use, so a question the readings do not cover is answered without it (~20 s)."""

    def __init__(self, settings: Settings):
        self._settings, self._model = settings, None

    def __getattr__(self, name):
        if self._model is None:
            from tutor.models import load_model

            self._model = load_model(self._settings)
        return getattr(self._model, name)


def cmd_ask(args, settings: Settings) -> int:
    from tutor.readings import grounding, retrieval

    retrieval.ensure_index(settings, progress=True)
    stream = grounding.stream_answer(args.question, retrieval.Retriever(settings), _LazyModel(settings), k=args.k,
                                     mode=settings.answer_mode)
    for chunk in stream:
        if not args.json:
            sys.stdout.write(chunk)
            sys.stdout.flush()
    result = stream.answer
    if args.json:
        print(json.dumps(result.as_dict(), indent=2, ensure_ascii=False))
        return 0
    print(f"\n\nsupport: {result.grounded}" if result.sources else "")
    for n, p in enumerate(result.sources, 1):
        print(f"[{n}] {p.source} > {p.heading}")
    return 0


def register(sub) -> None:
    s = sub.add_parser("ingest", help="index the readings (only new, changed and deleted files)")
    s.add_argument("--json", action="store_true", help="print the report as JSON (no progress bar)")
    s.set_defaults(fn=cmd_ingest)

    s = sub.add_parser("search", help="the readings passages most relevant to a query")
    s.add_argument("query")
    s.add_argument("--k", type=int, default=3)
    s.add_argument("--json", action="store_true", help='[{"source", "heading", "text", "score"}]')
    s.set_defaults(fn=cmd_search)

    s = sub.add_parser("ask", help="answer a question from the readings, with sources and a support label")
    s.add_argument("question")
    s.add_argument("--k", type=int, default=3)
    s.add_argument("--json", action="store_true", help='{"answer", "sources", "grounded"}')
    s.set_defaults(fn=cmd_ask)
