"""Migrations on a real database made by an older version: killed part-way and run
again, raced by two processes, failing with a name, repairing what racing writers left."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

from chat_core.errors import StorageError
from chat_core.search import search
from chat_core.migrations import MIGRATION_LOCK, MIGRATIONS, fts5_index
from chat_core.storage import Store, sqlite_path
from tests.conftest import ROOT

LATEST = MIGRATIONS[-1][0]
PER_CONVERSATION = 20  # messages: ten exchanges


def rows_for(url: str) -> int:
    """Messages enough for the pending migrations to take a few seconds on an idle machine
    (the issue's 800,000 took 12 s on SQLite on a busy machine, 480,000 take about 4 s on an idle
    one; PostgreSQL's migration 2 is slower a row)."""
    return 480_000 if url.startswith("sqlite") else 120_000


def build_old(url: str, schema: int, messages: int) -> None:
    """A database as version `schema` of the app left it, filled with `messages` messages (a
    question, then its reply) and a turn per reply, in one statement per table."""
    Store(url, schema=schema).engine.dispose()
    engine = sa.create_engine(url)
    count = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :count) "
    linked = schema >= 2  # replies name their questions, turn numbers are unique
    with engine.begin() as conn:
        conn.execute(sa.text(
            count + "INSERT INTO conversations (id, title, system, window_size, backend, model, created_at, updated_at) "
            "SELECT i, 'chat ' || i, 's', 0, 'local', 'm', i, i FROM n"), {"count": messages // PER_CONVERSATION})
        conn.execute(sa.text(
            count + f"INSERT INTO messages (id, conversation_id, role, text, status, created_at{', reply_to' * linked}) "
            f"SELECT i, (i - 1) / {PER_CONVERSATION} + 1, CASE WHEN i % 2 = 1 THEN 'user' ELSE 'assistant' END, "
            f"'message number ' || i, 'complete', i{', CASE WHEN i % 2 = 0 THEN i - 1 END' * linked} FROM n"),
            {"count": messages})
        conn.execute(sa.text(
            "INSERT INTO turns (conversation_id, turn, input_tokens, output_tokens, cache_write_tokens, "
            "cache_read_tokens, messages_sent, model, backend, status) "
            f"SELECT conversation_id, {f'(id - 1) % {PER_CONVERSATION} / 2 + 1' if linked else '1'}, 1, 1, 0, 0, 1, "
            "'m', 'local', 'complete' FROM messages WHERE role = 'assistant'"))
        if engine.dialect.name == "postgresql":  # ids were given: the sequences go on after them
            for table in ("conversations", "messages"):
                conn.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), MAX(id)) FROM {table}"))
    engine.dispose()


