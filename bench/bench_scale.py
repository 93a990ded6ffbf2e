"""Long conversations: opening one and sending a message in it, by its length, beside a
10-message conversation (time to a usable page, and the memory the server process grew by),
then opening it again in a new view of the same server (a reload, another tab), and the Tokens
page for 1,000 and 4,000 turns. Each size runs in fresh processes (AppTest, the loopback Claude
API, a SQLite file), the median of RUNS. Prints figures; asserts nothing.

    python bench/bench_scale.py
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 3
sys.path.insert(0, str(ROOT))


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def fill(url: str, messages: int) -> int:
    """A conversation of `messages` messages (half questions, half replies, each reply with its usage record)."""
    import sqlalchemy as sa

    from chat_core.storage import Store

    store = Store(url)
    cid = store.create_conversation("persona", 10, "anthropic", "claude-haiku-4-5")
    now = time.time()
    with store.engine.begin() as conn:
        for start in range(0, messages // 2, 5_000):
            turns = range(start, min(start + 5_000, messages // 2))
            first = conn.execute(sa.text("SELECT COALESCE(MAX(id), 0) FROM messages")).scalar() + 1
            rows = []
            for n in turns:
                rows.append(dict(c=cid, role="user", text=f"question {n} about the weather", reply_to=None, t=now))
                rows.append(dict(c=cid, role="assistant", text=f"answer {n}: " + "some words " * 30,
                                 reply_to=first + 2 * (n - start), t=now))
            conn.execute(sa.text("INSERT INTO messages (conversation_id, role, text, status, created_at, reply_to) "
                                 "VALUES (:c, :role, :text, 'complete', :t, :reply_to)"), rows)
            conn.execute(sa.text(
                "INSERT INTO turns (conversation_id, turn, input_tokens, output_tokens, cache_write_tokens, "
                "cache_read_tokens, messages_sent, model, backend, ttft_s, total_s, status, cost_usd, stop_reason, "
                "unwindowed_input_tokens, message_id) VALUES (:c, :turn, 900, 120, 0, 4000, 11, 'claude-haiku-4-5', "
                "'anthropic', 0.2, 1.0, 'complete', 0.0012, 'end_turn', 5000, :m)"),
                [dict(c=cid, turn=n + 1, m=first + 2 * (n - start) + 1) for n in turns])
    return cid


def one(messages: int, page: str) -> dict:
    """In this process: open a conversation of `messages` messages, then send one message (or open the Tokens page)."""
    from streamlit.testing.v1 import AppTest

    from tests.conftest import pin_navigation_pages
    from tests.loopback_api import LoopbackAPI, reply

    pin_navigation_pages()
    folder = tempfile.mkdtemp()
    api = LoopbackAPI().start()
    api.queue(reply("fine, thanks", repeat=10))
    os.environ.update(CHAT_DATA_DIR=folder, ANTHROPIC_API_KEY="bench", ANTHROPIC_BASE_URL=api.url)
    cid = fill(f"sqlite:///{folder}/chat.db", messages)
    warm = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=600)
    warm.run().chat_input[0].set_value("hello").run()  # imports, the SDK's client and caches, in a new chat
    warm.switch_page("pages/tokens.py").run()
    before = rss_mb()
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=600)
    at.query_params["c"] = str(cid)
    start = time.perf_counter()
    at.run()
    opened = time.perf_counter() - start
    result = {"open_s": opened}
    if page == "chat":
        start = time.perf_counter()
        at.chat_input[0].set_value("and tomorrow?").run()
        result["send_s"] = time.perf_counter() - start
        again = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=600)
        again.query_params["c"] = str(cid)
        start = time.perf_counter()
        again.run()
        result["reopen_s"] = time.perf_counter() - start
    else:
        start = time.perf_counter()
        at.switch_page("pages/tokens.py").run()
        result["tokens_s"] = time.perf_counter() - start
    result["grew_mb"] = rss_mb() - before
    result["errors"] = [e.value for e in at.exception]
    api.stop()
    return result


def run(messages: int, page: str) -> dict:
    """The median of RUNS fresh processes, figure by figure."""
    results = []
    for _ in range(RUNS):
        out = subprocess.run([sys.executable, __file__, str(messages), page], capture_output=True, text=True, cwd=ROOT)
        lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
        if not lines:
            raise SystemExit(f"bench process failed:\n{out.stderr[-2000:]}")
        results.append(json.loads(lines[-1]))
    return {name: statistics.median(r[name] for r in results) if name != "errors" else sum((r[name] for r in results), [])
            for name in results[0]}


def main() -> None:
    print(f"open a conversation and send one message (AppTest, loopback Claude API, SQLite), median of {RUNS} fresh processes:")
    base = None
    for messages in (10, 1_000, 10_000, 100_000):
        r = run(messages, "chat")
        base = base or r
        print(f"  {messages:>7,} messages: open {r['open_s'] * 1000:6.0f} ms, send {r['send_s'] * 1000:6.0f} ms, "
              f"open again {r['reopen_s'] * 1000:6.0f} ms, "
              f"process grew {r['grew_mb']:6.1f} MB  (open+send {(r['open_s'] + r['send_s']) / (base['open_s'] + base['send_s']):5.1f}x "
              f"the 10-message conversation){'  errors: ' + str(r['errors']) if r['errors'] else ''}")
    print("  goal: 100,000 messages <= 2x the 10-message time, memory growth <= 50 MB")
    print("Tokens page (AppTest, switch from the open chat):")
    times = {}
    for turns in (1_000, 4_000):
        r = run(2 * turns, "tokens")
        times[turns] = r["tokens_s"]
        print(f"  {turns:>5,} turns: {r['tokens_s'] * 1000:8.0f} ms{'  errors: ' + str(r['errors']) if r['errors'] else ''}")
    print(f"  4,000 turns / 1,000 turns = {times[4_000] / times[1_000]:.2f}x (linear: ~4x; goal: 4,000 turns < 2 s)")


if __name__ == "__main__":
    if len(sys.argv) == 3:
        print(json.dumps(one(int(sys.argv[1]), sys.argv[2])))
    else:
        main()
