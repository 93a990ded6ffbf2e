"""Both dashboard pages through streamlit.testing.v1.AppTest, against the loopback Claude API."""

import time

from chat_core.conversation import Message
from chat_core.storage import Store
import pytest

from tests.loopback_api import http_error, reply, stream_error


def send(at, text):
    return at.chat_input(key="chat_input").set_value(text).run()


def bubbles(at):
    """Each chat bubble's text: what the user typed (st.text) or the reply's Markdown."""
    return [" ".join([t.value for t in message.text] + [md.value for md in message.markdown])
            for message in at.chat_message]


def metrics(at):
    return {metric.label: metric.value for metric in at.metric}


def window_slider(at):
    return next(s for s in at.select_slider if s.key.startswith("chat_window_"))


def test_a_message_gets_a_streamed_reply_and_the_counter_moves(api, app):
    at = app()
    assert "Hi! You are chatting with **anthropic · claude-haiku-4-5**" in bubbles(at)[0]
    assert metrics(at)["Input tokens"] == "0"
    send(at, "hello there")
    assert not at.exception
    assert bubbles(at) == ["hello there", "echo: hello there"]
    assert metrics(at)["Input tokens"] == str(api_tokens(api, 0))
    assert metrics(at)["Output tokens"] == "3"
    assert metrics(at)["Cost"] == "<$0.0001"  # priced, too small for four decimals: never "$0.0000"


def api_tokens(api, index):
    from tests.loopback_api import count_tokens

    return count_tokens(api.requests[index])


def test_the_slider_changes_what_the_next_request_carries(api, app):
    at = app()
    for text in ["one", "two", "three"]:
        send(at, text)
    assert len(api.requests[-1]["messages"]) == 5
    window_slider(at).set_value(1).run()
    send(at, "four")
    assert [m["content"] for m in api.requests[-1]["messages"]] == ["three", "echo: three", "four"]
    window_slider(at).set_value("all").run()
    send(at, "five")
    assert len(api.requests[-1]["messages"]) == 9
    window_slider(at).set_value(1).run()
    outside = [c.value for c in at.caption if c.value.startswith("Not sent")]
    assert len(outside) == 8  # four exchanges before the last one are shown but marked


def test_errors_show_in_the_bubble_and_the_chat_goes_on(api, app):
    at = app()
    api.queue(stream_error("half of it", "overloaded_error"))
    send(at, "first")
    assert not at.exception
    assert "half of it" in bubbles(at)[1]
    assert "overloaded right now and the reply broke off" in at.error[0].value
    api.queue(http_error(401, "authentication_error"))
    send(at, "second")
    assert any("Claude rejected the API key (401)" in e.value for e in at.error)
    send(at, "third")
    assert bubbles(at)[-1] == "echo: third"
    # the failed turn is skipped, the partial reply is kept
    assert [m["content"] for m in api.requests[-1]["messages"]] == ["first", "half of it", "third"]


TOKENS = "pages/tokens.py"


def test_the_token_page_charts_the_turns_of_the_open_conversation(api, app):
    at = app()
    for text in ["one", "two", "three"]:
        send(at, text)
    cid = at.query_params["c"]
    at.switch_page(TOKENS).run()
    assert not at.exception
    assert at.query_params["c"] == cid  # the conversation stays in the URL on every page
    caption = at.caption[0].value  # the title as plain text: Markdown characters escaped, shown as typed
    assert caption.startswith("**one** · ") and "claude\\-haiku\\-4\\-5" in caption
    assert len(at.get("vega_lite_chart")) == 4  # input (with the cache), output, running cost, time to first token
    frame = at.dataframe[0].value
    assert list(frame["turn"]) == [1, 2, 3]
    assert list(frame["input_tokens"]) == [api_tokens(api, i) for i in range(3)]
    assert frame["running_cost_usd"].is_monotonic_increasing
    assert at.get("download_button")[0].proto.label == "Download CSV"


def test_the_token_page_is_empty_without_turns(api, app):
    at = app()
    at.switch_page(TOKENS).run()
    assert not at.exception
    assert "No turns yet" in at.info[0].value
    assert len(at.get("vega_lite_chart")) == 0


