"""Full-text search over one owner's stored conversations: `search(store, words, owner)`.

It runs on each database's own index (migration 4 in storage.py): FTS5 on
SQLite, a tsvector column with a GIN index on PostgreSQL.

What a person types is never query syntax. It is cut at whitespace; each piece
that holds a letter or digit is searched as a quoted phrase of its own words
(`don't` finds "don't", `e-mail` finds "e-mail"), and every piece is required.
Quotes, `*`, `-`, parentheses, `NEAR`, `OR` and `AND` are plain text (the word
"or" matches "or"), so no input makes a database error; input with no letter or
digit finds nothing. Words match whole, without case: "kitten" does not find
"kittens" (a prefix search would have to merge the postings of every word that
starts so, hundreds of milliseconds for a common one). The exception is the
last piece when it is written in Chinese, Japanese, Thai, Lao, Khmer or
Burmese, scripts written without spaces: a run of them is indexed as one word,
so the piece also matches the start of a longer run (`东京` finds "东京タワー").

Every search is bounded: one longer than MAX_CHARACTERS characters or of more
than MAX_WORDS words is refused (InputTooLongError, one line), and one that runs
longer than its timeout (TIMEOUT_S unless given) is stopped inside the database,
not merely abandoned (TimeoutError_, one line): PostgreSQL's statement_timeout,
SQLite's progress handler.

Results: one hit per conversation, newest first. A conversation's hit is its
newest message that matches, dated when that message was written; a
conversation whose title matches, with no such message among the matches, is
dated by its last activity and has no message id.

Snippets are plain text on one line: a few words around the match, each matched
word between MATCH_START and MATCH_END, and ELLIPSIS where the text was cut.
Nothing in them is escaped: a face makes the text safe for its medium first
(the terminal strips control characters, the dashboard escapes Markdown), then
renders the markers. A « or » written in the message itself looks like a marker.

Words are what each database's tokenizer makes of the text: Latin accents are
ignored on SQLite ("cafe" finds "café") but not on PostgreSQL. Hebrew, Arabic,
Cyrillic, Greek, Devanagari and Korean words are found whole; vowel points and
harakat count as part of the word, so a vocalized word is found only as it was
written. A Chinese or Japanese run is found whole or by its beginning, never by
a part in its middle ("世界" does not find "你好世界").
"""

from __future__ import annotations

import time
import unicodedata
from dataclasses import dataclass

import sqlalchemy as sa

from .database import timed_out
from .errors import InputTooLongError, StorageError, TimeoutError_
from .ids import MAX_INT64
from .storage import Store, _guarded

MATCH_START = "«"
MATCH_END = "»"
ELLIPSIS = "…"
SNIPPET_WORDS = 16  # about this many words around the match
PREFIX_LENGTH = 2  # characters of an unspaced script for the last piece to match as a prefix
# Scripts written without spaces between words, by the start of their characters' Unicode names.
UNSPACED_SCRIPTS = ("CJK", "HIRAGANA", "KATAKANA", "THAI", "LAO", "KHMER", "MYANMAR")
MAX_WORDS = 32  # more words narrow nothing further (and FTS5 caps a query's depth)
MAX_CHARACTERS = 1_000  # a search longer than this is refused, as is one of more than MAX_WORDS words
TIMEOUT_S = 5.0  # a search that runs longer is stopped
_PROGRESS_STEPS = 1_000  # SQLite virtual machine steps between looks at the clock
_FIRST_BATCH = 5  # matching messages fetched per wanted hit, at first


@dataclass(frozen=True)
class SearchHit:
    """One conversation that matched, at its newest matching message (or its title)."""

    conversation_id: int
    title: str
    message_id: int | None  # None: the title matched
    snippet: str  # plain text; matches between MATCH_START and MATCH_END
    updated_at: float  # when the matching message was written; for a title, the conversation's last activity


def search_words(words: str) -> list[str]:
    """The pieces of `words` worth searching: whitespace-separated, each holding a letter or digit.

    Control characters (a NUL, a lone surrogate) count as spaces: no database is handed them."""
    cleaned = "".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in words)
    return [piece for piece in cleaned.split() if any(unicodedata.category(ch)[0] in "LN" for ch in piece)]


