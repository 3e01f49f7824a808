"""A PEFT LoRA adapter as a GGUF LoRA adapter, which llama.cpp applies at load time over a quantized base.

Why an adapter file rather than merging into the base and writing a new GGUF: the adapter was trained on the
base's Q4_1 weights dequantized to float32 (tutor.models.hf.loading). llama.cpp runs those weights (as shipped,
or re-rounded to the finer Q8_0 grid, tutor.models.llamacpp.weights) and adds ``scale * B @ (A @ x)`` in float,
so served and trained models differ only in arithmetic rounding. A merged GGUF written as Q4_1 again rounds the
small LoRA updates back onto the same 4-bit grid: measured against transformers with the adapter, its
next-token log-probabilities were 0.90 nats off on average (the adapter's whole effect: 0.95), the adapter
file's 0.09.

Only numpy, safetensors and gguf are needed (no torch), so the first start exports in about a second.
The result is cached under the data dir, keyed on the adapter's bytes and the base file, and rebuilt when either
changes: ``cached_export``. ``tutor export-gguf`` writes one on request.

The layout llama.cpp expects (its convert_lora_to_gguf.py writes the same):
- metadata ``general.type = adapter``, ``adapter.type = lora``, ``adapter.lora.alpha``; llama.cpp scales each
  pair by ``alpha / rank`` with the rank read from the tensor shapes, as PEFT does;
- per adapted matrix ``<gguf name>.weight.lora_a`` (PEFT's A, shape [r, in]) and ``.lora_b`` (B, [out, r]);
- for llama-architecture GGUFs the rows of q_proj and k_proj are stored permuted for llama.cpp's RoPE layout
  (transformers undoes it when it loads the GGUF), so B of those two, whose rows are output rows, is permuted
  the same way.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tempfile
import time
from pathlib import Path

import numpy as np

from tutor.config import Settings
from tutor.errors import ModelLoadError
from tutor.models.sources import read_header

EXPORT_VERSION = 1  # part of the cache key: bump when the file layout written here changes
PEFT_NAME = re.compile(r"^base_model\.model\.(?P<module>.+)\.lora_(?P<which>[AB])\.weight$")
# GGUF architectures whose q/k rows llama.cpp's converter permutes (LlamaModel.undo_permute in its converter).
PERMUTED_QK = {"llama"}


def fingerprint(adapter_dir: Path, base: Path) -> str:
    """16 hex digits that change when the adapter's weights or config, the base file, or this exporter change."""
    digest = hashlib.sha256(f"v{EXPORT_VERSION}".encode())
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        digest.update((adapter_dir / name).read_bytes())
    stat = base.stat()  # the base is ~100 MB: its name, size and mtime identify it (as the transformers cache does)
    digest.update(f"{base.name}:{stat.st_size}:{int(stat.st_mtime)}".encode())
    return digest.hexdigest()[:16]


def cache_path(settings: Settings, adapter_dir: Path, base: Path) -> Path:
    return settings.model_cache_dir / f"lora-{adapter_dir.name}-{fingerprint(adapter_dir, base)}.gguf"


def cached_export(settings: Settings, adapter_dir: Path, base: Path) -> tuple[Path, bool]:
    """The GGUF adapter for ``adapter_dir`` over ``base``, exported on first use; (path, whether it was cached)."""
    target = cache_path(settings, adapter_dir, base)
    if target.is_file():
        return target, True
    export(adapter_dir, base, target)
    return target, False


