"""What the same turns would have cost under other choices, computed from the
recorded token counts and the prices (labelled as computed wherever shown):

- with no prompt caching: every prompt token at the plain input price;
- with the plain sliding window (one exchange dropped a turn): no cached prefix
  survives a full window, so every prompt token is plain input, and the prompt
  holds the last N exchanges; its size is the recorded input scaled by the
  estimated size of that prompt against the one actually sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .conversation import USER, Message, exchange_sizes, usable_exchanges
from .usage import TurnRecord, Usage, cost, cost_without_cache, price_for
from .window import estimate_tokens


@dataclass(frozen=True)
class WhatIf:
    turn: int
    no_cache_usd: float | None
    plain_slide_input_tokens: int
    plain_slide_usd: float | None


def plain_slide_tokens(sizes: Sequence[int], sent_exchanges: int, window: int, fixed: int, actual: int) -> int:
    """Input tokens of the plain slide's prompt for a turn whose prompt actually held the
    last `sent_exchanges` of the exchanges sized `sizes` plus `fixed` tokens (persona and
    new message) and was billed `actual` input tokens in all."""
    plain = len(sizes) if window == 0 else min(window, len(sizes))
    estimated_sent = fixed + sum(sizes[len(sizes) - sent_exchanges:])
    estimated_plain = fixed + sum(sizes[len(sizes) - plain:])
    return round(actual * estimated_plain / max(estimated_sent, 1))


def what_if(system: str, messages: Sequence[Message], records: Sequence[TurnRecord], window: int) -> list[WhatIf]:
    """Per turn, the no-caching and plain-slide counterfactuals (`window` as set now)."""
    position = {m.id: i for i, m in enumerate(messages) if m.id is not None}
    answered = {m.id: m.reply_to for m in messages if m.id is not None}
    results = []
    for record in records:
        price = price_for(record.backend, record.model)
        question = position.get(answered.get(record.message_id))
        actual = record.usage.all_input_tokens
        plain_tokens = actual
        if question is not None and messages[question].role == USER:
            before = messages[:question]
            sizes = exchange_sizes(before, usable_exchanges(before))
            fixed = estimate_tokens(system) + estimate_tokens(messages[question].text)
            plain_tokens = plain_slide_tokens(sizes, (record.messages_sent - 1) // 2, window, fixed, actual)
        plain_usage = Usage(plain_tokens, record.usage.output_tokens)
        results.append(WhatIf(record.turn, cost_without_cache(record.usage, price), plain_tokens,
                              cost(plain_usage, price)))
    return results
