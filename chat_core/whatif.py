"""What the same turns would have cost under other choices, computed from the
recorded token counts and the prices (labelled as computed wherever shown):

- with no prompt caching: every prompt token at the plain input price;
- with the plain sliding window (one exchange dropped a turn): no cached prefix
  survives a full window, so every prompt token is plain input, and the prompt
  holds the last N exchanges; its size is the recorded input scaled by the
  estimated size of that prompt against the one actually sent.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from itertools import accumulate
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


def plain_slide_tokens(running: Sequence[int], count: int, sent_exchanges: int, window: int, fixed: int,
                       actual: int) -> int:
    """Input tokens of the plain slide's prompt for a turn that followed `count` exchanges,
    whose prompt actually held the last `sent_exchanges` of them plus `fixed` tokens (persona
    and new message) and was billed `actual` input tokens in all. `running[k]` is the
    estimated size of the first k exchanges, so this takes constant time."""
    plain = count if window == 0 else min(window, count)
    sent = min(max(sent_exchanges, 0), count)
    estimated_sent = fixed + running[count] - running[count - sent]
    estimated_plain = fixed + running[count] - running[count - plain]
    return round(actual * estimated_plain / max(estimated_sent, 1))


def what_if(system: str, messages: Sequence[Message], records: Sequence[TurnRecord], window: int) -> list[WhatIf]:
    """Per turn, the no-caching and plain-slide counterfactuals (`window` as set now).

    Linear in the length of the conversation: the exchanges before a question are the
    conversation's exchanges that start before it, so one pass sizes them all, and each
    turn reads running totals."""
    position = {m.id: i for i, m in enumerate(messages) if m.id is not None}
    answered = {m.id: m.reply_to for m in messages if m.id is not None}
    pairs = usable_exchanges(messages)
    starts = [pair.user_index for pair in pairs]
    running = list(accumulate(exchange_sizes(messages, pairs), initial=0))
    persona = estimate_tokens(system)
    results = []
    for record in records:
        price = price_for(record.backend, record.model)
        question = position.get(answered.get(record.message_id))
        actual = record.usage.all_input_tokens
        plain_tokens = actual
        if question is not None and messages[question].role == USER:
            fixed = persona + estimate_tokens(messages[question].text)
            plain_tokens = plain_slide_tokens(running, bisect_left(starts, question), (record.messages_sent - 1) // 2,
                                              window, fixed, actual)
        plain_usage = Usage(plain_tokens, record.usage.output_tokens, web_searches=record.usage.web_searches)
        results.append(WhatIf(record.turn, cost_without_cache(record.usage, price), plain_tokens,
                              cost(plain_usage, price)))
    return results
