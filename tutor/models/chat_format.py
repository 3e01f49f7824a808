"""Chat formatting shared by serving and training: the same system-role folding on both sides, so an adapter
sees served prompts exactly as it was trained on them."""
from __future__ import annotations

import json
from datetime import datetime

from jinja2 import TemplateError


def accepts_system_role(tokenizer) -> bool:
    """Mistral-7B-Instruct v0.1/v0.2 templates raise on a system message; probe instead of guessing."""
    try:
        tokenizer.apply_chat_template(
            [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}], tokenize=False
        )
        return True
    except (TemplateError, ValueError):  # raise_exception() in a template surfaces as a TemplateError
        return False


def fold_system(messages: list[dict]) -> list[dict]:
    """Put a leading system message at the top of the first user turn, for templates without a system role."""
    if not messages or messages[0]["role"] != "system":
        return list(messages)
    system, rest = messages[0]["content"], [dict(m) for m in messages[1:]]
    if rest and rest[0]["role"] == "user":
        rest[0]["content"] = f"{system}\n\n{rest[0]['content']}"
    else:
        rest.insert(0, {"role": "user", "content": system})
    return rest


class ChatTemplate:
    """A model's Jinja chat template rendered the way transformers renders it (sandboxed, trim_blocks and
    lstrip_blocks, loop controls, ``raise_exception``, a ``tojson`` that keeps non-ASCII), for back-ends without a
    Hugging Face tokenizer: a GGUF file carries its template as ``tokenizer.chat_template``.

    Offers the slice of the tokenizer interface that ``accepts_system_role`` probes."""

    def __init__(self, source: str, **special_tokens: str):
        from jinja2.ext import loopcontrols
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
        env.filters["tojson"] = lambda value, indent=None: json.dumps(value, ensure_ascii=False, indent=indent)
        env.globals["raise_exception"] = _raise_exception
        env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
        self.source = source
        self.template = env.from_string(source)
        self.special_tokens = special_tokens  # bos_token, eos_token...: some templates print them

    def apply_chat_template(self, messages: list[dict], tokenize: bool = False, add_generation_prompt: bool = False) -> str:
        if tokenize:
            raise ValueError("ChatTemplate renders text only; tokenize with the model's tokenizer.")
        return self.template.render(messages=messages, add_generation_prompt=add_generation_prompt,
                                    **self.special_tokens)


def _raise_exception(message: str):
    raise TemplateError(message)
