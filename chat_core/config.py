"""Settings, read from the environment once, and the choice of backend."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping

from .backends import claude_env, local
from .errors import ConfigError
from .window import CACHE_AWARE, POLICIES

BACKENDS = ("anthropic", "local")
DEFAULT_SYSTEM = (
    "You are a concise, friendly assistant. Answer clearly and briefly, "
    "and ask a short question when a request is ambiguous."
)
DEFAULT_WINDOW = 10
DEFAULT_MAX_TOKENS = 1024
DEFAULT_MAX_INPUT_CHARS = 16_000


@dataclass(frozen=True)
class Settings:
    backend: str
    model: str
    system: str = DEFAULT_SYSTEM
    window: int = DEFAULT_WINDOW  # past exchanges sent; 0 = all
    max_tokens: int = DEFAULT_MAX_TOKENS
    max_input_chars: int = DEFAULT_MAX_INPUT_CHARS
    database_url: str = ""
    window_policy: str = CACHE_AWARE  # how a full window lets go of old exchanges (chat_core.window)
    prompt_cache: bool = True  # Claude's prompt caching
    thinking: str = "off"  # extended thinking: off, low, medium, high (chat_core.thinking)
    web: bool = False  # Claude's web search and fetch tools (they cost money and send queries out)

    def with_(self, **changes) -> "Settings":
        return replace(self, **changes)


def default_model(backend: str) -> str:
    return claude_env.DEFAULT_MODEL if backend == "anthropic" else local.DEFAULT_MODEL


def default_database_url(environ: Mapping[str, str]) -> str:
    """CHAT_DATABASE_URL, else a SQLite file in CHAT_DATA_DIR (default ~/.local/share/claude-chat)."""
    if environ.get("CHAT_DATABASE_URL"):
        return environ["CHAT_DATABASE_URL"]
    folder = Path(environ.get("CHAT_DATA_DIR") or Path.home() / ".local" / "share" / "claude-chat")
    return f"sqlite:///{folder / 'chat.db'}"


def _int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number: fix or unset it.") from None
    if value < 0:
        raise ConfigError(f"{name} must not be negative: fix or unset it.")
    return value


def _names_claude(model: str) -> bool:
    """A Claude model's name, not a local GGUF file (which the local backend takes by its path)."""
    return model.startswith("claude-") and not Path(model).expanduser().exists()


def settings_from_env(environ: Mapping[str, str] | None = None, **overrides) -> Settings:
    """Settings from CHAT_* variables; keyword overrides (command-line flags) win when not None.

    The backend is CHAT_BACKEND when set, else Claude when a key is present, else the local model.
    """
    environ = os.environ if environ is None else environ
    given = {k: v for k, v in overrides.items() if v is not None}
    backend = (given.pop("backend", None) or environ.get("CHAT_BACKEND") or "").strip().lower()
    if not backend:
        backend = "anthropic" if claude_env.has_credential(environ) else "local"
    if backend not in BACKENDS:
        raise ConfigError(f"Unknown backend {backend!r}: choose 'anthropic' or 'local'.")
    model = given.pop("model", None) or environ.get("CHAT_MODEL") or default_model(backend)
    if backend == "local" and not claude_env.has_credential(environ) and _names_claude(model):
        raise ConfigError(f"{model} is a Claude model, but no ANTHROPIC_API_KEY is set: export the key, or leave "
                          "out the model to chat with the local model.")
    settings = Settings(
        backend=backend,
        model=model,
        system=environ.get("CHAT_SYSTEM") or DEFAULT_SYSTEM,
        window=_int(environ, "CHAT_WINDOW", DEFAULT_WINDOW),
        max_tokens=_int(environ, "CHAT_MAX_TOKENS", DEFAULT_MAX_TOKENS),
        max_input_chars=_int(environ, "CHAT_MAX_INPUT_CHARS", DEFAULT_MAX_INPUT_CHARS),
        database_url=default_database_url(environ),
        window_policy=(environ.get("CHAT_WINDOW_POLICY") or CACHE_AWARE).strip().lower(),
        prompt_cache=claude_env.prompt_cache_default(environ),
    )
    settings = settings.with_(**given)
    if settings.max_tokens < 1:
        raise ConfigError("max tokens must be at least 1.")
    if settings.window < 0:
        raise ConfigError("The window must be 0 (all exchanges) or more.")
    if settings.window_policy not in POLICIES:
        raise ConfigError(f"CHAT_WINDOW_POLICY={settings.window_policy!r} is not known: use 'cache' or 'slide'.")
    return settings
