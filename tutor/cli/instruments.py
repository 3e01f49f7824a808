"""`tutor next-token | tokens | logprob`: the instruments from the shell."""
from __future__ import annotations

import json
import sys

from tutor.config import Settings


def cmd_next_token(args, settings: Settings) -> int:
    from tutor.models import load_model
    from tutor.models.protocol import check_shaping

    shaping = dict(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, min_p=args.min_p,
                   repetition_penalty=args.repetition_penalty)
    try:
        check_shaping(**shaping)  # before the model loads: a typo costs no wait
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    candidates = load_model(settings).next_token(args.prompt, show=args.show, chat=args.chat, **shaping)
    if args.json:
        print(json.dumps({"candidates": candidates}, ensure_ascii=False))
    else:
        for c in candidates:
            print(f"{c['prob']:8.4f}  {c['id']:>6}  {c['token']!r}")
    return 0


def cmd_tokens(args, settings: Settings) -> int:
    from tutor.models import load_model, resolve_backend

    if resolve_backend(settings) == "llamacpp":
        tokens = load_model(settings).tokenize(args.text)  # llama.cpp maps the GGUF in a fraction of a second
    else:
        from tutor.models.hf.loading import load_tokenizer, resolve_source
        from tutor.models.hf.probe import tokenize

        tokens = tokenize(load_tokenizer(resolve_source(settings)[0]), args.text)  # the tokenizer alone: no weights
    if args.json:
        print(json.dumps({"tokens": tokens, "count": len(tokens)}, ensure_ascii=False))
    else:
        print(" | ".join(repr(t["text"]) for t in tokens))
        print(f"{len(tokens)} tokens")
    return 0


def cmd_logprob(args, settings: Settings) -> int:
    from tutor.models import load_model

    result = load_model(settings).sequence_logprob(args.prompt, args.response, chat=not args.raw)
    print(json.dumps(result, ensure_ascii=False) if args.json else f"log p = {result['total']:.4f}")
    return 0


def register(sub) -> None:
    s = sub.add_parser("next-token", help="the most likely next tokens after a prompt, with probabilities")
    s.add_argument("prompt")
    s.add_argument("--temperature", type=float, default=1.0)
    s.add_argument("--top-k", type=int, default=0, help="0 = off")
    s.add_argument("--top-p", type=float, default=1.0, help="1 = off")
    s.add_argument("--min-p", type=float, default=0.0, help="0 = off")
    s.add_argument("--repetition-penalty", type=float, default=1.0, help="1 = off")
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
