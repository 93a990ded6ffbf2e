"""Which past exchanges a request carries: the window policy, as pure functions.

The window counts *usable exchanges* (a user message and its reply, both with
text), oldest first. What is sent is always a contiguous tail of them,
`exchanges[first_sent(...):]`, and never more than the window.

Two policies:

- `SLIDE`: the plain slide. Once the window is full, the oldest exchange is
  dropped every turn, so the first message of every request changes and no
  request can reuse a cached prefix.
- `CACHE_AWARE` (the default): once the window is full, old exchanges are
  dropped in a block, so the start stays put for several turns; each of those
  requests begins with exactly the prefix the previous one sent, which Claude's
  prompt cache bills at 0.1x and llama.cpp reuses from its KV cache. A block
  is only dropped when the cache can hit: when the exchanges it would keep
  cannot reach the model's minimum cacheable prefix, nothing would be cached
  either way, so that turn slides instead and the whole window is sent.

Past exchanges never change, so the start is a deterministic recurrence over
the history from its first exchange: every view that calls `first_sent` with the
same arguments gets the same answer, and the start never moves back as the
chat grows.
"""

from __future__ import annotations

from itertools import accumulate
from typing import Sequence

CACHE_AWARE = "cache"
SLIDE = "slide"
POLICIES = (CACHE_AWARE, SLIDE)


def estimate_tokens(text: str) -> int:
    """A rough token count (about 4 characters a token), for sizing the window
    only: an estimate, never a billed or displayed count."""
    return tokens_for_chars(len(text))


def tokens_for_chars(chars: int) -> int:
    """`estimate_tokens` of a text `chars` characters long (the store sums lengths, not texts)."""
    return -(-chars // 4)


def _kept_after_drop(recent: Sequence[int], window: int, min_prefix_tokens: int) -> int:
    """How many exchanges stay when a full window lets go of old ones; `recent`
    holds the sizes of the latest window - 1 exchanges, oldest first.

    Half the window is dropped (ceil(window / 2) kept). When the kept exchanges
    are estimated below `min_prefix_tokens` (a shorter prefix is not cached at
    all), more are kept, up to window - 1, if that reaches the minimum. When
    even window - 1 would not, dropping a block would forget exchanges for no
    cache hit: only the oldest one goes (the plain slide), so `window` stay.
    """
    keep = window - window // 2
    if min_prefix_tokens <= 0:
        return keep
    latest = list(accumulate(reversed(recent)))  # latest[k - 1]: tokens of the last k exchanges
    return next((k for k in range(keep, window) if latest[k - 1] >= min_prefix_tokens), window)


def first_sent(sizes: Sequence[int], window: int, policy: str = CACHE_AWARE, min_prefix_tokens: int = 0,
               resume: tuple[int, int] = (0, 0)) -> int:
    """Index of the first past exchange the next request carries.

    sizes: one estimated token count per usable exchange, oldest first (only
        its length matters when `min_prefix_tokens` is 0; `[0] * n` will do).
    window: at most this many exchanges are sent; 0 sends them all.
    policy: `CACHE_AWARE` or `SLIDE`.
    min_prefix_tokens: the model's minimum cacheable prefix (0 for a local model).
    resume: (k, first_sent(sizes[:k], ...)) when known: the recurrence goes on from
        there, so a long conversation's start is computed once, then per new exchange.

    Always 0 <= result <= len(sizes) and len(sizes) - result <= window (when
    window > 0); for fixed arguments the result never decreases as sizes grows.
    """
    if window < 0:
        raise ValueError("window must be 0 (no cap) or a positive number of exchanges")
    if policy not in POLICIES:
        raise ValueError(f"unknown window policy {policy!r}: use one of {', '.join(POLICIES)}")
    count = len(sizes)
    if window == 0 or count <= window:
        return 0
    if policy == SLIDE:
        return count - window
    start = resume[1] if resume[0] > window else 0
    for seen in range(max(window, resume[0]) + 1, count + 1):  # the request after `seen` exchanges
        if seen - start > window:
            start = seen - _kept_after_drop(sizes[seen - window + 1 : seen], window, min_prefix_tokens)
    return start
