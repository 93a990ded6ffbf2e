"""The schema: numbered, append-only migrations and the one way they are applied.

Each migration is one transaction with its version bump, DDL included (on SQLite too: see
`chat_core.database.own_sqlite_transactions`), so a migration killed part-way leaves the
database as it was before it and the next start simply runs it again. It runs under a lock
(SQLite: BEGIN IMMEDIATE; PostgreSQL: an advisory lock) and reads the version again once it
holds it: processes that start together migrate one after the other, each migration once.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import sqlalchemy as sa

from .database import write_transaction
from .errors import StorageError

LOCAL_OWNER = "local"  # this machine's user: terminal chats and a dashboard without sign-in


def fts5_index(index: str, table: str, column: str) -> list[str]:
    """SQLite: an FTS5 index of `table`.`column` (read from the table itself, not copied), kept
    current by triggers and built for the rows already there. Combining marks stay inside words,
    so Hebrew, Arabic and Indic words are not cut apart. Part of migration 4: never change it."""
    insert = f"INSERT INTO {index} (rowid, {column}) VALUES (new.id, new.{column})"
    delete = f"INSERT INTO {index} ({index}, rowid, {column}) VALUES ('delete', old.id, old.{column})"
    return [
        f"""CREATE VIRTUAL TABLE {index} USING fts5({column}, content='{table}', content_rowid='id',
            tokenize="unicode61 remove_diacritics 2 categories 'L* N* Co Mn Mc'")""",
        f"CREATE TRIGGER {index}_insert AFTER INSERT ON {table} BEGIN {insert}; END",
        f"CREATE TRIGGER {index}_delete AFTER DELETE ON {table} BEGIN {delete}; END",
        f"""CREATE TRIGGER {index}_update AFTER UPDATE OF {column} ON {table}
            WHEN old.{column} <> new.{column} BEGIN {delete}; {insert}; END""",
        f"INSERT INTO {index} ({index}) VALUES ('rebuild')",
    ]


# Append only: never edit a migration that has shipped; add the next number.
# {id} and {float} are filled per dialect. A statement may instead be a dict of
# statement lists by dialect ("sqlite", "postgresql"); a dialect it does not name skips it.
MIGRATIONS: list[tuple[int, list[str | dict[str, list[str]]]]] = [
    (1, [
        """CREATE TABLE conversations (
            id {id},
            title TEXT NOT NULL,
            system TEXT NOT NULL,
            window_size INTEGER NOT NULL,
            backend TEXT NOT NULL,
            model TEXT NOT NULL,
            created_at {float} NOT NULL,
            updated_at {float} NOT NULL)""",
        """CREATE TABLE messages (
            id {id},
            conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            role TEXT NOT NULL,
            text TEXT NOT NULL,
            status TEXT NOT NULL,
            error TEXT,
            created_at {float} NOT NULL)""",
        "CREATE INDEX messages_by_conversation ON messages (conversation_id, id)",
        """CREATE TABLE turns (
            id {id},
            conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            turn INTEGER NOT NULL,
            input_tokens INTEGER NOT NULL,
            output_tokens INTEGER NOT NULL,
            cache_write_tokens INTEGER NOT NULL,
            cache_read_tokens INTEGER NOT NULL,
            messages_sent INTEGER NOT NULL,
            model TEXT NOT NULL,
            backend TEXT NOT NULL,
            ttft_s {float},
            total_s {float},
            status TEXT NOT NULL,
            cost_usd {float},
            stop_reason TEXT,
            unwindowed_input_tokens INTEGER)""",
        "CREATE INDEX turns_by_conversation ON turns (conversation_id, id)",
    ]),
    # Each reply names the user message it answers and its turn names the reply;
    # turn numbers are unique per conversation.
    (2, [
        "ALTER TABLE messages ADD COLUMN reply_to INTEGER REFERENCES messages(id) ON DELETE CASCADE",
        """UPDATE messages SET reply_to = (
            SELECT MAX(u.id) FROM messages u
            WHERE u.conversation_id = messages.conversation_id AND u.role = 'user' AND u.id < messages.id)
           WHERE role = 'assistant'""",
        """UPDATE turns SET turn = (
            SELECT COUNT(*) FROM turns t WHERE t.conversation_id = turns.conversation_id AND t.id <= turns.id)""",
        "CREATE UNIQUE INDEX turns_unique ON turns (conversation_id, turn)",
        "ALTER TABLE turns ADD COLUMN message_id INTEGER",
    ]),
    # Every conversation has an owner: an OIDC issuer and subject, or this machine's user.
    (3, [
        f"ALTER TABLE conversations ADD COLUMN owner TEXT NOT NULL DEFAULT '{LOCAL_OWNER}'",
        "CREATE INDEX conversations_by_owner ON conversations (owner, updated_at)",
    ]),
    # Full-text search over message texts and titles (chat_core/search.py), built for the rows
    # already stored. SQLite: FTS5 indexes kept current by triggers. PostgreSQL: generated tsvector
    # columns ('simple': no language's stemming or stop words) with GIN indexes, over a message's
    # first 100,000 characters (a tsvector holds at most 1 MB).
    (4, [{
        "sqlite": fts5_index("message_search", "messages", "text")
        + fts5_index("title_search", "conversations", "title"),
        "postgresql": [
            """ALTER TABLE messages ADD COLUMN text_tsv tsvector
               GENERATED ALWAYS AS (to_tsvector('simple', left(text, 100000))) STORED""",
            "CREATE INDEX messages_search ON messages USING GIN (text_tsv)",
            "ALTER TABLE conversations ADD COLUMN title_tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', title)) STORED",
            "CREATE INDEX conversations_search ON conversations USING GIN (title_tsv)",
            "ANALYZE messages",  # the planner's word counts: without them, a rare word can scan every row
            "ANALYZE conversations",
        ],
    }]),
    # Versions: a regenerated reply and an edited question keep the earlier ones, inactive;
    # an edit names the first version of the question it replaces.
    (5, [
        "ALTER TABLE messages ADD COLUMN active INTEGER NOT NULL DEFAULT 1",
        "ALTER TABLE messages ADD COLUMN edit_of INTEGER",
    ]),
    # At most one active version of a question (among its edits) and one active reply to each
    # question version, whatever writers race. Rows that racing writers left both active are
    # repaired first: the newest version stays active.
    (6, [
        """UPDATE messages SET active = 0 WHERE id IN (SELECT id FROM (
               SELECT id, ROW_NUMBER() OVER (PARTITION BY COALESCE(edit_of, id) ORDER BY id DESC) AS place
               FROM messages WHERE role = 'user' AND active = 1) AS ranked WHERE place > 1)""",
        """UPDATE messages SET active = 0 WHERE id IN (SELECT id FROM (
               SELECT id, ROW_NUMBER() OVER (PARTITION BY reply_to ORDER BY id DESC) AS place
               FROM messages WHERE role = 'assistant' AND active = 1 AND reply_to IS NOT NULL) AS ranked
               WHERE place > 1)""",
        """CREATE UNIQUE INDEX messages_one_active_question ON messages ((COALESCE(edit_of, id)))
           WHERE role = 'user' AND active = 1""",
        "CREATE UNIQUE INDEX messages_one_active_reply ON messages (reply_to) WHERE role = 'assistant' AND active = 1",
    ]),
    # A reply is stored from its first chunk (status 'streaming'): the process writing it
    # (host:pid) and when it last did, so any reader can tell a live reply from a dead one.
    (7, [
        "ALTER TABLE messages ADD COLUMN writer TEXT",
        "ALTER TABLE messages ADD COLUMN heartbeat {float}",
    ]),
    # Content beyond text (chat_core/content.py). A file's bytes are stored once per content hash
    # (blobs); each message's files name theirs (attachments, with what search reads of them: the
    # name and a text file's words). A reply's thinking blocks (with signatures) and citations are
    # JSON. A conversation's thinking setting (off, low, medium, high) and whether it lets Claude search
    # and fetch from the web; the web searches each turn made (billed per search).
    (8, [
        {"sqlite": ["CREATE TABLE blobs (sha256 TEXT PRIMARY KEY, size INTEGER NOT NULL, data BLOB NOT NULL)"],
         "postgresql": ["CREATE TABLE blobs (sha256 TEXT PRIMARY KEY, size INTEGER NOT NULL, data BYTEA NOT NULL)"]},
        """CREATE TABLE attachments (
            id {id},
            message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            name TEXT NOT NULL,
            media_type TEXT NOT NULL,
            size INTEGER NOT NULL,
            sha256 TEXT NOT NULL REFERENCES blobs(sha256),
            width INTEGER,
            height INTEGER,
            pages INTEGER,
            tokens INTEGER NOT NULL,
            search_text TEXT NOT NULL)""",
        "CREATE INDEX attachments_by_message ON attachments (message_id, position)",
        "CREATE INDEX attachments_by_blob ON attachments (sha256)",
        "ALTER TABLE messages ADD COLUMN thinking TEXT",
        "ALTER TABLE messages ADD COLUMN citations TEXT",
        "ALTER TABLE conversations ADD COLUMN thinking TEXT NOT NULL DEFAULT 'off'",
        "ALTER TABLE conversations ADD COLUMN web_tools INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE turns ADD COLUMN web_searches INTEGER NOT NULL DEFAULT 0",
        {"sqlite": fts5_index("attachment_search", "attachments", "search_text"),
         "postgresql": [
             """ALTER TABLE attachments ADD COLUMN search_tsv tsvector
                GENERATED ALWAYS AS (to_tsvector('simple', left(search_text, 100000))) STORED""",
             "CREATE INDEX attachments_search ON attachments USING GIN (search_tsv)",
         ]},
    ]),
]

DIALECT_TYPES = {
    "sqlite": {"id": "INTEGER PRIMARY KEY AUTOINCREMENT", "float": "REAL"},
    "postgresql": {"id": "SERIAL PRIMARY KEY", "float": "DOUBLE PRECISION"},
}
MIGRATION_LOCK = 0x63686174  # PostgreSQL advisory lock held by the server that migrates ('chat')
MIGRATION_WAIT_S = 300  # SQLite: how long a start waits for another process's migration
_ADDS_COLUMN = re.compile(r"\s*ALTER TABLE (\w+) ADD COLUMN (\w+)", re.IGNORECASE)
_CREATES = re.compile(r"\s*CREATE (?:UNIQUE )?(?:VIRTUAL )?(TABLE|INDEX|TRIGGER) (\w+)", re.IGNORECASE)


def _left_by_an_interrupted_migration(conn, statement: str) -> bool:
    """SQLite: whether this migration statement's column or object is already there.

    Versions before migrations were atomic let Python's sqlite3 commit a migration's
    first CREATE and ALTER statements on their own, so a migration killed part-way
    left them behind with the version unchanged, and every later start failed on
    them. The same statement made them: the migration takes them as done."""
    if added := _ADDS_COLUMN.match(statement):
        return any(row[1] == added[2] for row in conn.exec_driver_sql(f"PRAGMA table_info({added[1]})"))
    if created := _CREATES.match(statement):
        return conn.execute(sa.text("SELECT 1 FROM sqlite_master WHERE type = :type AND name = :name"),
                            {"type": created[1].lower(), "name": created[2]}).first() is not None
    return False


def migrate(engine: sa.Engine, path: Path | None, url: str, upto: int | None = None) -> int:
    """Apply the migrations the database lacks (up to version `upto`); return its version.
    `path`: the SQLite file (None on PostgreSQL); `url`: the database, fit for a message."""
    target = MIGRATIONS[-1][0] if upto is None else upto
    deadline = time.monotonic() + MIGRATION_WAIT_S
    while True:
        try:
            version = schema_version(engine)
            while version < target:
                version = _migrate_once(engine, url, target)
            return version
        except sa.exc.OperationalError as exc:
            # SQLite: another process is creating or migrating this database. Its lock can
            # answer "locked" at once, without waiting (a new file being switched to WAL while
            # it is read, say): wait for it and look again, reading the version included.
            if path is None or "locked" not in str(exc.orig) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def schema_version(engine: sa.Engine) -> int:
    """The schema version, read without a lock (0 for a new database)."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("schema_version"):
            return 0
        return conn.execute(sa.text("SELECT MAX(version) FROM schema_version")).scalar() or 0


