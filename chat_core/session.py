"""A chat session: one conversation, its usage records, a live backend, and the
turn loop that both faces drive. No UI here: `send` returns a generator of text
chunks that a face prints or hands to `st.write_stream`.

The store is the truth. A new chat is stored with its first message; before
each request the session reloads the conversation when another view wrote to
it, so what is sent is built from what is stored. A write the store refuses
leaves the message in memory, marked `unsaved` with the reason, never lost.
"""

from __future__ import annotations

from typing import Iterator, Sequence

from . import errors
from .backends.base import Backend, Notify, Reply
from .backends.local import LocalBackend
from .config import Settings
from .conversation import (
    ASSISTANT, COMPLETE, FAILED, STOPPED, USER, Conversation, Message, build_request, versions,
)
from .storage import LOCAL_OWNER, title_from
from .text_in import encodable
from .usage import Totals, TurnRecord, cost, min_cacheable_tokens, price_for, totals
from .window import SLIDE


class ChatSession:
    def __init__(
        self,
        backend: Backend,
        settings: Settings,
        conversation: Conversation | None = None,
        records: list[TurnRecord] | None = None,
        store=None,
        conversation_id: int | None = None,
        owner: str = LOCAL_OWNER,
        title: str | None = None,
    ):
        self.backend = backend
        self.settings = settings
        self.conversation = conversation if conversation is not None else Conversation(settings.system)
        self.records: list[TurnRecord] = records if records is not None else []
        self.store = store
        self.conversation_id = conversation_id
        self.owner = owner
        self.title = title  # None until stored
        self.everything: list[Message] = list(self.conversation.messages)  # every version, for `versions_of`
        self._apply_prompt_cache()
        self._seen = self.last_saved_id()

    @classmethod
    def start(cls, store, backend: Backend, settings: Settings, owner: str = LOCAL_OWNER) -> "ChatSession":
        """A new conversation: stored with its first message, not before."""
        return cls(backend, settings, store=store, owner=owner)

    @classmethod
    def resume(cls, store, conversation_id: int, backend: Backend, settings: Settings,
               owner: str = LOCAL_OWNER) -> "ChatSession | None":
        """A stored conversation of `owner`'s with its messages and usage, or None if there is none."""
        stored = store.load(conversation_id, owner)
        return None if stored is None else cls.from_stored(store, stored, backend, settings, owner)

    @classmethod
    def from_stored(cls, store, stored, backend: Backend, settings: Settings, owner: str = LOCAL_OWNER) -> "ChatSession":
        """A session over a conversation already loaded from `store`."""
        info = stored.info
        settings = settings.with_(system=info.system, window=info.window, backend=backend.name, model=backend.model)
        conversation = Conversation(info.system, stored.messages)
        chat = cls(backend, settings, conversation, stored.records, store, info.id, owner, info.title)
        chat.everything = stored.versions
        chat._seen = chat.last_saved_id()
        return chat

    # -- reading -------------------------------------------------------------

    @property
    def messages(self) -> list[Message]:
        return self.conversation.messages

    @property
    def stored(self) -> bool:
        return self.conversation_id is not None

    @property
    def totals(self) -> Totals:
        return totals(self.records)

    @property
    def window_args(self) -> tuple[int, str, int]:
        """(window, policy, minimum cacheable prefix): what decides the exchanges sent."""
        if self.backend.name != "anthropic":
            return self.settings.window, self.settings.window_policy, 0
        if not self.settings.prompt_cache:  # nothing is cached: dropping a block would forget for nothing
            return self.settings.window, SLIDE, 0
        return self.settings.window, self.settings.window_policy, min_cacheable_tokens(self.backend.model)

    def in_window(self) -> set[int]:
        """Indices of past messages that the next request will carry."""
        return self.conversation.in_window(*self.window_args)

    def last_saved_id(self) -> int | None:
        """The newest stored message this session holds, any version."""
        return max((m.id for m in self.everything if m.id is not None), default=None)

    def record_for(self, message: Message) -> TurnRecord | None:
        """The usage record of a reply."""
        if message.id is None:
            return None
        return next((r for r in self.records if r.message_id == message.id), None)

    def refresh(self) -> bool:
        """Reload the conversation from the store; False when it is gone (deleted elsewhere).

        Messages the store refused stay, at the end, marked unsaved."""
        if self.store is None or self.conversation_id is None:
            return True
        stored = self.store.load(self.conversation_id, self.owner)
        if stored is None:
            return False
        unsaved = [m for m in self.messages if m.unsaved]
        self.conversation.messages = stored.messages + unsaved
        self.everything = stored.versions
        self.conversation.system = stored.info.system
        self.records = stored.records
        self.title = stored.info.title
        self.settings = self.settings.with_(system=stored.info.system, window=stored.info.window)
        self._seen = self.last_saved_id()
        return True

    def changed_elsewhere(self) -> bool:
        """True when another view wrote to this conversation since this one last read it."""
        if self.store is None or self.conversation_id is None:
            return False
        return self.store.last_message_id(self.conversation_id) != self._seen

    # -- changing ------------------------------------------------------------

    def update(self, **changes) -> None:
        """Change settings (window, system, max_tokens, ...); the next request uses them."""
        self.settings = self.settings.with_(**changes)
        self._apply_prompt_cache()
        if "system" in changes:
            self.conversation.system = self.settings.system
        self._persist(system=self.settings.system, window=self.settings.window)

    def _apply_prompt_cache(self) -> None:
        if hasattr(self.backend, "prompt_cache"):
            self.backend.prompt_cache = self.settings.prompt_cache

    def switch_backend(self, backend: Backend) -> None:
        self.backend = backend
        self.settings = self.settings.with_(backend=backend.name, model=backend.model)
        self._apply_prompt_cache()
        self._persist(backend=backend.name, model=backend.model)

    def new_conversation(self) -> None:
        """Start over in a new conversation with the same settings; the old one stays stored."""
        self.conversation = Conversation(self.settings.system)
        self.records = []
        self.everything = []
        self.conversation_id = None
        self.title = None
        self._seen = None

    def check(self, text: str) -> str | None:
        """The text to send, None for blank input (ignored); raises InputTooLongError.

        NUL characters are dropped: no model reads them and PostgreSQL cannot store them;
        a lone surrogate, which no store or terminal takes, becomes U+FFFD."""
        text = encodable(text.replace("\x00", "")) if text else ""
        if not text.strip():
            return None
        limit = self.settings.max_input_chars
        if limit and len(text) > limit:
            raise errors.InputTooLongError(
                f"That message is {len(text):,} characters, over the {limit:,}-character limit: shorten it and send again."
            )
        return text

    def send(self, text: str, notify: Notify | None = None) -> Iterator[str]:
        """Save the user's message and return the reply's chunk generator.

        The request is built from what is stored (reloaded first if another
        view wrote since). However the generator ends (finished, failed, closed
        by a stop, or interrupted), the reply is saved with its status and usage.
        Raises InputTooLongError or ValueError before anything is saved, and
        StorageError when the message cannot be saved (nothing is sent then).
        """
        text = self._checked(text)
        return self._ask(self.messages, Message(USER, text), notify)

    def edit_last(self, text: str, notify: Notify | None = None) -> Iterator[str]:
        """Replace the last question with `text` and stream a new reply. The earlier
        version and its replies are kept as versions (see `versions_of`)."""
        text = self._checked(text)
        last = self._last_question()
        edited = Message(USER, text, edit_of=(last.edit_of or last.id) if last.id is not None else None)
        return self._ask(self.messages[:self._position(last)], edited, notify)

    def regenerate(self, notify: Notify | None = None) -> Iterator[str]:
        """Send the last question again and stream a new reply; earlier replies stay as versions."""
        self._sync()
        user = self._last_question()
        history = self.messages[:self._position(user)]
        request = build_request(history, user.text, *self.window_args)
        return self._stream(request, user, Reply(self.backend.name, self.backend.model), notify)

    def versions_of(self, message: Message) -> list[Message]:
        """Every version of a message (the replies to one question, or the edits of one), oldest first."""
        return versions(self.everything, message)

    def choose_version(self, message: Message) -> None:
        """Show and send `message` instead of its other versions."""
        if self.store is not None and self.conversation_id is not None and message.id is not None:
            self.store.choose_version(self.conversation_id, message.id, self.owner)
            self.refresh()

    def _checked(self, text: str) -> str:
        text = self.check(text)
        if text is None:
            raise ValueError("the message is empty")
        self._sync()
        return text

    def _sync(self) -> None:
        if self.changed_elsewhere() and not self.refresh():
            raise errors.StorageError("This conversation was deleted (in another tab?): start a new chat to send it.")

    def _position(self, message: Message) -> int:
        """Where this very message object sits in the thread (equal texts are not the same message)."""
        return next(i for i, m in enumerate(self.messages) if m is message)

    def _last_question(self) -> Message:
        question = next((m for m in reversed(self.messages) if m.role == USER), None)
        if question is None:
            raise ValueError("there is no question to send again")
        return question

    def _ask(self, history: Sequence[Message], user: Message, notify: Notify | None) -> Iterator[str]:
        request = build_request(history, user.text, *self.window_args)
        if self.store is not None:
            new = dict(system=self.settings.system, window=self.settings.window,
                       backend=self.backend.name, model=self.backend.model)
            self.conversation_id, user.id = self.store.add_user_message(self.conversation_id, user, self.owner, new)
            self.title = self.title or title_from(user.text)
            self._seen = user.id
        self.conversation.messages = list(history) + [user]
        reply = Reply(self.backend.name, self.backend.model)
        return self._stream(request, user, reply, notify)

    def _stream(self, request: Sequence[Message], user: Message, reply: Reply, notify: Notify | None) -> Iterator[str]:
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
            self._finish(request, user, reply, status, error)

    def _finish(self, request: Sequence[Message], user: Message, reply: Reply, status: str, error: str | None) -> None:
        message = Message(ASSISTANT, reply.text, status, error, reply_to=user.id)
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
            unwindowed_input_tokens=self._unwindowed_estimate(request, user, reply),
        )
        if self.store is not None and user.id is not None:
            try:
                message.id, record.turn = self.store.add_reply(self.conversation_id, message, record)
                record.message_id = message.id
            except errors.StorageError as exc:
                message.unsaved = exc.message
        if message.id is not None and self.refresh():
            return
        # Not stored: in memory, the new reply takes the place of any earlier one to its question.
        at = self._position(user) + 1
        replaced = at < len(self.messages) and self.messages[at].role == ASSISTANT
        self.messages[at:at + replaced] = [message]
        self.everything.append(message)
        self.records.append(record)

    def _unwindowed_estimate(self, request: Sequence[Message], user: Message, reply: Reply) -> int | None:
        """Input tokens this turn would have cost with no window. Counted by the local
        model's own tokenizer; for Claude, estimated: the tokens actually sent, scaled
        by how much more text the whole history holds."""
        sent_tokens = reply.usage.all_input_tokens
        if not sent_tokens:
            return None
        history = self.messages[:self._position(user)]
        if isinstance(self.backend, LocalBackend):
            return self.backend.local.count_prompt_tokens(self.settings.system, build_request(history, user.text, 0))
        system = len(self.settings.system)
        sent_chars = system + sum(len(m.text) for m in request)
        all_chars = system + len(user.text) + sum(len(m.text) for m in history if m.sendable)
        return round(sent_tokens * all_chars / max(sent_chars, 1))

    def _persist(self, **fields) -> None:
        if self.store is not None and self.conversation_id is not None:
            self.store.update_conversation(self.conversation_id, self.owner, **fields)