def test_without_a_key_the_page_chats_with_the_local_model(app):
    at = app()
    assert "local · SmolLM2-135M-Instruct" in bubbles(at)[0]
    backend = next(r for r in at.radio if r.key.startswith("chat_backend_"))
    assert backend.disabled
    assert any("Claude needs an API key" in c.value for c in at.caption)
    send(at, "Hi")
    assert not at.exception and len(at.chat_message) == 2 and bubbles(at)[1].strip()


def test_a_refresh_brings_the_conversation_back_and_a_new_visit_starts_fresh(api, app, isolated):
    at = app()
    assert "c" not in at.query_params  # nothing stored yet
    send(at, "remember me")
    cid = at.query_params["c"]
    again = app(query={"c": cid})  # a new browser session on the same URL
    assert bubbles(again) == ["remember me", "echo: remember me"]
    assert metrics(again)["Input tokens"] == metrics(at)["Input tokens"]
    fresh = app()  # no URL: a new, unsaved chat
    assert "Hi! You are chatting" in bubbles(fresh)[0] and "c" not in fresh.query_params
    assert len(Store(f"sqlite:///{isolated / 'data' / 'chat.db'}").list_conversations()) == 1


def two_chats(at, first: str, second: str) -> tuple[str, str]:
    """Two conversations, one message each, made with *New chat* between them; their ids as in the URL."""
    send(at, first)
    first_id = at.query_params["c"]
    at.button(key="chat_new").click().run()
    send(at, second)
    return first_id, at.query_params["c"]


def picker(at):
    return next(s for s in at.selectbox if s.key.startswith("chat_pick_"))


def test_conversations_new_switch_rename_delete(api, app, isolated):
    at = app()
    send(at, "first chat")
    first = int(at.query_params["c"])
    at.button(key="chat_new").click().run()
    assert "c" not in at.query_params and len(at.chat_message) == 1
    send(at, "second chat")
    second = int(at.query_params["c"])
    assert second != first
    picker(at).set_value(first).run()
    assert bubbles(at) == ["first chat", "echo: first chat"] and at.query_params["c"] == str(first)
    next(t for t in at.text_input if t.key.startswith("chat_title_")).set_value("Renamed").run()
    store = Store(f"sqlite:///{isolated / 'data' / 'chat.db'}")
    assert {c.title for c in store.list_conversations()} == {"Renamed", "second chat"}
    assert any(option.startswith("Renamed · ") for option in picker(at).options)
    next(c for c in at.checkbox if c.key.startswith("chat_delete_ask_")).check().run()
    at.button(key="chat_delete_yes").click().run()
    assert [c.id for c in store.list_conversations()] == [second]
    assert "Hi! You are chatting" in bubbles(at)[0] and "c" not in at.query_params


def test_two_chats_with_the_same_title_in_one_minute_stay_apart(api, app, isolated):
    at = app()
    send(at, "hi")
    first = at.query_params["c"]
    at.button(key="chat_new").click().run()
    send(at, "hi")
    second = at.query_params["c"]
    other = app(query={"c": second})
    assert picker(other).value == int(second)
    send(other, "only in the second")
    assert other.query_params["c"] == second
    store = Store(f"sqlite:///{isolated / 'data' / 'chat.db'}")
    assert [m.text for m in store.load(int(first)).messages] == ["hi", "echo: hi"]
    assert [m.text for m in store.load(int(second)).messages][-1] == "echo: only in the second"
    other.run()  # a rerun alone never moves to another conversation
    assert other.query_params["c"] == second


def test_right_after_a_reply_the_page_shows_what_is_stored(api, app):
    at = app()
    window_slider(at).set_value(1).run()
    send(at, "one")
    send(at, "two")
    outside = [c.value for c in at.caption if c.value.startswith("Not sent")]
    assert len(outside) == 2  # "one" and its reply, at once, not after another rerun
    assert picker(at).value == int(at.query_params["c"])
    assert picker(at).format_func(picker(at).value).startswith("one · ")
    assert next(t for t in at.text_input if t.key.startswith("chat_title_")).value == "one"


