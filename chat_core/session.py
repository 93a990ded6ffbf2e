"""A chat session: one conversation, its usage records, a live backend, and the
turn loop that both faces drive. No UI here: `send` starts the reply as a job
the process owns (chat_core/jobs.py) and returns a viewer of it, a generator
of text chunks that a face prints or hands to `st.write_stream`.

The store is the truth. A new chat is stored with its first message; before
each request the session reloads the conversation when another view wrote to
it, so what is sent is built from what is stored. A write the store refuses
leaves the message in memory, marked `unsaved` with the reason, never lost.

What a session holds of a stored conversation, and its reloading, are in
chat_core/session_store.py; a reply's plan, its job and its storing in
chat_core/reply_plan.py.
"""

from __future__ import annotations

from typing import Hashable, Iterator, Sequence

from . import errors
from .backends.base import Backend, Notify
from .config import Settings
from .content import Attachment
from .conversation import ASSISTANT, USER, Conversation, Message, versions, window_indices
from .jobs import JOBS, ReplyJob, Ticket, busy_error
from .kept import KEPT, key as kept_key
from .loading import Earlier, Summed
from .reply_plan import Plan, Target, loaded, make_job
from .session_store import LATEST, Held
from .storage import LOCAL_OWNER, title_from
from .text_in import encodable
from .usage import Totals, TurnRecord, min_cacheable_tokens, totals
from .window import SLIDE

__all__ = ["LATEST", "ChatSession"]


