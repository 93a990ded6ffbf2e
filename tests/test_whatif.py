"""The Tokens page's counterfactual costs (chat_core/whatif.py) give the figures of their direct
definition (each turn's prompt rebuilt from the history before its question), which is quadratic;
what_if reads running totals instead (its time: bench/bench_scale.py)."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from chat_core.conversation import ASSISTANT, USER, Message, exchange_sizes, usable_exchanges
from chat_core.usage import TurnRecord, Usage, cost, cost_without_cache, price_for
from chat_core.whatif import what_if
from chat_core.window import estimate_tokens


def direct(system, messages, records, window):
    """The definition, turn by turn over the history before each question (quadratic)."""
    position = {m.id: i for i, m in enumerate(messages)}
    out = []
    for record in records:
        reply = messages[position[record.message_id]]
        question = position[reply.reply_to]
        before = messages[:question]
        sizes = exchange_sizes(before, usable_exchanges(before))
        fixed = estimate_tokens(system) + estimate_tokens(messages[question].text)
        sent = (record.messages_sent - 1) // 2
        plain = len(sizes) if window == 0 else min(window, len(sizes))
        actual = record.usage.all_input_tokens
        tokens = round(actual * (fixed + sum(sizes[len(sizes) - plain:])) / max(fixed + sum(sizes[len(sizes) - sent:]), 1))
        price = price_for(record.backend, record.model)
        out.append((record.turn, cost_without_cache(record.usage, price), tokens, cost(Usage(tokens, record.usage.output_tokens), price)))
    return out


def conversation(turns):
    """Messages and records from (question length, reply length or None for a failed reply, exchanges sent)."""
    messages, records = [], []
    for turn, (asked, answered, sent) in enumerate(turns, start=1):
        question = Message(USER, "q" * asked, id=len(messages) + 1)
        messages.append(question)
        reply = Message(ASSISTANT, "a" * (answered or 0), id=len(messages) + 1, reply_to=question.id)
        messages.append(reply)
        usable_before = sum(1 for a, b, _ in turns[:turn - 1] if a and b)
        records.append(TurnRecord(turn, Usage(50 + 7 * turn, 20, 3 * turn, 11 * turn), 2 * min(sent, usable_before) + 1,
                                  "claude-haiku-4-5", "anthropic", 0.1, 1.0, "complete", None, message_id=reply.id))
    return messages, records


turn_shapes = st.lists(st.tuples(st.integers(0, 400), st.none() | st.integers(0, 400), st.integers(0, 12)),
                       min_size=1, max_size=25)


@settings(max_examples=150, deadline=None)
@given(turn_shapes, st.integers(0, 8))
def test_what_if_gives_the_figures_of_its_definition(turns, window):
    messages, records = conversation(turns)
    got = [(w.turn, w.no_cache_usd, w.plain_slide_input_tokens, w.plain_slide_usd)
           for w in what_if("persona " * 9, messages, records, window)]
    assert got == direct("persona " * 9, messages, records, window)

