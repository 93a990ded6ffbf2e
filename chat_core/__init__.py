"""chat_core: the streaming chat engine behind the dashboard and the terminal chat.

No UI code lives here: faces call `ChatSession.send(text)` and render the
text chunks it yields.
"""

from .backends import Backend, Reply, make_backend
from .config import DEFAULT_SYSTEM, Settings, settings_from_env
from .conversation import COMPLETE, FAILED, STOPPED, Conversation, Message, build_request, is_valid_request
from .errors import ChatError
from .session import ChatSession
from .usage import TurnRecord, Usage, cost, format_cost, price_for, totals

__all__ = [
    "Backend",
    "ChatError",
    "ChatSession",
    "COMPLETE",
    "Conversation",
    "DEFAULT_SYSTEM",
    "FAILED",
    "Message",
    "Reply",
    "STOPPED",
    "Settings",
    "TurnRecord",
    "Usage",
    "build_request",
    "cost",
    "format_cost",
    "is_valid_request",
    "make_backend",
    "price_for",
    "settings_from_env",
    "totals",
]