@pytest.mark.parametrize("bad", ["999999", "0", "abc", "-1", "1.5", "99999999999999999999", "²", "1 OR 1=1"])
def test_an_unknown_or_malformed_conversation_id_is_one_line_and_a_fresh_chat(api, app, bad, isolated):
    at = app()
    send(at, "existing")
    odd = app(query={"c": bad})
    assert not odd.exception
    assert [w.value.replace("\\", "") for w in odd.warning] == [f"Conversation {bad} not found: this is a new chat."]
    assert "Hi! You are chatting" in bubbles(odd)[0] and "c" not in odd.query_params
    assert odd.chat_input(key="chat_input") is not None
    assert len(Store(f"sqlite:///{isolated / 'data' / 'chat.db'}").list_conversations()) == 1


def test_clear_starts_a_new_conversation_and_keeps_the_old_one(api, app, isolated):
    at = app()
    send(at, "one")
    first = at.query_params["c"]
    send(at, "/clear")
    assert "Hi! You are chatting" in bubbles(at)[0] and len(at.chat_message) == 1
    assert metrics(at)["Input tokens"] == "0" and "c" not in at.query_params
    send(at, "two")
    assert at.query_params["c"] != first
    at.button(key="chat_clear").click().run()
    assert len(at.chat_message) == 1 and metrics(at)["Output tokens"] == "0"
    send(at, "three")
    assert [m["content"] for m in api.requests[-1]["messages"]] == ["three"]
    assert len(api.requests) == 3  # /clear was never sent
    store = Store(f"sqlite:///{isolated / 'data' / 'chat.db'}")
    assert [c.title for c in store.list_conversations()] == ["three", "two", "one"]


def test_a_view_whose_conversation_moved_sends_what_is_stored(api, app):
    a = app()
    send(a, "from tab A")
    b = app(query={"c": a.query_params["c"]})
    send(a, "A again")  # tab B has not seen this
    send(b, "from tab B")
    sent = [m["content"] for m in api.requests[-1]["messages"]]
    assert sent == ["from tab A", "echo: from tab A", "A again", "echo: A again", "from tab B"]
    assert bubbles(b) == ["from tab A", "echo: from tab A", "A again", "echo: A again", "from tab B", "echo: from tab B"]


def test_a_reply_cut_by_the_token_limit_says_so(api, app):
    api.queue(reply("a long answer", stop_reason="max_tokens"))
    at = app()
    send(at, "tell me everything")
    assert any("reached the 1,024-token limit" in c.value for c in at.caption)


def test_a_database_that_refuses_writes_is_one_line_and_keeps_the_message(api, app, isolated):
    at = app()
    send(at, "saved")
    from dashboard import state

    from tests.test_storage import read_only

    read_only(state.store(f"sqlite:///{isolated / 'data' / 'chat.db'}"))
    send(at, "cannot be saved")
    assert not at.exception
    assert any("is read-only, so nothing new can be saved" in e.value for e in at.error)
    assert "cannot be saved" in [c.value for c in at.code]  # kept, to copy
    assert len(api.requests) == 1


def test_a_message_over_the_limit_is_refused_and_kept(api, app, monkeypatch):
    monkeypatch.setenv("CHAT_MAX_INPUT_CHARS", "20")
    at = app()
    send(at, "x" * 25)
    assert "over the 20-character limit" in at.error[0].value
    assert "x" * 25 in [c.value for c in at.code]
    assert api.requests == []


def test_an_edit_over_the_limit_is_refused_and_kept_in_its_box(api, app, monkeypatch):
    monkeypatch.setenv("CHAT_MAX_INPUT_CHARS", "20")
    at = app()
    send(at, "short question")
    at.button(key="chat_edit").click().run()
    at.text_area[0].set_value("y" * 25)
    at.button(key="chat_edit_send").click().run()
    assert not at.exception and "over the 20-character limit" in at.error[0].value
    assert "y" * 25 in [c.value for c in at.code]  # to copy, as a message over the limit
    at.run()
    assert not at.exception and at.text_area[0].value == "y" * 25  # still there: the edit stays open
    assert len(api.requests) == 1


