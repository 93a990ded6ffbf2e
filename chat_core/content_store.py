"""The store's side of content beyond text (migration 8): attachments, their bytes once per
content hash, and a reply's thinking and citations. Functions over an open connection, called
by `chat_core.storage.Store` inside its own transactions."""

from __future__ import annotations

import json
from dataclasses import asdict

import sqlalchemy as sa

from .content import Attachment, Citation, Thinking, search_text

_IDS = sa.bindparam("ids", expanding=True)


def save_attachments(conn, message_id: int, attachments: list[Attachment]) -> None:
    """Store a message's files: the bytes once per hash (a file already stored is not written again)."""
    for position, attachment in enumerate(attachments):
        if attachment.data is not None:
            conn.execute(sa.text("INSERT INTO blobs (sha256, size, data) VALUES (:sha, :size, :data) "
                                 "ON CONFLICT (sha256) DO NOTHING"),
                         {"sha": attachment.sha256, "size": len(attachment.data), "data": attachment.data})
        conn.execute(sa.text(
            "INSERT INTO attachments (message_id, position, name, media_type, size, sha256, width, height, pages, "
            "tokens, search_text) VALUES (:mid, :position, :name, :media_type, :size, :sha, :width, :height, "
            ":pages, :tokens, :search)"),
            {"mid": message_id, "position": position, "name": attachment.name, "media_type": attachment.media_type,
             "size": attachment.size, "sha": attachment.sha256, "width": attachment.width, "height": attachment.height,
             "pages": attachment.pages, "tokens": attachment.tokens, "search": search_text(attachment)})


def reply_content(message) -> dict:
    """The columns that hold a reply's thinking and citations (JSON, None when it has none)."""
    return {"thinking": json.dumps([asdict(t) for t in message.thinking]) if message.thinking else None,
            "citations": json.dumps([asdict(c) for c in message.citations]) if message.citations else None}


def reply_from(thinking: str | None, citations: str | None) -> dict:
    """A reply's thinking and citations from their columns (the inverse of `reply_content`)."""
    return {"thinking": [Thinking(**t) for t in json.loads(thinking or "[]")],
            "citations": [Citation(**c) for c in json.loads(citations or "[]")]}


def load_attachments(conn, conversation_id: int, messages: list) -> None:
    """Fill in the attachments (without their bytes) of these messages of a conversation (all of it,
    or its latest page: only rows from the page's first message on are read), in one statement."""
    by_id = {m.id: m for m in messages if m.id is not None}
    if not by_id:
        return
    where = {"cid": conversation_id, "first": min(by_id)}
    for row in conn.execute(sa.text(
            "SELECT a.message_id, a.name, a.media_type, a.size, a.sha256, a.width, a.height, a.pages, a.tokens "
            "FROM attachments a JOIN messages m ON m.id = a.message_id WHERE m.conversation_id = :cid "
            "AND a.message_id >= :first ORDER BY a.message_id, a.position"), where):
        if row[0] in by_id:
            by_id[row[0]].attachments.append(Attachment(*row[1:]))


def conversation_blobs(conn, conversation_id: int) -> list[str]:
    """The content hashes a conversation's files use (read before it is deleted)."""
    return [sha for (sha,) in conn.execute(sa.text(
        "SELECT DISTINCT a.sha256 FROM attachments a JOIN messages m ON m.id = a.message_id "
        "WHERE m.conversation_id = :cid"), {"cid": conversation_id})]


def delete_unused(conn, hashes: list[str]) -> None:
    """Delete the bytes of these hashes that no attachment uses any more."""
    if hashes:
        conn.execute(sa.text("DELETE FROM blobs WHERE sha256 IN :ids AND NOT EXISTS "
                             "(SELECT 1 FROM attachments a WHERE a.sha256 = blobs.sha256)").bindparams(_IDS),
                     {"ids": hashes})


def blob(conn, sha256: str) -> bytes | None:
    data = conn.execute(sa.text("SELECT data FROM blobs WHERE sha256 = :sha"), {"sha": sha256}).scalar()
    return None if data is None else bytes(data)
