"""The loopback server bills prompt caching by the documented rules, checked through the real SDK.

Token counts are the stand-in tokenizer's: 8 for the request, one per word,
3 more per message. With system "Be brief." (2 words) the prefix up to the
system prompt is 10 tokens, and an n-word message adds n + 3.
"""

import anthropic
import pytest

from chat_core.backends.anthropic_backend import AnthropicBackend
from chat_core.backends.base import Reply
from chat_core.conversation import Message
from chat_core.usage import Usage
from tests.conftest import TEST_KEY
from tests.loopback_api import count_tokens, reply

AUTO = {"type": "ephemeral"}
SONNET = "claude-sonnet-4-6"  # caches prefixes of 1,024 tokens or more
HAIKU = "claude-haiku-4-5"  # 4,096 or more


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(api, monkeypatch):
    clock = Clock()
    monkeypatch.setattr(api.cache, "clock", clock)
    return clock


@pytest.fixture
def client(api):
    return anthropic.Anthropic(api_key=TEST_KEY, base_url=api.url)


def words(count: int, word: str = "w") -> str:
    return " ".join([word] * count)


def chat(*texts: str) -> list[dict]:
    """Messages from alternating user and assistant texts, starting with the user."""
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": text} for i, text in enumerate(texts)]


def usage(client, messages, model=SONNET, system="Be brief.", **kw) -> tuple[int, int, int]:
    """(input_tokens, cache_creation_input_tokens, cache_read_input_tokens) as the SDK reports them."""
    with client.messages.stream(model=model, max_tokens=16, system=system, messages=messages, **kw) as stream:
        got = stream.get_final_message().usage
    return got.input_tokens, got.cache_creation_input_tokens, got.cache_read_input_tokens


BIG = words(1500)  # 1,503 tokens as a message: a 1,513-token prefix with the system prompt


def test_first_request_writes_and_the_next_with_the_same_prefix_reads(client, clock):
    assert usage(client, chat(BIG), cache_control=AUTO) == (0, 1513, 0)
    # The next turn: the same first message, then the reply (2 words) and a new message (4 words).
    assert usage(client, chat(BIG, "a b", "c d e f"), cache_control=AUTO) == (0, 5 + 7, 1513)
    # And the one after reads all of that.
    assert usage(client, chat(BIG, "a b", "c d e f", "g", "h"), cache_control=AUTO) == (0, 4 + 4, 1525)


def test_without_cache_control_the_usage_is_plain_input_as_before(api, client, clock):
    usage(client, chat(BIG), cache_control=AUTO)
    messages = chat(BIG, "a b", "c d e f")
    assert usage(client, messages) == (count_tokens(api.requests[-1]), 0, 0) == (1525, 0, 0)


def test_a_changed_first_message_misses_everything(client, clock):
    usage(client, chat(BIG, "a b", "c"), cache_control=AUTO)
    changed = chat(words(1500, "v"), "a b", "c", "d", "e")
    assert usage(client, changed, cache_control=AUTO) == (0, 1513 + 5 + 4 + 4 + 4, 0)
    # So does another system prompt: it comes first in the prefix.
    assert usage(client, chat(BIG, "a b", "c"), system="Be short.", cache_control=AUTO) == (0, 1522, 0)


def test_below_the_model_minimum_nothing_is_cached(client, clock):
    assert usage(client, chat(BIG), model=HAIKU, cache_control=AUTO) == (1513, 0, 0)
    assert usage(client, chat(BIG, "a b", "c"), model=HAIKU, cache_control=AUTO) == (1522, 0, 0)
    long = words(4100)
    assert usage(client, chat(long), model=HAIKU, cache_control=AUTO) == (0, 4113, 0)
    assert usage(client, chat(long, "a b", "c"), model=HAIKU, cache_control=AUTO) == (0, 9, 4113)