def checked_words(words: str) -> list[str]:
    """`search_words(words)`; raises InputTooLongError (one line) past MAX_CHARACTERS or MAX_WORDS."""
    if len(words) > MAX_CHARACTERS:
        raise InputTooLongError(f"That search is {len(words):,} characters long; a search takes at most "
                                f"{MAX_CHARACTERS:,}: shorten it.")
    pieces = search_words(words)
    if len(pieces) > MAX_WORDS:
        raise InputTooLongError(f"That search has {len(pieces):,} words; a search takes at most {MAX_WORDS}: "
                                "shorten it.")
    return pieces


def _is_prefix(piece: str) -> bool:
    """Whether `piece` also matches the start of a word: letters of an unspaced script (and digits)."""
    return (len(piece) >= PREFIX_LENGTH and all(unicodedata.category(ch)[0] in "LNM" for ch in piece)
            and any(unicodedata.name(ch, "").startswith(UNSPACED_SCRIPTS) for ch in piece))


class _SQLite:
    """FTS5: each piece a double-quoted string (quotes doubled), the last one with `*` as a prefix."""

    def __init__(self, pieces: list[str]):
        query = " ".join('"' + piece.replace('"', '""') + '"' for piece in pieces)
        self.params = {"q": query + ("*" if _is_prefix(pieces[-1]) else "")}

    # CROSS JOIN keeps the index outermost: matches are read newest first and the scan stops early.
    messages = """SELECT m.conversation_id, m.id, m.created_at FROM message_search
        CROSS JOIN messages m ON m.id = message_search.rowid
        CROSS JOIN conversations c ON c.id = m.conversation_id
        WHERE message_search MATCH :q AND message_search.rowid < :before AND c.owner = :owner AND m.active = 1
        ORDER BY message_search.rowid DESC LIMIT :batch"""
    titles = """SELECT c.id, c.updated_at FROM title_search CROSS JOIN conversations c ON c.id = title_search.rowid
        WHERE title_search MATCH :q AND c.owner = :owner ORDER BY c.updated_at DESC, c.id DESC LIMIT :batch"""
    attachments = """SELECT m.conversation_id, m.id, m.created_at, a.id FROM attachment_search
        CROSS JOIN attachments a ON a.id = attachment_search.rowid CROSS JOIN messages m ON m.id = a.message_id
        CROSS JOIN conversations c ON c.id = m.conversation_id
        WHERE attachment_search MATCH :q AND c.owner = :owner AND m.active = 1 ORDER BY m.id DESC LIMIT :batch"""
    _INDEXES = {"messages": "message_search", "conversations": "title_search", "attachments": "attachment_search"}

    @staticmethod
    def snippets(conn, table: str, ids: list[int], params: dict) -> dict[int, str]:
        """Row id -> snippet of the matching rows `ids` of `table` ("messages", "conversations", "attachments")."""
        index = _SQLite._INDEXES[table]
        statement = sa.text(f"SELECT snippet({index}, 0, :start, :end, :dots, :words) FROM {index} "
                            f"WHERE {index} MATCH :q AND rowid = :id")
        marks = {"start": MATCH_START, "end": MATCH_END, "dots": ELLIPSIS, "words": SNIPPET_WORDS}
        snippets = {row_id: conn.execute(statement, {**params, **marks, "id": row_id}).scalar() for row_id in ids}
        return {row_id: snippet for row_id, snippet in snippets.items() if snippet is not None}