def state(url: str) -> tuple[int, int, int, int]:
    """(schema version, conversations, messages, turns)."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        found = tuple(conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar()
                      for table in ("conversations", "messages", "turns"))
        version = conn.execute(sa.text("SELECT MAX(version) FROM schema_version")).scalar()
    engine.dispose()
    return (version, *found)


def migrating(url: str) -> bool:
    """Whether another process holds the migration lock right now."""
    path = sqlite_path(url)
    if path is not None:
        probe = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            return False
        except sqlite3.OperationalError as exc:
            assert "locked" in str(exc)
            return True
        finally:
            probe.close()
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        held = conn.execute(sa.text("SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' "
                                    "AND objid::bigint = :key AND granted"), {"key": MIGRATION_LOCK}).scalar()
    engine.dispose()
    return bool(held)


def start_app(url: str, data_dir) -> subprocess.Popen:
    """Today's code opening the old database, as a user would: `python -m chat_core --list`."""
    env = {**os.environ, "CHAT_DATABASE_URL": url, "CHAT_DATA_DIR": str(data_dir)}
    return subprocess.Popen([sys.executable, "-m", "chat_core", "--list"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def kill_while_migrating(url: str, data_dir, after: float) -> None:
    """Start the app and SIGKILL it `after` seconds into its migration."""
    proc = start_app(url, data_dir)
    try:
        deadline = time.monotonic() + 60
        while not migrating(url):
            assert proc.poll() is None, f"it ended before migrating: {proc.communicate()}"
            assert time.monotonic() < deadline, "it never started migrating"
            time.sleep(0.02)
        time.sleep(after)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    deadline = time.monotonic() + 60
    while migrating(url):  # PostgreSQL rolls back the killed process's transaction when it notices
        assert time.monotonic() < deadline
        time.sleep(0.05)


@pytest.mark.parametrize("schema, kills, share", [(1, [0.3, 1.0, 2.0], 1), (3, [0.3, 1.0], 1)])
def test_a_migration_killed_part_way_is_simply_run_again(db_url, tmp_path, schema, kills, share):
    build_old(db_url, schema, int(rows_for(db_url) * share) // PER_CONVERSATION * PER_CONVERSATION)
    before = state(db_url)
    assert before[0] == schema
    landed = 0
    for after in kills:
        kill_while_migrating(db_url, tmp_path / "data", after)
        now = state(db_url)
        assert now[1:] == before[1:]  # no row lost
        if now[0] == LATEST:
            break  # a fast machine finished before this point
        landed += 1
        assert now[0] >= schema  # each migration whole or not at all (checked by the runs that follow)
    assert landed >= len(kills) - 1, "the migration was over too soon: make the database larger"
    done = start_app(db_url, tmp_path / "data")
    out, err = done.communicate(timeout=300)
    assert done.returncode == 0 and err == "", err
    assert "chat 1" in out
    assert state(db_url) == (LATEST, *before[1:])
    store = Store(db_url)
    loaded = store.load(1)
    assert [m.text for m in loaded.messages] == [f"message number {i}" for i in range(1, PER_CONVERSATION + 1)]
    assert all(a.reply_to == q.id for q, a in zip(loaded.messages[::2], loaded.messages[1::2]))
    assert [r.turn for r in loaded.records] == list(range(1, PER_CONVERSATION // 2 + 1))


def test_two_processes_starting_together_on_an_old_database_both_open_it(db_url, tmp_path):
    build_old(db_url, 1, rows_for(db_url) // 2)
    before = state(db_url)
    procs = [start_app(db_url, tmp_path / "data") for _ in range(2)]
    results = [proc.communicate(timeout=300) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], [err for _, err in results]
    assert results[0][0] == results[1][0] and "chat 1" in results[0][0]
    assert state(db_url) == (LATEST, *before[1:])


def drop_table(engine, name: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))
    engine.dispose()


def test_a_failing_migration_is_named_with_its_error_and_changes_nothing(db_url, tmp_path, request):
    """Migration 2 cannot build its index: a table of that name is in the way."""
    build_old(db_url, 1, 40)
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE turns_unique (x INTEGER)"))
    request.addfinalizer(lambda: drop_table(engine, "turns_unique"))  # the other tests' PostgreSQL
    with pytest.raises(StorageError) as failure:
        Store(db_url)
    message = str(failure.value)
    assert "schema version 2" in message and "turns_unique" in message and "unchanged at version 1" in message
    assert "server is running" not in message and "\n" not in message
    assert state(db_url) == (1, 2, 40, 20)
    with engine.connect() as conn:  # not even migration 2's first column
        assert "reply_to" not in {c["name"] for c in sa.inspect(conn).get_columns("messages")}
    shown = start_app(db_url, tmp_path / "data")
    out, err = shown.communicate(timeout=60)
    assert shown.returncode == 1 and out == "" and "Traceback" not in err and "schema version 2" in err


@pytest.mark.parametrize("schema, leftovers", [
    (1, [MIGRATIONS[1][1][0]]),  # ALTER TABLE messages ADD COLUMN reply_to
    (3, fts5_index("message_search", "messages", "text")[:4]),  # the index and its triggers, not built
])
def test_what_an_older_version_left_of_a_killed_migration_is_taken_as_done(tmp_path, schema, leftovers):
    """SQLite, as the issue found it: the older runner had committed a migration's first
    CREATE/ALTER statements on their own, so `duplicate column name: reply_to` or
    `table message_search already exists` stopped every later start."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    build_old(url, schema, 200)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for statement in leftovers:
            conn.execute(sa.text(statement))
    engine.dispose()
    store = Store(url)
    assert state(url) == (LATEST, 10, 200, 100)
    assert [m.reply_to for m in store.load(1).messages[1::2]] == list(range(1, PER_CONVERSATION, 2))
    assert [hit.conversation_id for hit in search(store, "number 137", "local")] == [7]


def test_migration_6_keeps_the_newest_of_versions_left_active_together(db_url):
    Store(db_url, schema=5).engine.dispose()
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO conversations (id, title, system, window_size, backend, model, "
                             "created_at, updated_at) VALUES (1, 'c', 's', 0, 'local', 'm', 1, 1)"))
        for id_, role, reply_to, edit_of in [(1, "user", None, None), (2, "assistant", 1, None),
                                             (3, "user", None, 1), (4, "user", None, 1),  # two racing edits
                                             (5, "assistant", 4, None), (6, "assistant", 4, None)]:  # two replies
            conn.execute(sa.text("INSERT INTO messages (id, conversation_id, role, text, status, created_at, "
                                 "reply_to, edit_of, active) VALUES (:id, 1, :role, :text, 'complete', 1, "
                                 ":reply_to, :edit_of, :active)"),
                         {"id": id_, "role": role, "text": f"m{id_}", "reply_to": reply_to, "edit_of": edit_of,
                          "active": int(id_ != 1)})
    store = Store(db_url)
    loaded = store.load(1)
    assert [(m.id, m.active) for m in loaded.versions] == [(1, False), (2, True), (3, False), (4, True),
                                                            (5, False), (6, True)]
    assert [m.text for m in loaded.messages] == ["m4", "m6"]
    for second_active in (3, 5):  # the database itself now refuses a second active version
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(sa.text("UPDATE messages SET active = 1 WHERE id = :id"), {"id": second_active})
    engine.dispose()
