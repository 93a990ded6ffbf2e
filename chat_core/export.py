"""A conversation as Markdown or JSON, for download. No credential is ever included."""

from __future__ import annotations

import json
from dataclasses import asdict

from .conversation import COMPLETE
from .markdown_safety import literal, safe_markdown, self_contained
from .session import ChatSession
from .usage import format_cost


def to_markdown(chat: ChatSession, title: str = "Conversation") -> str:
    """The conversation as Markdown that is safe in any viewer: read by a real Markdown parser as
    a whole, raw HTML is escaped where a viewer would render it and remote images are links
    (chat_core/markdown_safety.py); code and everything else stay as written. Each message is made
    safe alone too, with a code fence it leaves open closed, so none swallows the next. The title
    and the persona are plain text, not Markdown."""
    lines = [f"# {literal(title)}", "", f"*{literal(chat.backend.label)}* · persona: {literal(chat.settings.system)}", ""]
    messages, _ = chat.whole()
    for message in messages:
        who = "You" if message.role == "user" else "Assistant"
        mark = "" if message.status == COMPLETE else f" ({message.status})"
        text = safe_markdown(self_contained(message.text), html=True)  # alone, so nothing spills into the next one
        lines += [f"**{who}{mark}:**", ""]
        lines += [f"> *Thinking:* {literal(' '.join(t.text.split()))}" for t in message.thinking if t.text] + (
            [""] if message.thinking else [])
        lines += [f"- 📎 {literal(a.label())}" for a in message.attachments] + ([""] if message.attachments else [])
        lines += [text or "*(no text)*", ""]
        if message.citations:
            lines += ["Sources:", ""] + [f"{c.number}. {literal(c.where())}: “{literal(' '.join(c.cited_text.split()))}”"
                                          for c in message.citations] + [""]
        if message.error:
            lines += [f"> {message.error}", ""]
    total = chat.totals
    lines.append(
        f"*{total.turns} turn{'s' if total.turns != 1 else ''} · {total.usage.input_tokens:,} input and {total.usage.output_tokens:,} output tokens"
        f" · cost {format_cost(total.cost_usd)}*"
    )
    return safe_markdown("\n".join(lines) + "\n", html=True)


def to_json(chat: ChatSession, title: str = "Conversation") -> str:
    messages, records = chat.whole()
    return json.dumps(
        {
            "title": title,
            "backend": chat.backend.name,
            "model": chat.backend.model,
            "system": chat.settings.system,
            "window": chat.settings.window,
            "messages": [
                {"role": m.role, "text": m.text, "status": m.status, "error": m.error,
                 "attachments": [{"name": a.name, "media_type": a.media_type, "size": a.size, "sha256": a.sha256}
                                 for a in m.attachments],
                 "thinking": [asdict(t) for t in m.thinking], "citations": [asdict(c) for c in m.citations]}
                for m in messages
            ],
            "turns": [record.as_row() for record in records],
        },
        ensure_ascii=False,
        indent=2,
    )
