"""Messages as content: attachments, thinking and citations, through the real SDK against the
loopback API, stored on a real SQLite file and a real PostgreSQL."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import sqlalchemy as sa

from chat_core import ChatSession, settings_from_env
from chat_core.backends import make_backend
from chat_core.content import (
    AttachmentRefused, CitationFound, ThinkingChunk, ToolStatus, fit_request, local_text, prepare,
)
from chat_core.conversation import Message, window_indices
from chat_core.export import to_json, to_markdown
from chat_core.search import search
from chat_core.storage import Store
from chat_core.thinking import thinking_params
from chat_core.usage import cost, price_for
from tests.content_files import noisy_jpeg, pdf, png
from tests.loopback_api import reply


def claude_chat(store, **overrides) -> ChatSession:
    settings = settings_from_env(backend="anthropic", model="claude-haiku-4-5", **overrides)
    return ChatSession.start(store, make_backend(settings.backend, settings.model), settings)


def resumed(store, chat) -> ChatSession:
    settings = settings_from_env(backend="anthropic", model="claude-haiku-4-5")
    return ChatSession.resume(store, chat.conversation_id, make_backend("anthropic", "claude-haiku-4-5"), settings)


# -- preparing files ------------------------------------------------------------


def test_files_become_the_blocks_the_api_takes_and_large_images_are_scaled_down():
    image = prepare("photo.png", png(4000, 2000))
    assert (image.kind, image.width, image.height, image.note) == ("image", 1568, 784, "scaled down from 4000×2000")
    assert image.tokens == round(1568 * 784 / 750)
    document = prepare("report.pdf", pdf(3))
    assert (document.kind, document.pages) == ("pdf", 3)
    notes = prepare("notes.md", "# Plan\nship it\n".encode())
    assert (notes.kind, notes.media_type, notes.text) == ("text", "text/plain", "# Plan\nship it\n")


@pytest.mark.parametrize("name, data, why", [
    ("broken.png", b"\x89PNG\r\n\x1a\n" + b"garbage" * 10, "damaged or not really an image"),
    ("broken.pdf", b"%PDF-1.4 nothing else", "damaged"),
    ("long.pdf", None, "101 pages"),
    ("tool.exe", b"MZ\x90\x00", "only images"),
    ("empty.txt", b"", "empty"),
    ("latin1.txt", "café".encode("latin-1"), "not UTF-8"),
])
def test_a_file_the_api_would_refuse_is_refused_in_one_line_naming_it(name, data, why):
    with pytest.raises(AttachmentRefused) as refused:
        prepare(name, pdf(101) if data is None else data)
    line = refused.value.message
    assert line.startswith(f"{name} was not attached: ") and why in line and "\n" not in line


def test_files_past_the_request_limit_are_left_out_with_a_line_each():
    big = prepare("big.jpg", noisy_jpeg(1500, 1500))
    kept, refused = fit_request([big], already=31 * 1024 * 1024)
    assert kept == [] and refused == ["big.jpg was not attached: with it the request would pass the API's 32.0 MB limit."]
    assert fit_request([big]) == ([big], [])


def test_the_local_model_reads_text_files_and_is_told_it_cannot_read_images():
    text = local_text("What do these say?", [prepare("a.txt", b"alpha beta"), prepare("b.png", png())])
    assert "[File a.txt]\nalpha beta" in text
    assert "[b.png is an image, which this model cannot read.]" in text
    assert text.endswith("What do these say?")


def test_thinking_takes_the_shape_each_model_accepts():
    assert thinking_params("claude-haiku-4-5", "low", 1024) == (
        {"thinking": {"type": "enabled", "budget_tokens": 2048}}, 1024 + 2048)
    extra, _ = thinking_params("claude-opus-4-6", "high", 1024)
    assert extra["thinking"]["type"] == "adaptive" and extra["output_config"] == {"effort": "high"}
    assert thinking_params("some-other-model", "high", 1024) == ({}, 1024)
    assert thinking_params("claude-haiku-4-5", "off", 1024) == ({}, 1024)


# -- the engine, the store, the wire --------------------------------------------


def test_attachments_are_sent_stored_once_counted_and_found_after_a_restart(api, db_url):
    store = Store(db_url)
    chat = claude_chat(store)
    image, document, notes = prepare("chart.png", png()), prepare("report.pdf", pdf(2)), prepare(
        "minutes.txt", b"The zeppelin budget was approved.")
    assert "".join(chat.send("What do these show?", attachments=[image, document, notes]))
    sent = api.requests[-1]["messages"][-1]["content"]
    assert [b["type"] for b in sent] == ["image", "document", "document", "text"]
    assert sent[0]["source"]["media_type"] == "image/png"
    assert sent[1]["source"]["media_type"] == "application/pdf" and sent[1]["citations"] == {"enabled": True}
    assert sent[2]["source"] == {"type": "text", "media_type": "text/plain",
                                 "data": "The zeppelin budget was approved."}
    # The same image again in another conversation: its bytes are stored once.
    other = claude_chat(store)
    "".join(other.send("Again", attachments=[prepare("same.png", png())]))
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM blobs")).scalar() == 3
    # After a restart: the files, and the request built from the store carries them again.
    again = resumed(Store(db_url), chat)
    assert [a.label() for a in again.messages[0].attachments] == [image.label(), document.label(), notes.label()]
    assert image.label().endswith(", 64×48)") and document.label().endswith(", 2 pages)")
    assert again.messages[0].attachments[0].data is None  # bytes stay in the store until needed
    "".join(again.send("And now?"))
    first = api.requests[-1]["messages"][0]["content"]
    assert [b["type"] for b in first] == ["image", "document", "document", "text"]
    assert first[0]["source"]["data"] == sent[0]["source"]["data"]
    # Search finds a file by its name and a text file by its words.
    assert [h.conversation_id for h in search(store, "zeppelin", "local")] == [chat.conversation_id]
    assert chat.conversation_id in [h.conversation_id for h in search(store, "report", "local")]
    # Deleting a conversation deletes the bytes only it used.
    store.delete_conversation(chat.conversation_id)
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM blobs")).scalar() == 1
        assert conn.execute(sa.text("SELECT COUNT(*) FROM attachments")).scalar() == 1


def test_attachments_count_in_the_window_by_their_tokens(api):
    big = Message("user", "look", attachments=[prepare("big.png", png(1500, 1500))])
    history = [big, Message("assistant", "a big image"), Message("user", "small"), Message("assistant", "ok")]
    # A window of 2 with a minimum prefix the small exchange alone cannot reach keeps the image exchange.
    assert window_indices(history, 1, "cache", 2000) == {2, 3}
    assert big.tokens == round(1500 * 1500 / 750) + 1


def test_exports_name_the_files_and_json_lists_their_hashes(api, tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'x.db'}")
    chat = claude_chat(store)
    image = prepare("chart.png", png())
    "".join(chat.send("See", attachments=[image]))
    markdown = to_markdown(chat)
    assert "- 📎 chart\\.png (" in markdown.replace("\\(", "(")  # names the file (escaped: plain text)
    data = json.loads(to_json(chat))
    assert data["messages"][0]["attachments"] == [{"name": "chart.png", "media_type": "image/png",
                                                   "size": image.size, "sha256": image.sha256}]


def test_thinking_streams_is_stored_with_its_signature_and_sent_back_exactly(api, db_url):
    store = Store(db_url)
    chat = claude_chat(store, thinking="low")
    api.queue(reply("The answer is 4.", thinking="Two plus two is four."))
    events = list(chat.send("What is 2+2?", events=True))
    assert "".join(e.text for e in events if isinstance(e, ThinkingChunk)) == "Two plus two is four."
    assert "".join(e for e in events if isinstance(e, str)) == "The answer is 4."
    assert api.requests[-1]["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert api.requests[-1]["max_tokens"] == 1024 + 2048
    answer = chat.messages[-1]
    assert answer.thinking[0].text == "Two plus two is four." and answer.thinking[0].signature
    assert chat.records[-1].usage.output_tokens == 4 + 5  # the answer's and the thinking's
    again = resumed(Store(db_url), chat)
    assert again.settings.thinking == "low"
    "".join(again.send("And 3+3?"))
    block = api.requests[-1]["messages"][1]["content"][0]
    assert block == {"type": "thinking", "thinking": "Two plus two is four.", "signature": answer.thinking[0].signature}


def test_a_cited_answer_lists_its_sources_with_pages(api, db_url):
    store = Store(db_url)
    chat = claude_chat(store)
    events = list(chat.send("What is the figure?", attachments=[prepare("report.pdf", pdf(2))], events=True))
    found = [e.citation for e in events if isinstance(e, CitationFound)]
    assert [(c.number, c.cited_text, c.start_page, c.document_title) for c in found] == [
        (1, "The quarterly figure is 42 on page 1", 1, "report.pdf")]
    assert chat.messages[-1].text.endswith("The document says so.[1]")
    again = resumed(Store(db_url), chat)
    assert again.messages[-1].citations[0].where() == "report.pdf, p. 1"


def test_the_api_refusing_a_file_is_one_line_and_the_message_stays(api, tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'x.db'}")
    chat = claude_chat(store)
    fake = prepare("fake.png", png())
    fake.media_type = "image/gif"  # what the API would say of a mislabelled image
    with pytest.raises(Exception) as failed:
        "".join(chat.send("What is this?", attachments=[fake]))
    assert "Image does not match the provided media type image/gif" in str(failed.value)
    assert chat.messages[0].text == "What is this?" and chat.messages[0].attachments[0].name == "fake.png"


def test_regenerate_and_edit_after_a_restart_send_the_questions_files_again(api, tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    chat = claude_chat(Store(url))
    "".join(chat.send("Describe", attachments=[prepare("chart.png", png())]))
    again = resumed(Store(url), chat)
    "".join(again.regenerate())
    assert [b["type"] for b in api.requests[-1]["messages"][-1]["content"]] == ["image", "text"]
    "".join(again.edit_last("Describe it in one word"))
    sent = api.requests[-1]["messages"][-1]["content"]
    assert [b["type"] for b in sent] == ["image", "text"] and sent[-1]["text"] == "Describe it in one word"
    assert [a.name for a in resumed(Store(url), chat).messages[0].attachments] == ["chart.png"]
    assert len(again.versions_of(again.messages[0])) == 2


def test_web_search_is_off_by_default_and_when_on_shows_its_status_sources_and_cost(api, tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    chat = claude_chat(Store(url))
    "".join(chat.send("Hello"))
    assert "tools" not in api.requests[-1]  # off by default: nothing is searched, nothing sent out
    chat.update(web=True)
    api.queue(reply("The figure is 42.", search="figure of the year"))
    events = list(chat.send("What is the figure?", events=True))
    assert [t["name"] for t in api.requests[-1]["tools"]] == ["web_search", "web_fetch"]
    assert [e.text for e in events if isinstance(e, ToolStatus)] == ["Searching: figure of the year"]
    cited = [e.citation for e in events if isinstance(e, CitationFound)][0]
    assert (cited.url, cited.document_title, cited.cited_text) == (
        "https://example.org/figures", "Figures of the year", "figure of the year")
    record = chat.records[-1]
    assert record.usage.web_searches == 1
    assert record.cost_usd == pytest.approx(0.01 + cost(replace(record.usage, web_searches=0),
                                                         price_for("anthropic", "claude-haiku-4-5")))
    again = resumed(Store(url), chat)
    assert again.settings.web is True and again.records[-1].usage.web_searches == 1


def test_a_paused_turn_is_continued_with_what_it_wrote_so_far(api, tmp_path):
    chat = claude_chat(Store(f"sqlite:///{tmp_path / 'x.db'}"), web=True)
    api.queue(reply("Searching the web first.", search="long question", stop_reason="pause_turn"),
              reply(" Found it."))
    assert "".join(chat.send("A long question")) == "Searching the web first. The document says so.[1] Found it."
    first, second = api.requests[-2:]
    assert second["messages"][:-1] == first["messages"]
    resumed_turn = second["messages"][-1]
    assert resumed_turn["role"] == "assistant"
    assert [b["type"] for b in resumed_turn["content"]] == [
        "server_tool_use", "web_search_tool_result", "text", "text"]
    assert chat.records[-1].usage.web_searches == 1 and chat.records[-1].stop_reason == "end_turn"
