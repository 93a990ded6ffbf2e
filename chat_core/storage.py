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
failure comes out as one `StorageError` line.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import time
from dataclasses import dataclass, field

import sqlalchemy as sa

from . import content_store
from .conversation import ASSISTANT, CUT_OFF, STREAMING, Message, active_thread
from .database import explain, is_row_id, make_engine, sqlite_path, write_transaction
from .errors import StorageError, redact_url
from .migrations import LOCAL_OWNER, migrate
from .liveness import CUT_OFF_NOTE, done_writing, gone, started_writing, writer_id
from . import loading
from .loading import Earlier
from .usage import TurnRecord

DEFAULT_TITLE = "New chat"
TITLE_LENGTH = 60
GONE = "This conversation was deleted (in another tab?): your message is kept below; start a new chat to send it."


_INFO_COLUMNS = "id, title, system, window_size, backend, model, created_at, updated_at, thinking, web_tools"


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
    thinking: str = "off"  # extended thinking: off, low, medium, high (chat_core.thinking)
    web: int = 0  # 1: Claude may search and fetch from the web


@dataclass
class StoredConversation:
    info: ConversationInfo
    messages: list[Message]  # the active thread: what is shown and sent
    records: list[TurnRecord]  # of the replies loaded
    versions: list[Message] = field(default_factory=list)  # every message loaded, active or not, by id
    summed: loading.Summed = field(default_factory=loading.Summed)  # usage totals of the whole conversation
    start: int = 0  # the first message id loaded (0: from the beginning)
    listed: tuple | None = None  # the owner's conversation list fingerprint, read with it (`Store.listed`)


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


def _guarded(method):
    """Every database failure leaves the store as one `StorageError` line."""

    @functools.wraps(method)
    def run(self: "Store", *args, **kwargs):
        self._check_file()
        try:
            return method(self, *args, **kwargs)
        except sa.exc.SQLAlchemyError as exc:
            raise StorageError(self.explain(exc)) from None

    return run