class _PostgreSQL:
    """tsquery built by PostgreSQL's own functions from bound text: phraseto_tsquery per piece,
    to_tsquery for the prefix (safe: the piece is letters and digits only, quoted)."""

    def __init__(self, pieces: list[str]):
        self.params = {f"w{i}": piece for i, piece in enumerate(pieces)}
        parts = [f"phraseto_tsquery('simple', :w{i})" for i in range(len(pieces))]
        if _is_prefix(pieces[-1]):
            self.params[f"w{len(pieces) - 1}"] = f"'{pieces[-1]}':*"
            parts[-1] = f"to_tsquery('simple', :w{len(pieces) - 1})"
        self.query = " && ".join(parts)
        self.messages = f"""SELECT m.conversation_id, m.id, m.created_at
            FROM messages m JOIN conversations c ON c.id = m.conversation_id
            WHERE m.text_tsv @@ ({self.query}) AND m.id < :before AND c.owner = :owner AND m.active = 1
            ORDER BY m.id DESC LIMIT :batch"""
        self.titles = f"""SELECT id, updated_at FROM conversations WHERE title_tsv @@ ({self.query})
            AND owner = :owner ORDER BY updated_at DESC, id DESC LIMIT :batch"""
        self.attachments = f"""SELECT m.conversation_id, m.id, m.created_at, a.id FROM attachments a
            JOIN messages m ON m.id = a.message_id JOIN conversations c ON c.id = m.conversation_id
            WHERE a.search_tsv @@ ({self.query}) AND c.owner = :owner AND m.active = 1
            ORDER BY m.id DESC LIMIT :batch"""

    def snippets(self, conn, table: str, ids: list[int], params: dict) -> dict[int, str]:
        """Row id -> snippet of the matching rows `ids` of `table` ("messages", "conversations", "attachments")."""
        if not ids:
            return {}
        column = {"messages": "text", "conversations": "title", "attachments": "search_text"}[table]
        rows = conn.execute(
            sa.text(f"SELECT id, ts_headline('simple', {column}, {self.query}, :options), {column} "
                    f"FROM {table} WHERE id IN :ids").bindparams(sa.bindparam("ids", expanding=True)),
            {**params, "ids": ids, "options": f'StartSel="{MATCH_START}", StopSel="{MATCH_END}", '
                                              f"MaxWords={SNIPPET_WORDS}, MinWords={SNIPPET_WORDS // 2}, "
                                              "MaxFragments=1, ShortWord=0"},
        ).all()
        return {row_id: _with_cuts(headline, text) for row_id, headline, text in rows}


def _with_cuts(headline: str, text: str) -> str:
    """ts_headline marks no cut and leaves out punctuation at a fragment's ends: find the
    fragment in the text, and mark each cut, or take back the punctuation it left out."""
    plain = headline.replace(MATCH_START, "").replace(MATCH_END, "")
    start = text.find(plain)
    if start < 0:
        return headline
    return _left_out(text[:start]) + headline + _left_out(text[start + len(plain):])


def _left_out(rest: str) -> str:
    """What stands for text a snippet left out: ELLIPSIS, or the text itself when it holds no word."""
    return ELLIPSIS if any(ch.isalnum() for ch in rest) else rest


_DIALECTS = {"sqlite": _SQLite, "postgresql": _PostgreSQL}


class _TimeLimited:
    """A search's connection, its statements stopped once `seconds` have passed since the search
    began. SQLite has no statement timeout: a progress handler interrupts a statement past the
    deadline. PostgreSQL: `SET LOCAL statement_timeout` to the time left, before each statement."""

    def __init__(self, conn: sa.Connection, seconds: float):
        self.conn, self.seconds = conn, seconds
        self.deadline = time.monotonic() + seconds
        self.sqlite = None if conn.dialect.name == "postgresql" else conn.connection.dbapi_connection
        if self.sqlite is not None:
            self.sqlite.set_progress_handler(self.past, _PROGRESS_STEPS)

    def past(self) -> bool:
        return time.monotonic() > self.deadline

    def execute(self, statement, params=None):
        left_ms = int((self.deadline - time.monotonic()) * 1000)
        if left_ms < 1:
            raise self.error()
        if self.sqlite is None:
            self.conn.execute(sa.text(f"SET LOCAL statement_timeout = {left_ms}"))
        return self.conn.execute(statement, params)

    def close(self) -> None:
        if self.sqlite is not None:
            self.sqlite.set_progress_handler(None, 0)  # the connection goes back to the pool

    def error(self) -> TimeoutError_:
        return TimeoutError_(f"The search took longer than {self.seconds:.3g} s and was stopped: "
                             "use fewer or rarer words.")


