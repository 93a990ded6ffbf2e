"""A lone surrogate (a JSON "\\ud800" escape from a model or a proxy) never loses a reply:
it becomes U+FFFD where text enters the engine, in the engine, the terminal and the dashboard."""

from chat_core import ChatSession, settings_from_env
from chat_core.backends import make_backend
from chat_core.storage import Store
from chat_core.text_in import ChunkCleaner, encodable
from tests.conftest import run_cli
from tests.loopback_api import reply, split_text

# What the loopback API streams: a lone high surrogate, a pair split between two deltas, a lone low one.
RAW = "before \ud800 midd \ud83d\ude00 and \udfff later!"
SHOWN = "before \ufffd midd \U0001f600 and \ufffd later!"


def split_pair():
    """The text in two deltas, the first ending with the high half of the pair."""
    assert split_text(RAW, 2)[0].endswith("\ud83d")
    return reply(RAW, chunks=2)


def test_encodable_replaces_lone_surrogates_and_joins_pairs():
    assert encodable("plain \u00e9\U0001f600") == "plain \u00e9\U0001f600"
    assert encodable("a\ud800b\udc00") == "a\ufffdb\ufffd"
    assert encodable("\ud83d\ude00") == "\U0001f600"
    cleaner = ChunkCleaner()
    assert [cleaner.feed("x\ud83d"), cleaner.feed("\ude00y\ud800"), cleaner.flush()] == ["x", "\U0001f600y", "\ufffd"]


def test_the_reply_is_kept_whole_with_replacement_characters_and_stored(api, isolated):
    api.queue(split_pair())
    store = Store(settings_from_env().database_url)
    settings = settings_from_env()
    chat = ChatSession.start(store, make_backend(settings.backend, settings.model), settings)
    streamed = list(chat.send("say something odd"))
    assert "".join(streamed) == SHOWN
    assert all(chunk.encode("utf-8") for chunk in streamed)
    assert chat.messages[-1].text == SHOWN and chat.messages[-1].status == "complete"
    assert store.load(chat.conversation_id).messages[-1].text == SHOWN
    assert "".join(chat.send("next")) == "echo: next"  # the stored reply goes back to Claude as valid JSON
    assert [m["content"] for m in api.requests[-1]["messages"]] == ["say something odd", SHOWN, "next"]


def test_typed_text_with_a_lone_surrogate_is_sent_and_stored_with_a_replacement(api, isolated):
    settings = settings_from_env()
    store = Store(settings.database_url)
    chat = ChatSession.start(store, make_backend(settings.backend, settings.model), settings)
    assert "".join(chat.send("odd \udc80 input")) == "echo: odd \ufffd input"
    assert [m.text for m in store.load(chat.conversation_id).messages] == ["odd \ufffd input", "echo: odd \ufffd input"]


def test_the_terminal_prints_the_reply_without_a_traceback(api, isolated):
    api.queue(split_pair())
    result = run_cli(stdin="say something odd\nand then?\n")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and result.stderr == ""
    assert SHOWN in result.stdout and "echo: and then?" in result.stdout
    stored = Store(settings_from_env().database_url)
    assert [m.text for m in stored.load(stored.latest_id()).messages][:2] == ["say something odd", SHOWN]


def test_the_dashboard_shows_and_stores_the_reply(api, app, isolated):
    api.queue(split_pair())
    at = app()
    at.chat_input(key="chat_input").set_value("say something odd").run()
    assert not at.exception and not at.error
    shown = [md.value for message in at.chat_message for md in message.markdown]
    assert SHOWN in shown
    stored = Store(settings_from_env().database_url)
    assert stored.load(stored.latest_id()).messages[-1].text == SHOWN
