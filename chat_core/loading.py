"""Reading a conversation at the cost of what is shown and sent: its latest page, and the rest
as aggregates computed by the database (chat_core.storage.Store.load, Store.earlier).

A page is the latest N questions of the active thread and every row stored from the first of
them on (their replies, every version, their usage records). Before it, only sums: how many
messages the thread holds there, the estimated size of each exchange that could be sent (the
window is a recurrence over the whole conversation: chat_core.window.first_sent) and how many
characters could be sent (the no-window estimate). The usage totals are SQL sums, and a view
that knows them up to some turn row adds only the rows written since (rows of `turns` never change).
"""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass, field
from typing import Callable

import sqlalchemy as sa

from .usage import Totals, Usage
from .window import first_sent, tokens_for_chars

# The usage totals of one conversation, as `chat_core.usage.totals` sums them from its records.
TOTALS = """(SELECT COUNT(*) AS turns, COALESCE(SUM(input_tokens), 0) AS input_tokens,
        COALESCE(SUM(output_tokens), 0) AS output_tokens, COALESCE(SUM(cache_write_tokens), 0) AS cache_write_tokens,
        COALESCE(SUM(cache_read_tokens), 0) AS cache_read_tokens, SUM(cost_usd) AS cost_usd,
        COUNT(cost_usd) AS priced,
        SUM(CASE WHEN backend = 'anthropic' AND status <> 'complete' AND output_tokens > 0 THEN 1 ELSE 0 END)
            AS estimated,
        SUM(CASE WHEN backend = 'local' THEN 0 ELSE 1 END) AS not_local, MAX(id) AS upto,
        MAX(message_id) AS replied
    FROM turns WHERE conversation_id = :id AND id > :since) AS sums"""

# The first row of the page of the latest :questions questions: the oldest of them (or its first
# version, when it was edited, so that its versions come along); 0 when there are no more than that.
PAGE_START = """COALESCE((SELECT CASE WHEN edit_of IS NOT NULL AND edit_of < id THEN edit_of ELSE id END
    FROM messages WHERE conversation_id = :id AND role = 'user' AND active = 1
    ORDER BY id DESC LIMIT 1 OFFSET :skip), 0)"""

# The last column says whether the message has files: their rows are read only when one has (`load_attachments`).
MESSAGE_COLUMNS = ("id, role, text, status, error, reply_to, edit_of, active, writer, heartbeat, thinking, citations, "
                   "EXISTS (SELECT 1 FROM attachments a WHERE a.message_id = messages.id) AS has_files")

# A text that holds more than whitespace (`Message.sendable`): its length, else 0.
_SENDABLE_LENGTH = {
    "sqlite": "CASE WHEN trim({0}, ' ' || char(9, 10, 11, 12, 13)) = '' THEN 0 ELSE length({0}) END",
    "postgresql": "CASE WHEN btrim({0}, ' ' || chr(9) || chr(10) || chr(11) || chr(12) || chr(13)) = '' "
                  "THEN 0 ELSE length({0}) END",
}


@dataclass
class Earlier:
    """What lies before a page: its messages in the active thread, and what of it could be sent."""

    messages: int = 0
    sizes: list[int] = field(default_factory=list)  # estimated tokens of each exchange that could be sent
    chars: int = 0  # characters of its messages that hold text
    _starts: dict = field(default_factory=dict, repr=False, compare=False)  # window arguments: first sent

    def window(self, window: int, policy: str, min_prefix_tokens: int) -> dict:
        """The window's arguments for what follows: these sizes, and where the recurrence stands
        after them (computed once per window setting: chat_core.window.first_sent's `resume`)."""
        key = (window, policy, min_prefix_tokens)
        if key not in self._starts:
            self._starts[key] = first_sent(self.sizes, *key)
        return {"earlier": self.sizes, "resume": (len(self.sizes), self._starts[key])}

    def extended(self, more: "Earlier") -> "Earlier":
        grown = Earlier(self.messages + more.messages, self.sizes + more.sizes, self.chars + more.chars)
        for key, start in self._starts.items():  # the recurrence goes on from where it stood
            grown._starts[key] = first_sent(grown.sizes, *key, resume=(len(self.sizes), start))
        return grown


@dataclass
class Summed:
    """A conversation's usage totals up to (and including) the turn row `upto`."""

    totals: Totals = field(default_factory=Totals)
    upto: int = 0


class SharedEarlier:
    """The sums before a page, by conversation and page start, shared by every view in this process:
    read once, then only the part a page left behind as it moved on (and the window's recurrence
    with them, `Earlier.window`). A conversation's are let go when one of its versions is chosen or
    it is deleted; a version another server chooses before a page is seen once these are let go."""

    def __init__(self, conversations: int = 64, starts: int = 4):
        self._lock = threading.Lock()
        self._sums: collections.OrderedDict[int, dict[int, Earlier]] = collections.OrderedDict()
        self._conversations, self._starts = conversations, starts

    def get(self, conversation_id: int, before: int, read: Callable[[int, int], Earlier]) -> Earlier:
        """The sums before message `before`; `read(since, before)` reads a part of them from the database."""
        with self._lock:
            known = self._sums.get(conversation_id, {})
            if before in known:
                return known[before]
            since = max((start for start in known if start < before), default=0)
            base = known.get(since)
        part = read(since, before)
        result = base.extended(part) if base is not None else part
        with self._lock:
            known = self._sums.setdefault(conversation_id, {})
            known[before] = result
            while len(known) > self._starts:
                del known[next(iter(known))]
            self._sums.move_to_end(conversation_id)
            while len(self._sums) > self._conversations:
                self._sums.popitem(last=False)
        return result

    def forget(self, conversation_id: int) -> None:
        with self._lock:
            self._sums.pop(conversation_id, None)


