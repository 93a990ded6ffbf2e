"""Conversations on a real database through SQLAlchemy: a SQLite file by default
(WAL, so several tabs write safely), any SQLAlchemy URL (PostgreSQL) instead.

Each write commits at once: a user message is saved before its request goes
out, a reply's row as the request goes out (status streaming), its text as it
grows, and its status with its usage record when it ends, so a killed process
loses at most the last half second of the reply it was writing; a streaming row
whose writer is gone reads as cut off. Each reply names the message it answers, and
turn numbers are handed out by the database, so two tabs writing to one
conversation never mix up their exchanges. Every conversation has an owner; a
caller sees only its owner's conversations. The schema is built by numbered,
append-only migrations. No credential is ever stored, and every database
failure comes out as one `StorageError` line. This module holds the writes; what the
store reads (and the value types it reads into) is in chat_core/store_reads.py.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time

import sqlalchemy as sa

from . import content_store
from .conversation import ASSISTANT, STREAMING, Message
from .database import explain, is_row_id, make_engine, sqlite_path, write_transaction
from .errors import StorageError, redact_url
from .migrations import LOCAL_OWNER, migrate
from .liveness import done_writing, started_writing, writer_id
from . import loading
from .store_reads import ConversationInfo, StoredConversation, StoreReads, _guarded  # noqa: F401 (the first two re-exported)
from .usage import TurnRecord

DEFAULT_TITLE = "New chat"
TITLE_LENGTH = 60
GONE = "This conversation was deleted (in another tab?): your message is kept below; start a new chat to send it."


def title_from(text: str) -> str:
    """A conversation's title from its first message: at most TITLE_LENGTH characters, a longer
    message cut after its last whole word that fits (inside a long word if it must), marked with `…`."""
    words = " ".join(text.split())
    if len(words) <= TITLE_LENGTH:
        return words or DEFAULT_TITLE
    cut = words[:TITLE_LENGTH]  # its last character a space when a word ends right at the length
    if " " not in cut[TITLE_LENGTH // 2:]:
        return cut[:TITLE_LENGTH - 1] + "…"
    return cut[:cut.rfind(" ")].rstrip(",;:-–—") + "…"


class Store(StoreReads):
    def __init__(self, url: str, *, schema: int | None = None):
        """Open (and migrate) the database at `url`; `schema` stops at that version (tests build old ones)."""
        self.path = sqlite_path(url)
        try:
            self.engine = make_engine(url)
        except OSError as exc:
            raise StorageError(f"Could not create the database file {self.path} ({exc.strerror}): "
                               "check CHAT_DATA_DIR and its permissions.") from None
        # For messages: never a password or another secret of the URL.
        self.url = redact_url(url)
        self._earlier = loading.SharedEarlier()
        self.migrate(schema)

    def explain(self, exc: sa.exc.SQLAlchemyError) -> str:
        """One line for a database failure: what happened and what to do (chat_core.database.explain)."""
        return explain(exc, self.path, self.url)

    def _check_file(self) -> None:
        """SQLite keeps writing to a file deleted under it, and loses everything: notice instead."""
        if self.path is not None and not self.path.exists():
            raise StorageError(f"The database file {self.path} was deleted while the app was running: "
                               "restart to begin a new one (or put the file back).")

    # -- schema --------------------------------------------------------------

    @_guarded
    def migrate(self, upto: int | None = None) -> int:
        """Apply the migrations this database lacks (up to version `upto`); return its version
        (chat_core.migrations)."""
        version = migrate(self.engine, self.path, self.url, upto)
        if self.path is not None:
            os.chmod(self.path, 0o600)  # a file made before this rule, too
        return version

    # -- writes that read first ----------------------------------------------

    @contextlib.contextmanager
    def _write(self):
        """A write transaction that may read before it writes: on SQLite it holds the
        write lock from BEGIN (IMMEDIATE), so writers take turns, never fail mid-way."""
        with write_transaction(self.engine) as conn:
            yield conn

    @staticmethod
    def _lock(conn, conversation_id: int, owner: str | None = None) -> bool:
        """Hold a conversation until the transaction ends; False if there is none (of `owner`'s).

        Every write that changes which version is active takes it before it reads which one
        is: PostgreSQL locks the conversation's row (SQLite's BEGIN IMMEDIATE holds the whole
        database already), so two such writes to one conversation take turns."""
        sql = "SELECT 1 FROM conversations WHERE id = :id" + (" AND owner = :owner" if owner is not None else "")
        if conn.dialect.name == "postgresql":
            sql += " FOR UPDATE"
        return conn.execute(sa.text(sql), {"id": conversation_id, "owner": owner}).first() is not None

    @classmethod
    def _hold(cls, conn, conversation_id: int) -> None:
        """`_lock` where only the turn-taking matters (the conversation is known to exist): on SQLite
        BEGIN IMMEDIATE holds the whole database already, so no statement is sent there."""
        if conn.dialect.name != "sqlite":
            cls._lock(conn, conversation_id)

    # -- conversations -------------------------------------------------------

    @_guarded
    def create_conversation(self, system: str, window: int, backend: str, model: str, title: str = DEFAULT_TITLE,
                            owner: str = LOCAL_OWNER) -> int:
        with self.engine.begin() as conn:
            return self._create(conn, system, window, backend, model, title, owner)

    @staticmethod
    def _create(conn, system, window, backend, model, title, owner, thinking: str = "off", web: bool = False) -> int:
        now = time.time()
        return conn.execute(
            sa.text(
                "INSERT INTO conversations (title, system, window_size, backend, model, created_at, updated_at, owner, "
                "thinking, web_tools) VALUES (:title, :system, :window, :backend, :model, :now, :now, :owner, :thinking, :web) "
                "RETURNING id"
            ),
            {"title": title, "system": system, "window": window, "backend": backend, "model": model, "now": now,
             "owner": owner, "thinking": thinking, "web": int(web)},
        ).scalar_one()

    _COLUMNS = {"title": "title", "system": "system", "window": "window_size", "backend": "backend", "model": "model",
                "thinking": "thinking", "web": "web_tools"}

    @_guarded
    def update_conversation(self, conversation_id: int, owner: str = LOCAL_OWNER, **fields) -> None:
        if not is_row_id(conversation_id):
            return
        sets = ", ".join(f"{self._COLUMNS[name]} = :{name}" for name in fields)
        with self.engine.begin() as conn:
            conn.execute(
                sa.text(f"UPDATE conversations SET {sets}, updated_at = :now WHERE id = :id AND owner = :owner"),
                {**fields, "now": time.time(), "id": conversation_id, "owner": owner},
            )

    def rename(self, conversation_id: int, title: str, owner: str = LOCAL_OWNER) -> None:
        self.update_conversation(conversation_id, owner, title=" ".join(title.split())[:200] or DEFAULT_TITLE)

    @_guarded
    def delete_conversation(self, conversation_id: int, owner: str = LOCAL_OWNER) -> None:
        if not is_row_id(conversation_id):
            return
        self._earlier.forget(conversation_id)
        with self._write() as conn:
            if not self._lock(conn, conversation_id, owner):
                return
            files = content_store.conversation_blobs(conn, conversation_id)
            for table in ("turns", "messages", "conversations"):  # a message's attachments go with it (cascade)
                column = "id" if table == "conversations" else "conversation_id"
                conn.execute(sa.text(f"DELETE FROM {table} WHERE {column} = :id"), {"id": conversation_id})
            content_store.delete_unused(conn, files)  # the bytes no other conversation uses

    # -- messages and turns --------------------------------------------------

    def add_user_message(self, conversation_id: int | None, message: Message, owner: str = LOCAL_OWNER,
                         new: dict | None = None) -> tuple[int, int]:
        """Save a user message; returns (conversation id, message id) (see `add_question`)."""
        conversation_id, message_id, _ = self.add_question(conversation_id, message, owner, new)
        return conversation_id, message_id

    @_guarded
    def add_question(self, conversation_id: int | None, message: Message, owner: str = LOCAL_OWNER,
                     new: dict | None = None) -> tuple[int, int, int | None]:
        """Save a user message; returns (conversation id, message id, the conversation's newest message
        id before it): a view that held up to another id learns, from the same transaction, that
        another view wrote since it last read.

        With `conversation_id` None, the conversation is created in the same
        transaction from `new` (system, window, backend, model): a conversation
        is stored when its first message is. A message with `edit_of` set is a
        new version of that question: the earlier versions become inactive."""
        if not all(is_row_id(i) for i in (conversation_id, message.edit_of) if i is not None):
            raise StorageError(GONE)
        now = time.time()
        newest = None
        with self._write() as conn:
            if conversation_id is None:
                conversation_id = self._create(conn, title=title_from(message.text), owner=owner, **(new or {}))
            else:
                # One statement: the conversation is `owner`'s and held (the UPDATE locks its row, as
                # `_lock` does), its title and time follow this message, and its newest message so far.
                row = conn.execute(
                    sa.text("UPDATE conversations SET updated_at = :now, "
                            "title = CASE WHEN title = :default THEN :title ELSE title END "
                            "WHERE id = :cid AND owner = :owner "
                            "RETURNING (SELECT MAX(id) FROM messages WHERE conversation_id = :cid)"),
                    {"now": now, "cid": conversation_id, "owner": owner, "default": DEFAULT_TITLE,
                     "title": title_from(message.text)},
                ).first()
                if row is None:
                    raise StorageError(GONE)
                newest = row[0]
            if message.edit_of is not None:
                conn.execute(sa.text("UPDATE messages SET active = 0 WHERE conversation_id = :cid AND role = 'user' "
                                     "AND active = 1 AND (id = :root OR edit_of = :root)"),
                             {"cid": conversation_id, "root": message.edit_of})
            message_id = self._insert(conn, conversation_id, message, now)
            content_store.save_attachments(conn, message_id, message.attachments)
        return conversation_id, message_id, newest

    @_guarded
    def start_reply(self, conversation_id: int, message: Message, *, first: bool = False) -> int:
        """Store a reply as its request goes out: status streaming, written by this process, and
        the version shown (the question's other replies become inactive). Returns its id.

        `first`: the question was stored just now (a message sent, an edit), so it has no reply yet
        and none is made inactive; should another view have started one meanwhile, the database
        refuses a second active reply (`messages_one_active_reply`) and it is done as for any question."""
        if not all(is_row_id(i) for i in (conversation_id, message.reply_to) if i is not None):
            raise StorageError(GONE)
        row = Message(ASSISTANT, message.text, STREAMING, reply_to=message.reply_to)
        if first:
            try:
                return self._start_reply(conversation_id, row, deactivate=False)
            except sa.exc.IntegrityError:
                pass
        return self._start_reply(conversation_id, row, deactivate=True)

    def _start_reply(self, conversation_id: int, row: Message, deactivate: bool) -> int:
        with self._write() as conn:
            self._hold(conn, conversation_id)
            if deactivate:
                conn.execute(sa.text("UPDATE messages SET active = 0 "
                                     "WHERE reply_to = :asked AND role = 'assistant' AND active = 1"),
                             {"asked": row.reply_to})
            message_id = self._insert(conn, conversation_id, row, time.time(), writer=writer_id())
            started_writing(self.url, message_id)  # before anyone can see the row
        return message_id

    @_guarded
    def save_text(self, message_id: int, text: str) -> None:
        """The growing text of a streaming reply (and a sign its writer lives)."""
        with self.engine.begin() as conn:
            conn.execute(sa.text("UPDATE messages SET text = :text, heartbeat = :now WHERE id = :id AND status = :streaming"),
                         {"text": text, "now": time.time(), "id": message_id, "streaming": STREAMING})

    def add_reply(self, conversation_id: int, message: Message, record: TurnRecord,
                  message_id: int | None = None) -> tuple[int, int]:
        """Save a reply and its usage record together; returns (message id, turn number).
        With `message_id` (from `start_reply`) that row is finalized: text, status, error.

        The turn number is the conversation's next one, taken inside the
        transaction while it holds the conversation's row (PostgreSQL; SQLite
        writes one at a time); a writer that still collides retries. Either way
        this process is done with the row: if it cannot be finalized, it reads as cut off."""
        try:
            if not all(is_row_id(i) for i in (conversation_id, message.reply_to, message_id) if i is not None):
                raise StorageError(GONE)
            return self._add_reply(conversation_id, message, record, message_id)
        finally:  # also when the store is gone before a statement is tried (a SQLite file deleted)
            done_writing(self.url, message_id)

    @_guarded
    def _add_reply(self, conversation_id: int, message: Message, record: TurnRecord,
                   message_id: int | None) -> tuple[int, int]:
        for attempt in itertools.count():
            try:
                with self._write() as conn:
                    self._hold(conn, conversation_id)
                    if message_id is None:
                        # The newest reply to a question is the one shown and sent; earlier ones stay as versions.
                        conn.execute(sa.text("UPDATE messages SET active = 0 "
                                             "WHERE reply_to = :asked AND role = 'assistant' AND active = 1"),
                                     {"asked": message.reply_to})
                        reply_id = self._insert(conn, conversation_id, message, time.time())
                    else:
                        reply_id = message_id
                        conn.execute(sa.text("UPDATE messages SET text = :text, status = :status, error = :error, "
                                             "heartbeat = :now WHERE id = :id"),
                                     {"text": message.text, "status": message.status, "error": message.error,
                                      "now": time.time(), "id": message_id})
                    if message.thinking or message.citations:
                        conn.execute(sa.text("UPDATE messages SET thinking = :thinking, citations = :citations "
                                             "WHERE id = :id"), {**content_store.reply_content(message), "id": reply_id})
                    # The next turn number, taken in the INSERT itself.
                    row = {**record.as_row(), "message_id": reply_id}
                    row.pop("turn", None)
                    turn = conn.execute(
                        sa.text("INSERT INTO turns (conversation_id, turn, " + ", ".join(row) + ") "
                                "SELECT :conversation_id, COALESCE(MAX(turn), 0) + 1, "
                                + ", ".join(f":{name}" for name in row)
                                + " FROM turns WHERE conversation_id = :conversation_id RETURNING turn"),
                        {"conversation_id": conversation_id, **row},
                    ).scalar_one()
                return reply_id, turn
            except sa.exc.IntegrityError:
                if attempt >= 4:
                    raise

    @staticmethod
    def _insert(conn, conversation_id: int, message: Message, now: float, writer: str | None = None) -> int:
        return conn.execute(
            sa.text(
                "INSERT INTO messages (conversation_id, role, text, status, error, reply_to, edit_of, created_at, "
                "writer, heartbeat) "
                "VALUES (:cid, :role, :text, :status, :error, :reply_to, :edit_of, :now, :writer, :heartbeat) RETURNING id"
            ),
            {"cid": conversation_id, "role": message.role, "text": message.text, "status": message.status,
             "error": message.error, "reply_to": message.reply_to if message.role == ASSISTANT else None,
             "edit_of": message.edit_of, "now": now, "writer": writer, "heartbeat": now if writer else None},
        ).scalar_one()

    @_guarded
    def choose_version(self, conversation_id: int, message_id: int, owner: str = LOCAL_OWNER) -> None:
        """Make `message_id` the version shown and sent; its other versions become inactive."""
        if not (is_row_id(conversation_id) and is_row_id(message_id)):
            return
        self._earlier.forget(conversation_id)
        with self._write() as conn:
            if not self._lock(conn, conversation_id, owner):
                return
            row = conn.execute(sa.text("SELECT role, reply_to, COALESCE(edit_of, id) FROM messages "
                                       "WHERE id = :mid AND conversation_id = :cid"),
                               {"mid": message_id, "cid": conversation_id}).first()
            if row is None:
                return
            role, reply_to, root = row
            siblings = ("reply_to = :reply_to AND role = 'assistant'" if role == ASSISTANT
                        else "role = 'user' AND COALESCE(edit_of, id) = :root")
            # Off first, then on: one active version at every moment, as the unique indexes require.
            conn.execute(sa.text(f"UPDATE messages SET active = 0 "
                                 f"WHERE conversation_id = :cid AND active = 1 AND id <> :mid AND {siblings}"),
                         {"mid": message_id, "cid": conversation_id, "reply_to": reply_to, "root": root})
            conn.execute(sa.text("UPDATE messages SET active = 1 WHERE id = :mid"), {"mid": message_id})

