"""Loading and saving conversations. Prints figures; asserts nothing.

    python bench/bench_storage.py            # SQLite; PostgreSQL too when CHAT_TEST_POSTGRES_URL is set
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chat_core.conversation import Message  # noqa: E402
from chat_core.storage import Store  # noqa: E402
from chat_core.usage import TurnRecord, Usage  # noqa: E402

TURNS = 1_000
SAVES = 200


def record(turn: int) -> TurnRecord:
    return TurnRecord(turn, Usage(100 + turn, 50), 2 * turn - 1, "claude-haiku-4-5", "anthropic",
                      0.3, 1.2, "complete", 0.0003, "end_turn", 100 + 2 * turn)


def save_turn(store: Store, cid: int, turn: int) -> None:
    _, asked = store.add_user_message(cid, Message("user", f"question {turn}: " + "words " * 20))
    store.add_reply(cid, Message("assistant", f"answer {turn}: " + "more words " * 60, reply_to=asked), record(turn))


def bench(name: str, url: str) -> None:
    store = Store(url)
    cid = store.create_conversation("persona", 10, "anthropic", "claude-haiku-4-5")
    saves = []
    for turn in range(1, TURNS + 1):
        start = time.perf_counter()
        save_turn(store, cid, turn)
        if turn <= SAVES:
            saves.append(time.perf_counter() - start)
    loads = []
    for _ in range(15):
        start = time.perf_counter()
        loaded = store.load(cid)
        loads.append(time.perf_counter() - start)
    assert len(loaded.records) == TURNS
    print(f"{name}: load a {TURNS:,}-turn conversation: median {statistics.median(loads) * 1000:6.1f} ms "
          f"(best {min(loads) * 1000:.1f} ms; goal on SQLite < 100 ms)")
    print(f"{name}: saving per turn (user message + reply + usage record), median of {SAVES}: "
          f"{statistics.median(saves) * 1000:.2f} ms")
    store.delete_conversation(cid)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        bench("SQLite", f"sqlite:///{folder}/chat.db")
    url = os.environ.get("CHAT_TEST_POSTGRES_URL")
    if url:
        bench("PostgreSQL", url)
    else:
        print("PostgreSQL: skipped (set CHAT_TEST_POSTGRES_URL; .ci/start-postgres starts one)")


if __name__ == "__main__":
    main()
