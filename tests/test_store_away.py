"""The database goes away mid-action (the SQLite file moved away, PostgreSQL stopped: a proxy in
front of it cuts every connection and refuses new ones) and comes back: in the terminal and the
page, each failure is one line, what was written stays on screen marked not saved, and nothing is
sent that the person did not see sent."""

import subprocess
import sys
import threading
import time

import pytest

from chat_core.storage import Store
from tests.conftest import ROOT, cli_until
from tests.loopback_api import reply
from tests.tcp_proxy import TcpProxy
from tests.test_dashboard import bubbles, send

SLOW = "one two three four five six seven eight nine ten"  # streamed a word every 0.15 s


class Away:
    """A database that can go away and come back; `url` is the one to use."""

    def __init__(self, db_url: str, tmp_path):
        self.proxy = None
        if db_url.startswith("sqlite:///"):
            self.path = tmp_path / "store" / "chat.db"
            self.url = db_url
            Store(db_url)  # the file exists from the start
        else:
            self.proxy, self.url = TcpProxy.before(db_url)

    def go(self) -> None:
        if self.proxy is not None:
            self.proxy.stop()
        else:
            self.path.rename(self.path.with_name("aside.db"))

    def come_back(self) -> None:
        if self.proxy is not None:
            self.proxy.start()
        else:
            self.path.with_name("aside.db").rename(self.path)


@pytest.fixture
def away(db_url, tmp_path):
    gone = Away(db_url, tmp_path)
    yield gone
    if gone.proxy is not None:
        gone.proxy.stop()


def test_the_terminal_keeps_a_finished_reply_and_sends_nothing_while_the_store_is_away(api, away, monkeypatch):
    monkeypatch.setenv("CHAT_DATABASE_URL", away.url)
    api.queue(reply("saved answer"), reply(SLOW, delay=0.15))
    env = dict(__import__("os").environ)
    proc = cli_until("first\nsecond\n", "three", env=env)
    away.go()
    out, err = proc.communicate("third, while it is away\n/window 3\n/retry\n", timeout=60)
    assert proc.returncode == 0 and "Traceback" not in err + out
    assert "four five six seven eight nine ten\n" in out  # the rest of the reply (the start was read above)
    lines = [line for line in err.splitlines() if line.startswith("! ")]
    not_saved = [line for line in lines if line.startswith("! Not saved: ")]
    assert len(not_saved) == 1, lines
    assert sum("third" not in line and "database" in line.lower() for line in lines) >= 3  # message, /window, /retry
    assert len(api.requests) == 2  # neither the third message nor the retry went out
    away.come_back()
    stored = Store(away.url).load(Store(away.url).latest_id())
    assert [m.text for m in stored.messages if m.role == "user"] == ["first", "second"]
    assert stored.messages[3].status == "cut_off" and SLOW.startswith(stored.messages[3].text)


def test_the_page_keeps_what_was_written_while_the_store_is_away(api, app, away, monkeypatch):
    monkeypatch.setenv("CHAT_DATABASE_URL", away.url)
    at = app()
    send(at, "to edit")
    api.queue(reply(SLOW, delay=0.15))
    threading.Timer(0.5, away.go).start()
    send(at, "answered while it goes away")  # the reply finishes after the store went away
    assert not at.exception
    assert bubbles(at)[-1] == SLOW
    assert sum(w.value.startswith("Not saved:") for w in at.warning) == 1
    at.run()  # the next run (the idle page's check included) cannot read the store: one line, same page
    assert not at.exception and bubbles(at)[-1] == SLOW
    assert len([w for w in at.warning if not w.value.startswith("Not saved:")]) == 1
    send(at, "written while it is away")
    assert not at.exception and len(api.requests) == 2
    assert "written while it is away" in [c.value for c in at.code]
    at.run()
    assert "written while it is away" in [c.value for c in at.code]  # still there, to copy
    fresh = app()  # a new chat in another tab: its sidebar says so in one line
    assert not fresh.exception and any("cannot be read now" in c.value for c in fresh.caption)
    cid = at.query_params["c"][0] if isinstance(at.query_params["c"], list) else at.query_params["c"]
    reloaded = app({"c": cid})  # a reload while it is away: one line, and what was not saved, to copy
    assert not reloaded.exception and len(reloaded.error) == 1
    assert {SLOW, "written while it is away"} <= {c.value for c in reloaded.code}
    away.come_back()
    at.run()
    assert not at.exception and len(api.requests) == 2
    reloaded = app({"c": cid})  # and once it is back: the stored conversation, then what it refused, marked
    assert not reloaded.exception and bubbles(reloaded)[-2:] == [SLOW, "written while it is away"]
    assert sum(w.value.startswith("Not saved:") for w in reloaded.warning) == 2


def test_an_edit_refused_while_the_store_is_away_is_kept_and_never_sent_later(api, app, away, monkeypatch):
    monkeypatch.setenv("CHAT_DATABASE_URL", away.url)
    at = app()
    send(at, "the question")
    at.button(key="chat_edit").click().run()
    away.go()
    at.text_area[0].set_value("the question, edited while away")
    at.button(key="chat_edit_send").click().run()
    assert not at.exception and len(api.requests) == 1
    assert "the question, edited while away" in [c.value for c in at.code]
    away.come_back()
    at.run()
    at.run()
    assert not at.exception and len(api.requests) == 1  # nothing went out by itself
    assert "the question, edited while away" in [c.value for c in at.code]  # kept, to copy
