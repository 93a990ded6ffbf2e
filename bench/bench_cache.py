"""What the window policy and prompt caching do to a long chat's bill on Claude, and to the
local model's time to first token. Prints figures; asserts nothing.

    python bench/bench_cache.py

Claude: the loopback Messages API (tests/loopback_api.py), which bills prompt caching by
the documented rules, driven through the real SDK by `AnthropicBackend`. Its tokenizer is a
stand-in (one token a word), so the figures are the rules' arithmetic, not Claude's bill.

Each request is built here from `chat_core.window.first_sent`, in `converse`, so the bench
does not depend on how a session wires the window in; `converse` is the one place to switch
to `ChatSession` once it takes a window policy.
"""

from __future__ import annotations

import random
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chat_core.backends.base import Backend, Reply  # noqa: E402
from chat_core.conversation import ASSISTANT, USER, Message  # noqa: E402
from chat_core.usage import Usage, cost, input_cost, min_cacheable_tokens, price_for  # noqa: E402
from chat_core.window import CACHE_AWARE, SLIDE, estimate_tokens, first_sent  # noqa: E402

MODEL = "claude-haiku-4-5"
SYSTEM = "You are a concise, friendly assistant."
CLAUDE_TURNS, CLAUDE_WINDOW, WORDS = 40, 8, 500
LOCAL_TURNS, LOCAL_WINDOW, LOCAL_MAX_TOKENS = 30, 4, 32

VOCABULARY = (
    "the river light harbour keeper winter morning stone garden letter window quiet north market "
    "bridge lantern field orchard candle island story people travel measure careful simple answer "
    "question history weather evening station mountain village copper silver paper engine signal"
).split()


def prose(seed: str, words: int) -> str:
    """Deterministic filler text of `words` words."""
    rng = random.Random(seed)
    return " ".join(rng.choice(VOCABULARY) for _ in range(words)) + "."


@dataclass
class Turn:
    usage: Usage
    exchanges_sent: int
    ttft_s: float | None


def converse(backend: Backend, questions: list[str], window: int, policy: str, min_prefix_tokens: int,
             max_tokens: int) -> Iterator[Turn]:
    """One chat, a turn at a time: each question goes with the past exchanges the window policy picks."""
    history: list[tuple[str, str]] = []  # usable exchanges: (user text, reply text)
    for question in questions:
        sizes = [estimate_tokens(user) + estimate_tokens(answer) for user, answer in history]
        start = first_sent(sizes, window, policy, min_prefix_tokens)
        sent = history[start:]
        messages = [Message(role, text) for pair in sent for role, text in zip((USER, ASSISTANT), pair)]
        reply = Reply(backend.name, backend.model)
        for _chunk in backend.stream(SYSTEM, messages + [Message(USER, question)], max_tokens, reply):
            pass
        if reply.text.strip():
            history.append((question, reply.text))
        yield Turn(reply.usage, len(sent), reply.ttft_s)


def claude_costs() -> None:
    import anthropic

    from chat_core.backends.anthropic_backend import AnthropicBackend
    from tests.loopback_api import LoopbackAPI, reply

    api = LoopbackAPI().start()
    try:
        client = anthropic.Anthropic(api_key="bench-key", base_url=api.url)
        price = price_for("anthropic", MODEL)
        questions = [prose(f"question {turn}", WORDS) for turn in range(CLAUDE_TURNS)]
        answers = [prose(f"answer {turn}", WORDS) for turn in range(CLAUDE_TURNS)]
        runs = {
            "plain slide, no caching": (SLIDE, CLAUDE_WINDOW, False),
            "plain slide, caching": (SLIDE, CLAUDE_WINDOW, True),
            "all history, caching": (SLIDE, 0, True),
            "cache-aware window, caching": (CACHE_AWARE, CLAUDE_WINDOW, True),
        }
        print(f"{CLAUDE_TURNS} turns of ~{WORDS}-word messages and replies, {MODEL}, window {CLAUDE_WINDOW}, "
              f"loopback API billing prompt caching (minimum prefix {min_cacheable_tokens(MODEL):,} tokens):")
        print(f"  {'':29} {'input side':>10} {'total':>9} {'avg sent':>9}")
        figures = {}
        for label, (policy, window, cached) in runs.items():
            api.reset()
            api.queue(*(reply(answer) for answer in answers))
            backend = AnthropicBackend(MODEL, client, prompt_cache=cached)
            turns = list(converse(backend, questions, window, policy, min_cacheable_tokens(MODEL), 2048))
            spent = sum(input_cost(turn.usage, price) for turn in turns)
            total = sum(cost(turn.usage, price) for turn in turns)
            sent = statistics.mean(turn.exchanges_sent for turn in turns)
            figures[label] = spent, sent
            print(f"  {label:29} ${spent:9.4f} ${total:8.4f} {sent:9.2f}")
    finally:
        api.stop()
    aware, aware_sent = figures["cache-aware window, caching"]
    cheaper = min(figures["plain slide, no caching"][0], figures["plain slide, caching"][0])
    print(f"  cache-aware input side / cheaper plain slide = {aware / cheaper:.2f}x (goal <= 0.4x); "
          f"avg sent {aware_sent:.2f} = {aware_sent / CLAUDE_WINDOW:.2f} x N (goal >= 0.6 x N)")


def local_ttft() -> None:
    from chat_core.backends.local import DEFAULT_MODEL, LocalBackend, LocalModel

    questions = [f"Question {turn}: name one thing about the {word}." for turn, word in
                 enumerate(VOCABULARY[:LOCAL_TURNS])]
    policies = {"plain slide": SLIDE, "cache-aware window": CACHE_AWARE}
    # One model (so one KV cache) per chat; the chats take turns, so both see the same machine load.
    chats = {label: converse(LocalBackend(LocalModel.load()), questions, LOCAL_WINDOW, policy, 0, LOCAL_MAX_TOKENS)
             for label, policy in policies.items()}
    rounds = list(zip(*chats.values()))  # turn 1 of each chat, then turn 2 of each, ...
    turns = {label: [turn[i] for turn in rounds] for i, label in enumerate(chats)}
    print(f"local {DEFAULT_MODEL}, window {LOCAL_WINDOW}, {LOCAL_TURNS} one-sentence turns, "
          f"max_tokens {LOCAL_MAX_TOKENS}, median time to first token of turns 11-{LOCAL_TURNS}:")
    medians = {}
    for label, chat in turns.items():
        late = chat[10:]
        medians[label] = statistics.median(turn.ttft_s for turn in late)
        prompt = statistics.median(turn.usage.input_tokens for turn in late)
        print(f"  {label:20} {medians[label] * 1000:7.1f} ms (median prompt {prompt:.0f} tokens)")
    ratio = medians["cache-aware window"] / medians["plain slide"]
    print(f"  cache-aware / plain slide = {ratio:.2f}x (goal <= 0.6x)")


def main() -> None:
    claude_costs()
    local_ttft()


if __name__ == "__main__":
    main()