def test_the_database_can_be_named_in_streamlit_secrets(api, isolated):
    from streamlit.testing.v1 import AppTest

    from tests.conftest import ROOT

    url = f"sqlite:///{isolated / 'from-secrets' / 'chat.db'}"
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
    at.secrets["connections"] = {"chat": {"url": url}}
    at.run()
    send(at, "kept in the secrets database")
    stored = Store(url).load(int(at.query_params["c"]))
    assert [m.text for m in stored.messages] == ["kept in the secrets database", "echo: kept in the secrets database"]


def test_a_long_chat_on_claude_hits_the_cache_and_the_token_page_shows_where_the_money_went(api, app):
    at = app()
    words = " ".join(f"word{i}" for i in range(1500))
    for n in range(4):
        send(at, f"message {n}: {words}")
    assert all(body.get("cache_control") == {"type": "ephemeral"} for body in api.requests)
    at.switch_page(TOKENS).run()
    assert not at.exception
    frame = at.dataframe[0].value
    assert list(frame["cache_read_tokens"] > 0) == [False, False, True, True]  # past Haiku's 4,096-token minimum
    assert frame["cache_write_tokens"].iloc[1:].gt(0).all()
    assert int(metrics(at)["Read from cache"].replace(",", "")) == frame["cache_read_tokens"].sum()
    chart = at.get("vega_lite_chart")[2].proto.spec
    assert "with no caching (computed)" in chart and "plain sliding window" in chart
    saved = next(c.value for c in at.caption if c.value.startswith("Prompt caching saved"))
    assert not saved.startswith("Prompt caching saved $-")


def test_prompt_caching_can_be_turned_off_in_the_sidebar(api, app):
    at = app()
    send(at, "one")
    next(t for t in at.toggle if t.key.startswith("chat_prompt_cache_")).set_value(False).run()
    send(at, "two")
    assert "cache_control" in api.requests[0] and "cache_control" not in api.requests[1]


def test_regenerate_keeps_every_version_and_sends_the_chosen_one(api, app, isolated):
    at = app()
    send(at, "question")
    api.queue(reply("second answer"))
    at.button(key="chat_regenerate").click().run()
    assert bubbles(at)[-1] == "second answer"
    assert [m["content"] for m in api.requests[-1]["messages"]] == ["question"]  # the same request again
    assert any(c.value == "2/2" for c in at.caption)
    at.button(key=f"chat_prev_{at.session_state['chat'].messages[-1].id}").click().run()
    assert bubbles(at)[-1] == "echo: question" and any(c.value == "1/2" for c in at.caption)
    send(at, "next")
    assert [m["content"] for m in api.requests[-1]["messages"]] == ["question", "echo: question", "next"]
    again = app(query={"c": at.query_params["c"]})  # a reload keeps the versions and the choice
    assert bubbles(again)[:2] == ["question", "echo: question"] and any(c.value == "1/2" for c in again.caption)
    records = Store(f"sqlite:///{isolated / 'data' / 'chat.db'}").load(int(at.query_params["c"])).records
    assert [r.turn for r in records] == [1, 2, 3]  # every generation counts


def test_edit_and_resend_replaces_the_exchange_and_keeps_the_old_version(api, app):
    at = app()
    send(at, "first try")
    send(at, "typo questoin")
    at.button(key="chat_edit").click().run()
    next(t for t in at.text_area if t.key.startswith("chat_edit_text_")).set_value("fixed question").run()
    at.button(key="chat_edit_send").click().run()
    assert bubbles(at) == ["first try", "echo: first try", "fixed question", "echo: fixed question"]
    assert [m["content"] for m in api.requests[-1]["messages"]] == ["first try", "echo: first try", "fixed question"]
    assert any(c.value == "2/2" for c in at.caption)
    send(at, "and then")
    sent = [m["content"] for m in api.requests[-1]["messages"]]
    assert "typo questoin" not in sent and sent[-3:] == ["fixed question", "echo: fixed question", "and then"]


