"""What the rest of chat_core needs to know about Claude without importing the
`anthropic` SDK (about a second at start-up, wasted on the local model)."""

from __future__ import annotations

from typing import Mapping

DEFAULT_MODEL = "claude-haiku-4-5"


def has_credential(environ: Mapping[str, str]) -> bool:
    """True when the environment gives the SDK a key or token to send."""
    return bool(environ.get("ANTHROPIC_API_KEY") or environ.get("ANTHROPIC_AUTH_TOKEN"))


def continues_locally(conversation_id: int, model: str, advice: str) -> str:
    """One line for a Claude conversation opened without a key: it goes on with the local model;
    `advice` says how to go on with Claude in this face."""
    return (f"Conversation {conversation_id} was with Claude ({model}), but no ANTHROPIC_API_KEY is set, "
            f"so it continues on the local model: {advice}")


def prompt_cache_default(environ: Mapping[str, str]) -> bool:
    """Prompt caching is on unless CHAT_PROMPT_CACHE says off (off, 0, false, no)."""
    return environ.get("CHAT_PROMPT_CACHE", "on").strip().lower() not in ("off", "0", "false", "no")
