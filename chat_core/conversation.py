"""Messages, the conversation they form, and the sliding window over it.

The full history is kept for display; the window decides what is *sent*.
Everything here is plain data and pure functions: no provider, no UI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from .content import Attachment, Citation, Thinking
from .window import CACHE_AWARE, estimate_tokens, first_sent

USER = "user"
ASSISTANT = "assistant"

COMPLETE = "complete"
STOPPED = "stopped"
FAILED = "failed"
STREAMING = "streaming"  # a reply still being written: its text grows in the store
CUT_OFF = "cut_off"  # a reply whose writer died (a killed server): what it had is kept


@dataclass
class Message:
    """One message of a conversation, as shown and as stored."""

    role: str
    text: str
    status: str = COMPLETE
    error: str | None = None
    id: int | None = None  # the store's id; None until saved
    reply_to: int | None = None  # a reply: the id of the user message it answers
    unsaved: str | None = None  # why the store could not keep it (shown beside it)
    edit_of: int | None = None  # an edited question: the id of its first version
    active: bool = True  # False: an earlier version, kept but neither shown nor sent
    attachments: list[Attachment] = field(default_factory=list)  # files it carries (chat_core.content)
    thinking: list[Thinking] = field(default_factory=list)  # a reply's thinking blocks, with their signatures
    citations: list[Citation] = field(default_factory=list)  # the passages a reply cites

    @property
    def sendable(self) -> bool:
        return bool(self.text.strip()) or (self.role == USER and bool(self.attachments))

    @property
    def tokens(self) -> int:
        """Estimated tokens it adds to a request: its text and its attachments."""
        return estimate_tokens(self.text) + sum(a.tokens for a in self.attachments)

    def for_request(self) -> "Message":
        """What a request carries of it: role, text, attachments and thinking."""
        return Message(self.role, self.text, attachments=self.attachments, thinking=self.thinking)


def thread_order(messages: Sequence[Message]) -> list[Message]:
    """Messages in the order a reader follows them: each reply right after the
    message it answers, even when another tab wrote in between."""
    replies: dict[int, list[Message]] = {}
    for message in messages:
        if message.role == ASSISTANT and message.reply_to is not None:
            replies.setdefault(message.reply_to, []).append(message)
    ordered: list[Message] = []
    for message in messages:
        if message.role == ASSISTANT and message.reply_to is not None:
            continue
        ordered.append(message)
        ordered.extend(replies.pop(message.id, []) if message.id is not None else [])
    for orphans in replies.values():  # replies whose question is gone: keep them, at the end
        ordered.extend(orphans)
    return ordered


def active_thread(messages: Sequence[Message]) -> list[Message]:
    """The conversation as shown and sent: active versions only (a reply to an
    inactive question is hidden with it), each reply after its question."""
    questions = {m.id for m in messages if m.role == USER and m.active}
    return thread_order([m for m in messages if m.active and (
        m.role == USER or m.reply_to is None or m.reply_to in questions)])


def versions(everything: Sequence[Message], message: Message) -> list[Message]:
    """Every version of `message`, oldest first: the replies to its question, or
    the edits of its question (itself alone when it has none, or is not stored)."""
    if message.id is None:
        return [message]
    if message.role == ASSISTANT:
        if message.reply_to is None:
            return [message]
        same = [m for m in everything if m.role == ASSISTANT and m.reply_to == message.reply_to]
    else:
        root = message.edit_of or message.id
        same = [m for m in everything if m.role == USER and (m.edit_of or m.id) == root]
    return sorted(same, key=lambda m: m.id) or [message]


@dataclass(frozen=True)
class Exchange:
    """A user message and the reply it got (None while none has been recorded)."""

    user_index: int
    reply_index: int | None


def exchanges(history: Sequence[Message]) -> list[Exchange]:
    """Pair each user message with the assistant message that follows it, if any."""
    pairs: list[Exchange] = []
    for i, message in enumerate(history):
        if message.role == USER:
            pairs.append(Exchange(i, None))
        elif message.role == ASSISTANT and pairs and pairs[-1].reply_index is None:
            pairs[-1] = Exchange(pairs[-1].user_index, i)
    return pairs


def _usable(history: Sequence[Message], pair: Exchange) -> bool:
    """An exchange can go to the model only when both sides carry text."""
    return (
        pair.reply_index is not None
        and history[pair.user_index].sendable
        and history[pair.reply_index].sendable
    )


def usable_exchanges(history: Sequence[Message]) -> list[Exchange]:
    """The exchanges a request may carry, oldest first."""
    return [pair for pair in exchanges(history) if _usable(history, pair)]


def exchange_sizes(history: Sequence[Message], pairs: Sequence[Exchange]) -> list[int]:
    """Estimated tokens of each exchange, for sizing the window."""
    return [history[p.user_index].tokens + history[p.reply_index].tokens  # type: ignore[index]
            for p in pairs]


def window_start(history: Sequence[Message], window: int, policy: str = CACHE_AWARE, min_prefix_tokens: int = 0,
                 earlier: Sequence[int] = (), resume: tuple[int, int] = (0, 0)) -> int:
    """Index, among `usable_exchanges(history)`, of the first past exchange the next request carries;
    negative when it lies before `history`. `earlier`: the estimated sizes of the usable exchanges
    that come before `history` (a page of a long conversation), oldest first: the window is a
    recurrence over the whole conversation (chat_core.window.first_sent, and its `resume`)."""
    usable = usable_exchanges(history)
    sizes = [*earlier, *exchange_sizes(history, usable)]
    return first_sent(sizes, window, policy, min_prefix_tokens, resume) - len(earlier)


def window_indices(history: Sequence[Message], window: int, policy: str = CACHE_AWARE,
                   min_prefix_tokens: int = 0, earlier: Sequence[int] = (),
                   resume: tuple[int, int] = (0, 0)) -> set[int]:
    """Indices of past messages that the next request carries (of those in `history`).

    `window` is the number of past exchanges to send; 0 means all of them.
    `policy` decides how a full window lets go of old exchanges (chat_core.window:
    in blocks that keep the cached prefix, or one a turn). Exchanges whose reply
    failed with no text (or is missing) are skipped, so roles always alternate
    and no empty message is sent. `earlier`, `resume`: see `window_start`.
    """
    start = window_start(history, window, policy, min_prefix_tokens, earlier, resume)
    picked: set[int] = set()
    for pair in usable_exchanges(history)[max(start, 0):]:
        picked.add(pair.user_index)
        picked.add(pair.reply_index)  # type: ignore[arg-type]
    return picked


def window_label(window: int) -> str:
    """How a window reads to a user: 0 is every exchange."""
    return "all exchanges" if window == 0 else f"the last {window} exchange{'s' if window != 1 else ''}"


def build_request(history: Sequence[Message], new: str | Message, window: int, policy: str = CACHE_AWARE,
                  min_prefix_tokens: int = 0, earlier: Sequence[int] = (),
                  resume: tuple[int, int] = (0, 0)) -> list[Message]:
    """The messages to send for a new user message (its text, or the message with its
    attachments): the window, then that message.

    Always valid for the Messages API: starts with a user message, roles
    alternate, ends with the new user message, no empty content. `earlier`:
    see `window_start` (the window must lie inside `history`).
    """
    new = Message(USER, new) if isinstance(new, str) else new
    if not new.sendable:
        raise ValueError("the new message is empty")
    picked = window_indices(history, window, policy, min_prefix_tokens, earlier, resume)
    sent = [history[i].for_request() for i in sorted(picked)]
    sent.append(new.for_request())
    return sent


def is_valid_request(messages: Sequence[Message]) -> bool:
    """True when `messages` is a request the Messages API accepts."""
    if not messages or messages[0].role != USER or messages[-1].role != USER:
        return False
    for before, after in zip(messages, messages[1:]):
        if before.role == after.role:
            return False
    return all(m.role in (USER, ASSISTANT) and m.sendable for m in messages)


@dataclass
class Conversation:
    """A persona and every turn, in order. What is sent is derived by the window."""

    system: str
    messages: list[Message] = field(default_factory=list)

    def request_for(self, new_text: str | Message, window: int, policy: str = CACHE_AWARE, min_prefix_tokens: int = 0) -> list[Message]:
        return build_request(self.messages, new_text, window, policy, min_prefix_tokens)

    def in_window(self, window: int, policy: str = CACHE_AWARE, min_prefix_tokens: int = 0) -> set[int]:
        return window_indices(self.messages, window, policy, min_prefix_tokens)

    def clear(self) -> None:
        self.messages.clear()
