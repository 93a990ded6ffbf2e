"""chat_core: the streaming chat engine behind the dashboard and the terminal chat.

No UI code lives here: faces call `ChatSession.send(text)` and render the
text chunks it yields; the reply itself is a `ReplyJob` the process owns.
"""

from .backends import Backend, Reply, make_backend
from .content import Attachment, AttachmentRefused, Citation, CitationFound, Thinking, ThinkingChunk, prepare
from .config import DEFAULT_SYSTEM, Settings, settings_from_env
from .conversation import (
    COMPLETE, CUT_OFF, FAILED, STOPPED, STREAMING, Conversation, Message, build_request, is_valid_request,
)
from .errors import BusyError, ChatError
from .jobs import JOBS, JobRegistry, ReplyJob, Ticket, follow_stored
from .session import ChatSession
from .usage import TurnRecord, Usage, cost, format_cost, price_for, totals

__all__ = [
    "Attachment",
    "AttachmentRefused",
    "Backend",
    "BusyError",
    "ChatError",
    "ChatSession",
    "Citation",
    "CitationFound",
    "COMPLETE",
    "CUT_OFF",
    "Conversation",
    "DEFAULT_SYSTEM",
    "FAILED",
    "JOBS",
    "JobRegistry",
    "Message",
    "Reply",
    "ReplyJob",
    "STOPPED",
    "STREAMING",
    "Settings",
    "Thinking",
    "ThinkingChunk",
    "Ticket",
    "TurnRecord",
    "Usage",
    "build_request",
    "cost",
    "follow_stored",
    "format_cost",
    "is_valid_request",
    "make_backend",
    "prepare",
    "price_for",
    "settings_from_env",
    "totals",
]
