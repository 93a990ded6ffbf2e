"""What attachments cost the page. Prints figures; asserts nothing.

1. Submit to the first streamed chunk on the page (headless Chromium, loopback Claude API) with
   one 1 MB image attached, against the same message without it, each the first message of a
   new chat (goal <= 1.3x).
2. Opening a stored conversation of 20 exchanges whose questions each carry an image, against
   the same conversation without images (AppTest, a new browser session each time; goal <= 2x).

    python bench/bench_content.py
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

from chat_core.content import prepare  # noqa: E402
from chat_core.conversation import Message  # noqa: E402
from chat_core.storage import Store  # noqa: E402
from chat_core.usage import TurnRecord, Usage  # noqa: E402
from tests.browser_helpers_content import attach  # noqa: E402
from tests.content_files import noisy_jpeg  # noqa: E402
from tests.conftest import pin_navigation_pages  # noqa: E402
from tests.loopback_api import LoopbackAPI, reply  # noqa: E402
from tests.test_browser import CHROMIUM, FLAGS, App, idle, open_app  # noqa: E402

ROUNDS = 8


def first_chunk(env: dict, image: Path) -> tuple[list[float], list[float]]:
    """Seconds from Enter to the reply's first text on the page, without and with `image` attached,
    taken in turns (so both see the same load on the machine), each the first message of a new chat."""
    from playwright.sync_api import sync_playwright

    app = App(env).start()
    waits: dict[bool, list[float]] = {False: [], True: []}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page()
            for i in range(2 * ROUNDS + 2):
                attached = bool(i % 2)
                open_app(page, app.url)  # a new chat: the request carries this message alone
                if attached:  # attached (uploaded) before the clock starts, as a person does
                    attach(page, [image])
                box = page.locator('[data-testid="stChatInput"] textarea')
                box.fill(f"what is this {i}")
                start = time.perf_counter()
                box.press("Enter")
                page.wait_for_function(
                    """() => { const all = document.querySelectorAll('[data-testid="stChatMessage"]');
                      if (all.length < 2) return false;
                      const md = all[1].querySelector('[data-testid="stMarkdownContainer"]');
                      return !!md && md.innerText.trim().length > 0; }""",
                    polling="raf", timeout=60000)
                if i >= 2:  # the first pair warms up the page
                    waits[attached].append(time.perf_counter() - start)
                idle(page, timeout=120)
            browser.close()
    finally:
        app.stop()
    return waits[False], waits[True]


def open_times(api_url: str, rounds: int = 8) -> dict[bool, list[float]]:
    """Seconds to open a 20-exchange conversation in a new browser session (AppTest), with and
    without an image on each question, taken in turns; the first open of each is left out
    (it makes the thumbnails, once per image, for every later session)."""
    from streamlit.testing.v1 import AppTest

    times: dict[bool, list[float]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as folder:
        os.environ.update(CHAT_DATA_DIR=folder, ANTHROPIC_API_KEY="bench", ANTHROPIC_BASE_URL=api_url)
        store = Store(f"sqlite:///{folder}/chat.db")
        ids = {}
        for images in (False, True):
            ids[images] = cid = store.create_conversation("persona", 10, "anthropic", "claude-haiku-4-5")
            for turn in range(1, 21):
                files = [prepare(f"photo-{turn}.jpg", noisy_jpeg(1024, 768, seed=turn))] if images else []
                _, asked = store.add_user_message(cid, Message("user", f"question {turn}", attachments=files))
                store.add_reply(cid, Message("assistant", f"answer {turn}: " + "some words " * 30, reply_to=asked),
                                TurnRecord(turn, Usage(100, 40), 3, "claude-haiku-4-5", "anthropic",
                                           0.2, 1.0, "complete", 0.0003, "end_turn", 120))
        for i in range(rounds + 1):
            for images in (False, True):
                at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
                at.query_params["c"] = str(ids[images])
                start = time.perf_counter()
                at.run()
                assert not at.exception, at.exception
                if i:
                    times[images].append(time.perf_counter() - start)
    return times


def main() -> None:
    pin_navigation_pages()
    api = LoopbackAPI().start()
    try:
        opened = open_times(api.url)
        plain, with_images = statistics.median(opened[False]), statistics.median(opened[True])
        print(f"open a 20-exchange conversation, no images:       {plain * 1000:7.1f} ms (median of 8 new sessions)")
        print(f"open a 20-exchange conversation, 20 images:       {with_images * 1000:7.1f} ms (median of 8 new sessions)")
        print(f"20 images / none = {with_images / plain:.2f}x (goal <= 2x)")
        with tempfile.TemporaryDirectory() as folder:
            picture = Path(folder) / "photo.jpg"
            picture.write_bytes(noisy_jpeg(1024, 1024))
            base = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CHAT_"))}
            env = dict(base, ANTHROPIC_API_KEY="bench", ANTHROPIC_BASE_URL=api.url)
            api.queue(reply("streamed " * 20, repeat=1000))
            without, with_image = first_chunk(dict(env, CHAT_DATA_DIR=folder + "/a"), picture)
            size = picture.stat().st_size
        print(f"submit to first streamed chunk, no attachment:    median {statistics.median(without) * 1000:6.0f} ms "
              f"(min {min(without) * 1000:.0f}, max {max(without) * 1000:.0f}, {ROUNDS} messages)")
        print(f"submit to first streamed chunk, a {size / 1e6:.1f} MB image: median "
              f"{statistics.median(with_image) * 1000:6.0f} ms (min {min(with_image) * 1000:.0f}, "
              f"max {max(with_image) * 1000:.0f}, {ROUNDS} messages)")
        print(f"with the image / without = {statistics.median(with_image) / statistics.median(without):.2f}x "
              "(goal <= 1.3x)")
    finally:
        api.stop()


if __name__ == "__main__":
    main()
