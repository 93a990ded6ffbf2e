"""The project's own error types. Backends translate provider errors into these,
once, at their edge; the faces show `str(error)`: one sentence, what happened and
what to do. No message ever carries a credential."""

from __future__ import annotations

from typing import Mapping
from urllib.parse import urlsplit

# Advice that names a terminal option. The terminal shows it as written; another face
# swaps in the name of its own control with `for_face`, in a new error or a stored one.
USE_LOCAL_MODEL = "use the local model (--backend local)"
CHOOSE_ANOTHER_MODEL = "choose another with --model or CHAT_MODEL"


def for_face(text: str, advice: Mapping[str, str]) -> str:
    """`text` (an error's one line) with each terminal advice in `advice` put in the face's own words."""
    for terminal, own in advice.items():
        text = text.replace(terminal, own)
    return text


def redact_url(url: object) -> str:
    """`url` fit for a message or a log: scheme, host, port and path; never a
    user name, password or query string (which may carry a key)."""
    parts = urlsplit(str(url))
    host = parts.hostname or ""
    if ":" in host:  # IPv6
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # a port that is not a number
        port = ""
    return f"{parts.scheme}://{host}{port}{parts.path}" if parts.scheme else "(an address that could not be read)"


class ChatError(Exception):
    """A failure the user can act on. `kind` names it for storage and tests."""

    kind = "error"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class NoCredentialError(ChatError):
    kind = "no_credential"


class AuthError(ChatError):
    kind = "auth"


class RateLimitError(ChatError):
    kind = "rate_limit"


class OverloadedError(ChatError):
    kind = "overloaded"


class ServerError(ChatError):
    kind = "server"


class RequestError(ChatError):
    """The provider refused the request itself (bad request, unknown model, too large)."""

    kind = "request"


class ConnectionLostError(ChatError):
    kind = "connection"


class TimeoutError_(ChatError):
    kind = "timeout"


class StreamError(ChatError):
    """The provider reported an error in the middle of a reply."""

    kind = "stream"


class ModelFileError(ChatError):
    kind = "model_file"


class InputTooLongError(ChatError):
    kind = "input_too_long"


class ConfigError(ChatError):
    kind = "config"


class StorageError(ChatError):
    kind = "storage"
