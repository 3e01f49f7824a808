"""Benchmarks that print figures (the README's table comes from here): `make bench` or `python -m tutor.bench`.

Measures, for the model TUTOR_* selects: load time (cold when the cache is missing, else warm), prompt
processing (prefill) and decode speed, time to first streamed chunk, and the process's peak memory.
"""
from __future__ import annotations

import json
import resource
import sys
import time

from tutor.config import Settings
from tutor.models import GenerationSettings, load_model

PROMPT_WORDS = 380  # about 500 tokens of English prose at ~1.3 tokens per word


def main() -> int:
    settings = Settings.from_env()
    started = time.perf_counter()
    model = load_model(settings)
    load_s = time.perf_counter() - started

    long_prompt = [{"role": "user", "content": "Summarise: " + "the model reads every token once " * (PROMPT_WORDS // 6)}]
    one_token = GenerationSettings(max_new_tokens=1, temperature=0)
    prompt_tokens = model.count_tokens(model.render(long_prompt))
    t = time.perf_counter()
    list(model.stream(long_prompt, one_token))
    prefill_s = time.perf_counter() - t

    short = [{"role": "user", "content": "Write a long story about a tutor who teaches prompting."}]
    decode = GenerationSettings(max_new_tokens=96, temperature=0, repetition_penalty=1.0)
    t = time.perf_counter()
    first = None
    text = ""
    for chunk in model.stream(short, decode):
        first = first or time.perf_counter() - t
        text += chunk
    total = time.perf_counter() - t
    new_tokens = model.count_tokens(text)

    figures = {
        "model": model.info.name,
        "adapter": model.info.adapter,
        "device": model.info.device,
        "load_seconds": round(load_s, 2),
        "load_from_cache": model.info.extra.get("from_cache"),
        "prefill_tokens": prompt_tokens,
        "prefill_tokens_per_s": round(prompt_tokens / prefill_s, 1),
        "first_chunk_seconds": round(first or total, 2),
        "decode_tokens": new_tokens,
        "decode_tokens_per_s": round(new_tokens / total, 1),
        # ru_maxrss is in KiB on Linux
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    json.dump(figures, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