@_guarded
def search(store: Store, words: str, owner: str, limit: int = 20, timeout: float = TIMEOUT_S) -> list[SearchHit]:
    """`owner`'s conversations whose messages or title hold every piece of `words`, newest first.

    Raises InputTooLongError past MAX_CHARACTERS or MAX_WORDS, TimeoutError_ when it runs
    longer than `timeout` seconds (then the database has stopped it too)."""
    pieces = checked_words(words)
    if not pieces or limit < 1:
        return []
    dialect_class = _DIALECTS.get(store.engine.dialect.name)
    if dialect_class is None:
        raise StorageError(f"Search works on SQLite and PostgreSQL, not on {store.engine.dialect.name}.")
    dialect = dialect_class(pieces)
    params = {**dialect.params, "owner": owner}
    with store.engine.connect() as plain:
        if store.engine.dialect.name == "postgresql":
            # A plan made for one word (psycopg prepares a statement run five times) would be
            # wrong for the next: scan by recency for a common word, the index for a rare one.
            plain.execute(sa.text("SET LOCAL plan_cache_mode = force_custom_plan"))
        conn = _TimeLimited(plain, timeout)
        try:
            hits = _hits(conn, dialect, params, limit)
        except sa.exc.OperationalError as exc:
            if timed_out(exc):
                raise conn.error() from None
            raise
        finally:
            conn.close()
    return hits


def _hits(conn: _TimeLimited, dialect, params: dict, limit: int) -> list[SearchHit]:
    found = _newest_matching_messages(conn, dialect, params, limit)
    files: dict[int, int] = {}  # message id -> the id of its attached file that matched
    for conversation_id, message_id, created_at, attachment_id in conn.execute(
            sa.text(dialect.attachments), {**params, "batch": limit * _FIRST_BATCH}):
        if conversation_id not in found or found[conversation_id][1] < message_id:
            found[conversation_id] = (created_at, message_id)
        files.setdefault(message_id, attachment_id)
    for conversation_id, updated_at in conn.execute(sa.text(dialect.titles), {**params, "batch": limit + len(found)}):
        found.setdefault(conversation_id, (updated_at, None))
    top = sorted(found.items(), key=lambda item: (item[1][0], item[0]), reverse=True)[:limit]
    titles = dict(conn.execute(
        sa.text("SELECT id, title FROM conversations WHERE id IN :ids").bindparams(
            sa.bindparam("ids", expanding=True)),
        {"ids": [conversation_id for conversation_id, _ in top]},
    ).all()) if top else {}
    in_messages = dialect.snippets(conn, "messages", [m for _, (_, m) in top if m is not None], params)
    in_titles = dialect.snippets(conn, "conversations", [c for c, (_, m) in top if m is None], params)
    in_files = dialect.snippets(conn, "attachments", [files[m] for _, (_, m) in top if m in files
                                                      and m not in in_messages], params)
    hits = []
    for conversation_id, (at, message_id) in top:
        snippet = in_titles.get(conversation_id) if message_id is None else in_messages.get(message_id)
        if snippet is None and files.get(message_id) in in_files:  # a file it carries matched: 📎 its words
            snippet = "📎 " + in_files[files[message_id]]
        if conversation_id in titles and snippet is not None:  # else deleted meanwhile (in another tab?)
            hits.append(SearchHit(conversation_id, titles[conversation_id], message_id, " ".join(snippet.split()), at))
    return hits


def _newest_matching_messages(conn, dialect, params: dict, limit: int) -> dict[int, tuple[float, int]]:
    """Conversation id -> (time, id) of its newest matching message, for at least `limit`
    conversations when there are that many: matches are read newest first, in growing batches."""
    found: dict[int, tuple[float, int]] = {}
    before, batch = MAX_INT64, limit * _FIRST_BATCH
    while True:
        rows = conn.execute(sa.text(dialect.messages), {**params, "before": before, "batch": batch}).all()
        for conversation_id, message_id, created_at in rows:
            found.setdefault(conversation_id, (created_at, message_id))
        if len(found) >= limit or len(rows) < batch:
            return found
        before, batch = rows[-1][1], min(batch * 4, 20_000)
