"""Chat models: the interface (``protocol``), the back-ends (``hf``, ``openai``), and the plain factory that picks one.

Back-ends import their heavy frameworks inside the factory branch, so importing this package stays cheap.
"""
from __future__ import annotations

from tutor.config import Settings
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

__all__ = ["GREEDY", "ChatModel", "GenerationSettings", "Inspector", "Message", "ModelInfo", "answer_mode", "complete",
           "inspectable", "load_model", "prompt_budget"]


def load_model(settings: Settings) -> ChatModel:
    """Build the chat model the settings ask for. Heavy imports happen here, not at module import."""
    if settings.model.startswith("openai:"):
        from tutor.models.openai import OpenAIChatModel

        return OpenAIChatModel.from_settings(settings)
    from tutor.models.hf import HFChatModel

    return HFChatModel.from_settings(settings)
