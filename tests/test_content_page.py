"""Content in the chat page through AppTest and the real SDK against the loopback API: files
attached in the chat input, refused ones said in one line, thinking in its panel, sources."""

from __future__ import annotations

from chat_core.storage import Store
from tests.content_files import pdf, png
from tests.loopback_api import reply


def send_files(at, text, *files):
    box = at.chat_input(key="chat_input")
    for name, data, mime in files:
        box.upload(name, data, mime)
    return box.set_value(text).run()


def test_files_attached_in_the_page_go_with_the_message_and_show_with_it(api, app, isolated):
    at = app()
    at = send_files(at, "What are these?", ("chart.png", png(3000, 1500), "image/png"),
                    ("report.pdf", pdf(2), "application/pdf"), ("notes.md", b"# Plan\nship", "text/markdown"))
    assert not at.exception
    sent = api.requests[-1]["messages"][-1]["content"]
    assert [b["type"] for b in sent] == ["image", "document", "document", "text"]
    question = at.chat_message[0]
    assert len(question.get("image")) == 1  # the image's thumbnail
    chips = [md.value for md in question.markdown]  # a badge is drawn as Markdown
    assert any("report\\.pdf" in chip and "2 pages" in chip for chip in chips)
    assert any("notes\\.md" in chip for chip in chips)
    reply_bubble = at.chat_message[1]
    assert "Sources" in [c.value for c in reply_bubble.caption]
    assert any("report" in md.value and "The quarterly figure is 42 on page 1" in md.value
               for md in reply_bubble.markdown)
    # After a restart (a new browser session over the same store) the conversation is as it was.
    store = Store(f"sqlite:///{isolated / 'data' / 'chat.db'}")
    cid = store.latest_id()
    again = app({"c": str(cid)})
    assert len(again.chat_message[0].get("image")) == 1 and len(again.chat_message[0].markdown) == 2
    assert "Sources" in [c.value for c in again.chat_message[1].caption]


def test_a_refused_file_is_one_line_and_the_message_and_other_files_go(api, app):
    at = send_files(app(), "Look", ("broken.png", b"\x89PNG\r\n\x1a\nnot really", "image/png"),
                    ("ok.txt", b"fine words", "text/plain"))
    assert not at.exception
    assert [w.value for w in at.warning] == ["broken\\.png was not attached\\: the image is damaged or not really an "
                                             "image\\."]
    sent = api.requests[-1]["messages"][-1]["content"]
    assert [b["type"] for b in sent] == ["document", "text"] and sent[-1]["text"] == "Look"


def test_thinking_is_set_in_the_sidebar_and_shown_above_the_reply(api, app):
    at = app()
    at = send_files(at, "Hi")
    thinking = next(r for r in at.radio if r.key.startswith("chat_thinking_"))
    at = thinking.set_value("low").run()
    api.queue(reply("Four.", thinking="Two plus two is four."))
    at = send_files(at, "What is 2+2?")
    assert not at.exception
    assert api.requests[-1]["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    answer = at.chat_message[-1]
    panel = answer.expander[0]
    assert panel.label.startswith("Thought for ") and "Two plus two is four." in panel.markdown[0].value
    at.switch_page("pages/tokens.py").run()  # thinking is its own series: estimated, within the output
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["thinking_tokens"]) == [0, 6] and all(table["thinking_tokens"] <= table["output_tokens"])


def test_web_search_is_a_toggle_off_by_default_and_its_sources_are_links(api, app):
    at = send_files(app(), "Hi")
    assert "tools" not in api.requests[-1]
    web = next(t for t in at.toggle if t.key.startswith("chat_web_"))
    assert web.value is False
    at = web.set_value(True).run()
    api.queue(reply("The figure is 42.", search="figure of the year"))
    at = send_files(at, "What is the figure?")
    assert not at.exception and [t["name"] for t in api.requests[-1]["tools"]] == ["web_search", "web_fetch"]
    sources = [md.value for md in at.chat_message[-1].markdown if "example.org" in md.value]
    assert sources == ["1. [Figures of the year](<https://example.org/figures>): “figure of the year”"]
