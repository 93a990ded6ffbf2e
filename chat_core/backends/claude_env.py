"""What the rest of chat_core needs to know about Claude without importing the
`anthropic` SDK (about a second at start-up, wasted on the local model)."""

from __future__ import annotations

from typing import Mapping

DEFAULT_MODEL = "claude-haiku-4-5"


def has_credential(environ: Mapping[str, str]) -> bool:
    """True when the environment gives the SDK a key or token to send."""
    return bool(environ.get("ANTHROPIC_API_KEY") or environ.get("ANTHROPIC_AUTH_TOKEN"))


def prompt_cache_default(environ: Mapping[str, str]) -> bool:
    """Prompt caching is on unless CHAT_PROMPT_CACHE says off (off, 0, false, no)."""
    return environ.get("CHAT_PROMPT_CACHE", "on").strip().lower() not in ("off", "0", "false", "no")
