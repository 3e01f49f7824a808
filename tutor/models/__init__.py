"""Chat models: the interface (``protocol``), the back-ends (``hf``: transformers, ``llamacpp``: llama.cpp,
``openai``: OpenAI-compatible servers), and the plain factory that picks one.

Back-ends import their heavy frameworks inside the factory branch, so importing this package stays cheap.
"""
from __future__ import annotations

import importlib.util

from tutor.config import Settings, gpu_visible
from tutor.errors import ModelLoadError
from tutor.models.protocol import (
    GREEDY,
    ChatModel,
    GenerationSettings,
    Inspector,
    Message,
    ModelInfo,
    answer_mode,
    complete,
    inspectable,
    prompt_budget,
)
from tutor.models.sources import is_gguf

__all__ = ["GREEDY", "ChatModel", "GenerationSettings", "Inspector", "Message", "ModelInfo", "answer_mode", "complete",
           "inspectable", "load_model", "prompt_budget", "resolve_backend"]


def resolve_backend(settings: Settings) -> str:
    """`llamacpp` or `transformers` for a local model: what TUTOR_BACKEND asks for, with `auto` resolved.

    auto takes llama.cpp for a GGUF model (the embedded default, or a .gguf path) on a CPU-only machine when
    llama-cpp-python is installed: the same weights, 4-bit instead of float32 in memory, so several times the
    decode speed (see `make bench`). A GPU, a Hugging Face model or a missing llama-cpp-python means transformers."""
    if settings.backend != "auto":
        return settings.backend
    on_cpu = settings.device == "cpu" or (settings.device == "auto" and not gpu_visible())
    if on_cpu and is_gguf(settings) and importlib.util.find_spec("llama_cpp") is not None:
        return "llamacpp"
    return "transformers"


def load_model(settings: Settings) -> ChatModel:
    """Build the chat model the settings ask for. Heavy imports happen here, not at module import."""
    if settings.model.startswith("openai:"):
        from tutor.models.openai import OpenAIChatModel

        return OpenAIChatModel.from_settings(settings)
    if resolve_backend(settings) == "llamacpp":
        if importlib.util.find_spec("llama_cpp") is None:
            raise ModelLoadError("TUTOR_BACKEND=llamacpp needs llama-cpp-python, which is not installed. Run "
                                 "`make install` (it builds it), or set TUTOR_BACKEND=transformers.")
        from tutor.models.llamacpp import LlamaCppChatModel

        return LlamaCppChatModel.from_settings(settings)
    from tutor.models.hf import HFChatModel

    return HFChatModel.from_settings(settings)
