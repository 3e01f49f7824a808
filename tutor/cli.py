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
from pathlib import Path

from tutor.config import ROOT, Settings
from tutor.errors import TutorError


def cmd_serve(args, settings: Settings) -> int:
    from tutor import ui
    from tutor.runtime import build_tutor

    # Gradio reads GRADIO_SERVER_NAME / GRADIO_SERVER_PORT itself (defaults 127.0.0.1:7860).
    ui.launch(ui.build_app(build_tutor(settings)))
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


def cmd_lessons_check(args, settings: Settings) -> int:
    from tutor.lessons import check_paths

    problems = check_paths(args.paths or [settings.lessons_dir])
    for problem in problems:
        print(problem)
    if not problems:
        print("all lesson files are valid", file=sys.stderr)
    return 1 if problems else 0


def cmd_lessons_list(args, settings: Settings) -> int:
    from tutor.lessons import load_lessons

    lessons = load_lessons(settings.lessons_dir)
    for problem in lessons.problems:
        print(f"skipped: {problem}", file=sys.stderr)
    if args.json:
        print(json.dumps(lessons.summary(), indent=2))
    else:
        for lesson in lessons.summary():
            print(f"{lesson['id']}: {lesson['title']} ({', '.join(e['id'] for e in lesson['exercises'])})")
    return 0


