"""One module per tab; each ``build(...)`` adds its tab to the Blocks being built (tutor.ui.app)."""
