"""Numbers as users type them: conversation ids in `--resume ID` and the dashboard's
`?c=ID`, and counts such as the terminal's `/window N`."""

from __future__ import annotations

# The largest value of a 64-bit signed integer column (SQLite INTEGER, PostgreSQL BIGINT).
MAX_INT64 = 2**63 - 1


def parse_whole_number(text: str) -> int | None:
    """The number `text` spells, from 0 to MAX_INT64, or None.

    Strict: ASCII digits only, so no sign, space, decimal point or other
    scripts' digits ("²", "٣"), and small enough for a 64-bit column.
    """
    if not (text and text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if value <= MAX_INT64 else None


def parse_conversation_id(text: str) -> int | None:
    """The conversation id `text` names (a positive whole number), or None when it names none."""
    value = parse_whole_number(text)
    return value if value else None


def conversation_id_from_url(text: str) -> int | None:
    """The conversation id a URL's `?c=` names, or None.

    As strict as `parse_conversation_id`, except that whitespace around the
    digits is ignored: a link pasted with a trailing space (`?c=1%20`, or
    `?c=1+`) still names conversation 1.
    """
    return parse_conversation_id(text.strip())