class ChatSession(Held):
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
        self.earlier = Earlier()  # what the thread holds before the messages held (see chat_core.loading)
        self._questions = LATEST  # how many latest questions are held (more once earlier ones are asked for)
        self._summed: Summed | None = None  # the store's sums; None: summed from `records`
        self.listed: tuple | None = None  # the owner's conversation list fingerprint, as last read with it
        self._pending: tuple[Plan, Ticket] | None = None  # the reply last asked for, until taken in (`catch_up`)
        self._apply_prompt_cache()
        self._seen = self.last_saved_id()

    @classmethod
    def start(cls, store, backend: Backend, settings: Settings, owner: str = LOCAL_OWNER) -> "ChatSession":
        """A new conversation: stored with its first message, not before."""
        return cls(backend, settings, store=store, owner=owner)

    @classmethod
    def resume(cls, store, conversation_id: int, backend: Backend, settings: Settings,
               owner: str = LOCAL_OWNER) -> "ChatSession | None":
        """A stored conversation of `owner`'s (its latest page, and its totals), or None if there is none."""
        stored = store.load(conversation_id, owner, latest=LATEST)
        return None if stored is None else cls.from_stored(store, stored, backend, settings, owner)

    @classmethod
    def from_stored(cls, store, stored, backend: Backend, settings: Settings, owner: str = LOCAL_OWNER) -> "ChatSession":
        """A session over a conversation already loaded from `store` (all of it, or a page: `Store.load`)."""
        info = stored.info
        settings = settings.with_(system=info.system, window=info.window, backend=backend.name, model=backend.model,
                                  thinking=info.thinking, web=bool(info.web))
        chat = cls(backend, settings, Conversation(info.system), None, store, info.id, owner, info.title)
        chat._take(stored)
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
        """Of the whole conversation (summed by the store when it is stored)."""
        return self._summed.totals if self._summed is not None else totals(self.records)

    @property
    def message_count(self) -> int:
        """Messages in the conversation as shown, the ones not held (`earlier`) included."""
        return self.earlier.messages + len(self.messages)

    @property
    def window_args(self) -> tuple[int, str, int]:
        """(window, policy, minimum cacheable prefix): what decides the exchanges sent."""
        if self.backend.name != "anthropic":
            return self.settings.window, self.settings.window_policy, 0
        if not self.settings.prompt_cache:  # nothing is cached: dropping a block would forget for nothing
            return self.settings.window, SLIDE, 0
        return self.settings.window, self.settings.window_policy, min_cacheable_tokens(self.backend.model)

    def in_window(self) -> set[int]:
        """Indices of past messages (of those held) that the next request will carry."""
        return window_indices(self.messages, *self.window_args, **self.earlier.window(*self.window_args))

    def record_for(self, message: Message) -> TurnRecord | None:
        """The usage record of a reply."""
        if message.id is None:
            return None
        return next((r for r in self.records if r.message_id == message.id), None)

    # -- changing ------------------------------------------------------------

    def update(self, **changes) -> None:
        """Change settings (window, system, max_tokens, ...); the next request uses them."""
        self.settings = self.settings.with_(**changes)
        self._apply_prompt_cache()
        if "system" in changes:
            self.conversation.system = self.settings.system
        self._persist(system=self.settings.system, window=self.settings.window, thinking=self.settings.thinking,
                      web=int(self.settings.web))

    def _apply_prompt_cache(self) -> None:
        if hasattr(self.backend, "prompt_cache"):
            self.backend.prompt_cache = self.settings.prompt_cache
        if hasattr(self.backend, "thinking"):
            self.backend.thinking, self.backend.web = self.settings.thinking, self.settings.web

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
        self.earlier, self._questions, self._summed = Earlier(), LATEST, None
        self.conversation_id = None
        self.title = None
        self._seen = None
        self._pending = None

    def check(self, text: str, attachments: Sequence[Attachment] = ()) -> str | None:
        """The text to send, None for blank input without attachments (ignored); raises InputTooLongError.

        NUL characters are dropped: no model reads them and PostgreSQL cannot store them;
        a lone surrogate, which no store or terminal takes, becomes U+FFFD."""
        text = encodable(text.replace("\x00", "")) if text else ""
        if not text.strip() and not attachments:
            return None
        limit = self.settings.max_input_chars
        if limit and len(text) > limit:
            raise errors.InputTooLongError(
                f"That message is {len(text):,} characters, over the {limit:,}-character limit: shorten it and send again."
            )
        return text

    def send(self, text: str, notify: Notify | None = None, *, detach: bool = False,
             attachments: Sequence[Attachment] = (), events: bool = False) -> Iterator[str]:
        """Save the user's message (with its `attachments`, chat_core.content), start its reply (a job
        the process owns), and return a viewer of it (with `events`: thinking and citations too).

        The request is built from what is stored (read again when the store,
        as it saves the message, says another view wrote since). While another reply of this conversation is being written,
        the message waits its turn (`queued`) and goes out when that one ends.
        Closing the viewer early stops the reply, unless `detach`: then it goes
        on, and is stored when it ends. However it ends (finished, failed,
        stopped), the reply is saved with its status and usage. Raises
        InputTooLongError or ValueError before anything is saved, and
        StorageError when the message cannot be saved (nothing is sent then).
        """
        text = self._checked(text, attachments, sync=False)  # whether another view wrote: told as it is saved
        if self.store is None:  # nothing to build a waiting message's request from later
            self._not_busy()
        return self._ask(self.messages, Message(USER, text, attachments=list(attachments)), notify, detach,
                         queue=True, events=events)

    def edit_last(self, text: str, notify: Notify | None = None, *, detach: bool = False,
                  events: bool = False) -> Iterator[str]:
        """Replace the last question with `text` and stream a new reply. The earlier
        version and its replies are kept as versions (see `versions_of`); if the new
        reply fails, the earlier version stays the one shown and sent."""
        text = self._checked(text, self._last_question().attachments)
        self._not_busy()
        last = self._last_question()
        edited = Message(USER, text, edit_of=(last.edit_of or last.id) if last.id is not None else None,
                         attachments=[loaded(a, self.store) for a in last.attachments])  # its files stay with it
        return self._ask(self.messages[:self._position(last)], edited, notify, detach, replaced=last, events=events)

    def regenerate(self, notify: Notify | None = None, *, detach: bool = False, events: bool = False) -> Iterator[str]:
        """Send the last question again and stream a new reply; earlier replies stay as versions,
        and a reply that fails never takes the place of the one shown."""
        self._sync()
        user = self._last_question()
        at = self._position(user)
        after = self.messages[at + 1] if at + 1 < len(self.messages) else None
        plan = Plan(user, self.messages[:at], self.messages, self.earlier,
                     replaced=after if after is not None and after.role == ASSISTANT else None)
        return self._watch(plan, self._submit(plan, queue=False), notify, detach, events)

    # -- the live reply ------------------------------------------------------

    def live_job(self) -> ReplyJob | None:
        """The reply being written in this conversation, by this process, if any."""
        return JOBS.live(self._job_key()) if self.stored else None

    def queued(self) -> list[Message]:
        """The messages of this conversation waiting for the live reply to end, in order."""
        return [t.question for t in JOBS.waiting(self._job_key())] if self.stored else []

    def withdraw(self, message: Message) -> bool:
        """Take a queued message out of the queue (it stays stored, unanswered); False if it is not queued."""
        ticket = next((t for t in JOBS.waiting(self._job_key()) if t.question is message
                       or (message.id is not None and t.question.id == message.id)), None) if self.stored else None
        return ticket is not None and ticket.cancel()

    def watch(self, notify: Notify | None = None, *, detach: bool = True, events: bool = False) -> Iterator[str] | None:
        """A viewer of the live reply from its first chunk, then live; None when there is none.
        Closing it leaves the reply running unless `detach` is False."""
        job = self.live_job()
        return None if job is None else job.follow(notify, detach=detach, events=events)

    def stop(self) -> bool:
        """Stop the live reply: the text so far is stored, marked stopped, and counted. False if none runs."""
        job = self.live_job()
        if job is None:
            return False
        job.cancel()
        job.wait()
        self.refresh()
        return True

    def versions_of(self, message: Message) -> list[Message]:
        """Every version of a message (the replies to one question, or the edits of one), oldest first."""
        return versions(self.everything, message)

    def choose_version(self, message: Message) -> None:
        """Show and send `message` instead of its other versions."""
        if self.store is not None and self.conversation_id is not None and message.id is not None:
            self.store.choose_version(self.conversation_id, message.id, self.owner)
            self.refresh()

    def _checked(self, text: str, attachments: Sequence[Attachment] = (), sync: bool = True) -> str:
        text = self.check(text, attachments)
        if text is None:
            raise ValueError("the message is empty")
        if sync:
            try:
                self._sync()
            except errors.StorageError as exc:
                raise self._kept(Message(USER, text), exc) from None
        return text

    def _kept(self, message: Message, exc: errors.StorageError) -> errors.StorageError:
        """A message the store refused: held at the end of the thread, marked unsaved (shown, never
        sent: it has no reply), and the error to raise."""
        message.unsaved = exc.message
        self.conversation.messages = [*self.messages, message]
        if self.store is not None and self.conversation_id is not None:
            KEPT.add(kept_key(self.store.url, self.owner, self.conversation_id), message)
        return exc

    def _position(self, message: Message) -> int:
        """Where this very message object sits in the thread (equal texts are not the same message)."""
        return next(i for i, m in enumerate(self.messages) if m is message)

    def _last_question(self) -> Message:
        # Never one the store refused: it was not sent, and is kept only to copy.
        question = next((m for m in reversed(self.messages) if m.role == USER and not m.unsaved), None)
        if question is None:
            raise ValueError("there is no question to send again")
        return question

    def _not_busy(self) -> None:
        if self.live_job() is not None:
            raise busy_error()

    def _ask(self, history: Sequence[Message], user: Message, notify: Notify | None, detach: bool,
             replaced: Message | None = None, queue: bool = False, events: bool = False) -> Iterator[str]:
        before = self.messages
        if self.store is not None:
            new = dict(system=self.settings.system, window=self.settings.window,
                       backend=self.backend.name, model=self.backend.model, thinking=self.settings.thinking,
                       web=self.settings.web)
            try:
                self.conversation_id, user.id, newest = self.store.add_question(self.conversation_id, user, self.owner,
                                                                                new)
            except errors.StorageError as exc:
                raise self._kept(user, exc) from None
            self.title = self.title or title_from(user.text)
            if newest != self._seen:  # another view wrote since this one read: what it asks after is read again
                history = self._reread_before(user, history)
            self._seen = user.id
        plan = Plan(user, list(history), before, self.earlier, replaced, first=user.id is not None)
        self.conversation.messages = list(history) + [user]
        return self._watch(plan, self._submit(plan, queue), notify, detach, events)

    def _reread_before(self, user: Message, history: Sequence[Message]) -> Sequence[Message]:
        """The thread before the just-stored `user`, as stored now (`history` when it cannot be read)."""
        try:
            if not self.refresh():
                return history
        except errors.StorageError:
            return history
        at = next((i for i, m in enumerate(self.messages) if m.id == user.id), None)
        return history if at is None else self.messages[:at]

    def _job_key(self) -> Hashable:
        return (self.store.url if self.store is not None else id(self), self.conversation_id)

    def _submit(self, plan: Plan, queue: bool) -> Ticket:
        """Start the plan's reply, or queue it behind the conversation's live one."""
        target = Target(self.store, self.conversation_id, self.owner, self.backend, self.settings, self.window_args)
        ticket = JOBS.submit(self._job_key(), lambda waited: make_job(plan, target, waited), plan.user, queue=queue)
        self._pending = (plan, ticket)
        return ticket

    def _watch(self, plan: Plan, ticket: Ticket, notify: Notify | None, detach: bool,
               events: bool = False) -> Iterator[str]:
        """The reply's chunks; when it ends (or this viewer stops it), this session takes in what was stored."""
        try:
            yield from ticket.follow(notify, detach=detach, events=events)
        finally:
            if not detach or (ticket.job is not None and ticket.job.done):
                self._settle(plan, ticket)

    def _settle(self, plan: Plan, ticket: Ticket) -> None:
        """Once the reply ended: this session's view of it, from the store (in memory when not stored)."""
        if ticket.wait() is None or plan.result is None or plan.settled:
            return
        plan.settled = True
        message, record = plan.result
        try:
            if message.id is not None and (self.settled_here(plan) or self.refresh()):
                return
        except errors.StorageError:
            pass  # stored, but it cannot be read back now: held in memory as it is below
        if plan.takes_place:
            # Not stored: in memory, the new reply takes the place of any earlier one to its question.
            at = next((i + 1 for i, m in enumerate(self.messages) if m is plan.user), len(self.messages))
            replaced = at < len(self.messages) and self.messages[at].role == ASSISTANT
            self.messages[at:at + replaced] = [message]
        else:  # kept as a version; the thread as it was before
            message.active = False
            self.conversation.messages = plan.before
        self.everything.append(message)
        record.turn = self.totals.turns + 1
        self.records.append(record)
        if self._summed is not None and message.id is None:  # not in the store's sums: counted here
            self._summed = Summed(self._summed.totals + totals([record]), self._summed.upto)

    def _persist(self, **fields) -> None:
        if self.store is not None and self.conversation_id is not None:
            self.store.update_conversation(self.conversation_id, self.owner, **fields)

