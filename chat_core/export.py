"""A conversation as Markdown or JSON, for download. No credential is ever included."""

from __future__ import annotations

import json
import re

from .conversation import COMPLETE
from .session import ChatSession
from .usage import format_cost


# Fenced code blocks and inline code spans: shown as written by any Markdown viewer.
_CODE = re.compile(r"(```.*?(?:```|\Z)|~~~.*?(?:~~~|\Z)|`[^`\n]+`)", re.DOTALL)


def inert_html(text: str) -> str:
    """`text` with raw HTML made inert for viewers that render it (`<` and `&`
    escaped), except inside code, which Markdown already shows as written."""
    pieces = _CODE.split(text)
    return "".join(piece if i % 2 else piece.replace("&", "&amp;").replace("<", "&lt;") for i, piece in enumerate(pieces))


def to_markdown(chat: ChatSession, title: str = "Conversation") -> str:
    lines = [f"# {inert_html(title)}", "", f"*{chat.backend.label}* · persona: {inert_html(chat.settings.system)}", ""]
    for message in chat.messages:
        who = "You" if message.role == "user" else "Assistant"
        mark = "" if message.status == COMPLETE else f" ({message.status})"
        lines += [f"**{who}{mark}:**", "", inert_html(message.text) or "*(no text)*", ""]
        if message.error:
            lines += [f"> {inert_html(message.error)}", ""]
    total = chat.totals
    lines.append(
        f"*{total.turns} turn{'s' if total.turns != 1 else ''} · {total.usage.input_tokens:,} input and {total.usage.output_tokens:,} output tokens"
        f" · cost {format_cost(total.cost_usd)}*"
    )
    return "\n".join(lines) + "\n"


def to_json(chat: ChatSession, title: str = "Conversation") -> str:
    return json.dumps(
        {
            "title": title,
            "backend": chat.backend.name,
            "model": chat.backend.model,
            "system": chat.settings.system,
            "window": chat.settings.window,
            "messages": [
                {"role": m.role, "text": m.text, "status": m.status, "error": m.error} for m in chat.messages
            ],
            "turns": [record.as_row() for record in chat.records],
        },
        ensure_ascii=False,
        indent=2,
    )