def _migrate_once(engine: sa.Engine, url: str, target: int) -> int:
    """Under the migration lock, apply the next migration up to `target`; return the version.
    A migration that fails is named, with the database's reason, and changes nothing."""
    dialect = engine.dialect.name if engine.dialect.name in DIALECT_TYPES else "postgresql"
    pending = None
    try:
        with write_transaction(engine) as conn:
            if engine.dialect.name == "postgresql":
                # A migration may take minutes on a large database: no statement timeout, and
                # servers that start together wait for each other here (DDL is transactional).
                conn.execute(sa.text("SET LOCAL statement_timeout = 0"))
                if engine.dialect.server_version_info >= (14,):  # a killed migrator's work stops at once
                    conn.execute(sa.text("SET LOCAL client_connection_check_interval = '1s'"))
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            conn.execute(sa.text("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"))
            version = conn.execute(sa.text("SELECT MAX(version) FROM schema_version")).scalar() or 0
            pending = next(((n, statements) for n, statements in MIGRATIONS if version < n <= target), None)
            if pending is None:
                return max(version, target)
            for entry in pending[1]:
                for statement in entry.get(dialect, []) if isinstance(entry, dict) else [entry]:
                    if dialect == "sqlite" and _left_by_an_interrupted_migration(conn, statement):
                        continue
                    conn.execute(sa.text(statement.format(**DIALECT_TYPES[dialect])))
            conn.execute(sa.text("INSERT INTO schema_version (version) VALUES (:v)"), {"v": pending[0]})
        return pending[0]
    except sa.exc.DBAPIError as exc:
        if pending is None:  # not migrating yet: the lock or the connection
            raise
        reason = (str(exc.orig).splitlines() or [type(exc.orig).__name__])[0]
        raise StorageError(f"Could not upgrade the database {url} to schema version {pending[0]} "
                           f"({reason}); it is unchanged at version {version}: fix the cause and start again."
                           ) from None
