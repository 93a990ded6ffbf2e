"""Replies as jobs owned by the process, not by whoever asked for them.

A `ReplyJob` streams one reply on its own worker thread into an append-only
buffer. Any number of viewers read it from its start, then live; a viewer
that goes away never stops the worker (unless it cancels the job), and no
viewer can slow it down. While it runs, a saver thread hands the growing text
to `on_save` every `SAVE_EVERY` seconds, off the streaming path.

`JOBS`, the process's registry, keeps at most one live job per conversation;
a message sent while one runs waits its turn in a FIFO queue (a `Ticket`) and
starts when the job before it ends. No UI here, and nothing of Streamlit.
"""

from __future__ import annotations

import collections
import copy
import logging
import threading
import time
from typing import Callable, Hashable, Iterator

from . import errors
from .backends.base import Notify, Reply
from .conversation import COMPLETE, FAILED, STOPPED, STREAMING, Message

SAVE_EVERY = 0.4  # seconds between saves of the growing text (the store is at most this far behind)
HEARTBEAT_EVERY = 2.0  # with no new text, the store still hears from a live job this often

log = logging.getLogger(__name__)

Produce = Callable[[Notify], Iterator[str]]


def busy_error() -> errors.BusyError:
    return errors.BusyError("A reply is still being written in this conversation: wait for it or stop it, then try again.")


class ReplyJob:
    """One reply being written: `produce(note)` is the backend's chunk generator.

    Hooks, all called on the job's own threads: `on_start()` once as the request
    goes out, `on_save(text)` while the text grows (and as a heartbeat), and
    `on_finish(job)` once it ended, before viewers hear that it did.
    """

    def __init__(self, produce: Produce, reply: Reply, question: Message | None = None, *,
                 on_start: Callable[[], None] | None = None, on_save: Callable[[str], None] | None = None,
                 on_finish: Callable[["ReplyJob"], None] | None = None):
        self.reply = reply  # filled in place by the backend: text, usage, timings
        self.question = question
        self.message_id: int | None = None  # the reply's row in the store, once there is one
        self.status = STREAMING
        self.error: errors.ChatError | None = None
        self.result = None  # what on_finish left: the stored message and record, for the session
        self._produce, self._on_start, self._on_save, self._on_finish = produce, on_start, on_save, on_finish
        self._chunks: list[str] = []
        self._notices: list[str] = []
        self._done = False
        self._ending = False  # its end is being announced
        self._cancelled = False
        self._cond = threading.Condition()
        self._ended = threading.Event()  # the saver's stop signal
        self._callbacks: list[Callable[[ReplyJob], None]] = []
        self._worker = threading.Thread(target=self._run, name="reply-job", daemon=True)
        self._saver = threading.Thread(target=self._save, name="reply-saver", daemon=True)

    # -- reading -------------------------------------------------------------

    @property
    def text(self) -> str:
        return self.reply.text

    @property
    def usage(self):
        return self.reply.usage

    @property
    def done(self) -> bool:
        return self._done

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def follow(self, notify: Notify | None = None, *, detach: bool = False, events: bool = False) -> Iterator[str]:
        """The reply's chunks from its first, then live, until it ends; a failure is raised
        after the text it had. `notify` hears the backend's notices on the viewer's thread.
        With `events`, the reply's other events (thinking, citations) come between the chunks.

        Closing the generator early cancels the job, unless `detach`: then the reply goes on."""
        seen = heard = 0
        finished = False
        try:
            while True:
                with self._cond:
                    while seen == len(self._chunks) and heard == len(self._notices) and not self._done:
                        self._cond.wait()
                    chunks, notices, done = self._chunks[seen:], self._notices[heard:], self._done
                seen, heard = seen + len(chunks), heard + len(notices)
                if notify is not None:
                    for notice in notices:
                        notify(notice)
                yield from (chunks if events else [c for c in chunks if isinstance(c, str)])
                if done:
                    break
            finished = True
        finally:
            if not finished and not detach:
                self.cancel()
        if self.error is not None:
            raise copy.copy(self.error)  # each viewer its own, with its own traceback

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job ended (and was stored); False if `timeout` ran out first."""
        with self._cond:
            return self._cond.wait_for(lambda: self._done, timeout)

    # -- changing ------------------------------------------------------------

    def cancel(self) -> None:
        """Stop the reply: the text so far is kept, marked stopped. The worker lets go of the
        backend when its next chunk (or its end) arrives."""
        with self._cond:
            self._cancelled = True

    def when_done(self, callback: Callable[["ReplyJob"], None]) -> None:
        """Call `callback(job)` on the worker's thread once the job ended (at once if it has)."""
        with self._cond:
            if not self._ending:
                self._callbacks.append(callback)
                return
        callback(self)

    def start(self) -> "ReplyJob":
        self._saver.start()
        self._worker.start()
        return self

    # -- the threads ---------------------------------------------------------

    def _note(self, text: str) -> None:
        with self._cond:
            self._notices.append(text)
            self._cond.notify_all()

    def _run(self) -> None:
        status, error, chunks = STOPPED, None, None
        append, cond = self._chunks.append, self._cond
        try:
            chunks = self._produce(self._note)
            for chunk in chunks:
                with cond:
                    if self._cancelled:  # a chunk that came after the stop is not kept
                        break
                    append(chunk)
                    cond.notify_all()
            else:
                status = COMPLETE
        except errors.ChatError as exc:
            if not self._cancelled:  # a backend that broke off because of the stop was stopped
                status, error = FAILED, exc
        except Exception as exc:  # noqa: BLE001 - a worker must end its job, whatever broke
            log.exception("reply job failed")
            status, error = FAILED, errors.ChatError(
                f"The reply failed unexpectedly ({type(exc).__name__}); what it had is kept. Send again to retry.")
        finally:
            if status == STOPPED:  # the text as it was when stopped, before the backend counts it
                self.reply.text = "".join(c for c in self._chunks if isinstance(c, str))
            if chunks is not None:
                chunks.close()  # the backend settles the reply's usage and timings
        self.status, self.error = status, error
        self._ended.set()
        self._saver.join()
        try:
            if self._on_finish is not None:
                self._on_finish(self)
        finally:  # the queue, then viewers, always hear the end: whoever sees it ended finds the next one live
            with cond:
                self._ending = True
                callbacks, self._callbacks = self._callbacks, []
            try:
                for callback in callbacks:
                    callback(self)
            finally:
                with cond:
                    self._done = True
                    cond.notify_all()

    def _save(self) -> None:
        """The store's side of a live reply: its row as the request goes out, then the growing text."""
        if self._on_start is not None:
            self._on_start()
        if self._on_save is None:
            return
        saved, last = "", time.monotonic()
        while not self._ended.wait(SAVE_EVERY):
            text = self.reply.text
            if text != saved or time.monotonic() - last >= HEARTBEAT_EVERY:
                self._on_save(text)
                saved, last = text, time.monotonic()


