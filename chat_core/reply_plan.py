"""One reply asked for, from the request to what it came to: its plan (question, what it follows),
the job that writes it with the store's hooks (its row from the request on, its growing text, its
end with the usage record in one transaction), all on the job's own threads. No session state
here: `ChatSession` makes a plan, submits the job this module builds, and takes in the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from . import errors
from .backends.base import Backend, Reply
from .backends.local import LocalBackend
from .config import Settings
from .content import Attachment, load_all
from .conversation import ASSISTANT, COMPLETE, STOPPED, STREAMING, Message, build_request, window_start
from .jobs import ReplyJob
from .kept import KEPT, key as kept_key
from .loading import Earlier
from .session_store import LATEST
from .usage import TurnRecord, cost, price_for


@dataclass
class Plan:
    """One reply asked for: its question, what it follows, and what it came to."""

    user: Message
    history: list[Message]
    before: list[Message]  # the thread as it was, to show again if an edit's reply fails (not stored)
    earlier: Earlier  # the sums of what comes before `history` (a page of a long conversation)
    replaced: Message | None = None  # the version it is to take the place of (a regenerate, an edit)
    first: bool = False  # the question was stored just now (sent, edited): it has no reply yet
    takes_place: bool = True
    result: tuple[Message, TurnRecord] | None = None
    settled: bool = False


@dataclass(frozen=True)
class Target:
    """Where and how a reply is written: the store and conversation (None: not stored), the backend,
    the settings and window arguments as they were when it was asked for."""

    store: object | None  # chat_core.storage.Store
    conversation_id: int | None
    owner: str
    backend: Backend
    settings: Settings
    window_args: tuple[int, str, int]


def make_job(plan: Plan, target: Target, waited: bool) -> ReplyJob:
    """The job that writes the plan's reply (not started). `waited`: the message waited its turn,
    so what it follows is read from the store again."""
    store, cid, owner, window_args = target.store, target.conversation_id, target.owner, target.window_args
    backend, settings = target.backend, target.settings
    moved = waited or any(m.status == STREAMING for m in plan.history)  # a reply ended meanwhile
    if moved and store is not None and cid is not None:  # what it follows is in the store now
        plan.history, plan.earlier = stored_history(store, cid, owner, plan.user)
    if plan.earlier.sizes and window_start(plan.history, *window_args, **plan.earlier.window(*window_args)) < 0:
        # The window reaches before the page held (a window of "all"): this request loads it.
        plan.history, plan.earlier = stored_history(store, cid, owner, plan.user, whole=True)
    request = build_request(plan.history, plan.user, *window_args, **plan.earlier.window(*window_args))
    if store is not None:  # the files' bytes, once per hash, for the messages this request carries
        load_all(request, store.blob)
    reply = Reply(backend.name, backend.model)

    def begin() -> None:
        if store is not None and plan.user.id is not None:
            try:
                job.message_id = store.start_reply(cid, Message(ASSISTANT, "", reply_to=plan.user.id),
                                                   first=plan.first)
            except errors.StorageError:
                return  # no row yet: it is stored when it ends instead, if the store takes it then

    def save(text: str) -> None:
        if job.message_id is not None:
            try:
                store.save_text(job.message_id, text)
            except errors.StorageError:
                return  # the next save, or the end, tries again

    job = ReplyJob(lambda note: backend.stream(settings.system, request, settings.max_tokens, reply, note),
                   reply, plan.user, on_start=begin, on_save=save,
                   on_finish=lambda ended: finish(plan, request, ended, target))
    return job


def finish(plan: Plan, request: Sequence[Message], job: ReplyJob, target: Target) -> None:
    """On the job's thread, as it ends: the reply and its usage record, stored in one transaction.
    A reply that did not make it (failed, or stopped before any text) gives the place back to the
    version it was to replace."""
    store, cid, owner = target.store, target.conversation_id, target.owner
    reply, user = job.reply, plan.user
    message = Message(ASSISTANT, reply.text, job.status, job.error.message if job.error else None, reply_to=user.id,
                      thinking=list(reply.thinking), citations=list(reply.citations))
    if reply.thinking and reply.thinking_s is not None:
        reply.thinking[0].seconds = round(reply.thinking_s, 1)
    record = TurnRecord(
        turn=0,  # handed out by the store, or by the session when there is none
        usage=reply.usage,
        messages_sent=reply.messages_sent,
        model=reply.model,
        backend=reply.backend,
        ttft_s=reply.ttft_s,
        total_s=reply.total_s,
        status=job.status,
        cost_usd=cost(reply.usage, price_for(reply.backend, reply.model)),
        stop_reason=reply.stop_reason,
        unwindowed_input_tokens=unwindowed_estimate(request, plan, reply, target),
    )
    plan.takes_place = plan.replaced is None or job.status == COMPLETE or (job.status == STOPPED and bool(reply.text))
    if store is not None and user.id is not None:
        try:
            message.id, record.turn = store.add_reply(cid, message, record, job.message_id)
            record.message_id = message.id
            if not plan.takes_place and plan.replaced.id is not None:
                store.choose_version(cid, plan.replaced.id, owner)
        except errors.StorageError as exc:
            if message.id is None:
                message.unsaved = exc.message
                KEPT.add(kept_key(store.url, owner, cid), message)
    plan.result = (message, record)


def unwindowed_estimate(request: Sequence[Message], plan: Plan, reply: Reply, target: Target) -> int | None:
    """Input tokens this turn would have cost with no window. Counted by the local
    model's own tokenizer when the whole history is at hand; otherwise (and for
    Claude) estimated: the tokens actually sent, scaled by how much more text the
    whole history holds."""
    sent_tokens = reply.usage.all_input_tokens
    if not sent_tokens:
        return None
    history, user, system = plan.history, plan.user, target.settings.system
    if isinstance(target.backend, LocalBackend) and not plan.earlier.messages:
        return target.backend.local.count_prompt_tokens(system, build_request(history, user, 0))
    sent_chars = len(system) + sum(len(m.text) for m in request)
    all_chars = (len(system) + len(user.text) + sum(len(m.text) for m in history if m.sendable)
                 + plan.earlier.chars)
    return round(sent_tokens * all_chars / max(sent_chars, 1))


def loaded(attachment: Attachment, store) -> Attachment:
    """An attachment with its bytes in hand (read from the store by hash when they are not)."""
    if attachment.data is None and store is not None:
        attachment.data = store.blob(attachment.sha256)
    return attachment


def stored_history(store, conversation_id: int, owner: str, user: Message,
                   whole: bool = False) -> tuple[list[Message], Earlier]:
    """What a message follows as stored now (a message that waited its turn): the latest page of
    the thread before it and the sums of what comes before that, or (`whole`) all of it."""
    stored = None if whole else store.load(conversation_id, owner, latest=LATEST)
    if stored is None or not any(m.id == user.id for m in stored.messages):
        stored = store.load(conversation_id, owner)
    at = next((i for i, m in enumerate(stored.messages) if m.id == user.id), None) if stored is not None else None
    if at is None:
        raise errors.StorageError("The message waiting its turn was deleted (in another tab?) before it was sent.")
    before = store.earlier(conversation_id, stored.start) if stored.start else Earlier()
    return stored.messages[:at], before
