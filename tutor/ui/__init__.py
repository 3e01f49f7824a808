"""The browser app: the only package that imports Gradio. ``build_app(tutor)`` returns the Blocks.

Handlers are thin: they normalise Gradio's shapes into plain strings and call the framework-free tutor code.
"""
from tutor.ui.app import build_app, launch

__all__ = ["build_app", "launch"]
