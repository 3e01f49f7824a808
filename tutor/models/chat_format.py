"""Chat formatting shared by serving and training: the same system-role folding on both sides, so an adapter
sees served prompts exactly as it was trained on them."""
from __future__ import annotations

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
