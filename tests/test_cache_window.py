"""The cache-aware window policy (chat_core/window.py) and the cost of a turn with cache tokens."""

import pytest
from hypothesis import given, settings, strategies as st

from chat_core.usage import (
    Usage, cost, cost_without_cache, input_cost, min_cacheable_tokens, price_for, uncached,
)
from chat_core.window import CACHE_AWARE, POLICIES, SLIDE, estimate_tokens, first_sent

HAIKU = price_for("anthropic", "claude-haiku-4-5")


def starts(window, turns, policy=CACHE_AWARE, size=0, min_prefix_tokens=0):
    """The first exchange sent at each turn of a chat, turn 0 having no history."""
    return [first_sent([size] * n, window, policy, min_prefix_tokens) for n in range(turns)]


def test_the_plain_slide_drops_one_exchange_a_turn_once_the_window_is_full():
    assert starts(3, 8, SLIDE) == [0, 0, 0, 0, 1, 2, 3, 4]
    assert starts(0, 6, SLIDE) == [0] * 6


def test_the_cache_aware_window_drops_half_the_window_at_once_and_holds_the_start():
    assert starts(8, 20) == [0] * 9 + [5] * 5 + [10] * 5 + [15]
    assert starts(4, 12) == [0] * 5 + [3] * 3 + [6] * 3 + [9]
    sent = [n - start for n, start in enumerate(starts(8, 60))]
    assert max(sent) == 8 and sent[20:30] == [5, 6, 7, 8, 4, 5, 6, 7, 8, 4]


def test_within_a_block_each_request_starts_with_the_previous_request():
    """The sent prefix stays identical: request n+1 begins with all that request n sent."""
    window, history = 6, [f"exchange {i}" for i in range(40)]
    requests = [history[first_sent([0] * n, window):n] + [f"new {n}"] for n in range(40)]
    held = 0
    for before, after in zip(requests, requests[1:]):
        if after[0] == before[0]:
            held += 1
            assert after[: len(before) - 1] == before[:-1]
    assert held >= 40 * 2 // 3  # the start moves at most once every three turns


def test_window_zero_sends_everything_and_one_can_only_slide():
    assert starts(0, 10) == [0] * 10
    assert starts(1, 6) == [0, 0, 1, 2, 3, 4]


def test_the_kept_block_reaches_the_minimum_cacheable_prefix_when_it_can():
    # Half of 8 is 4 exchanges: 4 x 1,000 tokens is below 4,096, so 5 are kept.
    assert first_sent([1000] * 9, 8, min_prefix_tokens=4096) == 4
    assert first_sent([1000] * 9, 8, min_prefix_tokens=0) == 5
    # The newest exchanges count, not the oldest: a long old exchange does not help.
    assert first_sent([9000] + [1000] * 8, 8, min_prefix_tokens=4096) == 4
    assert first_sent([1000] * 5 + [3000] * 4, 8, min_prefix_tokens=4096) == 5
    # Out of reach even with 7 kept: nothing would be cached, so the window slides and sends all 8.
    assert first_sent([100] * 9, 8, min_prefix_tokens=4096) == 1


def test_below_the_cache_minimum_the_window_slides_and_sends_all_of_it():
    """`--window 2` on Claude with short messages: the 2 latest exchanges go, not 1."""
    short = [20] * 12
    assert [first_sent(short[:n], 2, CACHE_AWARE, 4096) for n in range(8)] == [0, 0, 0, 1, 2, 3, 4, 5]
    assert [first_sent(short[:n], 2, SLIDE, 4096) for n in range(8)] == [0, 0, 0, 1, 2, 3, 4, 5]
    assert starts(2, 8, size=20) == [0, 0, 0, 2, 2, 4, 4, 6]  # the local model (minimum 0) still drops blocks
    # Once the latest exchanges grow past the minimum, blocks are dropped again and the start holds.
    growing = [20] * 10 + [3000] * 10
    sent = [n - first_sent(growing[:n], 4, CACHE_AWARE, 4096) for n in range(21)]
    assert sent[4:12] == [4] * 8  # short exchanges (3 latest under 4,096): the whole window every turn
    assert sent[12:] == [2, 3, 4] * 3  # long ones: 2 of them reach 4,096, so half the window goes


def test_a_chat_never_sends_fewer_exchanges_than_the_slide_when_nothing_can_be_cached():
    for window in range(1, 12):
        for n in range(40):
            sizes = [50] * n
            assert first_sent(sizes, window, CACHE_AWARE, 1024) == first_sent(sizes, window, SLIDE)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError):
        first_sent([0], -1)
    with pytest.raises(ValueError):
        first_sent([0], 2, "sideways")


def test_token_estimate_is_about_four_characters_a_token():
    assert estimate_tokens("") == 0 and estimate_tokens("abcd") == 1 and estimate_tokens("abcde") == 2


sizes = st.lists(st.integers(min_value=0, max_value=5000), max_size=60)


@settings(max_examples=300)
@given(sizes, st.integers(min_value=0, max_value=12), st.sampled_from(POLICIES),
       st.sampled_from([0, 1024, 4096]))
def test_any_history_gives_a_valid_start_within_the_window_that_never_moves_back(
    history, window, policy, minimum
):
    previous = 0
    for n in range(len(history) + 1):
        start = first_sent(history[:n], window, policy, minimum)
        assert 0 <= start <= n
        if window:
            assert n - start <= window
            assert n - start >= min(n, 1)  # something of the history is always sent
        else:
            assert start == 0
        assert start >= previous
        previous = start


@given(sizes, st.integers(min_value=1, max_value=12), st.sampled_from([0, 4096]))
def test_the_cache_aware_window_sends_at_least_half_the_window_and_never_more_than_the_slide(
    history, window, minimum
):
    n = len(history)
    start = first_sent(history, window, CACHE_AWARE, minimum)
    assert start >= first_sent(history, window, SLIDE, minimum)
    assert n - start >= min(n, window - window // 2)


def test_minimum_cacheable_prefix_is_data_per_model_family():
    assert min_cacheable_tokens("claude-haiku-4-5") == 4096
    assert min_cacheable_tokens("claude-haiku-4-5-20251001") == 4096
    assert min_cacheable_tokens("claude-sonnet-4-5") == min_cacheable_tokens("claude-sonnet-4-6") == 1024
    assert min_cacheable_tokens("claude-opus-4-5") == min_cacheable_tokens("claude-opus-4-7") == 4096
    assert min_cacheable_tokens("claude-future-9") == 0


def test_cost_of_a_turn_with_cache_tokens_and_without_caching():
    usage = Usage(input_tokens=200_000, output_tokens=100_000, cache_write_tokens=400_000, cache_read_tokens=2_000_000)
    # input 0.2 + write 400k x 1.25 = 0.5 + read 2M x 0.1 = 0.2; output 100k x 5 = 0.5
    assert input_cost(usage, HAIKU) == pytest.approx(0.9)
    assert cost(usage, HAIKU) == pytest.approx(1.4)
    assert uncached(usage) == Usage(2_600_000, 100_000)
    assert cost_without_cache(usage, HAIKU) == pytest.approx(2.6 + 0.5)
    sonnet = price_for("anthropic", "claude-sonnet-4-5")
    assert cost_without_cache(usage, sonnet) == pytest.approx(3 * 3.1)
    assert input_cost(usage, None) is None and cost_without_cache(usage, None) is None
    assert cost_without_cache(usage, price_for("local", "SmolLM2-135M-Instruct")) == 0
