"""Claude through the real SDK against the loopback Messages API: streaming, usage, every failure."""

import anthropic
import pytest

from chat_core import ChatSession, settings_from_env
from chat_core import errors
from chat_core.backends import make_backend, output_estimated
from chat_core.backends.anthropic_backend import AnthropicBackend
from chat_core.backends.base import Reply
from chat_core.conversation import FAILED, STOPPED, Message
from chat_core.window import estimate_tokens
from tests.conftest import TEST_KEY
from tests.loopback_api import cut, http_error, reply, stream_error

HELLO = [Message("user", "hello")]


def session(**overrides):
    settings = settings_from_env(**overrides)
    return ChatSession(make_backend(settings.backend, settings.model), settings)


def stream_all(backend, messages=HELLO, max_tokens=64):
    result = Reply(backend.name, backend.model)
    chunks = []
    try:
        for chunk in backend.stream("Be brief.", messages, max_tokens, result):
            chunks.append(chunk)
    except errors.ChatError as exc:
        return chunks, result, exc
    return chunks, result, None


def test_reply_streams_delta_by_delta_with_usage_and_stop_reason(api):
    api.queue(reply("one two three four"))
    backend = make_backend("anthropic", "claude-haiku-4-5")
    chunks, result, error = stream_all(backend)
    assert error is None
    assert chunks == ["one ", "two ", "three ", "four"]
    assert result.text == "one two three four" and result.complete
    assert result.stop_reason == "end_turn"
    assert result.usage.output_tokens == 4 and result.usage.input_tokens > 0
    assert 0 <= result.ttft_s <= result.total_s
    body, headers = api.requests[0], api.headers[0]
    assert body["stream"] is True and body["system"] == "Be brief." and body["max_tokens"] == 64
    assert body["model"] == "claude-haiku-4-5"
    assert body["messages"] == [{"role": "user", "content": "hello"}]
    assert headers["authorization"] == f"Bearer {TEST_KEY}"  # the SDK's own env handling, no hard-coded URL


def test_session_remembers_and_the_window_bounds_what_is_sent(api):
    chat = session(window=1)
    for text in ["first", "second", "third"]:
        assert "".join(chat.send(text)) == f"echo: {text}"
    sent = [len(body["messages"]) for body in api.requests]
    assert sent == [1, 3, 3]
    assert [m["content"] for m in api.requests[-1]["messages"]] == ["second", "echo: second", "third"]
    chat.update(window=0)
    "".join(chat.send("fourth"))
    assert len(api.requests[-1]["messages"]) == 7
    records = chat.records
    assert [r.messages_sent for r in records] == [1, 3, 3, 7]
    assert records[2].usage.input_tokens < records[3].usage.input_tokens
    assert records[2].unwindowed_input_tokens > records[2].usage.input_tokens
    assert chat.totals.cost_usd == pytest.approx(sum(r.cost_usd for r in records))


def test_rate_limit_is_retried_by_the_sdk_then_succeeds(api):
    api.queue(http_error(429, "rate_limit_error", repeat=2), reply("made it"))
    assert "".join(session().send("hi")) == "made it"
    assert len(api.requests) == 3


@pytest.mark.parametrize(
    "status, error_type, attempts, expected, message",
    [
        (401, "authentication_error", 1, errors.AuthError, "Claude rejected the API key (401): check ANTHROPIC_API_KEY"),
        (429, "rate_limit_error", 3, errors.RateLimitError, "Claude's rate limit was reached (429)"),
        (529, "overloaded_error", 3, errors.OverloadedError, "Claude is overloaded (529)"),
        (500, "api_error", 3, errors.ServerError, "Claude had a server error (500)"),
        (404, "not_found_error", 1, errors.RequestError, "Claude does not know the model 'claude-haiku-4-5' (404)"),
    ],
)
def test_http_errors_become_one_clear_sentence_and_the_session_goes_on(
    api, status, error_type, attempts, expected, message
):
    # The SDK retries 429 and 5xx twice by itself; then the error is ours to explain.
    api.queue(http_error(status, error_type, repeat=attempts))
    chat = session()
    with pytest.raises(expected) as caught:
        "".join(chat.send("hi"))
    text = str(caught.value)
    assert text.startswith(message) and "\n" not in text and TEST_KEY not in text
    assert chat.messages[-1].status == FAILED and chat.messages[-1].error == text
    assert chat.records[-1].status == FAILED
    assert len(api.requests) == attempts
    assert "".join(chat.send("again")) == "echo: again"  # the next request is valid and works
    assert [m["content"] for m in api.requests[-1]["messages"]] == ["again"]


def test_error_event_mid_stream_keeps_the_partial_reply(api):
    api.queue(stream_error("partial words here", "overloaded_error"))
    chat = session()
    seen = []
    with pytest.raises(errors.StreamError, match="overloaded right now and the reply broke off; the partial reply is kept"):
        for chunk in chat.send("hi"):
            seen.append(chunk)
    assert "".join(seen) == "partial words here"
    assert chat.messages[-1].text == "partial words here" and chat.messages[-1].status == FAILED
    assert chat.records[-1].usage.input_tokens > 0


def test_connection_cut_mid_stream_keeps_the_partial_reply(api):
    api.queue(cut("cut off right"))
    chat = session()
    with pytest.raises(errors.ConnectionLostError, match="connection to Claude dropped mid-reply"):
        "".join(chat.send("hi"))
    assert chat.messages[-1].text == "cut off right"


