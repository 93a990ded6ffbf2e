"""Conversations on a real database through SQLAlchemy: a SQLite file by default
(WAL, so several tabs write safely), any SQLAlchemy URL (PostgreSQL) instead.

Each write commits at once: a user message is saved before its request goes
out, a reply when it ends, so a killed process loses at most the reply it was
writing. The schema is built by numbered, append-only migrations. No
credential is ever stored.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from .conversation import Message
from .errors import StorageError
from .usage import TurnRecord

DEFAULT_TITLE = "New chat"
TITLE_LENGTH = 60

# Append only: never edit a migration that has shipped; add the next number.
# {id} and {float} are filled per dialect.
MIGRATIONS: list[tuple[int, list[str]]] = [
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
]

_DIALECT_TYPES = {
    "sqlite": {"id": "INTEGER PRIMARY KEY AUTOINCREMENT", "float": "REAL"},
    "postgresql": {"id": "SERIAL PRIMARY KEY", "float": "DOUBLE PRECISION"},
}


@dataclass
class ConversationInfo:
    id: int
    title: str
    system: str
    window: int
    backend: str
    model: str
    created_at: float
    updated_at: float


@dataclass
class StoredConversation:
    info: ConversationInfo
    messages: list[Message]
    records: list[TurnRecord]


def make_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


class Store:
    def __init__(self, url: str):
        self.engine = make_engine(url)
        # For messages: never the password.
        self.url = self.engine.url.render_as_string(hide_password=True)
        try:
            self.migrate()
        except sa.exc.SQLAlchemyError as exc:
            raise StorageError(
                f"Could not open the database {self.url} ({type(exc.orig or exc).__name__}): "
                "check CHAT_DATABASE_URL and that the server is running."
            ) from None

    # -- schema --------------------------------------------------------------

    def migrate(self) -> int:
        """Apply the migrations this database lacks; return its version."""
        types = _DIALECT_TYPES.get(self.engine.dialect.name, _DIALECT_TYPES["postgresql"])
        with self.engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"))
            if self.engine.dialect.name == "postgresql":
                # Two app servers starting together must not migrate twice.
                conn.execute(sa.text("LOCK TABLE schema_version IN EXCLUSIVE MODE"))
            version = conn.execute(sa.text("SELECT MAX(version) FROM schema_version")).scalar() or 0
            for number, statements in MIGRATIONS:
                if number <= version:
                    continue
                for statement in statements:
                    conn.execute(sa.text(statement.format(**types)))
                conn.execute(sa.text("INSERT INTO schema_version (version) VALUES (:v)"), {"v": number})
                version = number
        return version

    # -- conversations -------------------------------------------------------

    def create_conversation(self, system: str, window: int, backend: str, model: str, title: str = DEFAULT_TITLE) -> int:
        now = time.time()
        with self.engine.begin() as conn:
            return conn.execute(
                sa.text(
                    "INSERT INTO conversations (title, system, window_size, backend, model, created_at, updated_at) "
                    "VALUES (:title, :system, :window, :backend, :model, :now, :now) RETURNING id"
                ),
                {"title": title, "system": system, "window": window, "backend": backend, "model": model, "now": now},
            ).scalar_one()

    _COLUMNS = {"title": "title", "system": "system", "window": "window_size", "backend": "backend", "model": "model"}

    def update_conversation(self, conversation_id: int, **fields) -> None:
        sets = ", ".join(f"{self._COLUMNS[name]} = :{name}" for name in fields)
        with self.engine.begin() as conn:
            conn.execute(
                sa.text(f"UPDATE conversations SET {sets}, updated_at = :now WHERE id = :id"),
                {**fields, "now": time.time(), "id": conversation_id},
            )

    def rename(self, conversation_id: int, title: str) -> None:
        self.update_conversation(conversation_id, title=title.strip()[:200] or DEFAULT_TITLE)

    def delete_conversation(self, conversation_id: int) -> None:
        with self.engine.begin() as conn:
            for table in ("messages", "turns", "conversations"):
                column = "id" if table == "conversations" else "conversation_id"
                conn.execute(sa.text(f"DELETE FROM {table} WHERE {column} = :id"), {"id": conversation_id})

    def clear_conversation(self, conversation_id: int) -> None:
        with self.engine.begin() as conn:
            for table in ("messages", "turns"):
                conn.execute(sa.text(f"DELETE FROM {table} WHERE conversation_id = :id"), {"id": conversation_id})
            conn.execute(sa.text("UPDATE conversations SET updated_at = :now WHERE id = :id"),
                         {"now": time.time(), "id": conversation_id})

    def list_conversations(self) -> list[ConversationInfo]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT id, title, system, window_size, backend, model, created_at, updated_at "
                "FROM conversations ORDER BY updated_at DESC, id DESC"
            )).all()
        return [ConversationInfo(*row) for row in rows]

    def latest_id(self) -> int | None:
        with self.engine.connect() as conn:
            return conn.execute(sa.text("SELECT id FROM conversations ORDER BY updated_at DESC, id DESC LIMIT 1")).scalar()

    # -- messages and turns --------------------------------------------------

    def add_message(self, conversation_id: int, message: Message) -> None:
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO messages (conversation_id, role, text, status, error, created_at) "
                    "VALUES (:cid, :role, :text, :status, :error, :now)"
                ),
                {"cid": conversation_id, "role": message.role, "text": message.text, "status": message.status,
                 "error": message.error, "now": now},
            )
            conn.execute(sa.text("UPDATE conversations SET updated_at = :now WHERE id = :cid"),
                         {"now": now, "cid": conversation_id})
            if message.role == "user":  # the first user message names the conversation
                conn.execute(
                    sa.text("UPDATE conversations SET title = :title WHERE id = :cid AND title = :default"),
                    {"title": " ".join(message.text.split())[:TITLE_LENGTH] or DEFAULT_TITLE,
                     "cid": conversation_id, "default": DEFAULT_TITLE},
                )

    def add_turn(self, conversation_id: int, record: TurnRecord) -> None:
        row = record.as_row()
        with self.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO turns (conversation_id, " + ", ".join(row) + ") "
                    "VALUES (:conversation_id, " + ", ".join(f":{name}" for name in row) + ")"
                ),
                {"conversation_id": conversation_id, **row},
            )

    def load(self, conversation_id: int) -> StoredConversation | None:
        with self.engine.connect() as conn:
            info = conn.execute(
                sa.text("SELECT id, title, system, window_size, backend, model, created_at, updated_at "
                        "FROM conversations WHERE id = :id"),
                {"id": conversation_id},
            ).first()
            if info is None:
                return None
            messages = [
                Message(role, text, status, error)
                for role, text, status, error in conn.execute(
                    sa.text("SELECT role, text, status, error FROM messages WHERE conversation_id = :id ORDER BY id"),
                    {"id": conversation_id},
                )
            ]
            records = [
                TurnRecord.from_row(row._mapping)
                for row in conn.execute(
                    sa.text("SELECT * FROM turns WHERE conversation_id = :id ORDER BY id"), {"id": conversation_id}
                )
            ]
        return StoredConversation(ConversationInfo(*info), messages, records)

