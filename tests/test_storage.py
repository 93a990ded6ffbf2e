"""Conversations on a real SQLite file and a real PostgreSQL."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

from chat_core import ChatSession, settings_from_env
from chat_core.backends import make_backend
from chat_core.conversation import COMPLETE, CUT_OFF, FAILED, STOPPED, STREAMING, Message
from chat_core.errors import StorageError, redact_url
from chat_core.database import storable
from chat_core.liveness import CUT_OFF_NOTE
from chat_core.migrations import MIGRATIONS
from chat_core.storage import TITLE_LENGTH, Store, title_from
from chat_core.usage import TurnRecord, Usage
from tests.conftest import ROOT, TEST_KEY, cli_until, run_cli
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


def save_exchange(store, cid, question, answer, record, status=COMPLETE, error=None, owner="local", new=None):
    """A user message and its reply, as a session saves them; returns the conversation id."""
    cid, asked = store.add_user_message(cid, Message("user", question), owner, new)
    store.add_reply(cid, Message("assistant", answer, status, error, reply_to=asked), record)
    return cid


def test_round_trip_keeps_every_character_status_and_record(db_url):
    store = Store(db_url)
    cid = store.create_conversation("persona ✨", 3, "anthropic", "claude-haiku-4-5")
    records = [TurnRecord(0, Usage(10, 5, 2, 1), 1, "claude-haiku-4-5", "anthropic", 0.01, 0.2, COMPLETE, 0.000123,
                          "end_turn", 10) for _ in ODD_TEXTS]
    for text, record in zip(ODD_TEXTS, records):
        save_exchange(store, cid, text, text[::-1], record, STOPPED)
    cid, asked = store.add_user_message(cid, Message("user", "and then?"))
    store.add_reply(cid, Message("assistant", "", FAILED, "Claude is overloaded (529).", reply_to=asked),
                    TurnRecord(0, Usage(20, 0, 0, 0), 3, "claude-x", "anthropic", None, 0.1, FAILED, None, None, None))
    loaded = store.load(cid)
    expected = [(t, s) for text in ODD_TEXTS for t, s in ((text, COMPLETE), (text[::-1], STOPPED))]
    assert [(m.text, m.status) for m in loaded.messages][:-2] == expected
    assert loaded.messages[-1].error == "Claude is overloaded (529)." and loaded.messages[-1].status == FAILED
    assert all(reply.reply_to == asked.id for asked, reply in zip(loaded.messages[::2], loaded.messages[1::2]))
    assert [r.turn for r in loaded.records] == list(range(1, len(ODD_TEXTS) + 2))
    assert [r.message_id for r in loaded.records] == [m.id for m in loaded.messages[1::2]]
    assert [r.usage for r in loaded.records[:-1]] == [r.usage for r in records]
    assert loaded.info.system == "persona ✨" and loaded.info.window == 3
    assert loaded.info.title == " ".join(ODD_TEXTS[0].split())[:60]  # the first message names it


def test_a_conversation_is_stored_with_its_first_message(db_url):
    store = Store(db_url)
    new = dict(system="s", window=4, backend="local", model="m")
    cid, _ = store.add_user_message(None, Message("user", "  Plan   a trip\nto Rome  "), new=new)
    info = store.load(cid).info
    assert (info.title, info.window, info.backend) == ("Plan a trip to Rome", 4, "local")
    assert [c.id for c in store.list_conversations()] == [cid]
    # A long first message: its title ends at a word, marked as cut, within the length.
    long = "Could you help me plan a two-week trip through northern Portugal in early spring please"
    cid, _ = store.add_user_message(None, Message("user", long), new=new)
    title = store.load(cid).info.title
    assert title == "Could you help me plan a two-week trip through northern…" and len(title) <= TITLE_LENGTH
    assert title_from("x" * 100) == "x" * (TITLE_LENGTH - 1) + "…"  # one long word: cut where it must be


def test_list_rename_delete(db_url):
    store = Store(db_url)
    new = dict(system="s", window=0, backend="local", model="m")
    first, _ = store.add_user_message(None, Message("user", "Plan a trip"), new=new)
    second, _ = store.add_user_message(None, Message("user", "later"), new=new)
    assert [c.id for c in store.list_conversations()] == [second, first]
    store.rename(first, "  Rome\n")
    assert store.load(first).info.title == "Rome"
    store.add_user_message(first, Message("user", "more"))
    assert store.load(first).info.title == "Rome"  # a rename sticks
    assert store.latest_id() == first
    store.delete_conversation(first)
    assert store.load(first) is None and [c.id for c in store.list_conversations()] == [second]
    with pytest.raises(StorageError, match="was deleted"):
        store.add_user_message(first, Message("user", "into the void"))


def test_replies_stay_with_their_questions_when_two_views_interleave(db_url):
    """Tab A asks, tab B asks, B's reply lands, then A's: each reply follows its question."""
    store = Store(db_url)
    cid = store.create_conversation("s", 0, "local", "m")
    cid, a = store.add_user_message(cid, Message("user", "question A"))
    cid, b = store.add_user_message(cid, Message("user", "question B"))
    record = TurnRecord(0, Usage(1, 1), 1, "m", "local", None, None, COMPLETE, 0.0)
    store.add_reply(cid, Message("assistant", "answer B", reply_to=b), record)
    store.add_reply(cid, Message("assistant", "answer A", reply_to=a), record)
    loaded = store.load(cid)
    assert [m.text for m in loaded.messages] == ["question A", "answer A", "question B", "answer B"]
    assert [r.turn for r in loaded.records] == [1, 2]


def test_turn_numbers_stay_unique_under_concurrent_writers(db_url):
    import threading

    store = Store(db_url)
    cid = store.create_conversation("s", 0, "local", "m")
    record = TurnRecord(0, Usage(1, 1), 1, "m", "local", None, None, COMPLETE, 0.0)

    def writer(n):
        for i in range(5):
            _, asked = store.add_user_message(cid, Message("user", f"w{n} q{i}"))
            store.add_reply(cid, Message("assistant", f"w{n} a{i}", reply_to=asked), record)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    loaded = store.load(cid)
    assert sorted(r.turn for r in loaded.records) == list(range(1, 21))
    pairs = list(zip(loaded.messages[::2], loaded.messages[1::2]))
    assert all(q.text.replace(" q", " a") == a.text for q, a in pairs)


def test_each_owner_sees_only_their_conversations(db_url):
    store = Store(db_url)
    new = dict(system="s", window=0, backend="local", model="m")
    mine, _ = store.add_user_message(None, Message("user", "mine"), owner="https://idp|alice", new=new)
    theirs, _ = store.add_user_message(None, Message("user", "theirs"), owner="https://idp|bob", new=new)
    assert [c.id for c in store.list_conversations("https://idp|alice")] == [mine]
    assert store.list_conversations() == []  # the local owner has none
    assert store.load(theirs, "https://idp|alice") is None
    store.rename(theirs, "hijacked", "https://idp|alice")
    store.delete_conversation(theirs, "https://idp|alice")
    assert store.load(theirs, "https://idp|bob").info.title == "theirs"
    with pytest.raises(StorageError):
        store.add_user_message(theirs, Message("user", "sneaky"), owner="https://idp|alice")


def test_a_version_1_database_is_migrated_with_its_history(tmp_path):
    """A chat.db written before replies were linked: links are derived, duplicate turn numbers renumbered."""
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE schema_version (version INTEGER NOT NULL)"))
        for statement in MIGRATIONS[0][1]:
            conn.execute(sa.text(statement.format(id="INTEGER PRIMARY KEY AUTOINCREMENT", float="REAL")))
        conn.execute(sa.text("INSERT INTO schema_version VALUES (1)"))
        conn.execute(sa.text("INSERT INTO conversations VALUES (1, 'old', 's', 0, 'local', 'm', 1, 1)"))
        for role, text in [("user", "q1"), ("user", "q2"), ("assistant", "a2"), ("assistant", "a2 again")]:
            conn.execute(sa.text("INSERT INTO messages (conversation_id, role, text, status, created_at) "
                                 "VALUES (1, :role, :text, 'complete', 1)"), {"role": role, "text": text})
        for _ in range(2):
            conn.execute(sa.text("INSERT INTO turns (conversation_id, turn, input_tokens, output_tokens, "
                                 "cache_write_tokens, cache_read_tokens, messages_sent, model, backend, status) "
                                 "VALUES (1, 1, 1, 1, 0, 0, 1, 'm', 'local', 'complete')"))
    engine.dispose()
    store = Store(url)
    loaded = store.load(1)
    assert [m.reply_to for m in loaded.versions] == [None, None, 2, 2]
    # Two replies to one question are two versions of one reply: the newest is shown (migration 6).
    assert [(m.text, m.active) for m in loaded.versions] == [("q1", True), ("q2", True), ("a2", False),
                                                              ("a2 again", True)]
    assert [m.text for m in loaded.messages] == ["q1", "q2", "a2 again"]
    assert [r.turn for r in loaded.records] == [1, 2]


def chat_on(store, **overrides):
    settings = settings_from_env(**overrides)
    return ChatSession.start(store, make_backend(settings.backend, settings.model), settings)


def test_a_new_session_stores_nothing_until_its_first_message(api, db_url):
    store = Store(db_url)
    chat = chat_on(store)
    assert store.list_conversations() == [] and not chat.stored
    list(chat.send("hello"))
    assert [c.title for c in store.list_conversations()] == ["hello"] and chat.title == "hello"
    chat.new_conversation()
    assert not chat.stored and chat.messages == [] and chat.records == []
    list(chat.send("second chat"))
    assert [c.title for c in store.list_conversations()] == ["second chat", "hello"]


def test_user_message_is_saved_before_the_request_and_every_reply_however_it_ends(api, db_url):
    store = Store(db_url)
    chat = chat_on(store)
    api.queue(reply("one two three", delay=0.3), reply("echo: second and more", delay=0.3))
    chunks = chat.send("first")
    next(chunks)
    mid = store.load(chat.conversation_id).messages
    assert [(m.role, m.status) for m in mid] == [("user", COMPLETE), ("assistant", STREAMING)]  # stored as it streams
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
    with pytest.raises(StorageError, match=r"Could not open the database postgresql\+psycopg://u:\(hidden\)@127.0.0.1:9/x"):
        Store("postgresql+psycopg://u:secret@127.0.0.1:9/x")


def test_a_killed_process_keeps_every_earlier_turn_and_the_streamed_text_cut_off(api, db_url):
    """SIGKILL in the middle of a slow reply: a new process finds all earlier turns intact, and the
    reply that was streaming with the text it had, marked cut off (in the store too), never stuck."""
    slow = " ".join(["slow"] * 400)
    api.queue(reply("answer one"), reply("answer two"), reply(slow, delay=0.05))
    env = dict(os.environ, CHAT_DATABASE_URL=db_url)
    proc = cli_until("question one\nquestion two\nquestion three\n", "slow slow slow", env=env)
    watcher = Store(db_url)
    cid = watcher.latest_id()
    deadline = time.time() + 10
    while len(watcher.load(cid).messages[-1].text) < 20 and time.time() < deadline:
        time.sleep(0.05)  # the growing text reaches the store while it streams
    streaming = watcher.load(cid).messages[-1]
    assert streaming.status == STREAMING and slow.startswith(streaming.text)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert proc.returncode == -signal.SIGKILL

    store = Store(db_url)
    stored = store.load(store.latest_id())
    assert [(m.role, m.text, m.status) for m in stored.messages[:5]] == [
        ("user", "question one", COMPLETE), ("assistant", "answer one", COMPLETE),
        ("user", "question two", COMPLETE), ("assistant", "answer two", COMPLETE),
        ("user", "question three", COMPLETE)]
    cut = stored.messages[5]
    assert cut.role == "assistant" and cut.status == CUT_OFF and cut.error == CUT_OFF_NOTE
    assert len(cut.text) >= len(streaming.text) and slow.startswith(cut.text) and cut.text != slow
    assert len(stored.records) == 2  # what a dead process used is unknown: not counted
    with store.engine.connect() as conn:  # fixed in the store by the one who opened it
        assert conn.exec_driver_sql(f"SELECT status FROM messages WHERE id = {cut.id}").scalar() == CUT_OFF
    resumed = subprocess.run([sys.executable, "-m", "chat_core", "--resume"], cwd=ROOT, env=env,
                             input="go on\n", capture_output=True, text=True, timeout=60)
    assert "resuming conversation" in resumed.stdout
    # the cut-off exchange is sent with the text it had, like a stopped one
    assert [m["content"] for m in api.requests[-1]["messages"]] == [
        "question one", "answer one", "question two", "answer two", "question three", cut.text, "go on"]


def read_only(store):
    """Every new connection refuses writes, as a read-only file does (root ignores file modes)."""
    import sqlalchemy as sa

    sa.event.listen(store.engine, "connect", lambda conn, _: conn.execute("PRAGMA query_only=1"))
    store.engine.dispose()


def test_a_read_only_database_is_one_line_and_nothing_is_lost(api, tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'chat.db'}")
    chat = chat_on(store)
    list(chat.send("saved"))
    # Streamed slowly: the reply's job (a thread) is still writing when the file turns read-only.
    api.queue(reply("echo: the reply cannot be saved", delay=0.1))
    chunks = chat.send("the reply cannot be saved")
    first = next(chunks)
    read_only(store)
    rest = "".join(chunks)
    kept = chat.messages[-1]
    assert kept.text == first + rest == "echo: the reply cannot be saved" and kept.id is None
    assert kept.unsaved.startswith(f"The database file {tmp_path / 'chat.db'} is read-only")
    chat.refresh()
    assert chat.messages[-1] is kept  # kept in view, marked, after a reload from the store
    with pytest.raises(StorageError, match="is read-only, so nothing new can be saved"):
        chat.send("not even the question")
    assert len(api.requests) == 2  # a message that could not be saved is not sent
    # the reply's row, stored as its request went out, could not be finalized: cut off with what it had
    stored = store.load(chat.conversation_id).messages
    assert [(m.text, m.status) for m in stored[:3]] == [
        ("saved", COMPLETE), ("echo: saved", COMPLETE), ("the reply cannot be saved", COMPLETE)]
    assert stored[3].status == CUT_OFF and kept.text.startswith(stored[3].text)


def test_a_damaged_or_deleted_database_file_is_named_with_what_to_do(api, tmp_path):
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StorageError, match=r"damaged.db is unreadable .*: move it aside and restart"):
        Store(f"sqlite:///{damaged}")
    path = tmp_path / "chat.db"
    store = Store(f"sqlite:///{path}")
    chat = chat_on(store)
    list(chat.send("before"))
    path.unlink()
    with pytest.raises(StorageError, match="was deleted while the app was running"):
        chat.send("after")


def test_the_data_folder_and_database_file_are_private(tmp_path):
    Store(f"sqlite:///{tmp_path / 'data' / 'chat.db'}")
    assert (tmp_path / "data").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "data" / "chat.db").stat().st_mode & 0o777 == 0o600


def test_processes_that_start_together_migrate_a_new_database_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'chat.db'}"
    code = "import sys; from chat_core.storage import Store; print(Store(sys.argv[1]).migrate())"
    procs = [subprocess.Popen([sys.executable, "-c", code, url], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(6)]
    results = [proc.communicate(timeout=120) for proc in procs]
    assert [out.strip() for out, _ in results] == [str(MIGRATIONS[-1][0])] * 6, [err for _, err in results]


SECRET_URLS = {
    "postgresql+psycopg://u:hunter2@db.example:5432/chat?sslmode=require":
        "postgresql+psycopg://u:(hidden)@db.example:5432/chat?sslmode=require",
    "postgresql+psycopg://user@db.example/chat?password=hunter2&application_name=chat":
        "postgresql+psycopg://(hidden)@db.example/chat?password=(hidden)&application_name=chat",
    "postgresql+psycopg://db.example/chat?sslpassword=hunter2&PASSWORD=hunter2&passfile=/home/hunter2":
        "postgresql+psycopg://db.example/chat?sslpassword=(hidden)&PASSWORD=(hidden)&passfile=(hidden)",
    "postgresql+psycopg://db.example/chat?options=-c%20x%3Dhunter2&sslkey=/k/hunter2&token=hunter2&api_key=hunter2":
        "postgresql+psycopg://db.example/chat?options=(hidden)&sslkey=(hidden)&token=(hidden)&api_key=(hidden)",
    "postgresql://u:p%40hunter2@h1:5432,h2:5433/chat": "postgresql://u:(hidden)@h1:5432,h2:5433/chat",
    "postgresql://u:hun#ter2@db.example/chat": "postgresql://u:(hidden)@db.example/chat",  # SQLAlchemy reads hun#ter2
    "postgresql://u:hun?ter2@db.example/chat?sslmode=require": "postgresql://(hidden)@db.example/chat?sslmode=require",
    "postgresql://db.example/chat?application_name=a@b&password=hunter2": "postgresql://(hidden)@(hidden)&password=(hidden)",
    "postgresql://db.example/chat?hunter2": "postgresql://db.example/chat?(hidden)",
    "postgresql://db.example/chat?sslmode=require#hunter2": "postgresql://db.example/chat?sslmode=require",
    "https://hunter2@gateway.example/v1": "https://(hidden)@gateway.example/v1",  # a user name alone may be a token
    "https://u:hunter2@gateway.example:8443/v1?key=hunter2": "https://u:(hidden)@gateway.example:8443/v1?key=(hidden)",
    "sqlite:////home/me/.local/share/claude-chat/chat.db": "sqlite:////home/me/.local/share/claude-chat/chat.db",
    "host=db.example password=hunter2": "(an address that could not be read)",
}


@pytest.mark.parametrize("url", SECRET_URLS)
def test_a_secret_anywhere_in_a_url_is_redacted(url):
    assert redact_url(url) == SECRET_URLS[url] and "hunter2" not in redact_url(url)


@pytest.mark.parametrize("url, line", [
    ("postgresql+psycopg://user@127.0.0.1:9/x?password=hunter2",
     "Could not open the database postgresql+psycopg://(hidden)@127.0.0.1:9/x?password=(hidden) (OperationalError): "
     "check CHAT_DATABASE_URL and that the server is running, then try again."),
    ("postgresql+psycopg://u:hunter2@127.0.0.1:notaport/x",
     "CHAT_DATABASE_URL postgresql+psycopg://u:(hidden)@127.0.0.1:notaport/x is not a database URL: "
     "write it as postgresql+psycopg://USER:PASSWORD@HOST/DB (or sqlite:///FILE)."),
    ("nosuchdb://u:hunter2@127.0.0.1/x",
     "CHAT_DATABASE_URL nosuchdb://u:(hidden)@127.0.0.1/x names a database SQLAlchemy does not know: "
     "use sqlite:///FILE or postgresql+psycopg://USER@HOST/DB."),
    ("postgresql+pg8000://u:hunter2@127.0.0.1/x",
     "CHAT_DATABASE_URL postgresql+pg8000://u:(hidden)@127.0.0.1/x needs the Python package pg8000, which is not "
     "installed: install it, or use postgresql+psycopg://."),
])
def test_a_database_url_that_cannot_be_used_is_one_line_without_its_secrets(url, line):
    with pytest.raises(StorageError) as caught:
        Store(url)
    assert str(caught.value) == line
    result = run_cli("--list", stdin="", env_extra={"CHAT_DATABASE_URL": url})
    assert (result.returncode, result.stdout, result.stderr) == (1, "", f"! {line}\n")


def test_a_wrong_database_name_is_a_connection_line_and_a_bad_value_its_own(db_url):
    store = Store(db_url)
    cid = store.create_conversation("s", 0, "local", "m")
    if db_url.startswith("postgresql"):
        wrong = db_url.rsplit("/", 1)[0] + "/no_such_database?password=hunter2"
        with pytest.raises(StorageError) as caught:
            Store(wrong)
        assert "check CHAT_DATABASE_URL and that the server is running" in str(caught.value)
        assert "hunter2" not in str(caught.value) and "password=(hidden)" in str(caught.value)
        with pytest.raises(StorageError) as caught:  # PostgreSQL's INTEGER ends at 2**31 - 1
            store.update_conversation(cid, window=2**40)
        assert str(caught.value) == ("The database refused a value it was given (NumericValueOutOfRange), "
                                     "so nothing was changed: please report this.")
    assert store.load(cid).info.window == 0


def test_a_statement_stopped_for_time_is_explained_as_such(db_url):
    store = Store(db_url)
    with pytest.raises(sa.exc.OperationalError) as caught, store.engine.connect() as conn:
        if db_url.startswith("postgresql"):
            conn.execute(sa.text("SET LOCAL statement_timeout = 10"))
            conn.execute(sa.text("SELECT pg_sleep(5)"))
        else:
            conn.connection.dbapi_connection.set_progress_handler(lambda: True, 1)
            try:
                conn.execute(sa.text("SELECT 1"))
            finally:
                conn.connection.dbapi_connection.set_progress_handler(None, 0)
    assert store.explain(caught.value) == (
        "The database took too long to answer and the request was stopped: try again in a moment.")


def test_nul_and_lone_surrogates_are_stored_as_typed_input_drops_them(db_url):
    """PostgreSQL cannot store NUL, no encoding has a lone surrogate: every text column on both databases
    drops NUL (as the session does with what a person types) and makes a lone surrogate U+FFFD."""
    store = Store(db_url)
    cid, asked = store.add_user_message(None, Message("user", "what is\x00 this?"), new=dict(
        system="per\x00sona", window=0, backend="local", model="m\x00"))
    record = TurnRecord(0, Usage(10, 5), 1, "model\x00", "local", 0.1, 0.2, COMPLETE, None, "end\x00turn", 10)
    store.add_reply(cid, Message("assistant", "a NUL\x00 here, a lone \ud800 there", reply_to=asked), record)
    later, _ = store.add_user_message(cid, Message("user", "next"))
    store.rename(cid, "Ti\x00tle \udfff")
    loaded = store.load(cid)
    assert [(m.role, m.text, m.reply_to) for m in loaded.messages] == [
        ("user", "what is this?", None), ("assistant", "a NUL here, a lone \ufffd there", asked), ("user", "next", None)]
    assert (loaded.info.title, loaded.info.system, loaded.info.model) == ("Title \ufffd", "persona", "m")
    assert (loaded.records[0].model, loaded.records[0].stop_reason) == ("model", "endturn")
    assert storable("emoji \ud83d\ude80 kept\x00") == "emoji 🚀 kept"  # a pair of surrogates is one character


NOT_IDS = ["abc", "1", "", 1.5, True, None, 0, -1, 2**31, 2**63, [1]]


@pytest.mark.parametrize("bad", NOT_IDS)
def test_an_id_that_names_no_row_is_not_found_never_a_database_error(db_url, bad):
    store = Store(db_url)
    cid, asked = store.add_user_message(None, Message("user", "hello"), new=dict(
        system="s", window=0, backend="local", model="m"))
    assert store.load(bad) is None and store.last_message_id(bad) is None
    store.delete_conversation(bad)
    store.rename(bad, "Renamed")
    store.update_conversation(bad, model="other")
    store.choose_version(bad, asked)
    store.choose_version(cid, bad)
    if bad is not None:
        with pytest.raises(StorageError, match="This conversation was deleted"):
            store.add_user_message(bad, Message("user", "forged"))
        with pytest.raises(StorageError, match="This conversation was deleted"):
            store.add_reply(bad, Message("assistant", "forged", reply_to=asked), TurnRecord(
                0, Usage(1, 1), 1, "m", "local", None, 0.1, COMPLETE, None, None, None))
        with pytest.raises(StorageError, match="This conversation was deleted"):
            store.add_user_message(cid, Message("user", "forged edit", edit_of=bad))
    loaded = store.load(cid)
    assert [m.text for m in loaded.messages] == ["hello"] and loaded.info.title == "hello"
    assert loaded.info.model == "m" and store.last_message_id(cid) == asked


def test_a_reply_holding_nul_from_claude_is_saved_after_its_question(api, db_url):
    store = Store(db_url)
    chat = chat_on(store)
    api.queue(reply("zero\x00byte reply"), reply("the next answer"))
    list(chat.send("first question"))
    list(chat.send("second question"))
    assert not any(m.unsaved for m in chat.messages)
    loaded = store.load(chat.conversation_id)
    assert [(m.role, m.text) for m in loaded.messages] == [
        ("user", "first question"), ("assistant", "zerobyte reply"),
        ("user", "second question"), ("assistant", "the next answer")]
    assert [m.reply_to for m in loaded.messages[1::2]] == [m.id for m in loaded.messages[::2]]


RECORD = TurnRecord(0, Usage(1, 1), 1, "m", "local", None, None, COMPLETE, 0.0)


def race(db_url, first, second, check, rounds):
    """`first` and `second` run at the same moment, each on its own Store (two app servers), `rounds`
    times; `check` runs between rounds. Returns what either raised."""
    import threading

    stores = [Store(db_url), Store(db_url)]
    failures = []
    barrier = threading.Barrier(2, action=check)

    def run(store, write):
        for i in range(rounds):
            barrier.wait()
            try:
                write(store, i)
            except Exception as exc:  # noqa: BLE001 - whatever escapes is reported, and the other thread goes on
                failures.append(exc)
            barrier.wait()

    threads = [threading.Thread(target=run, args=(store, write)) for store, write in zip(stores, (first, second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures


def test_racing_edits_of_one_question_leave_one_active_version(db_url):
    store = Store(db_url)
    cid = save_exchange(store, None, "question", "answer", RECORD, new=dict(system="s", window=0, backend="local",
                                                                              model="m"))
    root = store.load(cid).messages[0].id
    doubles = []

    def check():
        active = [m for m in store.load(cid).versions if m.role == "user" and m.active]
        if len(active) != 1:
            doubles.append(active)

    def edit(name):
        return lambda s, i: s.add_user_message(cid, Message("user", f"{name} {i}", edit_of=root))

    failures = race(db_url, edit("a"), edit("b"), check, 200)
    assert failures == [] and doubles == []
    shown = store.load(cid).messages
    assert len(shown) == 1 and shown[0].text in ("a 199", "b 199")


def test_a_regenerate_racing_a_version_choice_leaves_one_active_reply(db_url):
    store = Store(db_url)
    cid, asked = store.add_user_message(None, Message("user", "question"),
                                        new=dict(system="s", window=0, backend="local", model="m"))
    first, _ = store.add_reply(cid, Message("assistant", "reply 0", reply_to=asked), RECORD)
    doubles = []

    def check():
        active = [m for m in store.load(cid).versions if m.role == "assistant" and m.active]
        if len(active) != 1:
            doubles.append(active)

    failures = race(db_url,
                    lambda s, i: s.add_reply(cid, Message("assistant", f"reply {i + 1}", reply_to=asked), RECORD),
                    lambda s, i: s.choose_version(cid, first),
                    check, 200)
    assert failures == [] and doubles == []
    loaded = store.load(cid)
    assert len(loaded.messages) == 2 and len(loaded.versions) == 202
    assert sorted(r.turn for r in loaded.records) == list(range(1, 202))


def test_sqlite_keeps_wal_and_commits_writes_and_rolls_back_ddl(tmp_path):
    import sqlalchemy as sa

    path = tmp_path / "chat.db"
    store = Store(f"sqlite:///{path}")
    cid = store.create_conversation("s", 0, "local", "m", title="seen by another connection")
    other = sqlite3.connect(path)
    assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert other.execute("SELECT title FROM conversations WHERE id = ?", (cid,)).fetchone() == (
        "seen by another connection",)
    with pytest.raises(RuntimeError), store.engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE conversations ADD COLUMN half_done TEXT"))
        raise RuntimeError("killed here")
    columns = [row[1] for row in other.execute("PRAGMA table_info(conversations)")]
    assert "half_done" not in columns and "owner" in columns
    other.close()


def test_a_streaming_reply_reads_as_cut_off_once_its_writer_is_gone_and_is_fixed_in_the_store(db_url):
    import socket

    import sqlalchemy as sa

    from chat_core.liveness import STALE_AFTER

    store = Store(db_url)
    cid, asked = store.add_user_message(None, Message("user", "q"), new=dict(system="s", window=0, backend="local",
                                                                              model="m"))
    rows = [store.start_reply(cid, Message("assistant", "", reply_to=asked)) for _ in range(4)]
    for row in rows:
        store.save_text(row, f"partial {row}")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    now = time.time()
    writers = {rows[0]: (f"{socket.gethostname()}:{dead.stdout.strip()}", now),  # its process died
               rows[1]: ("another-server:1", now),  # alive elsewhere, heard from just now
               rows[2]: ("another-server:1", now - STALE_AFTER - 1)}  # silent too long
    with store.engine.begin() as conn:  # rows[3] stays this process's own, still being written
        for row, (writer, heartbeat) in writers.items():
            conn.execute(sa.text("UPDATE messages SET writer = :w, heartbeat = :h WHERE id = :id"),
                         {"w": writer, "h": heartbeat, "id": row})
    loaded = {m.id: m for m in store.load(cid).versions}
    assert [loaded[row].status for row in rows] == [CUT_OFF, STREAMING, CUT_OFF, STREAMING]
    assert loaded[rows[0]].text == f"partial {rows[0]}" and loaded[rows[0]].error == CUT_OFF_NOTE
    with store.engine.connect() as conn:
        assert [conn.execute(sa.text("SELECT status FROM messages WHERE id = :id"), {"id": row}).scalar()
                for row in rows] == [CUT_OFF, STREAMING, CUT_OFF, STREAMING]
    assert store.reply_state(rows[1]) == (f"partial {rows[1]}", STREAMING)
    assert store.reply_state(rows[2]) == (f"partial {rows[2]}", CUT_OFF)
