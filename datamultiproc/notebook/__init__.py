"""Notebook features: progress displays and pandas views (imports pandas and ipywidgets)."""

__all__: list[str] = []
