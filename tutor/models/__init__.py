"""Chat models: the interface (``protocol``), the back-ends (``hf``), and the plain factory that picks one.

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
)

__all__ = ["GREEDY", "ChatModel", "GenerationSettings", "Inspector", "Message", "ModelInfo", "answer_mode", "complete",
           "inspectable", "load_model"]


def load_model(settings: Settings) -> ChatModel:
    """Build the chat model the settings ask for. Heavy imports happen here, not at module import."""
    from tutor.models.hf import HFChatModel

    return HFChatModel.from_settings(settings)