def test_the_sidebar_search_finds_a_conversation_and_opens_it_at_the_match(api, app):
    at = app()
    lisbon, _ = two_chats(at, "planning a trip to Lisbon", "something else")
    at.text_input(key="chat_search").set_value('lisbon "trip').run()
    assert not at.exception
    assert any("**Lisbon**" in c.value for c in at.caption)
    at.button(key=f"chat_hit_{lisbon}").click().run()
    assert at.query_params["c"] == lisbon
    assert any("The search found this message" in c.value for c in at.caption)
    assert at.session_state["chat_search_open"] is False  # the search closes

    def scripts():  # but the one that keeps the address (dashboard/streamlit_adapter.py)
        return [h.proto.body for h in at.get("html") if "data-chat-url" not in h.proto.body]

    found = scripts()  # and the match is scrolled into view (tests/test_browser_ux.py)
    assert len(found) == 1 and ".st-key-chat_found" in found[0] and "scrollIntoView" in found[0]
    at.run()  # only once: a later run leaves the reader where they are
    assert scripts() == [] and any("The search found this message" in c.value for c in at.caption)
    at.text_input(key="chat_search").set_value("NEAR( -* zzzz").run()
    assert not at.exception and not at.error
    assert any(c.value.startswith("No conversation mentions") for c in at.caption)


def test_a_stopped_reply_outside_the_window_is_marked_not_sent(api, app):
    at = app()
    send(at, "one")
    api.queue(reply("echo: two and more", delay=0.3))  # slow enough to stop while its job streams
    chunks = at.session_state["chat"].send("two")
    next(chunks)
    chunks.close()  # stopped after its first chunk, as a Stop does
    assert at.session_state["chat"].messages[-1].status == "stopped"
    send(at, "three")
    window_slider(at).set_value(1).run()
    outside = [c.value for c in at.caption if c.value.startswith("Not sent")]
    assert len(outside) == 4  # "one", its reply, "two" and its stopped reply


# -- issue 13: the page explains itself, follows the URL and keeps what the user chose --------------------------


def captions(at):
    return [c.value for c in at.caption]


def test_the_window_slider_says_why_fewer_exchanges_may_be_sent(api, app):
    at = app()
    text = window_slider(at).proto.help
    assert "shorter than 4,096 tokens" in text and "claude-haiku-4-5" in text  # Haiku's minimum cacheable prompt
    assert "the whole window is sent" in text and "older half" in text
    next(r for r in at.radio if r.key.startswith("chat_window_policy_")).set_value("slide").run()
    text = window_slider(at).proto.help
    assert "the oldest exchange is dropped every turn" in text and "older half" not in text


def test_a_question_whose_reply_failed_is_captioned_for_that_not_for_the_window(api, app):
    at = app()
    send(at, "first")
    api.queue(http_error(529, "overloaded_error", repeat=5))
    send(at, "lost one")
    send(at, "third")
    notes = [c for c in captions(at) if c.startswith("Not sent")]
    assert notes == ["Not sent with the next message: it has no reply to go with it."]
    assert [m["content"] for m in api.requests[-1]["messages"]] == ["first", "echo: first", "third"]


def test_the_401_line_names_the_page_control_not_a_terminal_option(api, app):
    at = app()
    api.queue(http_error(401, "authentication_error"))
    send(at, "hello")
    line = next(e.value for e in at.error if "(401)" in e.value)
    assert "--backend" not in line
    assert "open “anthropic · claude-haiku-4-5” in the sidebar and pick “Local model (offline)”" in line
    assert "Local model (offline)" in next(r for r in at.radio if r.key.startswith("chat_backend_")).options


def test_the_model_that_wrote_each_reply_shows_beside_it(api, app):
    at = app()
    send(at, "on haiku")
    next(s for s in at.selectbox if s.key.startswith("chat_model_")).set_value("claude-sonnet-4-6").run()
    send(at, "on sonnet")
    labels = [c for c in captions(at) if c.startswith(":material/smart_toy:")]
    assert labels == [":material/smart_toy: claude\\-haiku\\-4\\-5", ":material/smart_toy: claude\\-sonnet\\-4\\-6"]


