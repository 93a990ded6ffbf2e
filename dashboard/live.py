"""One watcher per server process: it keeps every open page in step with the store, cheaply.

Each page run says which conversation its browser session shows (`show`). The watcher reruns
exactly the sessions showing a conversation when it changes:
- at once when this process's engine says so (`JOBS.listen`: a reply started or ended, a message
  was queued or withdrawn): a second tab on this server sees a reply from its first chunk;
- within `POLL` seconds when another process wrote to it (another server on the same PostgreSQL,
  the terminal chat on the same SQLite file): one statement per poll for all the sessions served.

An idle tab then costs nothing: no fragment timer, no page run, no query of its own. A session
whose run is streaming a reply (`following`) is left alone: that run redraws by itself when the
reply ends. Nothing of Streamlit but the adapter's rerun (dashboard/streamlit_adapter.py).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Hashable

from chat_core import JOBS, errors

POLL = 2.0  # seconds between looks at the store for other processes' writes (one statement each)
RETRY = 0.1  # seconds before a session whose page was running when asked is asked again

log = logging.getLogger(__name__)


@dataclass
class View:
    store: object  # chat_core.storage.Store
    conversation_id: int | None
    seen: int | None  # the newest message id the session drew
    following: object | None = None  # the run streaming a reply now (it redraws when the reply ends), if any
    asked: int | None = None  # the newest message id it was last asked to rerun for
    shown: float = 0.0  # when its last run read the store (time.monotonic())

    @property
    def key(self) -> Hashable:
        return (self.store.url, self.conversation_id)


class Watcher:
    def __init__(self, rerun: Callable[..., bool], alive: Callable[[str], bool] = lambda session: True,
                 poll: float = POLL):
        self._rerun, self._alive, self._poll = rerun, alive, poll
        self._views: dict[str, View] = {}
        self._busy: dict[str, tuple[int | None, float]] = {}  # running when asked: (why, when); asked again soon
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="store-watcher", daemon=True)
        self.reruns = 0  # sessions asked to rerun, for the bench
        JOBS.listen(self.changed)
        self._thread.start()

    def show(self, session: str | None, store, conversation_id: int | None, seen: int | None) -> None:
        """Session `session` now shows `conversation_id` (None: a new chat), drawn up to message `seen`."""
        if session is None:
            return
        with self._lock:
            self._views[session] = View(store, conversation_id, seen, shown=time.monotonic())

    def following(self, session: str | None, run: object | None, ending: object | None = None) -> None:
        """`run` of `session` streams a reply now (None: it stopped; `ending` names the run that stops, so
        a run that was replaced by a newer one, and ends late, leaves the newer one's mark alone)."""
        with self._lock:
            view = self._views.get(session)
            if view is not None and (ending is None or view.following is ending):
                view.following = run

    def changed(self, key: Hashable) -> None:
        """This process changed conversation `key` (its engine says so): rerun the sessions showing it."""
        with self._lock:
            sessions = [s for s, v in self._views.items() if v.key == key and not v.following]
        self._ask({s: None for s in sessions})

    def _ask(self, sessions: dict[str, int | None]) -> None:
        """Rerun each session; one whose page is running is asked again later (see `_retry`): `sessions`
        maps each to the newest message id that called for it (None: an engine event)."""
        now = time.monotonic()
        for session, newest in sessions.items():
            def busy(session=session, newest=newest) -> None:
                with self._lock:
                    earlier = self._busy.get(session)
                    self._busy[session] = (None if earlier and earlier[0] is None else newest,
                                           min(now, earlier[1]) if earlier else now)
            if self._rerun(session, busy):
                self.reruns += 1
            else:
                with self._lock:
                    self._views.pop(session, None)

    def _retry(self) -> None:
        """Ask again the sessions that were running when asked, unless a run of theirs read the store since
        (it drew what called for it), or they stream a reply now (they redraw when it ends)."""
        with self._lock:
            busy, self._busy = self._busy, {}
            again = {}
            for session, (newest, when) in busy.items():
                view = self._views.get(session)
                if view is not None and not view.following and view.shown < when \
                        and (newest is None or view.seen != newest):
                    again[session] = newest
        self._ask(again)

    def _loop(self) -> None:
        last, trouble = time.monotonic(), None
        while True:
            time.sleep(RETRY)
            self._retry()
            if time.monotonic() - last < self._poll:
                continue
            last = time.monotonic()
            try:
                self._look()
                trouble = None
            except errors.ChatError as exc:  # the store is away: the pages say so when they next run
                if exc.message != trouble:  # said once, not every poll
                    log.warning("watcher: %s", exc.message)
                trouble = exc.message

    def _look(self) -> None:
        """One statement per store: the newest message of every conversation shown; rerun the views behind it."""
        with self._lock:
            sessions = list(self._views)
        gone = [session for session in sessions if not self._alive(session)]  # closed tabs: forgotten
        with self._lock:
            for session in gone:
                self._views.pop(session, None)
            by_store: dict[str, tuple[object, set[int]]] = {}
            for view in self._views.values():
                if view.conversation_id is not None:
                    by_store.setdefault(view.store.url, (view.store, set()))[1].add(view.conversation_id)
        for store, ids in by_store.values():
            newest = store.last_message_ids(sorted(ids))
            with self._lock:
                behind = {s: newest[v.conversation_id] for s, v in self._views.items() if v.store is store
                          and v.conversation_id in newest and newest[v.conversation_id] not in (v.seen, v.asked)
                          and not v.following}
                for session, latest in behind.items():
                    self._views[session].asked = latest
            self._ask(behind)
