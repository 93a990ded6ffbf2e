"""What the store reads: a conversation (its latest page and the sums before it, or from a given
message on), the one-statement checks a view makes on every run (`look`, `head`), the owner's list,
a reply another process writes, a file's bytes. A streaming reply whose writer is gone is read (and
stored) as cut off. `Store` (chat_core/storage.py) adds the writes."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field

import sqlalchemy as sa

from . import content_store
from .conversation import CUT_OFF, STREAMING, Message, active_thread
from .database import is_row_id
from .errors import StorageError
from .migrations import LOCAL_OWNER
from .liveness import CUT_OFF_NOTE, gone
from . import loading
from .loading import Earlier
from .usage import TurnRecord

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


def _guarded(method):
    """Every database failure leaves the store as one `StorageError` line."""

    @functools.wraps(method)
    def run(self, *args, **kwargs):
        self._check_file()
        try:
            return method(self, *args, **kwargs)
        except sa.exc.SQLAlchemyError as exc:
            raise StorageError(self.explain(exc)) from None

    return run



class StoreReads:
    """The reading half of `Store` (which holds `engine`, `url`, `_earlier`, `_check_file` and `explain`)."""

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