def test_the_claude_model_choice_survives_a_trip_to_the_local_model(api, app):
    at = app()
    next(s for s in at.selectbox if s.key.startswith("chat_model_")).set_value("claude-sonnet-4-6").run()
    backend = lambda: next(r for r in at.radio if r.key.startswith("chat_backend_"))  # noqa: E731
    backend().set_value("local").run()
    assert at.session_state["chat"].backend.name == "local"
    backend().set_value("anthropic").run()
    assert at.session_state["chat"].backend.model == "claude-sonnet-4-6"
    assert next(s for s in at.selectbox if s.key.startswith("chat_model_")).value == "claude-sonnet-4-6"
    send(at, "which model?")
    assert api.requests[-1]["model"] == "claude-sonnet-4-6"


def test_a_persona_edit_applies_and_an_empty_one_says_it_was_not(api, app):
    at = app()
    persona = lambda: next(t for t in at.text_area if t.key.startswith("chat_system_"))  # noqa: E731
    persona().set_value("You are a pirate.").run()
    assert any("Persona applied" in t.value for t in at.toast)
    send(at, "ahoy")
    assert api.requests[-1]["system"] == "You are a pirate."
    persona().set_value("   ").run()
    assert any("empty persona was not applied" in t.value for t in at.toast)
    send(at, "again")
    assert api.requests[-1]["system"] == "You are a pirate."


def test_only_back_or_forward_moves_the_page_to_the_url(api, app):
    at = app()
    first, second = two_chats(at, "first chat", "second chat")
    at.query_params["c"] = first  # a rerun request carrying a URL the page has moved on from (not Back)
    at.run()
    assert bubbles(at) == ["second chat", "echo: second chat"] and at.query_params["c"] == second
    picker(at).set_value(int(first)).run()  # a switch made on the page moves the URL, not the other way
    assert at.query_params["c"] == first and bubbles(at)[0] == "first chat"
    # Back and Forward themselves: tests/test_browser_ux.py (AppTest cannot press them)


@pytest.mark.parametrize("given", ["{id} ", " {id}", "{id}\t", ["999", "{id}"], ["abc", "{id}"]])
def test_odd_urls_that_name_a_conversation_open_it_and_are_rewritten(api, app, given):
    at = app()
    send(at, "here")
    cid = at.query_params["c"]
    value = [v.format(id=cid) for v in given] if isinstance(given, list) else given.format(id=cid)
    odd = app(query={"c": value})
    assert not odd.warning and bubbles(odd) == ["here", "echo: here"]
    assert odd.query_params["c"] == cid  # one c, digits only


def test_a_repeated_c_naming_nothing_says_exactly_which_was_read(api, app):
    at = app(query={"c": ["1", "7x"]})
    assert [w.value.replace("\\", "") for w in at.warning] == ["Conversation 7x not found: this is a new chat."]
    assert "c" not in at.query_params


def test_free_reads_the_same_in_the_sidebar_and_on_the_token_page(app):
    at = app()
    assert metrics(at)["Cost"] == "free"
    send(at, "Hi")
    assert metrics(at)["Cost"] == "free"
    at.switch_page(TOKENS).run()
    assert metrics(at)["Cost"] == "free"


def test_the_token_table_has_named_columns_and_rounded_numbers(api, app):
    import json

    at = app()
    for text in ["one", "two", "three"]:
        send(at, text)
    at.switch_page(TOKENS).run()
    table = at.dataframe[0]
    config = json.loads(table.proto.columns)
    assert {name: column.get("label") for name, column in config.items()}["cache_read_tokens"] == "Input read from cache"
    assert all(column.get("label") and "_" not in column["label"] for name, column in config.items() if name != "_index")
    assert config["cost_usd"]["type_config"]["format"] == "%.6f"
    # token counts grouped by thousands (4,356), as the metrics above the table show them
    assert {config[name]["type_config"]["format"] for name in config if name.endswith("_tokens")} == {"localized"}
    costs = table.value["cost_usd"]
    assert (costs == costs.round(6)).all() and costs.gt(0).all()  # dollars to the micro-dollar, no float noise


