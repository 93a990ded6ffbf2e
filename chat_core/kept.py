"""What the store refused, kept by the process for a while, so that a new view of the same
stored conversation (a reload, another tab) still shows it at the end of the thread, marked not
saved, to copy, as the view that held it does. A question kept here was never sent (the store
refused it before its request went out) and never is: it has no reply."""

from __future__ import annotations

import threading
import time
from typing import Hashable

from .conversation import Message

KEEP_FOR = 3600.0  # seconds a refused message stays on view
MAX_KEPT = 50  # per conversation, the latest


class Kept:
    def __init__(self):
        self._lock = threading.Lock()
        self._items: dict[Hashable, list[tuple[float, Message]]] = {}

    def add(self, key: Hashable, message: Message) -> None:
        with self._lock:
            items = self._items.setdefault(key, [])
            items.append((time.monotonic(), message))
            del items[:-MAX_KEPT]

    def of(self, key: Hashable) -> list[Message]:
        """The messages kept for `key`, oldest first (the ones past KEEP_FOR are let go)."""
        now = time.monotonic()
        with self._lock:
            items = [(at, message) for at, message in self._items.get(key, ()) if now - at < KEEP_FOR]
            if items:
                self._items[key] = items
            else:
                self._items.pop(key, None)
            return [message for _, message in items]


KEPT = Kept()


def key(store_url: str | None, owner: str, conversation_id: int | None) -> Hashable:
    """Whose and which conversation (None: a new chat not stored yet) a kept message belongs to."""
    return store_url, owner, conversation_id
