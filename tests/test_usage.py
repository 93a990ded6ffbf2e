from chat_core.usage import TurnRecord, Usage, cost, format_cost, price_for, totals


def test_prices_come_from_the_table_with_cache_multipliers():
    haiku = price_for("anthropic", "claude-haiku-4-5")
    assert (haiku.input, haiku.output) == (1, 5)
    assert haiku.cache_write == 1.25 and abs(haiku.cache_read - 0.1) < 1e-12
    assert (price_for("anthropic", "claude-sonnet-4-5").input, price_for("anthropic", "claude-opus-4-5").output) == (3, 25)
    # a dated model id takes its family's price
    assert price_for("anthropic", "claude-haiku-4-5-20251001") == haiku


def test_cost_of_a_turn():
    usage = Usage(input_tokens=1_000_000, output_tokens=200_000, cache_write_tokens=100_000, cache_read_tokens=1_000_000)
    assert abs(cost(usage, price_for("anthropic", "claude-haiku-4-5")) - (1 + 1 + 0.125 + 0.1)) < 1e-9


def test_unknown_model_cost_is_unknown_never_zero_and_local_is_free():
    assert price_for("anthropic", "claude-future-9") is None
    assert cost(Usage(10, 10), None) is None
    assert format_cost(None) == "unknown"
    # a tiny cost is never shown as if it were free
    assert (format_cost(0), format_cost(0.00002), format_cost(0.00005), format_cost(0.0281)) == (
        "$0.0000", "<$0.0001", "$0.0001", "$0.0281")
    assert cost(Usage(10_000, 10_000), price_for("local", "SmolLM2-135M-Instruct")) == 0


def record(turn, tokens, price):
    return TurnRecord(turn, Usage(tokens, tokens), 1, "m", "anthropic", 0.1, 0.2, "complete", price)


def test_totals_add_up_and_turn_unknown_once_a_cost_is():
    assert totals([record(1, 10, 0.5), record(2, 5, 0.25)]).cost_usd == 0.75
    assert totals([record(1, 10, 0.5), record(2, 5, 0.25)]).usage.output_tokens == 15
    assert totals([record(1, 10, 0.5), record(2, 5, None)]).cost_usd is None