def test_the_two_computed_cost_lines_can_be_told_apart(api, app):
    import json

    at = app()
    send(at, "short")
    at.switch_page(TOKENS).run()
    spec = json.loads(at.get("vega_lite_chart")[2].proto.spec)
    text = json.dumps(spec)
    # Short turns never fill the window: the plain slide costs what no caching does, drawn as one labelled line.
    assert "with no caching (computed), or the plain sliding window" in text and "plain sliding window, no cache" not in text
    assert any("coincide" in c or "one line shows both" in c for c in captions(at))
    # too short to cache: no "saved $0.0000"
    assert "Nothing was written to the prompt cache or read from it" in " ".join(captions(at))
    assert not [c for c in captions(at) if "caching saved" in c]


def test_a_stopped_claude_reply_shows_its_output_count_as_an_estimate(api, app):
    at = app()
    send(at, "one")
    assert [m.value for m in at.metric if m.label == "Output tokens"] == ["2"]  # "echo: one": Claude's own count
    api.queue(reply("a b c d e f g h", delay=0.3))  # slow enough to stop while its job streams
    chunks = at.session_state["chat"].send("two")
    next(chunks)
    chunks.close()  # stopped after its first chunk, as a Stop does
    at.run()
    stopped = at.session_state["chat"].records[-1]
    assert stopped.status == "stopped" and stopped.usage.output_tokens > 0
    shown = [m.value for m in at.metric if m.label == "Output tokens"]
    assert shown == [f"~{2 + stopped.usage.output_tokens}"]
    at.switch_page(TOKENS).run()
    assert [m.value for m in at.metric if m.label == "Output tokens"] == shown
    assert list(at.dataframe[0].value["output_estimated"]) == [False, True]


def test_the_conversation_list_is_read_again_only_when_it_moved(api, app, isolated):
    """Each run checks, in the statement that checks its conversation, whether the owner's list moved;
    a run where nothing moved draws the list it read before, and any write elsewhere (a new chat, a
    rename, a message, a deletion on another server) shows in the next run."""
    import sqlalchemy as sa

    from dashboard import state

    at = app()
    send(at, "mine")
    store = state.store(state.base_settings().database_url)
    lists = []
    sa.event.listen(store.engine, "before_cursor_execute",
                    lambda _c, _cur, sql, *_: lists.append(sql) if sql.lstrip().startswith("SELECT id, title") else None)
    at.run()
    assert lists == [] and picker(at).options[0].startswith("mine")
    other = Store(f"sqlite:///{isolated / 'data' / 'chat.db'}")  # another server's store
    cid, _ = other.add_user_message(None, Message("user", "from elsewhere"), new=dict(
        system="s", window=10, backend="local", model="m"))
    at.run()
    assert len(lists) == 1 and picker(at).options[0].startswith("from elsewh")
    other.rename(cid, "renamed there")
    at.run()
    assert len(lists) == 2 and picker(at).options[0].startswith("renamed there")
    other.delete_conversation(cid)
    at.run()
    assert len(lists) == 3 and picker(at).options[0].startswith("mine")
    at.run()
    assert len(lists) == 3


def test_a_claude_conversation_opened_without_a_key_says_it_goes_on_locally(api, app, monkeypatch):
    """Item 22 in the page: without a key a Claude conversation continues on the local model, and says so."""
    at = app()
    send(at, "on claude")
    cid = at.query_params["c"]
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    later = app(query={"c": cid})  # the app restarted without the key
    assert [w.value.replace("\\", "") for w in later.warning] == [
        f"Conversation {cid} was with Claude (claude-haiku-4-5), but no ANTHROPIC_API_KEY is set, so it continues "
        "on the local model: set the key and restart the app to go on with Claude."]
    assert bubbles(later)[:2] == ["on claude", "echo: on claude"]
    assert next(r for r in later.radio if r.key.startswith("chat_backend_")).value == "local"


