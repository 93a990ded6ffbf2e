"""Backends: one contract (`Backend.stream`), one module per provider."""

from __future__ import annotations

from typing import Callable

from ..usage import TurnRecord, output_is_estimate
from .base import Backend, Reply


def make_backend(backend: str, model: str, *, client=None, load_local: Callable | None = None) -> Backend:
    """The live backend for a setting. `client` (an SDK client) and `load_local`
    (a model loader) let a face share heavy objects instead of rebuilding them."""
    if backend == "anthropic":
        from .anthropic_backend import AnthropicBackend, make_client

        return AnthropicBackend(model, client if client is not None else make_client())
    from .local import LocalBackend, LocalModel, resolve_model_path

    load = load_local or LocalModel.load
    return LocalBackend(name=resolve_model_path(model)[0], load=lambda: load(model))


def output_estimated(record: TurnRecord) -> bool:
    """True when a turn's output token count is an estimate: a Claude reply that did not
    finish (stopped, cut, broken off) never got Claude's own count, so its text was counted
    (`AnthropicBackend.estimate_output_tokens`). The local model's counts are its own."""
    return output_is_estimate(record.backend, record.status, record.usage.output_tokens)


def truncation_note(backend: str, max_tokens: int) -> str:
    """What to say, and advise, when a reply stopped at the token limit."""
    if backend == "local":
        return ("The reply reached the token limit: say \"continue\" for the rest. The small local model has "
                "less room as a chat grows: a smaller window or a new chat helps.")
    return (f"The reply reached the {max_tokens:,}-token limit: say \"continue\" for the rest, or raise the "
            "limit (CHAT_MAX_TOKENS, or --max-tokens in the terminal).")


__all__ = ["Backend", "Reply", "make_backend", "output_estimated", "truncation_note"]
