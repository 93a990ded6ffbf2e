"""Text as it enters the engine: always encodable as UTF-8.

A Python string can hold a lone UTF-16 surrogate (U+D800-U+DFFF): a JSON
`"\\ud800"` escape decodes to one, and a model or a proxy can send that. Such a
string cannot be stored (SQLite and PostgreSQL refuse it), printed or sent
back, so it would lose a reply. Each lone surrogate becomes U+FFFD, the
replacement character; a well-formed pair (high, then low) is joined into the
character it spells. Everything else is left exactly as it is.
"""

from __future__ import annotations

import re

REPLACEMENT = "\ufffd"
_SURROGATE = re.compile("[\ud800-\udfff]")
_HIGH = re.compile("[\ud800-\udbff]$")


def encodable(text: str) -> str:
    """`text` with every lone surrogate replaced by U+FFFD and surrogate pairs joined."""
    if not _SURROGATE.search(text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


class ChunkCleaner:
    """`encodable` over a stream of chunks, so a surrogate pair split between two
    chunks is joined, not replaced: a high surrogate at the end of a chunk waits
    for the next one."""

    def __init__(self) -> None:
        self.pending = ""

    def feed(self, chunk: str) -> str:
        text = self.pending + chunk
        self.pending = ""
        if _HIGH.search(text):
            text, self.pending = text[:-1], text[-1]
        return encodable(text)

    def flush(self) -> str:
        """What is still held back (a high surrogate no low one followed), replaced."""
        text, self.pending = self.pending, ""
        return encodable(text)
