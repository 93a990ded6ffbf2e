"""Backends: one contract (`Backend.stream`), one module per provider."""

from __future__ import annotations

from typing import Callable

from .base import Backend, Reply


def make_backend(backend: str, model: str, *, client=None, load_local: Callable | None = None) -> Backend:
    """The live backend for a setting. `client` (an SDK client) and `load_local`
    (a model loader) let a face share heavy objects instead of rebuilding them."""
    if backend == "anthropic":
        from .anthropic_backend import AnthropicBackend, make_client

        return AnthropicBackend(model, client if client is not None else make_client())
    from .local import LocalBackend, LocalModel

    return LocalBackend((load_local or LocalModel.load)(model))


__all__ = ["Backend", "Reply", "make_backend"]
