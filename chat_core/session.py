"""A chat session: one conversation, its usage records, a live backend, and the
turn loop that both faces drive. No UI here: `send` returns a generator of text
chunks that a face prints or hands to `st.write_stream`."""

from __future__ import annotations

from typing import Iterator, Sequence

from . import errors
from .backends.base import Backend, Notify, Reply
from .config import Settings
from .conversation import ASSISTANT, COMPLETE, FAILED, STOPPED, USER, Conversation, Message
from .usage import Totals, TurnRecord, cost, price_for, totals


class ChatSession:
    def __init__(
        self,
        backend: Backend,
        settings: Settings,
        conversation: Conversation | None = None,
        records: list[TurnRecord] | None = None,
        store=None,
        conversation_id: int | None = None,
    ):
        self.backend = backend
        self.settings = settings
        self.conversation = conversation if conversation is not None else Conversation(settings.system)
        self.records: list[TurnRecord] = records if records is not None else []
        self.store = store
        self.conversation_id = conversation_id

    @classmethod
    def start(cls, store, backend: Backend, settings: Settings) -> "ChatSession":
        """A new stored conversation."""
        conversation_id = store.create_conversation(settings.system, settings.window, backend.name, backend.model)
        return cls(backend, settings, store=store, conversation_id=conversation_id)

    @classmethod
    def resume(cls, store, conversation_id: int, backend: Backend, settings: Settings) -> "ChatSession | None":
        """A stored conversation with its messages and usage, or None if it is gone."""
        stored = store.load(conversation_id)
        if stored is None:
            return None
        info = stored.info
        settings = settings.with_(system=info.system, window=info.window, backend=backend.name, model=backend.model)
        conversation = Conversation(info.system, stored.messages)
        return cls(backend, settings, conversation, stored.records, store, conversation_id)

    # -- reading -------------------------------------------------------------

    @property
    def messages(self) -> list[Message]:
        return self.conversation.messages

    @property
    def totals(self) -> Totals:
        return totals(self.records)

    def in_window(self) -> set[int]:
        """Indices of past messages that the next request will carry."""
        return self.conversation.in_window(self.settings.window)

    # -- changing ------------------------------------------------------------

    def update(self, **changes) -> None:
        """Change settings (window, system, max_tokens, ...); the next request uses them."""
        self.settings = self.settings.with_(**changes)
        if "system" in changes:
            self.conversation.system = self.settings.system
        self._persist("update_conversation", system=self.settings.system, window=self.settings.window)

    def switch_backend(self, backend: Backend) -> None:
        self.backend = backend
        self.settings = self.settings.with_(backend=backend.name, model=backend.model)
        self._persist("update_conversation", backend=backend.name, model=backend.model)

    def clear(self) -> None:
        """Forget every message and usage record of this conversation."""
        self.conversation.clear()
        self.records.clear()
        self._persist("clear_conversation")

    def check(self, text: str) -> str | None:
        """The text to send, None for blank input (ignored); raises InputTooLongError.

        NUL characters are dropped: no model reads them and PostgreSQL cannot store them."""
        text = text.replace("\x00", "") if text else ""
        if not text.strip():
            return None
        limit = self.settings.max_input_chars
        if limit and len(text) > limit:
            raise errors.InputTooLongError(
                f"That message is {len(text):,} characters, over the {limit:,}-character limit: shorten it and send again."
            )
        return text

    def send(self, text: str, notify: Notify | None = None) -> Iterator[str]:
        """Record the user's message and return the reply's chunk generator.

        However the generator ends (finished, failed, closed by a stop, or
        interrupted), the reply is recorded with its status and usage.
        Raises InputTooLongError or ValueError before recording anything.
        """
        text = self.check(text)
        if text is None:
            raise ValueError("the message is empty")
        request = self.conversation.request_for(text, self.settings.window)
        user = Message(USER, text)
        self.messages.append(user)
        self._persist("add_message", user)
        reply = Reply(self.backend.name, self.backend.model)
        return self._stream(request, reply, notify)

    def _stream(self, request: Sequence[Message], reply: Reply, notify: Notify | None) -> Iterator[str]:
        status, error = STOPPED, None
        try:
            yield from self.backend.stream(
                self.settings.system, request, self.settings.max_tokens, reply, notify
            )
            status = COMPLETE
        except errors.ChatError as exc:
            status, error = FAILED, exc.message
            raise
        except Exception as exc:
            status, error = FAILED, f"Unexpected {type(exc).__name__}"
            raise
        finally:
            # GeneratorExit (a stop) and KeyboardInterrupt leave status STOPPED.
            self._finish(request, reply, status, error)

    def _finish(self, request: Sequence[Message], reply: Reply, status: str, error: str | None) -> None:
        message = Message(ASSISTANT, reply.text, status, error)
        self.messages.append(message)
        record = TurnRecord(
            turn=len(self.records) + 1,
            usage=reply.usage,
            messages_sent=reply.messages_sent,
            model=reply.model,
            backend=reply.backend,
            ttft_s=reply.ttft_s,
            total_s=reply.total_s,
            status=status,
            cost_usd=cost(reply.usage, price_for(reply.backend, reply.model)),
            stop_reason=reply.stop_reason,
            unwindowed_input_tokens=self._unwindowed_estimate(request, reply),
        )
        self.records.append(record)
        self._persist("add_message", message)
        self._persist("add_turn", record)

    def _unwindowed_estimate(self, request: Sequence[Message], reply: Reply) -> int | None:
        """Input tokens this turn would have cost with no window: the tokens
        actually sent, scaled by how much more text the whole history holds."""
        sent_tokens = reply.usage.all_input_tokens
        if not sent_tokens:
            return None
        system = len(self.settings.system)
        sent_chars = system + sum(len(m.text) for m in request)
        # Every earlier message that could have been sent, plus the new one (the last user message).
        history = self.messages[:-1]
        all_chars = system + sum(len(m.text) for m in history if m.sendable)
        return round(sent_tokens * all_chars / max(sent_chars, 1))

    def _persist(self, method: str, *args, **kwargs) -> None:
        if self.store is not None and self.conversation_id is not None:
            getattr(self.store, method)(self.conversation_id, *args, **kwargs)
