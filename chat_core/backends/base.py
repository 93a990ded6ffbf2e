"""The one backend contract.

`Backend.stream(...)` is a generator of text chunks (str) and, between them, events of
what a reply carries besides its text (`chat_core.content`: `ThinkingChunk`, `CitationFound`). While it runs it fills a
`Reply` in place, so whoever holds the reply sees the partial text, usage and
timings even when the stream is stopped or fails half-way. Provider errors
come out as `chat_core.errors.ChatError` subclasses, never as provider types.
Every chunk is made encodable on its way in (`chat_core.text_in`): a lone
surrogate becomes U+FFFD, so the reply can be stored and printed whole.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from itertools import chain
from typing import Callable, Iterator, Sequence

from ..content import Citation, Thinking
from ..conversation import Message
from ..text_in import ChunkCleaner
from ..usage import Usage

Notify = Callable[[str], None]


@dataclass
class Reply:
    """What a reply was, as far as it got."""

    backend: str
    model: str
    text: str = ""
    stop_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    ttft_s: float | None = None
    total_s: float | None = None
    complete: bool = False
    notices: list[str] = field(default_factory=list)
    # How many messages the backend finally sent (it may drop old ones to fit).
    messages_sent: int = 0
    thinking: list[Thinking] = field(default_factory=list)  # with their signatures, as they came
    citations: list[Citation] = field(default_factory=list)
    thinking_s: float | None = None  # how long it thought before its first text


class Backend:
    """Base of every backend: subclasses implement `_chunks`."""

    name = "base"

    def __init__(self, model: str):
        self.model = model

    @property
    def label(self) -> str:
        return f"{self.name} · {self.model}"

    def stream(
        self,
        system: str,
        messages: Sequence[Message],
        max_tokens: int,
        reply: Reply | None = None,
        notify: Notify | None = None,
    ) -> Iterator[object]:
        """Yield the reply's text chunks as they arrive (and its events), filling `reply`.

        `notify` receives one-line notices meant for the user that are not
        part of the reply (waiting for a busy model, history trimmed to fit).
        """
        reply = reply if reply is not None else Reply(self.name, self.model)
        reply.messages_sent = len(messages)

        def note(text: str) -> None:
            reply.notices.append(text)
            if notify is not None:
                notify(text)

        started = time.perf_counter()
        cleaner = ChunkCleaner()  # a lone surrogate from the provider would make the reply unstorable
        chunks = self._chunks(system, messages, max_tokens, reply, note)
        try:
            for raw in chain(chunks, [None]):  # None: the end, where a held-back character is let go
                if raw is not None and not isinstance(raw, str):  # an event: thinking, a citation
                    yield raw
                    continue
                chunk = cleaner.flush() if raw is None else cleaner.feed(raw)
                if not chunk:
                    continue
                if reply.ttft_s is None:
                    reply.ttft_s = time.perf_counter() - started
                    if reply.thinking:
                        reply.thinking_s = reply.ttft_s
                reply.text += chunk
                yield chunk
        finally:
            chunks.close()  # a stop: the backend records what it can (usage so far) before this returns
            reply.text += cleaner.flush()  # after a stop or a failure, nothing is held back
            reply.total_s = time.perf_counter() - started

    def _chunks(
        self,
        system: str,
        messages: Sequence[Message],
        max_tokens: int,
        reply: Reply,
        note: Notify,
    ) -> Iterator[str]:
        raise NotImplementedError
