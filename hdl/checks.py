"""Elaboration-time checks shared by every block's component."""
from __future__ import annotations

from .compat import silence_unused


def require_config(component, cfg, config_cls: type) -> None:
    """Raise TypeError unless ``cfg`` is a ``config_cls`` (before the component is built,
    so Amaranth's "created but never used" warning is silenced)."""
    if not isinstance(cfg, config_cls):
        silence_unused(component)
        raise TypeError(f"cfg must be a {config_cls.__name__}, not {cfg!r}")