def test_stall_past_the_read_timeout_is_a_timeout(api):
    api.queue(reply("slow", delay=1.0))
    backend = AnthropicBackend("claude-haiku-4-5", anthropic.Anthropic(timeout=0.3, max_retries=0))
    _, _, error = stream_all(backend)
    assert isinstance(error, errors.TimeoutError_)


def test_unreachable_server(api, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")
    backend = AnthropicBackend("claude-haiku-4-5", anthropic.Anthropic(max_retries=0))
    _, _, error = stream_all(backend)
    assert isinstance(error, errors.ConnectionLostError)
    assert str(error).startswith("Could not reach Claude at http://127.0.0.1:9")


def test_no_credential_says_how_to_set_one(api, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    _, _, error = stream_all(AnthropicBackend())
    assert isinstance(error, errors.NoCredentialError)
    assert "export ANTHROPIC_API_KEY" in str(error)
    assert api.requests == []


def test_stream_ending_without_message_stop_is_incomplete(api):
    api.queue(reply("half", stop_reason=None))
    chat = session()
    with pytest.raises(errors.ConnectionLostError, match="ended before Claude finished"):
        "".join(chat.send("hi"))
    assert chat.messages[-1].text == "half"


def test_a_stop_keeps_the_partial_reply_marked_stopped(api):
    api.queue(reply("a b c d e f", delay=0.5))  # the reply's job streams on its own: stop it while it does
    chat = session()
    chunks = chat.send("hi")
    assert next(chunks) == "a " and next(chunks) == "b "
    chunks.close()  # what a face does when the user presses stop
    assert chat.messages[-1].text == "a b " and chat.messages[-1].status == STOPPED
    assert chat.records[-1].status == STOPPED and chat.records[-1].usage.input_tokens > 0
    assert "".join(chat.send("next")) == "echo: next"
    assert [m["content"] for m in api.requests[-1]["messages"]] == ["hi", "a b ", "next"]


def test_unknown_model_shows_unknown_cost(api):
    chat = session(model="claude-experimental-x")
    "".join(chat.send("hi"))
    assert chat.records[-1].cost_usd is None and chat.totals.cost_usd is None


def stop_after(chat, text, chunks):
    """Send `text` and stop the reply after `chunks` chunks, as a face's stop does; what was streamed."""
    stream = chat.send(text)
    streamed = "".join(next(stream) for _ in range(chunks))
    stream.close()
    return streamed


def test_a_stopped_reply_counts_what_was_streamed_with_claudes_counter_as_an_estimate(api):
    api.queue(reply(" ".join(f"w{i}" for i in range(60)), delay=0.02), reply("one two three"))
    chat = session()
    streamed = stop_after(chat, "hi", 17)
    record, kept = chat.records[-1], chat.messages[-1].text
    # The reply runs ahead of its viewer until the stop reaches it: what is kept is at least what was shown.
    assert kept.startswith(streamed) and len(streamed.split()) == 17
    # message_start says 1 output token and message_delta never came: Claude's count of the kept words is used.
    assert record.status == STOPPED and record.usage.output_tokens == len(kept.split()) < 60
    assert output_estimated(record)
    assert api.count_requests[-1]["messages"] == [{"role": "user", "content": kept}]
    counted = len(api.count_requests)
    "".join(chat.send("again"))
    finished = chat.records[-1]
    assert finished.usage.output_tokens == 3 and not output_estimated(finished)
    assert len(api.count_requests) == counted  # a finished reply comes with Claude's own count


def test_a_cut_reply_is_counted_too_and_without_the_counter_by_characters(api):
    api.queue(cut("cut off right here"))
    chat = session()
    with pytest.raises(errors.ConnectionLostError):
        "".join(chat.send("hi"))
    assert chat.records[-1].usage.output_tokens == 4 and output_estimated(chat.records[-1])
    api.count_tokens_status = 500  # the counter fails: about 4 characters a token
    api.queue(reply("abcdefgh " * 30, delay=0.02))  # slow enough for the stop to land mid-reply
    streamed = stop_after(chat, "more", 10)
    kept = chat.messages[-1].text
    assert streamed == "abcdefgh " * 10 and kept.startswith(streamed) and kept != "abcdefgh " * 30
    assert chat.records[-1].usage.output_tokens == estimate_tokens(kept) >= 23


def test_a_reply_failing_before_any_text_counts_no_output(api):
    api.queue(http_error(401, "authentication_error"))
    chat = session()
    with pytest.raises(errors.AuthError):
        "".join(chat.send("hi"))
    assert chat.records[-1].usage.output_tokens == 0 and not output_estimated(chat.records[-1])
    assert api.count_requests == []


@pytest.mark.parametrize("model, words, prompt_cache, sent", [
    ("claude-haiku-4-5", 1, True, [1, 3, 5, 5, 5]),  # far under 4,096 tokens: sliding keeps both exchanges
    ("claude-sonnet-4-6", 1000, True, [1, 3, 5, 3, 5]),  # one exchange reaches 1,024: a block goes, the start holds
    ("claude-sonnet-4-6", 1000, False, [1, 3, 5, 5, 5]),  # nothing is cached with caching off: it slides
])
def test_a_window_of_2_drops_a_block_only_when_the_cache_can_hit(api, model, words, prompt_cache, sent):
    chat = session(model=model, window=2, prompt_cache=prompt_cache)
    for turn in range(5):
        "".join(chat.send(f"{turn} " + "word " * words))
    assert [len(body["messages"]) for body in api.requests] == sent
