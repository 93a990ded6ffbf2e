"""The dashboard's cost: one Streamlit rerun against history length (AppTest), and the time
from a submitted message to the first streamed chunk on the page (headless Chromium).
Prints figures; asserts nothing.

    python bench/bench_dashboard.py
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chat_core.conversation import Message  # noqa: E402
from chat_core.storage import Store  # noqa: E402
from chat_core.usage import TurnRecord, Usage  # noqa: E402
from tests.loopback_api import LoopbackAPI, reply  # noqa: E402
from tests.conftest import pin_navigation_pages  # noqa: E402
from tests.test_browser import CHROMIUM, FLAGS, App, idle, open_app  # noqa: E402


def rerun_times(api_url: str) -> None:
    from streamlit.testing.v1 import AppTest

    pin_navigation_pages()  # AppTest and a top-level pages/: see tests/conftest.py
    times = {}
    for turns in (10, 100, 500):
        with tempfile.TemporaryDirectory() as folder:
            os.environ.update(CHAT_DATA_DIR=folder, ANTHROPIC_API_KEY="bench", ANTHROPIC_BASE_URL=api_url)
            store = Store(f"sqlite:///{folder}/chat.db")
            cid = store.create_conversation("persona", 10, "anthropic", "claude-haiku-4-5")
            for turn in range(1, turns + 1):
                _, asked = store.add_user_message(cid, Message("user", f"question {turn} with **markdown**"))
                store.add_reply(cid, Message("assistant", f"answer {turn}: " + "some words " * 30, reply_to=asked),
                                TurnRecord(turn, Usage(100, 40), 3, "claude-haiku-4-5", "anthropic",
                                           0.2, 1.0, "complete", 0.0003, "end_turn", 120))
            at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
            at.query_params["c"] = str(cid)
            at.run()
            runs = []
            for _ in range(7):
                start = time.perf_counter()
                at.run()
                runs.append(time.perf_counter() - start)
            times[turns] = statistics.median(runs)
            print(f"rerun with {turns:>3} turns of history: {times[turns] * 1000:7.1f} ms (median of 7, AppTest)")
    print(f"500-turn rerun / 10-turn rerun = {times[500] / times[10]:.2f}x (goal <= 3x)")


def first_chunk(label: str, env: dict, message: str, rounds: int = 5) -> None:
    from playwright.sync_api import sync_playwright

    app = App(env).start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page()
            open_app(page, app.url)
            waits = []
            for i in range(rounds + 1):
                # An empty chat shows one welcome bubble that the first message replaces.
                before = 0 if i == 0 else page.locator('[data-testid="stChatMessage"]').count()
                box = page.locator('[data-testid="stChatInput"] textarea')
                box.fill(f"{message} {i}")
                start = time.perf_counter()
                box.press("Enter")
                # the reply's bubble exists and holds streamed text
                page.wait_for_function(
                    """(n) => { const all = document.querySelectorAll('[data-testid="stChatMessage"]');
                      if (all.length < n + 2) return false;
                      const md = all[n + 1].querySelector('[data-testid="stMarkdownContainer"]');
                      return !!md && md.innerText.trim().length > 0; }""",
                    arg=before,
                    polling="raf", timeout=60000)
                if i:  # the first round warms up the page
                    waits.append(time.perf_counter() - start)
                idle(page, timeout=120)  # the reply is done and the page redrawn from the store
            browser.close()
    finally:
        app.stop()
    print(f"submit to first streamed chunk on the page, {label}: median {statistics.median(waits) * 1000:6.0f} ms "
          f"(min {min(waits) * 1000:.0f}, max {max(waits) * 1000:.0f}, {rounds} messages)")


def main() -> None:
    api = LoopbackAPI().start()
    try:
        rerun_times(api.url)
        with tempfile.TemporaryDirectory() as folder:
            base = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CHAT_"))}
            api.queue(reply("streamed " * 20, repeat=100))
            first_chunk("loopback Claude API", dict(base, CHAT_DATA_DIR=folder + "/a", ANTHROPIC_API_KEY="bench",
                                                    ANTHROPIC_BASE_URL=api.url), "hello")
            first_chunk("bundled local model", dict(base, CHAT_DATA_DIR=folder + "/b", CHAT_MAX_TOKENS="16"),
                        "Say hi")
    finally:
        api.stop()


if __name__ == "__main__":
    main()
