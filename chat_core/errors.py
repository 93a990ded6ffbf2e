"""The project's own error types. Backends translate provider errors into these,
once, at their edge; the faces show `str(error)`: one sentence, what happened and
what to do. No message ever carries a credential."""

from __future__ import annotations

import re
from typing import Mapping

# Query parameters whose values are shown: settings of libpq, SQLite and SQLAlchemy known to
# hold no secret. Any other value (password, sslpassword, passfile, sslkey, token, api_key,
# options, a driver's own...) shows as REDACTED.
SHOWN_PARAMETERS = frozenset({
    "application_name", "channel_binding", "check_same_thread", "client_encoding", "connect_timeout", "dbname",
    "gssencmode", "host", "hostaddr", "immutable", "keepalives", "keepalives_count", "keepalives_idle",
    "keepalives_interval", "load_balance_hosts", "mode", "nolock", "port", "cache", "requiressl", "sslcert",
    "sslcompression", "sslcrl", "sslmode", "sslnegotiation", "sslrootcert", "ssl_max_protocol_version",
    "ssl_min_protocol_version", "target_session_attrs", "timeout", "uri", "user", "vfs",
})
REDACTED = "(hidden)"  # plain in Markdown too: "***" there would turn text bold
_NAME = re.compile(r"[A-Za-z_][\w.-]*")

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
    """`url` (a database URL, ANTHROPIC_BASE_URL) fit for a message or a log. The user name
    stays and its password becomes REDACTED; a user name alone becomes REDACTED too (it may be a
    token, as in https://TOKEN@host). A query parameter keeps its value only when SHOWN_PARAMETERS
    names it; a fragment is dropped. Not a URL at all: a phrase saying so, nothing of it."""
    text = str(url)
    scheme, sep, rest = text.partition("://")
    if not sep or not re.fullmatch(r"[A-Za-z][\w+.-]*", scheme):
        return "(an address that could not be read)"
    # The last "@" ends the credentials (SQLAlchemy reads an unescaped "/", "?" or "#" in a
    # password as part of it). After a "?", that "@" may sit in the query: all before it is
    # hidden, and what follows is read as more of the query.
    credentials, at, rest = rest.rpartition("@")
    in_query = "?" in credentials
    if at:
        user, colon, _ = credentials.partition(":")
        credentials = f"{user}:{REDACTED}@" if colon and not in_query else f"{REDACTED}@"
    rest = rest.split("#", 1)[0]
    place, question, query = ("", "", rest) if in_query and "?" not in rest else rest.partition("?")
    if question or in_query:
        query = "&".join(_shown(pair) for pair in query.split("&"))
    return f"{scheme}://{credentials}{place}{question}{query}"


def _shown(pair: str) -> str:
    """A query's `name=value` with its value REDACTED unless SHOWN_PARAMETERS names it."""
    name, equals, value = pair.partition("=")
    if not (_NAME.fullmatch(name) and name.lower() in SHOWN_PARAMETERS):
        return f"{name}={REDACTED}" if equals and _NAME.fullmatch(name) else REDACTED
    return f"{name}={value}" if equals else name


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


class BusyError(ChatError):
    """A reply is still being written in this conversation."""

    kind = "busy"


class InputTooLongError(ChatError):
    kind = "input_too_long"


class ConfigError(ChatError):
    kind = "config"


class StorageError(ChatError):
    kind = "storage"