def cmd_grade(args, settings: Settings) -> int:
    from tutor.grading import Grader
    from tutor.lessons import load_lessons
    from tutor.model import load_model

    if not args.batch and not (args.lesson and args.exercise and (args.text is not None or args.file)):
        print("error: give --lesson, --exercise and --text or --file, or --batch FILE.jsonl", file=sys.stderr)
        return 2
    lessons = load_lessons(settings.lessons_dir)
    grader = Grader(load_model(settings), settings.max_input_chars)  # the model is loaded once for a batch

    def grade_one(lesson_id: str, exercise_id: str, text: str) -> dict:
        exercise = lessons.get(lesson_id).exercise(exercise_id)
        return grader.grade(exercise, text).to_json()

    if not args.batch:
        text = args.text if args.text is not None else _read_text(args.file)
        result = grade_one(args.lesson, args.exercise, text)
        print(json.dumps(result, indent=None if args.json else 2))
        return 0
    failures = 0
    with open(args.batch, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                result = {"lesson": item["lesson"], "exercise": item["exercise"],
                          **grade_one(item["lesson"], item["exercise"], item["text"])}
            except (ValueError, KeyError, TypeError, TutorError) as exc:
                failures += 1
                reason = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
                result = {"line": number, "error": f"{args.batch}:{number}: {reason}"}
            print(json.dumps(result), flush=True)
    return 1 if failures else 0


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise TutorError(f"cannot read {path}: {exc}") from exc


def cmd_next_token(args, settings: Settings) -> int:
    from tutor.model import load_model

    model = load_model(settings)
    candidates = model.next_token(args.prompt, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                                  show=args.show, chat=args.chat)
    if args.json:
        print(json.dumps({"candidates": candidates}, ensure_ascii=False))
    else:
        for c in candidates:
            print(f"{c['prob']:8.4f}  {c['id']:>6}  {c['token']!r}")
    return 0


def cmd_tokens(args, settings: Settings) -> int:
    from tutor.hf.loading import load_tokenizer, resolve_source
    from tutor.hf.probe import tokenize

    tokens = tokenize(load_tokenizer(resolve_source(settings)[0]), args.text)  # the tokenizer alone: no weights
    if args.json:
        print(json.dumps({"tokens": tokens, "count": len(tokens)}, ensure_ascii=False))
    else:
        print(" | ".join(repr(t["text"]) for t in tokens))
        print(f"{len(tokens)} tokens")
    return 0


def cmd_logprob(args, settings: Settings) -> int:
    from tutor.model import load_model

    result = load_model(settings).sequence_logprob(args.prompt, args.response, chat=not args.raw)
    print(json.dumps(result, ensure_ascii=False) if args.json else f"log p = {result['total']:.4f}")
    return 0


def cmd_ingest(args, settings: Settings) -> int:
    from tutor import retrieval

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
    from tutor import retrieval

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
            from tutor.model import load_model

            self._model = load_model(self._settings)
        return getattr(self._model, name)


def cmd_ask(args, settings: Settings) -> int:
    from tutor import grounding, retrieval

    retrieval.ensure_index(settings, progress=True)
    stream = grounding.stream_answer(args.question, retrieval.Retriever(settings), _LazyModel(settings), k=args.k)
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


def cmd_eval_retrieval(args, settings: Settings) -> int:
    from tutor import retrieval

    retrieval.ensure_index(settings, progress=True)
    result = retrieval.evaluate_recall(settings, Path(args.questions), k=args.k)
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        print(f"recall@{result['k']}: {result['recall']:.3f} on {result['questions']} questions "
              f"(target {args.target})")
        for miss in result["misses"]:
            print(f"  missed: {miss['question']}  expected {miss['expected']}, got {', '.join(miss['got'])}")
    return 0 if result["recall"] >= args.target else 1


def cmd_train(args, settings: Settings) -> int:
    from tutor import train

    return train.main(args, settings)


def cmd_eval_adapter(args, settings: Settings) -> int:
    from tutor import adapter_eval
    from tutor.hf.loading import find_adapter

    name = args.name or (find_adapter(settings) or Path("")).name
    if not name:
        raise TutorError("No adapter to evaluate: give --name, or set TUTOR_ADAPTER to a folder under adapters/.")
    result = adapter_eval.evaluate_adapter(settings, name, limit=args.limit)
    if args.save:
        adapter_eval.save(result, settings.adapters_dir / name)
    print(json.dumps(result, indent=None if args.json else 2))
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

    lessons = sub.add_parser("lessons", help="check and list lesson files").add_subparsers(dest="action", required=True)
    s = lessons.add_parser("check", help="validate lesson files; prints path:line: message per problem")
    s.add_argument("paths", nargs="*", help="files or folders (default: TUTOR_LESSONS_DIR)")
    s.set_defaults(fn=cmd_lessons_check)
    s = lessons.add_parser("list", help="the valid lessons with their exercises")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_lessons_list)

    s = sub.add_parser("grade", help="grade a submission (or a JSONL batch) and print JSON")
    s.add_argument("--lesson")
    s.add_argument("--exercise")
    group = s.add_mutually_exclusive_group()
    group.add_argument("--text")
    group.add_argument("--file")
    group.add_argument("--batch", help='JSONL lines of {"lesson", "exercise", "text"}')
    s.add_argument("--json", action="store_true", help="one line of JSON (the default output is indented)")
    s.set_defaults(fn=cmd_grade)

    s = sub.add_parser("next-token", help="the most likely next tokens after a prompt, with probabilities")
    s.add_argument("prompt")
    s.add_argument("--temperature", type=float, default=1.0)
    s.add_argument("--top-k", type=int, default=0, help="0 = off")
    s.add_argument("--top-p", type=float, default=1.0, help="1 = off")
    s.add_argument("--show", type=int, default=10, help="how many candidates to print")
    s.add_argument("--chat", action="store_true", help="apply the chat template (default: raw text completion)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_next_token)

    s = sub.add_parser("tokens", help="how the model's tokenizer splits a text")
    s.add_argument("text")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_tokens)

    s = sub.add_parser("logprob", help="log-probability of a response after a prompt, per token and in total")
    s.add_argument("--prompt", required=True)
    s.add_argument("--response", required=True)
    s.add_argument("--raw", action="store_true", help="no chat template: the response continues the prompt text")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_logprob)

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

    evals = sub.add_parser("eval", help="measure the tutor").add_subparsers(dest="what", required=True)
    s = evals.add_parser("retrieval", help="recall@k of the readings search on a question set; exit 1 below target")
    s.add_argument("--k", type=int, default=3)
    s.add_argument("--questions", default=str(ROOT / "tests" / "data" / "retrieval_questions.jsonl"))
    s.add_argument("--target", type=float, default=0.9)
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_eval_retrieval)
    s = evals.add_parser("adapter", help="validation loss and ROUGE-L: base model vs base + adapter")
    s.add_argument("--name", default=None, help="adapter folder under adapters/ (default: the one TUTOR_ADAPTER picks)")
    s.add_argument("--limit", type=int, default=24, help="validation records to generate for ROUGE-L")
    s.add_argument("--save", action="store_true", help="write eval.json and the figures into the model card")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_eval_adapter)

    from tutor.train import add_arguments  # argparse only: the heavy imports happen inside train()

    s = add_arguments(sub.add_parser("train", help="fine-tune a LoRA adapter (QLoRA where bitsandbytes runs)"))
    s.set_defaults(fn=cmd_train)
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
