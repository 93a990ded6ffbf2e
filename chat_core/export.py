"""A conversation as Markdown or JSON, for download. No credential is ever included."""

from __future__ import annotations

import json

from .conversation import COMPLETE
from .session import ChatSession
from .usage import format_cost


def to_markdown(chat: ChatSession, title: str = "Conversation") -> str:
    lines = [f"# {title}", "", f"*{chat.backend.label}* · persona: {chat.settings.system}", ""]
    for message in chat.messages:
        who = "You" if message.role == "user" else "Assistant"
        mark = "" if message.status == COMPLETE else f" ({message.status})"
        lines += [f"**{who}{mark}:**", "", message.text or "*(no text)*", ""]
        if message.error:
            lines += [f"> {message.error}", ""]
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