# The fingerprint of an owner's conversation list (`Store.listed`): created, deleted, renamed, written to.
LISTED = ("(SELECT COUNT(*) FROM conversations WHERE owner = :owner) AS listed_count, "
          "(SELECT MAX(updated_at) FROM conversations WHERE owner = :owner) AS listed_latest")

# What a view that holds a conversation from message :first on checks before it takes in a reply it
# knows ended (`Head.newest`, `Head.same`): the newest message, and whether the active messages there
# are exactly the :held ones (a version chosen elsewhere changes which are).
HOLDS = """(SELECT MAX(id) FROM messages WHERE conversation_id = :id) AS newest,
    (SELECT COUNT(*) FROM messages WHERE conversation_id = :id AND active = 1 AND id >= :first) AS active,
    (SELECT COUNT(*) FROM messages WHERE conversation_id = :id AND active = 1 AND id IN :held) AS active_held"""


@dataclass
class Head:
    """A conversation's row, its usage totals, and its owner's list fingerprint, read in one statement."""

    info: tuple
    summed: Summed
    listed: tuple  # (conversations, their latest updated_at): `Store.listed`
    turns_since: int = 0  # usage rows written since the totals a view had (`known`)
    replied: int | None = None  # the highest reply id among them (with one row: its reply)
    newest: int | None = None  # with `held`: the conversation's newest message id
    same: bool = False  # with `held`: its active messages from the first held on are exactly those


def head(conn, conversation_id: int, owner: str, known: Summed | None = None,
         held: list[int] | None = None) -> Head | None:
    """`owner`'s conversation's head in one statement; None if there is none. `known`: the totals up to
    some turn row, to which only the rows written since are added. `held`: the ids of the active
    messages a view holds, from the first it holds on (`Head.newest`, `Head.same`)."""
    known = known or Summed()
    holds = held is not None and bool(held)
    statement = sa.text(
        "SELECT c.id, c.title, c.system, c.window_size, c.backend, c.model, c.created_at, c.updated_at, c.thinking, "
        f"c.web_tools, {LISTED}, {HOLDS + ', ' if holds else ''}sums.* "
        f"FROM conversations c, {TOTALS} WHERE c.id = :id AND c.owner = :owner")
    values = {"id": conversation_id, "owner": owner, "since": known.upto}
    if holds:
        statement = statement.bindparams(sa.bindparam("held", expanding=True))
        values.update(first=min(held), held=held)
    row = conn.execute(statement, values).first()
    if row is None:
        return None
    result = Head(row[:10], known, tuple(row[10:12]))
    if holds:
        result.newest, result.same = row[12], row[13] == row[14] == len(set(held))
    (turns, inputs, outputs, writes, reads, cost_usd, priced, estimated, not_local, upto, replied) = row[-11:]
    if turns:
        more = Totals(Usage(inputs, outputs, writes, reads), cost_usd if priced == turns else None, turns,
                      all_local=not not_local, estimated=bool(estimated))
        result.summed, result.turns_since, result.replied = Summed(known.totals + more, upto), turns, replied
    return result


def page_rows(conn, conversation_id: int, questions: int | None) -> list:
    """The message rows of the page of the latest `questions` questions (None: every row), by id."""
    start = PAGE_START if questions is not None else "0"
    return conn.execute(sa.text(f"SELECT {MESSAGE_COLUMNS} FROM messages "
                                f"WHERE conversation_id = :id AND id >= {start} ORDER BY id"),
                        {"id": conversation_id, "skip": max((questions or 1) - 1, 0)}).all()


def page_records(conn, conversation_id: int, first_id: int | None) -> list:
    """The usage rows of the replies from message `first_id` on (None: every row), by turn."""
    where = "" if first_id is None else " AND message_id >= :first"
    return conn.execute(sa.text(f"SELECT * FROM turns WHERE conversation_id = :id{where} ORDER BY turn"),
                        {"id": conversation_id, "first": first_id}).all()


def earlier(conn, conversation_id: int, since: int, before: int) -> Earlier:
    """The sums of the active thread's questions with `since` <= id < `before`, and their replies."""
    sendable = _SENDABLE_LENGTH[conn.dialect.name]
    rows = conn.execute(sa.text(
        f"SELECT {sendable.format('q.text')}, CASE WHEN a.id IS NULL THEN -1 ELSE {sendable.format('a.text')} END "
        "FROM messages q "
        "LEFT JOIN messages a ON a.reply_to = q.id AND a.role = 'assistant' AND a.active = 1 "
        "WHERE q.conversation_id = :id AND q.role = 'user' AND q.active = 1 AND q.id >= :since AND q.id < :before "
        "ORDER BY q.id"), {"id": conversation_id, "since": since, "before": before})
    result = Earlier()
    for asked, answered in rows:  # answered: -1 when there is no reply
        result.messages += 1 if answered < 0 else 2
        result.chars += asked + max(answered, 0)
        if asked and answered > 0:
            result.sizes.append(tokens_for_chars(asked) + tokens_for_chars(answered))
    return result


def questions_since(conn, conversation_id: int, message_id: int) -> int:
    """How many questions of the active thread a page needs to reach back to `message_id` (for a
    reply, to the question it answers)."""
    return conn.execute(sa.text(
        "SELECT COUNT(*) FROM messages WHERE conversation_id = :id AND role = 'user' AND active = 1 AND id >= "
        "(SELECT COALESCE(reply_to, id) FROM messages WHERE id = :mid AND conversation_id = :id)"),
        {"id": conversation_id, "mid": message_id}).scalar_one()
