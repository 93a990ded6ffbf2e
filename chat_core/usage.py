"""Token usage, per-turn records, running totals and cost. Prices are data (prices.json)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Iterable, Mapping

from .conversation import COMPLETE


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    web_searches: int = 0  # Claude's web search tool, billed per search

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
            self.cache_read_tokens + other.cache_read_tokens,
            self.web_searches + other.web_searches,
        )

    @property
    def all_input_tokens(self) -> int:
        """Every prompt token, cached or not."""
        return self.input_tokens + self.cache_write_tokens + self.cache_read_tokens


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float
    cache_write: float
    cache_read: float
    web_search: float = 0.0  # USD per web search (not per million)


@lru_cache(maxsize=1)
def _price_table() -> Mapping:
    return json.loads(resources.files("chat_core").joinpath("prices.json").read_text("utf-8"))


def _model_entry(model: str) -> Mapping | None:
    """The table's entry for `model`: its own, else its family's for a dated id
    ("claude-haiku-4-5-20251001" is "claude-haiku-4-5"), else None."""
    models = _price_table()["models"]
    name = model if model in models else next(
        (known for known in sorted(models, key=len, reverse=True) if model.startswith(known + "-")),
        None,
    )
    return None if name is None else models[name]


def price_for(backend: str, model: str) -> Price | None:
    """The price of `model`, or None when it is unknown.

    A dated model id takes the price of its family name. A free backend (the
    bundled local model) costs nothing.
    """
    table = _price_table()
    if backend in table["free_backends"]:
        return Price(0.0, 0.0, 0.0, 0.0)
    base = _model_entry(model)
    if base is None:
        return None
    return Price(
        input=base["input"],
        output=base["output"],
        cache_write=base["input"] * table["cache_write_factor"],
        cache_read=base["input"] * table["cache_read_factor"],
        web_search=table["web_search_usd"],
    )


def min_cacheable_tokens(model: str) -> int:
    """The shortest prompt prefix `model` caches, in tokens (a shorter one is
    billed at the plain input price); 0 for a model the table does not know."""
    base = _model_entry(model)
    return 0 if base is None else base["min_cache_tokens"]


def input_cost(usage: Usage, price: Price | None) -> float | None:
    """USD for the input side of `usage`: uncached input, cache writes and cache reads."""
    if price is None:
        return None
    return (
        usage.input_tokens * price.input
        + usage.cache_write_tokens * price.cache_write
        + usage.cache_read_tokens * price.cache_read
    ) / 1_000_000


def cost(usage: Usage, price: Price | None) -> float | None:
    """USD for `usage` at `price`; None (unknown, never 0) without a price."""
    if price is None:
        return None
    return input_cost(usage, price) + usage.output_tokens * price.output / 1_000_000 + usage.web_searches * price.web_search


def uncached(usage: Usage) -> Usage:
    """The same turn had nothing been cached: every prompt token is plain input."""
    return Usage(usage.all_input_tokens, usage.output_tokens, web_searches=usage.web_searches)


def cost_without_cache(usage: Usage, price: Price | None) -> float | None:
    """What `usage` would have cost with no prompt caching (computed, not billed)."""
    return cost(uncached(usage), price)


@dataclass
class TurnRecord:
    """What one turn used and cost."""

    turn: int
    usage: Usage
    messages_sent: int
    model: str
    backend: str
    ttft_s: float | None
    total_s: float | None
    status: str
    cost_usd: float | None
    stop_reason: str | None = None
    # Input tokens this turn would have used with every past exchange sent.
    unwindowed_input_tokens: int | None = None
    message_id: int | None = None  # the reply this turn produced, once stored

    @classmethod
    def from_row(cls, row: Mapping) -> "TurnRecord":
        """The inverse of `as_row`."""
        usage = Usage(row["input_tokens"], row["output_tokens"], row["cache_write_tokens"], row["cache_read_tokens"],
                      row.get("web_searches") or 0)
        fields = ("turn", "messages_sent", "model", "backend", "ttft_s", "total_s", "status", "cost_usd",
                  "stop_reason", "unwindowed_input_tokens", "message_id")
        return cls(usage=usage, **{name: row[name] for name in fields})

    def as_row(self) -> dict:
        return {
            "turn": self.turn,
            "input_tokens": self.usage.input_tokens,
            "output_tokens": self.usage.output_tokens,
            "cache_write_tokens": self.usage.cache_write_tokens,
            "cache_read_tokens": self.usage.cache_read_tokens,
            "web_searches": self.usage.web_searches,
            "messages_sent": self.messages_sent,
            "model": self.model,
            "backend": self.backend,
            "ttft_s": self.ttft_s,
            "total_s": self.total_s,
            "status": self.status,
            "cost_usd": self.cost_usd,
            "stop_reason": self.stop_reason,
            "unwindowed_input_tokens": self.unwindowed_input_tokens,
            "message_id": self.message_id,
        }


def output_is_estimate(backend: str, status: str, output_tokens: int) -> bool:
    """Whether a turn's output count is an estimate: a Claude reply that did not finish (stopped,
    cut, broken off) never got Claude's own count, so its text was counted. The local model's
    counts are its own. (The store sums the same rule in SQL: chat_core.loading.TOTALS.)"""
    return backend == "anthropic" and status != COMPLETE and output_tokens > 0


@dataclass
class Totals:
    usage: Usage = field(default_factory=Usage)
    cost_usd: float | None = 0.0
    turns: int = 0
    all_local: bool = False  # every turn was on the bundled local model (free)
    estimated: bool = False  # some turn's output count is an estimate (`output_is_estimate`)

    def __add__(self, other: "Totals") -> "Totals":
        cost_usd = None if self.cost_usd is None or other.cost_usd is None else self.cost_usd + other.cost_usd
        turns = self.turns + other.turns
        all_local = turns > 0 and all(part.all_local for part in (self, other) if part.turns)
        return Totals(self.usage + other.usage, cost_usd, turns, all_local, self.estimated or other.estimated)


def totals(records: Iterable[TurnRecord]) -> Totals:
    """Running totals; the cost is unknown as soon as one turn's cost is."""
    result = Totals(all_local=True)
    for record in records:
        result.usage = result.usage + record.usage
        result.turns += 1
        result.all_local = result.all_local and record.backend == "local"
        result.estimated = result.estimated or output_is_estimate(record.backend, record.status,
                                                                  record.usage.output_tokens)
        if result.cost_usd is not None and record.cost_usd is not None:
            result.cost_usd += record.cost_usd
        else:
            result.cost_usd = None
    result.all_local = result.all_local and result.turns > 0
    return result


def format_cost(value: float | None) -> str:
    """Dollars to the hundredth of a cent; a cost too small to show so is `<$0.0001`, never `$0.0000`
    (which reads as free)."""
    if value is None:
        return "unknown"
    return "<$0.0001" if 0 < value < 0.00005 else f"${value:.4f}"


def known_models() -> list[str]:
    """Claude models with a known price, for pickers."""
    return list(_price_table()["models"])
