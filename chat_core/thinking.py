"""Extended thinking: which shape of request each model takes, as data (thinking.json).

`thinking_params(model, level, max_tokens)` gives the Messages API arguments for a setting
(`off`, `low`, `medium`, `high`): adaptive thinking with an effort level for the models that
take it (`ThinkingConfigAdaptiveParam` + `OutputConfigParam`), `{"type": "enabled",
"budget_tokens": N}` (`ThinkingConfigEnabledParam`) for the 4.5 models, nothing for a model
without it. A pure function; the budget is added to max_tokens so the answer keeps its room.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Mapping

OFF = "off"
LEVELS = (OFF, "low", "medium", "high")
ADAPTIVE, BUDGET = "adaptive", "budget"


@lru_cache(maxsize=1)
def _table() -> Mapping:
    return json.loads(resources.files("chat_core").joinpath("thinking.json").read_text("utf-8"))


def thinking_shape(model: str) -> str | None:
    """ADAPTIVE, BUDGET or None (the model does not think); a dated id takes its family's shape."""
    models = _table()["models"]
    name = model if model in models else next(
        (known for known in sorted(models, key=len, reverse=True) if model.startswith(known + "-")), None)
    return None if name is None else models[name]


def thinking_params(model: str, level: str, max_tokens: int) -> tuple[dict, int]:
    """(extra arguments for messages.stream, max_tokens to ask for) for thinking at `level`."""
    shape = thinking_shape(model)
    if level == OFF or level not in LEVELS or shape is None:
        return {}, max_tokens
    setting = _table()["levels"][level]
    budget = setting["budget_tokens"]
    if shape == ADAPTIVE:
        return ({"thinking": {"type": "adaptive", "display": "summarized"},
                 "output_config": {"effort": setting["effort"]}}, max_tokens + budget)
    return {"thinking": {"type": "enabled", "budget_tokens": budget}}, max_tokens + budget


def can_think(model: str) -> bool:
    return thinking_shape(model) is not None
