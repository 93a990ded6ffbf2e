"""The process's watcher (dashboard/live.py): it reruns exactly the sessions showing a conversation
that changed, at once for this process's replies and within a poll for another process's writes,
with one statement per poll however many sessions it serves. Real jobs against the loopback API,
a real SQLite file and a real PostgreSQL; the rerun itself is Streamlit's (tested through the browser)."""

from __future__ import annotations

import threading
import time

import sqlalchemy as sa

from chat_core.conversation import Message
from chat_core.storage import Store
from dashboard.live import Watcher
from tests.loopback_api import reply
from tests.test_storage import chat_on


class Reruns:
    """The sessions asked to rerun, in order; `gone` ones answer that they no longer exist."""

    def __init__(self, gone=()):
        self.asked: list[str] = []
        self.gone = set(gone)
        self.lock = threading.Lock()

    def __call__(self, session: str, busy=None) -> bool:
        with self.lock:
            self.asked.append(session)
        return session not in self.gone

    def until(self, wanted: set[str], timeout: float = 10) -> set[str]:
        deadline = time.time() + timeout
        while time.time() < deadline and not wanted <= set(self.asked):
            time.sleep(0.02)
        return set(self.asked)


def statements(store: Store) -> list[str]:
    seen: list[str] = []
    sa.event.listen(store.engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
    return seen


def test_a_reply_reruns_only_the_sessions_showing_its_conversation(api, db_url):
    store = Store(db_url)
    chat, other = chat_on(store), chat_on(store)
    list(chat.send("one"))
    list(other.send("elsewhere"))
    reruns = Reruns(gone={"closed-tab"})
    watcher = Watcher(reruns, poll=60)  # only the engine's events here
    for session in ("tab-a", "tab-b", "closed-tab", "streaming-tab"):
        watcher.show(session, store, chat.conversation_id, chat.last_saved_id())
    watcher.show("tab-c", store, other.conversation_id, other.last_saved_id())
    run = object()
    watcher.following("streaming-tab", run)  # its own run redraws when the reply ends
    api.queue(reply("a slow one", delay=0.05))
    viewer = chat.send("two", detach=True)
    assert reruns.until({"tab-a", "tab-b", "closed-tab"}) >= {"tab-a", "tab-b", "closed-tab"}
    chat.live_job().wait()
    time.sleep(0.1)
    asked = list(reruns.asked)
    assert set(asked) == {"tab-a", "tab-b", "closed-tab"}  # never tab-c, nor the one streaming it
    assert asked.count("tab-a") == 2 and asked.count("closed-tab") == 1, repr(asked)  # start and end; a closed tab is forgotten
    watcher.following("streaming-tab", None, object())  # a late end of a replaced run changes nothing
    watcher.changed((store.url, chat.conversation_id))
    assert "streaming-tab" not in reruns.asked
    watcher.following("streaming-tab", None, run)
    watcher.changed((store.url, chat.conversation_id))
    assert "streaming-tab" in reruns.asked
    viewer.close()


def test_another_processs_write_reruns_its_viewers_with_one_statement_per_poll(db_url):
    store = Store(db_url)
    cids = []
    for n in range(3):
        cid, _ = store.add_user_message(None, Message("user", f"chat {n}"), new=dict(
            system="s", window=10, backend="anthropic", model="claude-haiku-4-5"))
        cids.append(cid)
    reruns = Reruns()
    watcher = Watcher(reruns, lambda session: session != "closed-tab", poll=0.2)
    for n in range(20):  # 20 idle tabs over 3 conversations
        cid = cids[n % 3]
        watcher.show(f"tab-{n}", store, cid, store.last_message_id(cid))
    watcher.show("closed-tab", store, cids[1], None)  # a tab closed since: forgotten at the next poll, never rerun
    sent = statements(store)
    time.sleep(1.1)
    assert reruns.asked == []  # nothing moved: nobody reruns
    polls = [s for s in sent if "MAX(id)" in s]
    assert 3 <= len(polls) <= 6 and len(polls) == len([s for s in sent if s != "BEGIN"])  # one per poll for all 20 tabs

    elsewhere = Store(db_url)  # another server, or the terminal chat on the same file
    elsewhere.add_user_message(cids[1], Message("user", "written elsewhere"))
    expected = {f"tab-{n}" for n in range(20) if n % 3 == 1}
    assert reruns.until(expected, timeout=5) == expected
    time.sleep(0.5)
    assert sorted(reruns.asked) == sorted(expected)  # each once: the watcher remembers what it asked for