class Ticket:
    """A reply asked for: waiting its turn (`queued`), then its job."""

    def __init__(self, question: Message | None, start: Callable[[bool], ReplyJob], registry: "JobRegistry",
                 key: Hashable):
        self.question = question
        self.job: ReplyJob | None = None
        self.error: errors.ChatError | None = None  # why it could not start
        self.withdrawn = False
        self._start, self._registry, self._key = start, registry, key
        self._moved = threading.Condition()

    @property
    def queued(self) -> bool:
        return self.job is None and self.error is None and not self.withdrawn

    def follow(self, notify: Notify | None = None, *, detach: bool = False, events: bool = False) -> Iterator[str]:
        """The reply's chunks once its turn came (see `ReplyJob.follow`). Closing it while it
        waits takes it out of the queue, unless `detach`."""
        started = False
        try:
            with self._moved:
                self._moved.wait_for(lambda: not self.queued)
            started = True
        finally:
            if not started and not detach:
                self.cancel()
        if self.error is not None:
            raise copy.copy(self.error)
        if self.job is not None:
            yield from self.job.follow(notify, detach=detach, events=events)

    def wait(self) -> ReplyJob | None:
        """The job once it ended; None when it never started."""
        with self._moved:
            self._moved.wait_for(lambda: not self.queued)
        if self.job is not None:
            self.job.wait()
        return self.job

    def cancel(self) -> bool:
        """Take the message out of the queue if its turn has not come (True), else stop its reply."""
        if self._registry._withdraw(self):
            return True
        if self.job is not None:
            self.job.cancel()
        return False

    def _moved_on(self, job: ReplyJob | None = None, error: errors.ChatError | None = None,
                  withdrawn: bool = False) -> None:
        with self._moved:
            self.job, self.error, self.withdrawn = job, error, withdrawn
            self._moved.notify_all()


