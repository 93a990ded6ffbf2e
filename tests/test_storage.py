"""Conversations on a real SQLite file and a real PostgreSQL."""

import os
import signal
import subprocess
import sys

import pytest

from chat_core import ChatSession, settings_from_env
from chat_core.backends import make_backend
from chat_core.conversation import COMPLETE, FAILED, STOPPED, Message
from chat_core.errors import StorageError
from chat_core.storage import MIGRATIONS, Store
from chat_core.usage import TurnRecord, Usage
from tests.conftest import ROOT, TEST_KEY, cli_until
from tests.loopback_api import http_error, reply

ODD_TEXTS = [
    "tab\tbell\x07 escape\x1b[31m vertical\x0b form\x0c unit\x1f del\x7f",
    "emoji 👩‍💻🚀 and combining é ñ",
    "עברית: שלום עולם — العربية: مرحبا بالعالم",
    '<script>alert(1)</script><img src=x onerror="alert(2)">',
    "line one\r\nline two\n\n",
]


def test_schema_is_migrated_once_and_in_order(db_url):
    store = Store(db_url)
    assert store.migrate() == MIGRATIONS[-1][0]
    again = Store(db_url)  # a second app server on the same database
    assert again.migrate() == MIGRATIONS[-1][0]
    assert [n for n, _ in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))


def test_round_trip_keeps_every_character_status_and_record(db_url):
    store = Store(db_url)
    cid = store.create_conversation("persona ✨", 3, "anthropic", "claude-haiku-4-5")
    messages = []
    for text in ODD_TEXTS:
        messages += [Message("user", text), Message("assistant", text[::-1], STOPPED)]
    messages.append(Message("assistant", "", FAILED, "Claude is overloaded (529) and retries did not help."))
    for message in messages:
        store.add_message(cid, message)
    records = [
        TurnRecord(1, Usage(10, 5, 2, 1), 1, "claude-haiku-4-5", "anthropic", 0.01, 0.2, COMPLETE, 0.000123, "end_turn", 10),
        TurnRecord(2, Usage(20, 0, 0, 0), 3, "claude-x", "anthropic", None, 0.1, FAILED, None, None, None),
    ]
    for record in records:
        store.add_turn(cid, record)
    loaded = store.load(cid)
    assert loaded.messages == messages
    assert loaded.records == records
    assert loaded.info.system == "persona ✨" and loaded.info.window == 3
    assert loaded.info.title == " ".join(ODD_TEXTS[0].split())[:60]  # the first message names it


def test_list_rename_clear_delete(db_url):
    store = Store(db_url)
    first = store.create_conversation("s", 0, "local", "m")
    store.add_message(first, Message("user", "  Plan   a trip\nto Rome  "))
    second = store.create_conversation("s", 0, "local", "m")
    store.add_message(second, Message("user", "later"))
    assert [c.id for c in store.list_conversations()] == [second, first]
    assert store.load(first).info.title == "Plan a trip to Rome"
    store.rename(first, "Rome")
    assert store.load(first).info.title == "Rome"
    store.add_message(first, Message("user", "more"))
    assert store.load(first).info.title == "Rome"  # a rename sticks
    assert store.latest_id() == first
    store.clear_conversation(first)
    assert store.load(first).messages == []
    store.delete_conversation(first)
    assert store.load(first) is None and [c.id for c in store.list_conversations()] == [second]


def chat_on(store, **overrides):
    settings = settings_from_env(**overrides)
    return ChatSession.start(store, make_backend(settings.backend, settings.model), settings)


def test_user_message_is_saved_before_the_request_and_every_reply_however_it_ends(api, db_url):
    store = Store(db_url)
    chat = chat_on(store)
    api.queue(reply("one two three"))
    chunks = chat.send("first")
    next(chunks)
    mid = store.load(chat.conversation_id).messages
    assert [(m.role, m.text) for m in mid] == [("user", "first")]  # saved, reply not yet
    list(chunks)
    chunks = chat.send("second")
    next(chunks)
    chunks.close()  # stopped
    api.queue(http_error(401, "authentication_error"))
    with pytest.raises(Exception):
        list(chat.send("third"))
    stored = store.load(chat.conversation_id)
    assert [(m.role, m.status) for m in stored.messages] == [
        ("user", COMPLETE), ("assistant", COMPLETE), ("user", COMPLETE), ("assistant", STOPPED),
        ("user", COMPLETE), ("assistant", FAILED)]
    assert stored.messages[3].text == "echo: "
    assert stored.messages[5].error.startswith("Claude rejected the API key")
    assert [r.status for r in stored.records] == [COMPLETE, STOPPED, FAILED]
    resumed = ChatSession.resume(store, chat.conversation_id, chat.backend, chat.settings)
    assert resumed.messages == chat.messages and resumed.records == chat.records
    assert TEST_KEY not in repr(stored)
    if db_url.startswith("sqlite:///"):
        database = db_url.removeprefix("sqlite:///")
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        raw = b"".join(open(f"{database}{suffix}", "rb").read() for suffix in ("", "-wal") if os.path.exists(f"{database}{suffix}"))
        assert b"one two three" in raw and TEST_KEY.encode() not in raw  # text is there, the key never is


def test_an_unreachable_database_is_one_clear_line():
    with pytest.raises(StorageError, match=r"Could not open the database postgresql\+psycopg://u:\*\*\*@127.0.0.1:9/x"):
        Store("postgresql+psycopg://u:secret@127.0.0.1:9/x")


def test_a_killed_process_keeps_every_earlier_turn(api, db_url):
    """SIGKILL in the middle of a slow reply: a new process finds all earlier turns intact."""
    api.queue(reply("answer one"), reply("answer two"), reply(" ".join(["slow"] * 400), delay=0.05))
    env = dict(os.environ, CHAT_DATABASE_URL=db_url)
    proc = cli_until("question one\nquestion two\nquestion three\n", "slow slow slow", env=env)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert proc.returncode == -signal.SIGKILL

    store = Store(db_url)
    stored = store.load(store.latest_id())
    assert [(m.role, m.text, m.status) for m in stored.messages] == [
        ("user", "question one", COMPLETE), ("assistant", "answer one", COMPLETE),
        ("user", "question two", COMPLETE), ("assistant", "answer two", COMPLETE),
        ("user", "question three", COMPLETE)]
    assert len(stored.records) == 2
    resumed = subprocess.run([sys.executable, "-m", "chat_core", "--resume"], cwd=ROOT, env=env,
                             input="go on\n", capture_output=True, text=True, timeout=60)
    assert "resuming conversation" in resumed.stdout
    # the unanswered question is skipped; the earlier exchanges are sent
    assert [m["content"] for m in api.requests[-1]["messages"]] == [
        "question one", "answer one", "question two", "answer two", "go on"]