class Store:
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

    @_guarded
    def list_conversations(self, owner: str = LOCAL_OWNER) -> list[ConversationInfo]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text(
                f"SELECT {_INFO_COLUMNS} FROM conversations WHERE owner = :owner ORDER BY updated_at DESC, id DESC"
            ), {"owner": owner}).all()
        return [ConversationInfo(*row) for row in rows]

    @staticmethod
    def listed(conversations: list[ConversationInfo]) -> tuple:
        """The fingerprint `look`, `load` and `head` give for this list of one owner's conversations."""
        return len(conversations), max((c.updated_at for c in conversations), default=None)

    @_guarded
    def latest_id(self, owner: str = LOCAL_OWNER) -> int | None:
        with self.engine.connect() as conn:
            return conn.execute(sa.text(
                "SELECT id FROM conversations WHERE owner = :owner ORDER BY updated_at DESC, id DESC LIMIT 1"
            ), {"owner": owner}).scalar()

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
    def last_message_id(self, conversation_id: int) -> int | None:
        """The newest message's id: a view compares it with its own to see whether the conversation moved."""
        if not is_row_id(conversation_id):
            return None
        with self.engine.connect() as conn:
            return conn.execute(sa.text("SELECT MAX(id) FROM messages WHERE conversation_id = :id"),
                                {"id": conversation_id}).scalar()

    @_guarded
    def look(self, conversation_id: int | None, owner: str = LOCAL_OWNER) -> tuple[int | None, tuple]:
        """In one statement, what a view checks on every run: the newest message id of the conversation
        it shows (None for none), and the fingerprint of `owner`'s conversation list (`listed`): a
        conversation created, deleted, renamed or written to changes it."""
        wanted = conversation_id if conversation_id is not None and is_row_id(conversation_id) else None
        with self.engine.connect() as conn:
            newest, count, latest = conn.execute(sa.text(
                "SELECT (SELECT MAX(id) FROM messages WHERE conversation_id = :id), "
                "(SELECT COUNT(*) FROM conversations WHERE owner = :owner), "
                "(SELECT MAX(updated_at) FROM conversations WHERE owner = :owner)"),
                {"id": wanted, "owner": owner}).one()
        return newest, (count, latest)

    @_guarded
    def last_message_ids(self, conversation_ids: list[int]) -> dict[int, int]:
        """{conversation id: its newest message's id} for many at once: one statement for a
        process's watcher, however many views it serves (a conversation with no message is left out)."""
        wanted = [i for i in conversation_ids if is_row_id(i)]
        if not wanted:
            return {}
        ids = sa.bindparam("ids", expanding=True)
        with self.engine.connect() as conn:
            return dict(conn.execute(sa.text("SELECT conversation_id, MAX(id) FROM messages WHERE conversation_id "
                                             "IN :ids GROUP BY conversation_id").bindparams(ids), {"ids": wanted}).all())

    @_guarded
    def load(self, conversation_id: int, owner: str = LOCAL_OWNER, *, latest: int | None = None,
             known: loading.Summed | None = None) -> StoredConversation | None:
        """A conversation of `owner`'s, replies placed after the messages they answer; None if there is none.

        `latest`: only the page of its latest `latest` questions, with every row from the first of
        them on (chat_core.loading); its usage totals are summed by the database either way (from
        `known`, the totals a view had, on)."""
        if not is_row_id(conversation_id):
            return None
        with self.engine.connect() as conn:
            head = loading.head(conn, conversation_id, owner, known)
            if head is None:
                return None
            rows = loading.page_rows(conn, conversation_id, latest)
            first = rows[0][0] if rows and latest is not None else None
            records = [TurnRecord.from_row(row._mapping) for row in loading.page_records(conn, conversation_id, first)]
        now = time.time()
        ended = self._cut_off([message_id for message_id, _, _, status, *_, writer, heartbeat, _, _, _ in rows
                               if status == STREAMING and gone(self.url, message_id, writer, heartbeat, now)])
        messages = []
        for message_id, role, text, status, error, reply_to, edit_of, active, _writer, _heartbeat, *said, _ in rows:
            text, status, error = ended.get(message_id, (text, status, error))
            messages.append(Message(role, text, status, error, id=message_id, reply_to=reply_to, edit_of=edit_of,
                                    active=bool(active), **content_store.reply_from(*said)))
        if any(row[-1] for row in rows):  # the files' rows, when a message of the page has any
            with self.engine.connect() as conn:
                content_store.load_attachments(conn, conversation_id, messages)
        return StoredConversation(ConversationInfo(*head.info), active_thread(messages), records, messages,
                                  head.summed, first or 0, head.listed)

    @_guarded
    def head(self, conversation_id: int, owner: str, known: loading.Summed | None,
             held: list[int]) -> loading.Head | None:
        """In one statement, what a view that holds `held` (the ids of the active messages it holds,
        from the first it holds on) checks before it takes in a reply it knows ended, instead of
        reading the conversation again: its row, its totals from `known` on (with how many usage
        rows were written since, and for which reply), its newest message id, whether its active
        messages are still exactly `held`, and the owner's list fingerprint (chat_core.loading.head).
        None when there is no such conversation of `owner`'s."""
        if not is_row_id(conversation_id):
            return None
        with self.engine.connect() as conn:
            return loading.head(conn, conversation_id, owner, known, held)

    @_guarded
    def earlier(self, conversation_id: int, before: int) -> Earlier:
        """The sums of what the active thread holds before message `before` (chat_core.loading.Earlier),
        shared by this process's views (chat_core.loading.SharedEarlier)."""

        def read(since: int, upto: int) -> Earlier:
            with self.engine.connect() as conn:
                return loading.earlier(conn, conversation_id, since, upto)

        return self._earlier.get(conversation_id, before, read)

    @_guarded
    def questions_since(self, conversation_id: int, message_id: int) -> int:
        """How many latest questions a page holds to reach back to `message_id`."""
        if not (is_row_id(conversation_id) and is_row_id(message_id)):
            return 0
        with self.engine.connect() as conn:
            return loading.questions_since(conn, conversation_id, message_id)

    def _cut_off(self, message_ids: list[int]) -> dict[int, tuple[str, str, str | None]]:
        """Store as cut off the streaming replies whose writer is gone; {id: (text, status, error)} as
        they are now. Read again first: a reply that ended between the read and the check is not cut
        off. A store that refuses the write (read-only) still shows them cut off; the next opener retries."""
        if not message_ids:
            return {}
        ids = sa.bindparam("ids", expanding=True)
        with self.engine.connect() as conn:
            now = {message_id: (text, status, error) for message_id, text, status, error in conn.execute(
                sa.text("SELECT id, text, status, error FROM messages WHERE id IN :ids").bindparams(ids),
                {"ids": message_ids})}
        dead = [message_id for message_id, (_, status, _) in now.items() if status == STREAMING]
        for message_id in dead:
            now[message_id] = (now[message_id][0], CUT_OFF, CUT_OFF_NOTE)
        if dead:
            try:
                with self.engine.begin() as conn:
                    conn.execute(sa.text("UPDATE messages SET status = :cut_off, error = :note "
                                         "WHERE id IN :ids AND status = :streaming").bindparams(ids),
                                 {"cut_off": CUT_OFF, "note": CUT_OFF_NOTE, "ids": dead, "streaming": STREAMING})
            except sa.exc.SQLAlchemyError:
                pass  # shown cut off all the same
        return now

    @_guarded
    def reply_state(self, message_id: int) -> tuple[str, str] | None:
        """(text, status) of a stored reply, for a view following one that another process writes;
        a streaming reply whose writer is gone reads as cut off. None when there is no such reply."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.text("SELECT text, status, writer, heartbeat FROM messages WHERE id = :id"),
                               {"id": message_id}).first()
        if row is None:
            return None
        text, status, writer, heartbeat = row
        if status == STREAMING and gone(self.url, message_id, writer, heartbeat, time.time()):
            text, status, _ = self._cut_off([message_id]).get(message_id, (text, status, None))
        return text, status

    @_guarded
    def blob(self, sha256: str) -> bytes | None:
        """The bytes of an attached file, by content hash; None when they are not stored."""
        with self.engine.connect() as conn:
            return content_store.blob(conn, sha256)

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