class JobRegistry:
    """The process's live jobs, at most one per key (a conversation), and the messages waiting their turn."""

    def __init__(self):
        self._lock = threading.RLock()
        self._live: dict[Hashable, ReplyJob] = {}
        self._waiting: dict[Hashable, collections.deque[Ticket]] = {}
        self._listeners: list[Callable[[Hashable], None]] = []

    def listen(self, callback: Callable[[Hashable], None]) -> None:
        """Call `callback(key)` whenever the live job or the queue of `key` changes: a job started,
        ended (after it was stored), a message queued or withdrawn. It runs on whichever thread made
        the change, so it must be quick and must not raise."""
        self._listeners.append(callback)

    def _changed(self, key: Hashable) -> None:
        for callback in list(self._listeners):
            try:
                callback(key)
            except Exception:  # noqa: BLE001 - a listener must never break a reply
                log.exception("job listener failed")

    def live(self, key: Hashable) -> ReplyJob | None:
        return self._live.get(key)

    def waiting(self, key: Hashable) -> list[Ticket]:
        with self._lock:
            return list(self._waiting.get(key, ()))

    def submit(self, key: Hashable, start: Callable[[bool], ReplyJob], question: Message | None = None, *,
               queue: bool = True) -> Ticket:
        """Start the job `start(waited)` builds, or (`queue`) line it up behind the live one of `key`;
        `waited` tells `start` whether the message waited its turn (what it was asked after may have moved).

        Without `queue`, a busy key raises BusyError; a job that cannot be built raises its error."""
        ticket = Ticket(question, start, self, key)
        with self._lock:
            if key in self._live:
                if not queue:
                    raise busy_error()
                self._waiting.setdefault(key, collections.deque()).append(ticket)
            else:
                self._launch(ticket, waited=False)
        self._changed(key)
        return ticket

    def _launch(self, ticket: Ticket, waited: bool = True) -> bool:
        """Build and start the ticket's job (the lock is held); False when it could not be built.
        A ticket asked for now raises why; one that waited keeps it for its viewers."""
        try:
            job = ticket._start(waited)
        except errors.ChatError as exc:
            ticket._moved_on(error=exc)
            if not waited:
                raise
            return False
        self._live[ticket._key] = job
        job.when_done(lambda ended: self._ended(ticket._key, ended))
        ticket._moved_on(job=job)
        job.start()
        return True

    def _ended(self, key: Hashable, job: ReplyJob) -> None:
        """A job ended: the next message waiting for its conversation goes out."""
        with self._lock:
            if self._live.get(key) is job:
                del self._live[key]
            waiting = self._waiting.get(key)
            while waiting:
                if self._launch(waiting.popleft()):
                    break
            if not waiting:
                self._waiting.pop(key, None)
        self._changed(key)

    def _withdraw(self, ticket: Ticket) -> bool:
        """Take a waiting ticket out of its queue; False when it was not waiting."""
        with self._lock:
            waiting = self._waiting.get(ticket._key)
            if not waiting or ticket not in waiting:
                return False
            waiting.remove(ticket)
        ticket._moved_on(withdrawn=True)
        self._changed(ticket._key)
        return True


JOBS = JobRegistry()


def follow_stored(store, message_id: int, every: float = SAVE_EVERY) -> Iterator[str]:
    """A reply that another process is writing, as its stored text grows (read every `every`
    seconds: at most about a second behind), until it is no longer streaming (ended, or cut off)."""
    shown = 0
    while True:
        state = store.reply_state(message_id)
        if state is None:
            return
        text, status = state
        if len(text) > shown:
            yield text[shown:]
            shown = len(text)
        if status != STREAMING:
            return
        time.sleep(every)