def test_a_reply_cut_off_by_a_dead_server_says_so_in_its_bubble(api, app, isolated):
    """A streaming row whose writer is gone (a killed server) is shown with what it had, and says why it ends there."""
    from chat_core.conversation import ASSISTANT, USER
    from chat_core.liveness import CUT_OFF_NOTE, done_writing
    from chat_core import Message

    db = Store(f"sqlite:///{isolated / 'data' / 'chat.db'}")
    new = dict(system="You are concise.", window=10, backend="anthropic", model="claude-haiku-4-5")
    cid, uid = db.add_user_message(None, Message(USER, "tell me a long story"), new=new)
    reply_id = db.start_reply(cid, Message(ASSISTANT, "", reply_to=uid))
    db.save_text(reply_id, "Once upon a time")
    done_writing(db.url, reply_id)  # its writer let go of it without finishing: as after a SIGKILL
    at = app(query={"c": str(cid)})
    assert not at.exception
    assert bubbles(at) == ["tell me a long story", "Once upon a time"]
    assert any(CUT_OFF_NOTE in c.value.replace("\\", "") for c in at.caption)


def test_an_empty_c_is_no_conversation_named_a_new_chat_without_a_notice(api, app):
    at = app(query={"c": ""})
    assert not at.exception and not at.warning
    assert "Hi! You are chatting" in bubbles(at)[0] and "c" not in at.query_params


def test_the_run_after_a_reply_takes_it_from_its_job_unless_something_else_moved(api, app, isolated):
    """The run that draws the page again after a reply reads one statement: the reply comes from its job,
    checked against the store, and the list's fingerprint with it (the list is not read again). When
    another server chose a version while the reply was written, the page reads the conversation again
    (the list still not, as it did not move) and shows the version chosen there."""
    import threading

    import sqlalchemy as sa

    from chat_core.usage import TurnRecord, Usage
    from dashboard import state

    at = app()
    send(at, "first")
    cid = int(at.query_params["c"])
    store = state.store(state.base_settings().database_url)
    other = Store(f"sqlite:///{isolated / 'data' / 'chat.db'}")  # another server's store
    asked, first_reply = (m.id for m in other.load(cid).messages)
    other.add_reply(cid, Message("assistant", "another version", reply_to=asked),
                    TurnRecord(0, Usage(5, 2), 1, "claude-haiku-4-5", "anthropic", 0.1, 0.2, "complete", 0.0))
    at.run()
    assert "another version" in bubbles(at)
    seen = []
    sa.event.listen(store.engine, "before_cursor_execute", lambda _c, _cur, sql, *_: seen.append(sql.lstrip()))

    def after_the_reply() -> list[str]:
        counted = max(i for i, sql in enumerate(seen) if sql.startswith("INSERT INTO turns"))
        return [sql[:40] for sql in seen[counted + 1:] if sql.startswith("SELECT") and "GROUP BY" not in sql]

    send(at, "second")
    reads = after_the_reply()
    assert len(reads) == 1 and reads[0].startswith("SELECT c.id"), reads
    assert bubbles(at)[-1] == "echo: second" and "another version" in bubbles(at)
    fresh = app({"c": str(cid)})
    assert bubbles(fresh) == bubbles(at) and metrics(fresh) == metrics(at)

    def choose_while_it_streams():
        deadline = time.time() + 30
        while time.time() < deadline and not any(m.status == "streaming" for m in other.load(cid).messages):
            time.sleep(0.02)
        other.choose_version(cid, first_reply)

    api.queue(reply(" ".join(f"w{i}" for i in range(40)), delay=0.03))
    chooser = threading.Thread(target=choose_while_it_streams)
    chooser.start()
    send(at, "third")
    chooser.join()
    reads = after_the_reply()
    assert reads[0].startswith("SELECT c.id") and len(reads) == 4, reads  # the check, then the conversation
    assert not any(sql.startswith("SELECT id, title") for sql in reads)  # the list did not move
    assert "another version" not in bubbles(at) and "echo: first" in bubbles(at) and "w39" in bubbles(at)[-1]
    fresh = app({"c": str(cid)})
    assert bubbles(fresh) == bubbles(at) and metrics(fresh) == metrics(at)