def _permute(rows: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's converter permutation of q/k output rows (LlamaModel.permute), applied to B's rows."""
    return rows.reshape(n_head, 2, rows.shape[0] // n_head // 2, *rows.shape[1:]).swapaxes(1, 2).reshape(rows.shape)


def _read_config(adapter_dir: Path) -> dict:
    path = adapter_dir / "adapter_config.json"
    if not path.is_file() or not (adapter_dir / "adapter_model.safetensors").is_file():
        raise ModelLoadError(f"{adapter_dir} is not a PEFT adapter folder (adapter_config.json and "
                             "adapter_model.safetensors are both needed).")
    config = json.loads(path.read_text())
    unsupported = [
        (config.get("peft_type") != "LORA", f"peft_type {config.get('peft_type')!r} (only LORA)"),
        (config.get("use_dora"), "DoRA"),
        (config.get("rank_pattern") or config.get("alpha_pattern"), "per-module rank or alpha patterns"),
        (config.get("fan_in_fan_out"), "fan_in_fan_out (GPT-2 style Conv1D layers)"),
        (config.get("modules_to_save"), "modules_to_save (fully trained layers)"),
        (config.get("bias", "none") != "none", "trained biases"),
    ]
    problems = [what for bad, what in unsupported if bad]
    if problems:
        raise ModelLoadError(f"The adapter at {adapter_dir} uses {', '.join(problems)}, which a GGUF LoRA "
                             "adapter cannot express. Serve it with TUTOR_BACKEND=transformers.")
    return config


def export(adapter_dir: Path, base: Path, out: Path) -> dict:
    """Write the GGUF LoRA adapter for ``adapter_dir`` (PEFT) over the GGUF ``base`` to ``out``; return a summary.

    Raises ModelLoadError when the adapter does not fit the base, naming the first mismatch."""
    import gguf  # the writer; 0.4 s to import, so only when exporting
    from safetensors.numpy import load_file

    started = time.perf_counter()
    config = _read_config(adapter_dir)
    metadata, base_shapes = read_header(base)
    arch = metadata.get("general.architecture")
    if arch not in PERMUTED_QK:
        raise ModelLoadError(f"{base.name} is a {arch!r} GGUF; exporting adapters is supported for llama-architecture "
                             "bases (SmolLM2, Llama, Mistral). Serve this one with TUTOR_BACKEND=transformers.")
    n_head, n_head_kv = metadata[f"{arch}.attention.head_count"], metadata[f"{arch}.attention.head_count_kv"]
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, metadata[f"{arch}.block_count"])

    pairs: dict[str, dict[str, np.ndarray]] = {}
    for key, value in load_file(str(adapter_dir / "adapter_model.safetensors")).items():
        match = PEFT_NAME.match(key)
        if not match:
            raise ModelLoadError(f"{adapter_dir}: unexpected tensor {key!r}; only LoRA A/B matrices can be exported.")
        pairs.setdefault(match["module"], {})[match["which"]] = value.astype(np.float32)

    # PEFT scales B @ A by alpha / r (alpha / sqrt(r) with rsLoRA); llama.cpp by alpha / r: express rsLoRA in alpha.
    rank = int(config["r"])
    alpha = float(config["lora_alpha"]) * (math.sqrt(rank) if config.get("use_rslora") else 1.0)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=".exporting-", suffix=".gguf")
    os.close(fd)
    try:
        writer = gguf.GGUFWriter(tmp, arch)
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
        writer.add_name(f"{adapter_dir.name} (LoRA r={rank}) for {base.name}")
        for module in sorted(pairs):
            a, b = pairs[module].get("A"), pairs[module].get("B")
            target = (names.get_name(module) or "?") + ".weight"
            if a is None or b is None or target not in base_shapes:
                raise ModelLoadError(f"{adapter_dir}: LoRA weights for {module!r} match no tensor of {base.name}; "
                                     "was it trained for another model, or is the file damaged?")
            n_in, n_out = base_shapes[target]
            if a.shape[1] != n_in or b.shape[0] != n_out or a.shape[0] != b.shape[1]:
                raise ModelLoadError(f"{adapter_dir}: {module} has A {list(a.shape)} and B {list(b.shape)}, but "
                                     f"{target} in {base.name} is {n_out} x {n_in}; the adapter belongs to another model.")
            if arch in PERMUTED_QK and module.endswith("q_proj"):
                b = _permute(b, n_head)
            elif arch in PERMUTED_QK and module.endswith("k_proj"):
                b = _permute(b, n_head_kv)
            writer.add_tensor(target + ".lora_a", np.ascontiguousarray(a))
            writer.add_tensor(target + ".lora_b", np.ascontiguousarray(b))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp, out)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return {"path": str(out), "modules": len(pairs), "rank": rank, "alpha": alpha, "bytes": out.stat().st_size,
            "seconds": round(time.perf_counter() - started, 2)}