def test_entries_live_five_minutes_from_their_last_use(client, clock):
    assert usage(client, chat(BIG), cache_control=AUTO) == (0, 1513, 0)
    clock.now += 299
    assert usage(client, chat(BIG), cache_control=AUTO) == (0, 0, 1513)  # the read refreshes the entry
    clock.now += 299
    assert usage(client, chat(BIG), cache_control=AUTO) == (0, 0, 1513)
    clock.now += 300.5
    assert usage(client, chat(BIG), cache_control=AUTO) == (0, 1513, 0)  # expired: written again
    clock.now += 3000
    long_lived = {"type": "ephemeral", "ttl": "1h"}
    assert usage(client, chat(BIG), cache_control=long_lived) == (0, 1513, 0)
    clock.now += 3500
    assert usage(client, chat(BIG), cache_control=AUTO) == (0, 0, 1513)


def test_the_lookup_looks_back_twenty_block_boundaries_from_each_breakpoint(client, clock):
    # Blocks: 0 the system prompt, then one per message. An entry is written at block 1.
    assert usage(client, chat(BIG), cache_control=AUTO) == (0, 1513, 0)
    short = ["x"] * 20  # 4 tokens each
    # 21 messages: the breakpoint is on block 21; boundaries 2..21 are checked and nothing is found.
    assert usage(client, chat(BIG, *short), cache_control=AUTO) == (0, 1513 + 20 * 4, 0)
    # 19 messages: the breakpoint is on block 19; boundaries 0..19 are checked and block 1 is found.
    assert usage(client, chat(BIG, *short[:18]), cache_control=AUTO) == (0, 18 * 4, 1513)


def test_explicit_breakpoints_write_at_each_and_are_limited_to_four(client, clock):
    marked = {"role": "user", "content": [{"type": "text", "text": BIG, "cache_control": AUTO}]}
    tail = chat("x", "y", "z")[1:]
    # The breakpoint on the first message writes it; what comes after is plain input.
    assert usage(client, [marked, *tail]) == (8, 1513, 0)
    # With automatic caching too, the last block is a second breakpoint: read 1513, write the rest.
    assert usage(client, [marked, *tail], cache_control=AUTO) == (0, 8, 1513)
    many = {"role": "user", "content": [{"type": "text", "text": f"part {i}", "cache_control": AUTO} for i in range(4)]}
    with pytest.raises(anthropic.BadRequestError):
        usage(client, [many], cache_control=AUTO)


def test_the_backend_asks_for_automatic_caching_by_default(api, client, monkeypatch):
    def sent_cache_control(backend):
        "".join(backend.stream("Be brief.", [Message("user", "hello")], 16))
        return api.requests[-1].get("cache_control")

    backend = AnthropicBackend(SONNET, client)
    assert backend.prompt_cache and sent_cache_control(backend) == {"type": "ephemeral"}
    backend.prompt_cache = False  # a face flips it at run time
    assert sent_cache_control(backend) is None
    assert sent_cache_control(AnthropicBackend(SONNET, client, prompt_cache=False)) is None
    monkeypatch.setenv("CHAT_PROMPT_CACHE", "off")
    assert sent_cache_control(AnthropicBackend(SONNET, client)) is None
    assert sent_cache_control(AnthropicBackend(SONNET, client, prompt_cache=True)) == {"type": "ephemeral"}


def test_the_backend_reports_cache_writes_and_reads(api, client, clock):
    api.queue(reply("ok", repeat=2))
    backend = AnthropicBackend(SONNET, client)
    first = [Message("user", BIG)]
    second = first + [Message("assistant", "a b"), Message("user", "c d e f")]
    replies = [Reply(backend.name, backend.model) for _ in range(2)]
    for messages, result in zip((first, second), replies):
        "".join(backend.stream("Be brief.", messages, 16, result))
    assert replies[0].usage == Usage(0, 1, 1513, 0)
    assert replies[1].usage == Usage(0, 1, 12, 1513)
