"""`python -m chat_core --resume [ID]`: which stored conversation, on which backend,
and what of it the next request carries. The id is checked before any model loads."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from . import errors
from .backends.claude_env import continues_locally, has_credential
from .backends.local import DEFAULT_MODEL as LOCAL_MODEL
from .config import Settings
from .conversation import CUT_OFF, STOPPED, USER
from .ids import parse_conversation_id
from .session import LATEST, ChatSession
from .storage import ConversationInfo, Store, StoredConversation

if TYPE_CHECKING:
    from .cli import Terminal

# A resumed conversation's messages are shown one line each, cut to this length.
PREVIEW_CHARS = 160


def not_found(resume: str) -> errors.ConfigError:
    if resume == "last":
        return errors.ConfigError("There is no stored conversation to resume yet.")
    return errors.ConfigError(f"conversation {resume} not found: see them with --list")


def find_stored(store: Store, resume: str) -> StoredConversation:
    """The conversation `resume` names ("last": the latest); ConfigError when there is none.
    Checked before any model loads, so a wrong id is answered at once."""
    conversation_id = store.latest_id() if resume == "last" else parse_conversation_id(resume.strip())
    stored = store.load(conversation_id, latest=LATEST) if conversation_id is not None else None
    if stored is None:
        raise not_found(resume)
    return stored


def resumed_settings(settings: Settings, info: ConversationInfo, term: "Terminal") -> Settings:
    """Go on with the backend and model the conversation was using, as the dashboard does;
    a Claude conversation without a key goes on with the local model, and says so."""
    if info.backend == "anthropic":
        if has_credential(os.environ):
            return settings.with_(backend="anthropic", model=info.model)
        term.warn(continues_locally(info.id, info.model, "set the key to go on with Claude."))
    # A local model is stored by its name, not its file: the configured one, or the bundled one.
    return settings.with_(backend="local", model=settings.model if settings.backend == "local" else LOCAL_MODEL)


def show_resumed(session: ChatSession, term: "Terminal") -> None:
    """What the next request carries from the resumed conversation, one line a message,
    and how many stored messages it leaves out."""
    messages, sent = session.messages, session.in_window()
    earlier = session.earlier.messages + min(sent, default=len(messages))  # messages before the first one sent
    if earlier:
        term.say(f"{earlier} earlier message{'s are' if earlier != 1 else ' is'} stored but not sent.")
    if not sent:
        term.say("The next request carries none of them.")
        return
    term.say("The next request carries:")
    for index in sorted(sent):
        message = messages[index]
        mark = {STOPPED: " [stopped]", CUT_OFF: " [cut off]"}.get(message.status, "")
        term.say(f"  {'you' if message.role == USER else 'reply'}> {preview(message.text)}{mark}")


def preview(text: str, limit: int = PREVIEW_CHARS) -> str:
    """`text` on one line, cut to `limit` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
